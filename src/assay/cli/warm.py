"""The `assay` executable, and the warm server that spares each command its imports.

A command's own work is often 50 ms; importing what it needs is most of the rest
(`python -X importtime`: SQLAlchemy alone takes 0.18 s on a 2-core VM, Typer and Rich
0.06 s). So `assay` is this small module. It connects to a server started for this
interpreter and this installed code, hands it its standard streams (SCM_RIGHTS), its
arguments, folder, umask and environment, and waits for the exit code. The server has
imported Assay once; it forks one child per command, and the child takes on the
client's streams, folder and environment and runs `assay.cli.main` exactly as a new
process would. Signals the client gets (Ctrl-C, a hang-up, `kill`) go on to the
child's process group, and if the client dies the child's group is killed: a command
never outlives the `assay` that asked for it. Mercurial's chg, Gradle's daemon and
mypy's dmypy do the same.

With no server running, the command runs in this process, as it always did, and starts
a server in the background for the next one. A server exits after `ASSAY_WARM_IDLE_S`
seconds (900) without a command, and as soon as a client finds that the installed code
(Assay's sources, site-packages) changed since the server started. `ASSAY_WARM=0` turns
all of this off. Only the standard library is imported here before the server answers.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import stat
import struct
import sys
from collections.abc import Mapping
from typing import Any

_HEADER = struct.Struct(">I")
# What an interpreter's import-time state depends on: a server serves only clients
# that would have made the same state themselves.
_KEY_ENV = ("LANG", "LC_ALL", "LC_CTYPE")
_KEY_PREFIXES = ("PYTHON", "TYPER", "_TYPER")  # Typer reads some when it is imported
_DEFAULT_IDLE_S = 900.0
_CONNECT_S = 2.0  # a server that does not answer within this (stopped, stuck): run here
_REQUEST_S = 2.0
# The signals whose disposition a new process would inherit from its parent: a child
# takes its client's (ignored stays ignored, as under `nohup` or a script's `&`).
_SIGNALS = tuple(
    getattr(signal, name)
    for name in (
        "SIGINT", "SIGQUIT", "SIGHUP", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM",
        "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGCHLD", "SIGWINCH",
    )
    if hasattr(signal, name)
)  # fmt: skip
_MAX_SOCKET_PATH = 100  # a socket's path holds 108 bytes on Linux, 104 on macOS
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


def main() -> None:
    """Console-script entry point: run the command in a warm server's fork, or here."""
    if enabled():
        try:
            code = _via_server(sys.argv[1:])
        except KeyboardInterrupt:  # before the command started: it dies with this process
            raise SystemExit(130) from None
        if code is not None:
            raise SystemExit(code)
    from assay.cli.main import main as run_here

    run_here()


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return (
        environ.get("ASSAY_WARM", "1").strip().lower() not in ("0", "false", "no", "off")
        and hasattr(socket, "AF_UNIX")
        and hasattr(socket, "SCM_RIGHTS")
    )


# --- where a server lives ------------------------------------------------------------


