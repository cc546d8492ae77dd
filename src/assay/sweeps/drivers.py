"""Sweeps a server drives: each by a driver process of its own, started, stopped and resumed.

A driver runs a recorded sweep's trials through the executor the sweep was created with,
as `assay sweep` does on a laptop (`drive`). The process is detached from the server (a
session of its own), so restarting the server neither stops nor loses a sweep; and since
the sweep records every trial as it starts and ends, a driver that dies leaves a sweep
that `resume` continues. `stop` asks a driver to stop as Ctrl-C does (SIGINT): the
running trials are killed and recorded as interrupted.

`SweepDrivers` holds the rules (what may start, resume or stop, and when, and what a
driver that exits without recording its sweep's end leaves behind); the processes come
from a `Launcher`, and time from a `Clock`, so the rules are tested with fakes of both
(tests/sweeps/test_drivers.py). The server only wires them (server/sweep_driver.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from assay.errors import AssayError, ConflictError
from assay.store.acting import acting_env
from assay.sweeps.scheduler import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from assay.config import Settings
    from assay.runs.executor import Executor
    from assay.sweeps.entities import Sweep
    from assay.sweeps.service import SweepService

log = logging.getLogger("assay.server")

HOST = socket.gethostname()


class DriverProcess(Protocol):
    """A started driver process (a `subprocess.Popen` is one)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """Its exit code, or None while it runs."""
        ...

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code once it exits; subprocess.TimeoutExpired after `timeout` s."""
        ...


class Launcher(Protocol):
    """Starts and signals driver processes."""

    def start(self, settings: Settings, name: str, log_path: Path) -> DriverProcess:
        """Start the driver of sweep `name` on the workspace of `settings`, writing what
        it prints to `log_path`."""
        ...

    def interrupt(self, pid: int) -> None:
        """Ask driver `pid` to stop, as Ctrl-C does.

        Raises:
            ProcessLookupError: it has exited.
            PermissionError: it is not ours to signal.
        """
        ...

    def is_driver(self, pid: int) -> bool:
        """Whether `pid` is alive and (where the system tells) a driver, not a reused pid."""
        ...


class ProcessLauncher:
    """Driver processes: `python -m MODULE NAME`, detached from the server."""

    def __init__(self, module: str, environ: Mapping[str, str]) -> None:
        self.module = module
        self.environ = environ

    def start(self, settings: Settings, name: str, log_path: Path) -> DriverProcess:
        env = acting_env(settings, self.environ)  # the caller, on what trials record
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", self.module, name],
                cwd=settings.root or Path.cwd(),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not stopped with the server, nor by its Ctrl-C
            )

    def interrupt(self, pid: int) -> None:
        os.kill(pid, signal.SIGINT)

    def is_driver(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # alive, someone else's: `stop` says so when it cannot signal it
        try:
            return b"assay" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True


def log_file(settings: Settings, name: str) -> Path:
    """Where the driver of sweep `name` writes what it prints, on the server."""
    home = settings.workspace_dir or settings.cache_dir
    return home / "sweeps" / f"{name}.log"


def in_background(work: Callable[[], None], name: str) -> None:
    threading.Thread(target=work, name=name, daemon=True).start()


class SweepDrivers:
    """The driver processes this server started and that have not exited, by (database,
    sweep), and the rules for starting, resuming and stopping them."""

    def __init__(
        self,
        launcher: Launcher,
        *,
        clock: Clock = SYSTEM_CLOCK,
        host: str = HOST,
        background: Callable[[Callable[[], None], str], None] = in_background,
    ) -> None:
        self.launcher = launcher
        self.clock = clock
        self.host = host
        self.background = background  # where a driver's end is waited for and settled
        self._drivers: dict[tuple[str, str], DriverProcess] = {}
        self._lock = threading.Lock()

    def start(self, sweeps: SweepService, settings: Settings, name: str) -> None:
        """Start the driver of a created (or queued) sweep, and settle its end in the
        background.

        Raises:
            ConflictError: this server already started a driver for it that is running.
        """
        key = (settings.db_url, name)
        with self._lock:
            running = self._drivers.get(key)
            if running is not None and running.poll() is None:
                raise ConflictError(
                    f"Sweep {name!r} is starting on the server; follow it with "
                    f"`assay sweeps show {name}`."
                )
            path = log_file(settings, name)
            process = self.launcher.start(settings, name, path)
            self._drivers[key] = process
        self.background(lambda: self._settle(sweeps, key, process, path), f"assay-sweep-{name}")

    def resume(self, sweeps: SweepService, settings: Settings, name: str) -> Sweep:
        """Queue an interrupted (or failed) sweep and start its driver.

        Raises:
            NotFoundError: no such sweep.
            ConflictError: it is running or starting, or has finished all its trials.
        """
        with self._lock:
            last = self._drivers.get((settings.db_url, name))
        if last is not None and last.poll() is None:
            if sweeps.get(name).status in ("created", "queued"):
                raise ConflictError(
                    f"Sweep {name!r} is starting on the server; follow it with "
                    f"`assay sweeps show {name}`."
                )
            try:  # it recorded its end and is on its way out
                last.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise ConflictError(
                    f"The last driver of sweep {name!r} is still stopping; resume it in a moment."
                ) from None
        sweep = sweeps.queue(name)
        self.start(sweeps, settings, name)
        return sweep

    def stop(
        self, sweeps: SweepService, settings: Settings, name: str, *, wait_s: float = 60.0
    ) -> Sweep:
        """Ask the sweep's driver to stop, as Ctrl-C does; return the sweep once it has
        stopped (or as it stands after `wait_s` seconds).

        Raises:
            NotFoundError: no such sweep.
            ConflictError: it is not running, or its driver is on another host.
        """
        deadline = self.clock.monotonic() + wait_s
        signalled: int | None = None
        while True:
            sweep = sweeps.get(name)
            if sweep.status == "running":
                if sweep.host != self.host:
                    raise ConflictError(
                        f"Sweep {name!r} is driven on host {sweep.host}; stop it there.",
                        host=sweep.host,
                    )
                if sweep.pid is None or not self.launcher.is_driver(sweep.pid):
                    return sweeps.abandoned(name, sweep.pid, "Its driver went away.")
                if signalled != sweep.pid:
                    try:
                        self.launcher.interrupt(sweep.pid)
                    except ProcessLookupError:
                        continue  # it just exited: the next look settles it
                    except PermissionError:
                        raise ConflictError(
                            f"Sweep {name!r} is driven by process {sweep.pid}, which the "
                            "server may not signal; stop it there (Ctrl-C).",
                            pid=sweep.pid,
                        ) from None
                    signalled = sweep.pid
            elif sweep.status in ("created", "queued") and signalled is None:
                pass  # its driver is starting: stop it once it has claimed the sweep
            elif signalled is not None:
                self._wait_exit(settings, name, deadline)
                return sweep
            else:
                hint = (
                    f"; resume it with `assay sweep resume {name}`"
                    if sweep.status in ("interrupted", "failed")
                    else ""
                )
                raise ConflictError(
                    f"Sweep {name!r} is not running (it is {sweep.status}){hint}.",
                    status=sweep.status,
                )
            if self.clock.monotonic() > deadline:
                if signalled is None:
                    raise ConflictError(
                        f"Sweep {name!r} has not started yet; stop it again in a moment."
                    )
                return sweep
            self.clock.sleep(0.1)

    def _wait_exit(self, settings: Settings, name: str, deadline: float) -> None:
        """Wait (until `deadline`) for a driver this server started to exit, once it has
        recorded the sweep's end, so that a resume right after finds it gone."""
        with self._lock:
            process = self._drivers.get((settings.db_url, name))
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - self.clock.monotonic()))

    def _settle(
        self,
        sweeps: SweepService,
        key: tuple[str, str],
        process: DriverProcess,
        path: Path,
    ) -> None:
        """Wait for a driver; if it exited without recording the sweep's end, record why."""
        code = process.wait()
        with self._lock:
            if self._drivers.get(key) is process:
                del self._drivers[key]
        if code == 0:
            return
        said = _last_line(path)
        cause = said or f"The sweep's driver exited with {code}; its log is {path} on the server."
        try:
            sweeps.abandoned(key[1], process.pid, cause)
        except Exception:  # in the background: nobody to raise to, so the log says it
            log.exception("could not record the end of sweep %s's driver", key[1])


