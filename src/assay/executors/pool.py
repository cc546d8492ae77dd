"""Local runner processes that stay up: a sweep's trials on this machine's cores.

Each runner is `python -m assay.executors.worker --serve`: jobs go in on its
stdin, events come back on a pipe of its own. A runner that dies mid-run is
reported (`Done.problem`) and replaced by a fresh one for the next job.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.executors import lifeline
from assay.runs.executor import Done, Job

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class _Runner:
    process: subprocess.Popen[bytes]
    events: Any  # the read end of its events pipe, as a text stream
    run_id: str | None = None
    buffer: str = field(default="")


class LocalPool:
    """`slots` runner processes, started at once and reused for every job."""

    name = "local"

    def __init__(
        self,
        cwd: Path,
        environ: Mapping[str, str],
        slots: int,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.cwd = cwd
        self.environ = dict(environ)
        self.slots = slots
        self.on_event = on_event
        self._selector = selectors.DefaultSelector()
        self._runners: list[_Runner] = []
        for _ in range(slots):
            self._runners.append(self._spawn())

    def _spawn(self) -> _Runner:
        read_fd, write_fd = os.pipe()
        # The runners die with this process (`assay.executors.lifeline`): a sweep
        # killed with -9 leaves no trial running on for nobody.
        env = lifeline.owned(self.environ)
        env.update(ASSAY_EVENTS_FD=str(write_fd), PYTHONUNBUFFERED="1")
        # Each runner's share of the cores for the math libraries' thread pools
        # (OpenMP, BLAS), unless the user chose: two runners each starting a thread
        # per core on two cores halve each other's speed.
        share = str(max(1, (os.cpu_count() or 1) // self.slots))
        for var in _THREAD_VARS:
            env.setdefault(var, share)
        process = subprocess.Popen(
            [sys.executable, "-m", "assay.executors.worker", "--serve"],
            cwd=self.cwd,
            env=env,
            pass_fds=(write_fd,),
            stdin=subprocess.PIPE,
            # Its own process group: Ctrl-C in the terminal reaches the sweep, which
            # stops the busy runners itself (`close(cancel=True)`), not idle ones.
            process_group=0,
        )
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        runner = _Runner(process, os.fdopen(read_fd, "rb", buffering=0))
        self._selector.register(runner.events, selectors.EVENT_READ, runner)
        return runner

    def preload(self, pipeline_ref: str) -> None:
        """Have every idle runner import the pipeline's code now, before its first job."""
        for runner in self._runners:
            if runner.run_id is None:
                self._send(runner, {"preload": pipeline_ref})

    def _send(self, runner: _Runner, message: dict[str, Any]) -> None:
        try:
            assert runner.process.stdin is not None
            runner.process.stdin.write((json.dumps(message) + "\n").encode())
            runner.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died: its events pipe closes, and `wait` reports its job

    # ---- Executor ------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        runner = next((r for r in self._runners if r.run_id is None), None)
        if runner is None:
            raise RuntimeError("LocalPool.submit: every runner is busy")  # the caller's bug
        runner.run_id = job.run_id
        self._send(
            runner, {"run": job.run_id, "use_cache": job.use_cache, "register": job.register}
        )

    def wait(self, timeout: float) -> list[Done]:
        done: list[Done] = []
        deadline = time.monotonic() + timeout
        while not done:
            left = deadline - time.monotonic()
            if left < 0:
                break
            for key, _ in self._selector.select(left):
                runner: _Runner = key.data
                done.extend(self._read(runner))
        return done

    def close(self, *, cancel: bool = False) -> None:
        for runner in self._runners:
            if cancel and runner.run_id is not None:
                _signal(runner.process, signal.SIGINT)  # the run records itself as killed
            try:
                if runner.process.stdin is not None:
                    runner.process.stdin.close()
            except OSError:
                pass
        for runner in self._runners:
            try:
                runner.process.wait(timeout=15 if cancel else None)
            except subprocess.TimeoutExpired:
                runner.process.kill()
                runner.process.wait()
            self._selector.unregister(runner.events)
            runner.events.close()
        self._runners = []
        self._selector.close()

    # ---- events --------------------------------------------------------------------------

    def _read(self, runner: _Runner) -> list[Done]:
        done: list[Done] = []
        try:
            chunk = runner.events.read(65536)
        except BlockingIOError:
            return done
        if not chunk:  # the runner exited
            code = runner.process.wait()
            if runner.run_id is not None:
                how = (
                    f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
                )
                done.append(Done(runner.run_id, f"The runner process {how}."))
            self._replace(runner)
            return done
        runner.buffer += chunk.decode("utf-8", errors="replace")
        *lines, runner.buffer = runner.buffer.split("\n")
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (
                runner.run_id is not None
                and event.get("event") == "done"
                and (event.get("run") == runner.run_id)
            ):
                done.append(Done(runner.run_id, event.get("problem")))
                runner.run_id = None
            elif self.on_event is not None:
                self.on_event(event)
        return done

    def _replace(self, runner: _Runner) -> None:
        self._selector.unregister(runner.events)
        runner.events.close()
        self._runners.remove(runner)
        self._runners.append(self._spawn())


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
