"""The local executor: each run in a subprocess of its own, on this machine."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.executors import lifeline

if TYPE_CHECKING:
    from assay.runs.service import RunService
    from assay.workspace import Workspace


class Forked:
    """A runner forked from this process, behind the part of `Popen`'s interface that
    `LocalRun` uses (`wait`, `terminate`, `kill`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"runner {self.pid}", timeout)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def terminate(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)


@dataclass
class LocalRun:
    """A runner process and the stream of progress events it sends."""

    process: subprocess.Popen[bytes] | Forked
    events_fd: int

    def events(self) -> Iterator[dict[str, Any]]:
        with os.fdopen(self.events_fd, "r") as stream:
            for line in stream:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    def wait(self) -> int:
        return self.process.wait()

    def settle(self, runs: RunService, run_id: str, code: int) -> None:
        """Record a run whose runner exited without recording its end itself."""
        if code < 0:
            name = signal.Signals(-code).name
            runs.abandon(run_id, "killed", f"The runner was killed by {name}.")
        elif code != 0:
            runs.abandon(run_id, "failed", f"The runner exited with {code}; see `assay runs logs`.")

    def interrupt(self, runs: RunService, run_id: str) -> None:
        """After Ctrl-C (which the runner got too): let it record the run, then make sure."""
        self._reap()
        runs.abandon(run_id, "killed", "Interrupted (Ctrl-C).")

    def stop(self, runs: RunService, run_id: str, why: str) -> None:
        """Stop the runner (SIGTERM: it records the run as killed), then make sure."""
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        self._reap()
        runs.abandon(run_id, "killed", f"Stopped by {why}.")

    def _reap(self) -> None:
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class LocalExecutor:
    """Starts `python -m assay.executors.worker RUN_ID` with the workspace's settings.

    The runner dies with this process (`assay.executors.lifeline`) unless `detached`.

    With `fork=True` (a command on its main thread, on Linux, with no other thread
    running) the runner is a fork of this process instead: the same worker code, minus
    a second interpreter's start and imports, which were most of `assay run`'s fixed
    cost. The caller must hold no open database connection (`Database.release`): the
    child opens its own.
    """

    def __init__(
        self, cwd: Path, environ: Mapping[str, str], *, detached: bool = False, fork: bool = False
    ) -> None:
        self.cwd = cwd
        self.environ = dict(environ)
        self.detached = detached
        self.fork = fork

    def launch(self, run_id: str, *, use_cache: bool = True) -> LocalRun:
        read_fd, write_fd = os.pipe()
        env = lifeline.detached(self.environ) if self.detached else lifeline.owned(self.environ)
        env.update(ASSAY_EVENTS_FD=str(write_fd), PYTHONUNBUFFERED="1")
        args = [sys.executable, "-m", "assay.executors.worker", run_id]
        if not use_cache:
            args.append("--no-cache")
        if self.fork and can_fork():
            pid = _fork_worker(args[2:], env, self.cwd, read_fd)
            os.close(write_fd)
            return LocalRun(Forked(pid), read_fd)
        process = subprocess.Popen(
            args, cwd=self.cwd, env=env, pass_fds=(write_fd,), stdin=subprocess.DEVNULL
        )
        os.close(write_fd)
        return LocalRun(process, read_fd)


def can_fork() -> bool:
    """Whether forking this process is safe: Linux, and no thread but the main one
    (a fork copies only the calling thread; a lock held by another would stay held),
    or the recorders' thread winding down after the last run ended."""
    from assay.runs.tracking import idle_recorder_thread

    idle = idle_recorder_thread()
    return (
        sys.platform == "linux"
        and threading.current_thread() is threading.main_thread()
        and all(t is threading.main_thread() or t is idle for t in threading.enumerate())
    )


def _fork_worker(argv: list[str], env: Mapping[str, str], cwd: Path, read_fd: int) -> int:
    """Fork; the child runs the worker's `main(argv)` as `python -m` would, then exits
    without running this process's exit handlers or finalizers (they are the parent's)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.close(read_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # The step's prints go where the worker points fds 1 and 2, whatever this
        # process had put in their place (a test's captured stream, a rich console).
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        from assay.executors import worker

        code = worker.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def launch_in_background(
    ws: Workspace,
    run_id: str,
    *,
    use_cache: bool = True,
    then: Callable[[], None] | None = None,
    detached: bool = False,
) -> None:
    """Start the runner for a queued run and settle its end on a thread of its own;
    `then` runs after that (a retrain registers the run's model). What the run records
    names the caller the process acts for (the server's request's token). A `detached`
    runner outlives this process (see `LocalExecutor`)."""
    from assay.store.acting import acting_env

    root = ws.settings.root or Path.cwd()
    env = acting_env(ws.settings, os.environ)
    handle = LocalExecutor(root, env, detached=detached).launch(run_id, use_cache=use_cache)

    def watch() -> None:
        for _ in handle.events():
            pass
        handle.settle(ws.runs, run_id, handle.wait())
        if then is not None:
            try:
                then()
            except Exception:  # the caller keeps serving; the record says what is missing
                logging.getLogger("assay.executors").exception("after run %s", run_id)

    threading.Thread(target=watch, name=f"assay-run-{run_id[:8]}", daemon=True).start()
