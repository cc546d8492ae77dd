"""The supervisor of a service with several workers (`assay.serving.worker.serve`).

It holds the service's socket and keeps `workers` processes serving on it, each spawned
at `entry` (`assay.serving.worker`'s, which runs one uvicorn worker): a worker that
dies is restarted, after a growing pause when it keeps dying at once, and its gauges
and worker file are cleared. SIGTERM or SIGINT stops them all with SIGTERM and waits
for their drain and the requests in flight before killing a worker that hangs.

Like the worker, nothing here imports control-plane code.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from multiprocessing.process import BaseProcess
    from pathlib import Path
    from types import FrameType

    from assay.serving.worker import ServiceConfig, Worker

    # A worker process's entry point: (service folder, the shared socket or None for a
    # socket of its own, the port, the worker class). Spawned: a module's function.
    Entry = Callable[[str, socket.socket | None, int, type[Worker]], None]

log = logging.getLogger("assay.serving")  # the worker's: one service log, one name

# A worker that dies within this many seconds of its start is restarted after a growing
# pause (up to MAX_BACKOFF_S), so a worker that cannot start does not spin the CPU.
QUICK_DEATH_S = 10.0
MAX_BACKOFF_S = 10.0


class Supervisor:
    """Keeps `workers` processes serving on one socket until SIGTERM or SIGINT."""

    def __init__(
        self,
        service_dir: Path,
        config: ServiceConfig,
        sock: socket.socket,
        entry: Entry,
        *,
        shared: bool,
        worker_cls: type[Worker],
    ) -> None:
        self.dir = service_dir
        self.config = config
        self.sock = sock
        self.entry = entry
        # Whether workers accept on `sock` itself, or each on its own SO_REUSEPORT socket.
        self.shared = shared
        self.worker_cls = worker_cls
        self.context = multiprocessing.get_context("spawn")
        self.procs: list[BaseProcess | None] = [None] * config.workers
        self.started: list[float] = [0.0] * config.workers
        self.restart_at: list[float] = [0.0] * config.workers
        self.backoff: list[float] = [0.0] * config.workers
        self._stop = threading.Event()

    def run(self) -> int:
        """Start the workers, keep them alive, stop them; returns the exit code (0)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        for slot in range(self.config.workers):
            self._start(slot)
        while not self._stop.is_set():
            sentinels = [p.sentinel for p in self.procs if p is not None]
            wait(sentinels, timeout=0.25)
            self._reap_and_restart()
        self._stop_all()
        log.info("service stopped")
        return 0

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _start(self, slot: int) -> None:
        proc = self.context.Process(
            target=self.entry,
            args=(
                str(self.dir),
                self.sock if self.shared else None,
                self.sock.getsockname()[1],
                self.worker_cls,
            ),
            name=f"assay-worker-{slot}",
        )
        proc.start()
        self.procs[slot] = proc
        self.started[slot] = time.monotonic()
        log.info("started worker %d (pid %s)", slot, proc.pid)

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        for slot, proc in enumerate(self.procs):
            if proc is not None and proc.exitcode is not None:
                self._forget(proc)
                self.procs[slot] = None
                if now - self.started[slot] < QUICK_DEATH_S:
                    self.backoff[slot] = min(max(self.backoff[slot] * 2, 0.5), MAX_BACKOFF_S)
                else:
                    self.backoff[slot] = 0.0
                self.restart_at[slot] = now + self.backoff[slot]
                log.error(
                    "worker %d (pid %s) died with exit code %s; restarting it%s",
                    slot,
                    proc.pid,
                    proc.exitcode,
                    f" in {self.backoff[slot]:g} s" if self.backoff[slot] else "",
                )
            if (
                self.procs[slot] is None
                and now >= self.restart_at[slot]
                and not self._stop.is_set()
            ):
                self._start(slot)

    def _forget(self, proc: BaseProcess) -> None:
        """A dead worker's leftovers: its live gauges and its worker file."""
        from prometheus_client import multiprocess

        if proc.pid is not None:
            with contextlib.suppress(OSError):
                multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                    proc.pid, str(self.dir / "metrics")
                )
            (self.dir / "workers" / f"{proc.pid}.json").unlink(missing_ok=True)

    def _stop_all(self) -> None:
        live = [p for p in self.procs if p is not None and p.exitcode is None]
        log.info("stopping %d worker(s)", len(live))
        for proc in live:
            if proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        # The drain, then the longest a request in flight may take, then some slack.
        deadline = time.monotonic() + self.config.drain_s + self.config.timeout_s + 10.0
        for proc in live:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                log.error("worker pid %s did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.join()
            self._forget(proc)
