"""Service processes seen from the control plane: start one detached, wait until every
worker is ready, find out whether it still runs, stop it. Shared by inference services
and A/B tests, whose processes keep the same folder layout (service.json, target.json,
workers/<pid>.json, service.log).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from assay.errors import ConflictError, InvalidArgumentError
from assay.store.db import utcnow
from assay.store.liveness import alive as running

# Children of this process that exited and were collected, with their exit codes.
_exited: dict[int, int] = {}


def spawn(python: str, module: str, folder: Path) -> int:
    """Start `python -m MODULE FOLDER` detached, its output appended to service.log.

    The process is our child for as long as we live: a thread waits for it, so that
    when it exits (stopped by anyone, from any process) we collect it at once instead
    of keeping a zombie that looks alive to everyone else.
    """
    with open(folder / "service.log", "ab") as log:
        log.write(f"--- {utcnow().isoformat()} starting\n".encode())
        log.flush()
        # posix_spawn rather than Popen: the process is meant to outlive this command
        # (its own session, so not our Ctrl-C), and a Popen object would complain when
        # collected with its child still running.
        pid = os.posix_spawn(
            python,
            [python, "-m", module, str(folder)],
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, log.fileno(), 2),
            ],
            setsid=True,
        )
    _exited.pop(pid, None)  # a pid of an earlier child, reused
    threading.Thread(target=_collect, args=(pid,), name=f"assay-reap-{pid}", daemon=True).start()
    return pid


def _collect(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # collected by `exit_code` or `alive`
        _, status = os.waitpid(pid, 0)
        _exited[pid] = os.waitstatus_to_exitcode(status)


def wait_ready(
    folder: Path, pid: int, host: str, port: int, workers: int, timeout_s: float
) -> str | None:
    """Wait until every worker has loaded and warmed up; None then, else why not (the
    process is stopped first)."""
    deadline = time.monotonic() + timeout_s
    url = probe_url(host, port)
    while time.monotonic() < deadline:
        code = exit_code(pid)
        if code is not None:
            return f"its process exited with code {code}"
        states = workers_of(folder)
        failed = next((w for w in states if w.get("failed_target_id")), None)
        if failed is not None:
            terminate(pid, timeout_s=10.0)
            return f"the model did not load: {failed.get('error')}"
        # Ready when every worker is, not just the first to answer.
        if sum(bool(w.get("ready")) for w in states) >= workers and ready(url):
            return None
        time.sleep(0.05)
    terminate(pid, timeout_s=5.0)
    return f"it was not ready after {timeout_s:g} s"


def await_target(folder: Path, target_id: str, workers: int, timeout_s: float) -> str | None:
    """Wait until every live worker serves `target_id`; None then, else why not (a
    worker's load error, or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = workers_of(folder)
        failed = [w for w in states if w.get("failed_target_id") == target_id]
        if failed:
            return str(failed[0].get("error") or "the model did not load")
        if len(states) >= workers and all(w.get("target_id") == target_id for w in states):
            return None
        time.sleep(0.02)
    return f"the workers did not switch within {timeout_s:g} s"


def workers_of(folder: Path) -> list[dict[str, Any]]:
    """The state files of the folder's live workers."""
    found: list[dict[str, Any]] = []
    for path in sorted((folder / "workers").glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(path.read_text())
            if alive(int(state.get("pid", 0))):
                found.append(state)
    return found


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a log file ("" when there is none)."""
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 256 * 1024))
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:]) + "\n"


def write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


def free_port(host: str) -> int:
    with socket.socket() as s:
        try:
            s.bind((host, 0))
        except (OSError, UnicodeError) as exc:
            raise _bad_host(host, exc) from exc
        port: int = s.getsockname()[1]
        return port


def _bad_host(host: str, exc: OSError | UnicodeError) -> InvalidArgumentError:
    why = (exc.strerror if isinstance(exc, OSError) else None) or exc
    return InvalidArgumentError(
        f"Cannot listen on {host!r} ({why}); give --host an address of "
        "this machine, such as 127.0.0.1 or 0.0.0.0.",
        host=host,
    )


def check_port(host: str, port: int) -> int:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except UnicodeError as exc:
            raise _bad_host(host, exc) from exc
        except OSError as exc:
            if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
                raise _bad_host(host, exc) from exc
            raise ConflictError(
                f"Port {port} on {host} is in use ({exc.strerror}); pick another with --port.",
                port=port,
            ) from exc
    return port


def probe_url(host: str, port: int) -> str:
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def ready(url: str) -> bool:
    return ready_code(url) == 200


def await_route(url: str, timeout_s: float) -> None:
    """Wait (at most `timeout_s`, and 30 s) until `url` answers ready: a Ray cluster's HTTP
    proxy routes a new application's prefix a moment after the application runs."""
    deadline = time.monotonic() + min(timeout_s, 30.0)
    while not ready(url) and time.monotonic() < deadline:
        time.sleep(0.1)


def ready_code(url: str, timeout_s: float = 2.0) -> int | None:
    """The status `/health/ready` answers under `url` (None when nothing answers)."""
    import httpx

    from assay import httpclient

    try:
        return httpclient.get(url + "/health/ready", timeout=timeout_s).status_code
    except httpx.HTTPError:
        return None


def get_text(url: str) -> str:
    import httpx

    from assay import httpclient

    try:
        resp = httpclient.get(url, timeout=5.0)
    except httpx.HTTPError as exc:
        raise OSError(str(exc)) from exc
    return resp.text


def exit_code(pid: int) -> int | None:
    """The exit code of our child `pid` once it has exited (reaping it), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        # Not (or no longer) our child: collected by its thread, or another's process
        # (then its exit code is not ours to know).
        if running(pid):
            return None
        return _exited.get(pid, -1)
    if done != pid:
        return None
    _exited[pid] = os.waitstatus_to_exitcode(status)
    return _exited[pid]


def alive(pid: int) -> bool:
    """Whether process `pid` runs. One that exited is not alive even before whoever
    started it collects it (a zombie: another process's child, which only that process
    can reap); our own child is collected here."""
    if pid <= 0:
        return False
    return exit_code(pid) is None


def is_service_process(pid: int, folder: Path) -> bool:
    """Whether `pid` is alive and is this service's process (not a recycled pid)."""
    if not alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return sys.platform != "linux"
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    modules = (b"assay.serving", b"assay.abtests")
    return any(m in args for m in modules) and str(folder).encode() in args


def wait_gone(pid: int, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def terminate(pid: int, *, timeout_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