def runtime_dir() -> str | None:
    """A folder only this user can enter ($XDG_RUNTIME_DIR/assay, else one in /tmp), or
    None when no such folder can be had (a shared or foreign one is never used)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        path = os.path.join(base, "assay")
    else:
        path = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"assay-{os.getuid()}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return path


def server_paths() -> tuple[str, str] | None:
    """The socket and lock file of the server for this interpreter, its import path and
    its locale and PYTHON* settings."""
    folder = runtime_dir()
    if folder is None:
        return None
    env = sorted(
        (k, v) for k, v in os.environ.items() if k.startswith(_KEY_PREFIXES) or k in _KEY_ENV
    )
    key = json.dumps([sys.executable, sys.version, sys.path, env, _powers()])
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    sock = os.path.join(folder, f"{name}.sock")
    if len(os.fsencode(sock)) > _MAX_SOCKET_PATH:
        return None
    return sock, os.path.join(folder, f"{name}.lock")


_STATUS = ("Uid", "Gid", "Groups", "Cap", "NoNewPrivs", "Seccomp", "Cpus_allowed", "Mems_allowed")


def _powers(pid: int = 0) -> list[object]:
    """What a process (this one, or `pid`) may do, which a fork of the server would have
    from the server instead: its user and groups, capabilities (`setpriv`), seccomp,
    resource limits (`ulimit`), priority (`nice`), CPUs (`taskset`), control group and
    namespaces. A client that differs in any of these gets a server started by itself,
    and a server serves no client that differs from it (`_request`)."""
    proc = f"/proc/{pid or 'self'}"
    if not os.path.isdir(f"{proc}/ns"):  # not Linux: this process's, from os and resource
        import resource

        kinds = [getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")]
        return [
            os.getuid(), os.geteuid(), os.getgid(), os.getegid(), sorted(os.getgroups()),
            os.getpriority(os.PRIO_PROCESS, 0), [resource.getrlimit(k) for k in sorted(kinds)],
        ]  # fmt: skip
    powers: list[object] = [os.getpriority(os.PRIO_PROCESS, pid)]
    for name in ("status", "limits", "cgroup"):
        with open(f"{proc}/{name}") as f:
            text = f.read()
        if name == "status":
            text = "\n".join(ln for ln in text.splitlines() if ln.startswith(_STATUS))
        powers.append(text)
    for ns in sorted(os.listdir(f"{proc}/ns")):
        with contextlib.suppress(OSError):
            powers.append(os.readlink(f"{proc}/ns/{ns}"))
    return powers


def code_stamp() -> str:
    """What changes when the installed code does: every source file of Assay (an
    editable install is edited in place) and every folder on the import path (pip adds
    and removes packages' folders in site-packages). About 2 ms."""
    import assay

    parts: list[str] = []
    for entry in sys.path:
        if not os.path.isabs(entry):  # '' is the working folder, whose files change
            continue
        try:
            parts.append(f"{entry}:{os.stat(entry).st_mtime_ns}")
        except OSError:
            parts.append(f"{entry}:-")
    for root, _dirs, files in os.walk(os.path.dirname(assay.__file__)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                st = os.stat(path)
                parts.append(f"{path}:{st.st_mtime_ns}:{st.st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# --- the client ----------------------------------------------------------------------


def _via_server(argv: list[str]) -> int | None:
    """The command's exit code, run by a warm server; None to run it here instead."""
    paths = server_paths()
    if paths is None:
        return None
    sock_path, lock_path = paths
    if not _streams_open():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(_CONNECT_S)  # until the command has started; no limit after
    try:
        conn.connect(sock_path)
    except OSError:  # none yet, refused (a server died), or too slow: run here
        conn.close()
        _spawn(sock_path, lock_path)
        return None
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        request = json.dumps(
            {
                "stamp": code_stamp(),
                "argv": argv,
                "cwd": os.getcwd(),
                "env": dict(os.environ),
                "umask": umask,
                "ignored": [int(n) for n in _SIGNALS if signal.getsignal(n) == signal.SIG_IGN],
                "blocked": [int(n) for n in signal.pthread_sigmask(signal.SIG_BLOCK, [])],
            }
        ).encode()
        fds = array.array("i", [0, 1, 2])
        conn.sendmsg([_HEADER.pack(len(request))], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        conn.sendall(request)
        started = _receive(conn)
    except (OSError, ValueError):  # a closed stream, a vanished folder, a dying server
        conn.close()
        return None
    if started is None or "pid" not in started:
        conn.close()
        if started is not None and started.get("stale"):
            _spawn(sock_path, lock_path, force=True)
        return None
    conn.settimeout(None)
    return _await(conn, int(started["pid"]))


def _await(conn: socket.socket, child: int) -> int:
    """Pass signals on to the command `child` while it runs; its exit code."""
    forwarded: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        forwarded.append(signum)
        with contextlib.suppress(OSError):
            os.killpg(child, signum)

    def suspend(_signum: int, _frame: Any) -> None:  # Ctrl-Z: the command stops too
        with contextlib.suppress(OSError):
            os.killpg(child, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stopped here until `fg` or `bg`
        signal.signal(signal.SIGTSTP, suspend)
        with contextlib.suppress(OSError):
            os.killpg(child, signal.SIGCONT)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        if signal.getsignal(signum) != signal.SIG_IGN:  # ignored here: ignored there
            signal.signal(signum, forward)
    if signal.getsignal(signal.SIGTSTP) != signal.SIG_IGN:
        signal.signal(signal.SIGTSTP, suspend)
    try:
        ended = _receive(conn)
    except (OSError, ValueError):
        ended = None
    if ended is None or "exit" not in ended:
        if forwarded:  # it died of the signal passed on: so does this process, as it would
            signal.signal(forwarded[-1], signal.SIG_DFL)
            os.kill(os.getpid(), forwarded[-1])
        sys.stderr.write("error: the command's process ended without an exit code.\n")
        return 1
    return int(ended["exit"])


def _streams_open() -> bool:
    """Whether fds 0-2 are open: a closed one would be taken by the socket itself."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            return False
    return True


def _spawn(sock_path: str, lock_path: str, *, force: bool = False) -> None:
    """Start a server in the background, in its own session, for the next command;
    unless `force`d, only if none holds the lock (one may be importing, not yet
    listening). A forced one waits for the lock of a stale server that is exiting."""
    import subprocess

    if not force:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when closed
        except OSError:
            return  # a server holds it
        finally:
            os.close(fd)

    log = os.path.splitext(sock_path)[0] + ".log"
    try:
        with open(log, "ab") as out:
            subprocess.Popen(
                # `-c`, not `-m`: Click names the program after a `-m` module. The
                # server imports from the client's path (the script's folder first).
                [sys.executable, "-c", _SERVE, sock_path, lock_path, json.dumps(sys.path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                close_fds=True,
            )
    except OSError:
        pass  # no server: every command runs in its own process, as without one


def _receive(conn: socket.socket) -> dict[str, Any] | None:
    """One framed JSON message, or None at the end of the stream."""
    head = _exactly(conn, _HEADER.size)
    if head is None:
        return None
    body = _exactly(conn, _HEADER.unpack(head)[0])
    if body is None:
        return None
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("not a message")
    return message


def _exactly(conn: socket.socket, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = conn.recv(n - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    conn.sendall(_HEADER.pack(len(body)) + body)


# --- the server ----------------------------------------------------------------------

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


_SERVE = """
import json, sys
sys.path[:] = json.loads(sys.argv[3])
from assay.cli.warm import serve
serve(sys.argv[1], sys.argv[2])
"""