def drive(
    sweeps: SweepService,
    name: str,
    open_executor: Callable[[Sweep], Executor],
    *,
    say: Callable[[str], None],
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """What a driver process does: drive sweep `name` to its end, saying how it goes.

    Returns the process's exit code: 0 when the sweep finished or stopped at a limit,
    1 when it failed (or could not start: the last line said says why), 130 when it was
    interrupted (SIGINT or SIGTERM, as KeyboardInterrupt).
    """
    try:
        sweep = sweeps.get(name)
        sweeps.check_runnable(sweep)  # before starting runners for nothing
        say(
            f"Sweep {name}: {sweep.pipeline_ref} on {sweep.data_ref}, "
            f"{sweep.trials - sweep.counted()} of {sweep.trials} trials to go, "
            f"{sweep.parallel} at a time on {sweep.executor} (process {os.getpid()})"
        )
        done = sweeps.run(name, open_executor(sweep), clock=clock)
    except KeyboardInterrupt:
        sweeps.abandoned(name, os.getpid(), "Stopped on the server.")
        say(f"Sweep {name} interrupted.")
        return 130
    except AssayError as exc:
        say(f"error: {exc.message}")
        sweeps.abandoned(name, os.getpid(), exc.message)
        return 1
    say(f"Sweep {name} {done.status}" + (f": {done.stop_cause}" if done.stop_cause else ""))
    return 1 if done.status == "failed" else 0


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
    return last.removeprefix("error: ")[:500]


__all__ = [
    "HOST",
    "DriverProcess",
    "Launcher",
    "ProcessLauncher",
    "SweepDrivers",
    "drive",
    "log_file",
]
