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
_CONNECT_S = 2.0  # a server that does not answer within this (stopped, stuck): run here
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


_SERVE = """
import json, sys
sys.path[:] = json.loads(sys.argv[3])
from assay.cli.warm_server import serve
serve(sys.argv[1], sys.argv[2])
"""
