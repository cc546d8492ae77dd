"""The runner process.

`python -m assay.executors.worker RUN_ID [--no-cache]` executes one queued run.
`python -m assay.executors.worker --serve` stays up and executes the runs named
on its stdin, one JSON job per line (`{"run": ID, "use_cache": true,
"register": true}`), until stdin closes: a sweep's trials then pay for Python,
Assay and the pipeline's imports once per runner instead of once per trial.

Each run's stdout and stderr (the user's prints, warnings, C-level output) go to
a log file stored with the run; progress events go to the parent over a pipe
(`ASSAY_EVENTS_FD`) as JSON lines, each naming its run.

A runner dies with the command that owns it (`assay.executors.lifeline`): its run
is then recorded as killed, with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.executors.lifeline import Lifeline

if TYPE_CHECKING:
    from assay.workspace import Workspace

Emit = Callable[[dict[str, Any]], None]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write("usage: python -m assay.executors.worker RUN_ID [--no-cache] | --serve\n")
        return 2
    lifeline = Lifeline()
    lifeline.hold()  # first: a runner whose command dies while it starts goes too
    try:
        return _main(argv, lifeline)
    except KeyboardInterrupt:
        # Stopped (Ctrl-C, SIGTERM, its owner gone) outside a run, or after recording it.
        return 130


def _main(argv: list[str], lifeline: Lifeline) -> int:
    events = _events()

    def emit(event: dict[str, Any]) -> None:
        if events is not None:
            try:
                events.write(json.dumps(event) + "\n")
                events.flush()
            except OSError:
                pass  # the parent went away; the run goes on and is recorded all the same

    from assay.config import Settings
    from assay.workspace import Workspace

    ws = Workspace(Settings.load(Path.cwd(), os.environ))

    def last_word(reason: str) -> None:
        if lifeline.run_id is not None:
            ws.runs.abandon(lifeline.run_id, "killed", reason)

    lifeline.last_word = last_word
    try:
        if argv[1] == "--serve":
            return serve(ws, emit, lifeline)
        lifeline.run_id = argv[1]
        run_one(ws, argv[1], use_cache="--no-cache" not in argv[2:], register=True, emit=emit)
    finally:
        ws.close()
    return 0


def serve(ws: Workspace, emit: Emit, lifeline: Lifeline | None = None) -> int:
    """Execute the jobs read from stdin, one after another, until it closes (or the
    runner is told to stop: its run is recorded as killed, and it exits)."""
    lifeline = lifeline or Lifeline()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            job = json.loads(line)
            if "preload" in job:
                _warm(ws, str(job["preload"]))
                continue
            run_id = str(job["run"])
        except (ValueError, KeyError, TypeError):
            sys.stderr.write(f"assay: ignoring a malformed job: {line[:200]!r}\n")
            continue

        def tagged(event: dict[str, Any], run_id: str = run_id) -> None:
            emit({**event, "run": run_id})

        lifeline.run_id = run_id
        try:
            run_one(
                ws,
                run_id,
                use_cache=bool(job.get("use_cache", True)),
                register=bool(job.get("register", True)),
                emit=tagged,
            )
        except KeyboardInterrupt:
            # Ctrl-C reached this runner between runs, or in the run's epilogue: the
            # run was recorded as far as it got; the parent marks what is left.
            emit({"event": "done", "run": run_id, "interrupted": True})
            return 130
        except Exception as exc:  # a store failure around the run: say so, serve on
            emit({"event": "done", "run": run_id, "problem": f"{type(exc).__name__}: {exc}"})
            continue
        finally:
            lifeline.run_id = None
        emit({"event": "done", "run": run_id})
        if lifeline.stopping:
            return 128 + signal.SIGTERM
    return 0


def _warm(ws: Workspace, pipeline_ref: str) -> None:
    try:
        ws.runs.warm(pipeline_ref)
    except Exception as exc:  # the runs will fail with the reason; nothing to do here
        sys.stderr.write(f"assay: could not preload {pipeline_ref}: {exc}\n")


def run_one(ws: Workspace, run_id: str, *, use_cache: bool, register: bool, emit: Emit) -> None:
    """Execute one queued run here, its output captured into the run's log."""
    with tempfile.NamedTemporaryFile(prefix="assay-log-", suffix=".txt", delete=False) as log:
        log_path = Path(log.name)
    saved = os.dup(1), os.dup(2)
    fd = os.open(log_path, os.O_WRONLY | os.O_TRUNC)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        finished = ws.runs.execute(run_id, use_cache=use_cache, emit=emit)
        if register and finished.status == "succeeded" and finished.model:
            _register(ws, finished.id, emit)
        elif finished.status == "succeeded":  # a notebook logs its own models
            for mv in ws.registry.of_run(finished.id):
                emit({"event": "model", "ref": mv.ref, "flavor": mv.flavor})
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        ws.runs.attach_logs(run_id, log_path.read_bytes())
        log_path.unlink(missing_ok=True)


def _register(ws: Any, run_id: str, emit: Emit) -> None:
    """The run's model becomes the next version of its model in the repository.

    A model that cannot be stored does not fail the run that trained it: the reason
    goes to the run's log, and `assay models register --run RUN` can retry.
    """
    from assay.errors import AssayError
    from assay.registry.service import NotAModelError

    try:
        mv = ws.registry.register_run(run_id)
    except NotAModelError:
        return  # the pipeline's "model" is data, not something that predicts: nothing to do
    except (AssayError, OSError, ValueError, TypeError) as exc:
        sys.stderr.write(f"assay: the model was not registered: {exc}\n")
        emit({"event": "model_error", "error": str(exc)})
        return
    emit({"event": "model", "ref": mv.ref, "flavor": mv.flavor})


def _events() -> Any:
    fd = os.environ.get("ASSAY_EVENTS_FD")
    if not fd:
        return None
    try:
        return os.fdopen(int(fd), "w", buffering=1)
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv))
