"""A runner dies with the command that owns it, unless it was started detached on purpose.

`assay run` and a sweep's runner pool start their runners with `owned(env)`: the
runner learns its owner's pid. Inside the runner, `hold()`:

- on Linux, asks the kernel for SIGTERM the moment its parent dies (prctl
  PR_SET_PDEATHSIG). Only when the owner started it from its main thread: the kernel
  sends that signal when the *thread* that forked exits, and a worker thread of a
  server comes and goes;
- starts a watchdog thread that checks every second that the owner is still its
  parent: the guard everywhere prctl is missing, and the backstop where it is;
- turns SIGTERM into `Terminated`, a KeyboardInterrupt whose text says why: the run
  ends as killed through the path Ctrl-C takes, its reason recorded as its error.

A runner stuck in native code never sees the exception; `GRACE_S` after its owner
went, the watchdog calls the runner's `last_word` (which marks its run) and exits.

A runner started without an owner (the server's runs, which outlive a restart of the
server as its sweeps do) still turns SIGTERM into a recorded kill.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType

_OWNER = "ASSAY_OWNER_PID"
_FROM_MAIN_THREAD = "ASSAY_OWNER_MAIN_THREAD"
_PR_SET_PDEATHSIG = 1
GRACE_S = 10.0  # for the run to record its end after its owner went


class Terminated(KeyboardInterrupt):
    """The runner was told to stop (SIGTERM), or its owner died; the text says which."""


def owned(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` for a runner that this process owns: it dies when this process does."""
    env = dict(environ)
    env[_OWNER] = str(os.getpid())
    if threading.current_thread() is threading.main_thread():
        env[_FROM_MAIN_THREAD] = "1"
    else:
        env.pop(_FROM_MAIN_THREAD, None)
    return env


def detached(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` for a runner that no process owns (it outlives whoever started it)."""
    return {k: v for k, v in environ.items() if k not in (_OWNER, _FROM_MAIN_THREAD)}


class Lifeline:
    """The runner's side: see the module's docstring. `last_word(reason)` is called
    from the watchdog thread just before a stuck runner exits."""

    def __init__(self) -> None:
        self.owner: int | None = None
        self.run_id: str | None = None  # the run in hand, for `last_word`
        self.last_word: Callable[[str], None] = lambda reason: None
        self.stopping = False  # told to stop: finish recording, then exit

    def hold(self) -> None:
        """Read the owner from the environment (and remove it, so that the processes a
        run starts do not take this owner for theirs); arm the signal and the watchdog.

        A runner whose owner is already gone exits at once (status 1).
        """
        raw = os.environ.pop(_OWNER, "")
        from_main = os.environ.pop(_FROM_MAIN_THREAD, "") == "1"
        signal.signal(signal.SIGTERM, self._on_sigterm)
        if not raw.isdigit():
            return  # detached on purpose
        self.owner = int(raw)
        if hasattr(signal, "SIGIO"):
            # An owner run by a warm server dies of SIGIO, sent to its process group,
            # when its `assay` client goes (assay.cli.warm). The runner outlives it for
            # the moment it takes to record the run killed, as below.
            signal.signal(signal.SIGIO, signal.SIG_IGN)
        if from_main and sys.platform == "linux":
            _parent_death_signal(signal.SIGTERM)
        if os.getppid() != self.owner:  # it died before the signal was armed
            sys.exit(1)
        threading.Thread(target=self._watch, name="assay-lifeline", daemon=True).start()

    def reason(self) -> str:
        if self.owner is not None and self._owner_gone():
            return (
                f"The command that started it (pid {self.owner}) died; the run was stopped with it."
            )
        return "Stopped by SIGTERM."

    def _owner_gone(self, wait_s: float = 0.3) -> bool:
        """Whether the owner died. The parent-death signal comes when the thread that
        started this runner exits: with the owner killed, its other threads may still be
        exiting (and this runner their child) for a moment, so look for a little while."""
        from assay.store.liveness import alive

        deadline = time.monotonic() + wait_s
        while True:
            if os.getppid() != self.owner or not alive(self.owner):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return  # once: a second signal must not cut short the recording of the first
        self.stopping = True
        raise Terminated(self.reason())

    def _watch(self) -> None:
        while os.getppid() == self.owner:
            time.sleep(1.0)
        if not self.stopping:
            os.kill(os.getpid(), signal.SIGTERM)  # the main thread raises Terminated
        time.sleep(GRACE_S)
        # Still here: the main thread is stuck where Python cannot interrupt it.
        try:
            self.last_word(self.reason())
        finally:
            os._exit(128 + signal.SIGTERM)


def _parent_death_signal(sig: int) -> None:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog alone guards, a second later
