"""The warm server of `assay.cli.warm`: it imports what nearly every command needs once,
then forks one child per client, and the child becomes the client's command (its
streams, folder, environment, umask and signals) and runs `assay.cli.main`.

Standard library only until the preload, like the client: the server is started with
the client's import path and must not import another copy of anything before it.
"""

from __future__ import annotations

import array
import contextlib
import io
import json
import os
import signal
import socket
import struct
import sys
from typing import Any

from assay.cli.warm import _HEADER, _SIGNALS, _exactly, _powers, _send, code_stamp

_DEFAULT_IDLE_S = 900.0
_REQUEST_S = 2.0
# Imported once by the server: what nearly every command needs.
_PRELOAD = (
    "assay.cli.main",
    "assay.cli.tables",
    "assay.workspace",
    "assay.data.service",
    "assay.runs.service",
    "assay.pipelines.service",
    "assay.registry.service",
    "assay.serving.service",
    "assay.abtests.service",
    "assay.sweeps.service",
    "assay.serialize",
    "rich.table",
    "rich.progress",
)

_MAX_REQUEST = 16 * 1024 * 1024


def serve(sock_path: str, lock_path: str) -> None:
    """Answer commands until `ASSAY_WARM_IDLE_S` pass without one, or the code changes.

    One server per socket: the lock file is held for the server's life.
    """
    import fcntl
    import gc
    import importlib
    import time

    stamp = code_stamp()  # before importing: an edit during the imports makes it stale
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    for _ in range(100):  # a stale server gives way within moments of saying so
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            time.sleep(0.05)
    else:
        return  # another server is running
    mine = _powers()
    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # a command that needs it fails there as a new process would
            continue
    _build_commands()
    os.chdir("/")  # hold no folder of the client's that started it
    gc.collect()
    gc.freeze()  # children share these pages until they write to them

    idle_s = _idle_seconds()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    os.chmod(sock_path, 0o600)
    listener.listen(64)
    listener.settimeout(idle_s)
    inode = os.stat(sock_path).st_ino
    while True:
        _reap()
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            break
        except InterruptedError:
            continue
        request, fds = _request(conn, mine)
        if request is None:
            conn.close()
            continue
        if request.get("stamp") != stamp:
            with contextlib.suppress(OSError):
                _send(conn, {"stale": True})
            _close(conn, fds)
            break
        pid = os.fork()
        if pid == 0:
            listener.close()
            os.close(lock)
            _child(conn, request, fds)  # ends with os._exit: the child never comes back
        _close(conn, fds)
    with contextlib.suppress(OSError):
        if os.stat(sock_path).st_ino == inode:
            os.unlink(sock_path)
    listener.close()


def _build_commands() -> None:
    """Every command group, built here once (`assay.cli.main.lazy_command`): each child
    inherits them instead of building its own from the functions' signatures."""
    try:
        from assay.cli.main import _LAZY, lazy_command
    except Exception:  # the commands fail there as a new process would
        return
    for name in _LAZY:
        try:
            lazy_command(name)
        except Exception:
            continue


def _idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("ASSAY_WARM_IDLE_S", _DEFAULT_IDLE_S)))
    except ValueError:
        return _DEFAULT_IDLE_S


def _request(conn: socket.socket, mine: list[object]) -> tuple[dict[str, Any] | None, list[int]]:
    """The client's request and its three streams, or None for anything else: a client
    with other powers than the server's (another user, a sandbox: `_powers`), a
    malformed or partial request (within `_REQUEST_S`)."""
    fds: list[int] = []
    try:
        conn.settimeout(_REQUEST_S)
        if hasattr(socket, "SO_PEERCRED"):
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _gid = struct.unpack("3i", creds)
            if uid != os.getuid() or _powers(pid) != mine:
                return None, fds
        size = struct.calcsize("i")
        head, ancillary, _flags, _addr = conn.recvmsg(_HEADER.size, socket.CMSG_LEN(3 * size))
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(data[: len(data) - len(data) % size])
                fds.extend(got)
        if len(head) != _HEADER.size or len(fds) != 3:
            _close(None, fds)
            return None, []
        length = _HEADER.unpack(head)[0]
        if length > _MAX_REQUEST:
            _close(None, fds)
            return None, []
        body = _exactly(conn, length)
        request = json.loads(body) if body is not None else None
        if not isinstance(request, dict):
            _close(None, fds)
            return None, []
        conn.settimeout(None)
        return request, fds
    except (OSError, ValueError):
        _close(None, fds)
        return None, []


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Become the client's command, run it, send its exit code, and exit: never return
    into the server's loop, whatever happens."""
    code = 1
    try:
        _become(conn, request, fds)
        code = _command(request)
    except BaseException:
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            _die_with_client(conn, on=False)  # the client's end closes once it has the code
            _send(conn, {"exit": code})
        os._exit(code)


def _become(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Take on the client's process group, streams, environment, umask and signals."""
    import time

    os.setpgid(0, 0)  # the client signals this group, as a terminal signals its own
    _send(conn, {"pid": os.getpid()})
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    os.umask(int(request["umask"]))
    sys.argv = ["assay", *request["argv"]]
    if isinstance(sys.stdout, io.TextIOWrapper):  # as a new process sets it up
        sys.stdout.reconfigure(line_buffering=os.isatty(1))
    ignored = set(request.get("ignored", []))
    for signum in _SIGNALS:
        if signum in ignored:
            signal.signal(signum, signal.SIG_IGN)
        elif signum == signal.SIGINT:
            signal.signal(signum, signal.default_int_handler)
        else:
            signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, request.get("blocked", []))
    _die_with_client(conn)


def _command(request: dict[str, Any]) -> int:
    """Run the command as `assay.cli.main` runs in a new process; its exit code."""
    import atexit
    import threading

    try:
        try:
            os.chdir(request["cwd"])
        except OSError as exc:
            sys.stderr.write(f"error: cannot work in {request['cwd']}: {exc.strerror}.\n")
            raise SystemExit(1) from None
        from assay.cli import output
        from assay.cli.main import main as run

        output.rebind()
        run()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:  # what a new process would print before exiting
        import traceback

        traceback.print_exc()
        code = 1
    shutdown = getattr(threading, "_shutdown", None)  # as the interpreter does at exit:
    if shutdown is not None:  # its executors' exit hooks, then non-daemon threads
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


def _die_with_client(conn: socket.socket, on: bool = True) -> None:
    """While on, the client's end closing (it exited or was killed) kills this process
    group: the kernel sends SIGIO, whose default action ends a process, to the group
    (F_SETOWN) when the socket becomes readable, and the client sends nothing more.
    No thread: a forking command (`assay run`) had better be single-threaded."""
    import fcntl

    fd = conn.fileno()
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if not on:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_ASYNC)
        return
    signal.signal(signal.SIGIO, signal.SIG_DFL)
    fcntl.fcntl(fd, fcntl.F_SETOWN, -os.getpgid(0))
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_ASYNC)
    try:  # gone before the signal was armed
        gone = conn.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        gone = False
    if gone:
        os.killpg(0, signal.SIGKILL)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    sys.stderr.write(f"{exc.code}\n")
    return 1


def _reap() -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _close(conn: socket.socket | None, fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    if conn is not None:
        conn.close()
