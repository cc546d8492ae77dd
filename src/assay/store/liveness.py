"""Is a process we recorded still there, and still the same process?

Whoever owns work (the command that queued a run, the runner executing it) is
recorded as pid, host and, where the system tells, the process's start time: a pid
alone can be reused by an unrelated process after its owner died, and would keep a
dead owner's work looking watched forever. The start time is the kernel's (Linux's
`/proc/PID/stat`, in clock ticks since boot); elsewhere it is unknown (None) and the
pid alone decides.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST = socket.gethostname()


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None where there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    return raw[raw.rfind(b")") + 2 :].decode("ascii", errors="replace").split()


_mine: tuple[int, int | None] | None = None  # (pid, start time) of this process


def started(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if unknown."""
    global _mine
    if pid == os.getpid():  # asked once per run opened: read once per process (fork: anew)
        if _mine is None or _mine[0] != pid:
            _mine = (pid, _started(pid))
        return _mine[1]
    return _started(pid)


def _started(pid: int) -> int | None:
    fields = _stat(pid)
    # Field 22 of the file; the list starts at field 3 (the state).
    return int(fields[19]) if fields and len(fields) > 19 else None


def alive(pid: int | None, started_at: int | None = None) -> bool:
    """Whether process `pid` on this host exists, is not a zombie, and (when
    `started_at` is given and the system tells) is the one that started then."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    fields = _stat(pid)
    if fields is None:
        return True  # no /proc here: the pid is all we know
    if fields[0] in ("Z", "X"):
        return False  # exited; only its parent has not collected it yet
    return started_at is None or int(fields[19]) == started_at


def me() -> tuple[int, str, int | None]:
    """This process: (pid, host, start time)."""
    pid = os.getpid()
    return pid, HOST, started(pid)
