"""The runner process: `python -m assay.executors.worker RUN_ID` executes one queued run.

Its stdout and stderr (the user's prints, warnings, C-level output) go to a log
file that is stored with the run; progress events go to the parent over a pipe
(`ASSAY_EVENTS_FD`) as JSON lines.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write("usage: python -m assay.executors.worker RUN_ID [--no-cache]\n")
        return 2
    run_id, use_cache = argv[1], "--no-cache" not in argv[2:]
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
        if finished.status == "succeeded" and finished.model:
            _register(ws, finished.id, emit)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        ws.runs.attach_logs(run_id, log_path.read_bytes())
        log_path.unlink(missing_ok=True)
        ws.close()
    return 0


def _register(ws: Any, run_id: str, emit: Any) -> None:
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
