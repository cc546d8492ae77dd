"""Sweeps started through the API are driven on the server, each by a process of its own.

`python -m assay.server.sweep_driver NAME` runs a recorded sweep's trials through the
executor it was created with (local runner processes, or Ray), as `assay sweep` does on
a laptop. The process is detached from the server (a session of its own), so restarting
the server neither stops nor loses a sweep; and since the sweep records every trial as
it starts and ends, a driver that dies leaves a sweep that `POST /sweeps/{name}/resume`
continues. SIGINT and SIGTERM stop a driver as Ctrl-C stops `assay sweep`: the running
trials are killed and recorded as interrupted.
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
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from assay.errors import AssayError, ConflictError
from assay.store.acting import author_or

if TYPE_CHECKING:
    from assay.runs.executor import Executor
    from assay.sweeps.entities import Sweep
    from assay.workspace import Workspace

log = logging.getLogger("assay.server")

_HOST = socket.gethostname()
# The drivers this server process started and that have not exited, by (database, sweep).
_drivers: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
_lock = threading.Lock()


def log_file(ws: Workspace, name: str) -> Path:
    """Where the driver of sweep `name` writes what it prints, on the server."""
    home = ws.settings.workspace_dir or ws.settings.cache_dir
    return home / "sweeps" / f"{name}.log"


def start(ws: Workspace, name: str) -> None:
    """Start the driver of a created (or queued) sweep, and settle its end in the background.

    Raises:
        ConflictError: this server already started a driver for it that is still running.
    """
    key = (ws.settings.db_url, name)
    with _lock:
        running = _drivers.get(key)
        if running is not None and running.poll() is None:
            raise ConflictError(
                f"Sweep {name!r} is starting on the server; follow it with "
                f"`assay sweeps show {name}`."
            )
        env = {k: v for k, v in os.environ.items() if k not in ("ASSAY_REMOTE", "ASSAY_TOKEN")}
        env.update(
            ASSAY_DB_URL=ws.settings.db_url,
            ASSAY_STORE_URL=ws.settings.store_url,
            ASSAY_AUTHOR=author_or(ws.settings.author),  # the caller, on what trials record
        )
        path = log_file(ws, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "assay.server.sweep_driver", name],
                cwd=ws.settings.root or Path.cwd(),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not stopped with the server, nor by its Ctrl-C
            )
        _drivers[key] = process
    threading.Thread(
        target=_settle, args=(ws, key, process, path), name=f"assay-sweep-{name}", daemon=True
    ).start()


def resume(ws: Workspace, name: str) -> Sweep:
    """Queue an interrupted (or failed) sweep and start its driver.

    Raises:
        NotFoundError: no such sweep.
        ConflictError: it is running or starting, or has finished all its trials.
    """
    with _lock:
        last = _drivers.get((ws.settings.db_url, name))
    if last is not None and last.poll() is None:
        if ws.sweeps.get(name).status in ("created", "queued"):
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
    sweep = ws.sweeps.queue(name)
    start(ws, name)
    return sweep


def stop(ws: Workspace, name: str, *, wait_s: float = 60.0) -> Sweep:
    """Ask the sweep's driver to stop, as Ctrl-C does; return the sweep once it has stopped
    (or as it stands after `wait_s` seconds).

    Raises:
        NotFoundError: no such sweep.
        ConflictError: it is not running, or its driver is on another host.
    """
    deadline = time.monotonic() + wait_s
    signalled: int | None = None
    while True:
        sweep = ws.sweeps.get(name)
        if sweep.status == "running":
            if sweep.host != _HOST:
                raise ConflictError(
                    f"Sweep {name!r} is driven on host {sweep.host}; stop it there.",
                    host=sweep.host,
                )
            if sweep.pid is None or not _is_driver(sweep.pid):
                return ws.sweeps.abandoned(name, sweep.pid, "Its driver went away.")
            if signalled != sweep.pid:
                try:
                    os.kill(sweep.pid, signal.SIGINT)
                except ProcessLookupError:
                    continue  # it just exited: the next look settles it
                except PermissionError:
                    raise ConflictError(
                        f"Sweep {name!r} is driven by process {sweep.pid}, which the server "
                        "may not signal; stop it there (Ctrl-C).",
                        pid=sweep.pid,
                    ) from None
                signalled = sweep.pid
        elif sweep.status in ("created", "queued") and signalled is None:
            pass  # its driver is starting: stop it once it has claimed the sweep
        elif signalled is not None:
            _wait_exit(ws, name, deadline)
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
        if time.monotonic() > deadline:
            if signalled is None:
                raise ConflictError(
                    f"Sweep {name!r} has not started yet; stop it again in a moment."
                )
            return sweep
        time.sleep(0.1)


def _wait_exit(ws: Workspace, name: str, deadline: float) -> None:
    """Wait (until `deadline`) for a driver this server started to exit, once it has
    recorded the sweep's end, so that a resume right after finds it gone."""
    with _lock:
        process = _drivers.get((ws.settings.db_url, name))
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))


def _settle(
    ws: Workspace, key: tuple[str, str], process: subprocess.Popen[bytes], path: Path
) -> None:
    """Wait for a driver; if it exited without recording the sweep's end, record why."""
    code = process.wait()
    with _lock:
        if _drivers.get(key) is process:
            del _drivers[key]
    if code == 0:
        return
    said = _last_line(path)
    cause = said or f"The sweep's driver exited with {code}; its log is {path} on the server."
    try:
        ws.sweeps.abandoned(key[1], process.pid, cause)
    except Exception:  # a background thread: nobody to raise to, so the log says it
        log.exception("could not record the end of sweep %s's driver", key[1])


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
    return last.removeprefix("error: ")[:500]


def _is_driver(pid: int) -> bool:
    """Whether `pid` is alive and (where /proc tells) an Assay process, not a reused pid."""
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


# ---- the driver process ----------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Drive sweep `argv[0]` to its end; 0 when it finished or stopped at a limit."""
    from assay.config import Settings
    from assay.workspace import Workspace

    [name] = argv
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    ws = Workspace(Settings.load(Path.cwd(), os.environ))
    try:
        return _drive(ws, name)
    finally:
        ws.close()


def _drive(ws: Workspace, name: str) -> int:
    try:
        sweep = ws.sweeps.get(name)
        ws.sweeps.check_runnable(sweep)  # before starting runners for nothing
        print(
            f"Sweep {name}: {sweep.pipeline_ref} on {sweep.data_ref}, "
            f"{sweep.trials - sweep.counted()} of {sweep.trials} trials to go, "
            f"{sweep.parallel} at a time on {sweep.executor} (process {os.getpid()})",
            flush=True,
        )
        done = ws.sweeps.run(name, _executor(ws, sweep))
    except KeyboardInterrupt:
        ws.sweeps.abandoned(name, os.getpid(), "Stopped on the server.")
        print(f"Sweep {name} interrupted.", flush=True)
        return 130
    except AssayError as exc:
        print(f"error: {exc.message}", flush=True)
        ws.sweeps.abandoned(name, os.getpid(), exc.message)
        return 1
    print(f"Sweep {name} {done.status}" + (f": {done.stop_cause}" if done.stop_cause else ""))
    return 1 if done.status == "failed" else 0


def _executor(ws: Workspace, sweep: Sweep) -> Executor:
    from assay.executors import open_executor

    return open_executor(
        sweep.executor,
        ws.settings,
        os.environ,
        slots=sweep.parallel,
        cwd=Path.cwd(),
        pipeline_ref=sweep.pipeline_ref,
    )


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
