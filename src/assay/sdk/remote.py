"""Recording a run through the team's server, without ever stopping the training.

`log_metric` appends to a buffer and returns at once, as it does locally; a background
thread sends the buffer in batches. When the server cannot be reached (a restart, a
dropped VPN, a laptop on a train), nothing is lost and nothing waits: the points stay
in the buffer (up to `MAX_BUFFERED`, the oldest dropped beyond it), a warning says so
once, and the thread retries with a growing pause until the server answers again.
When the run ends, what is left is sent (for up to `ASSAY_FLUSH_TIMEOUT_S` seconds,
default 30), the run is closed, and the user is told what was delivered and what,
if anything, was lost.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.errors import AssayError, AssayWarning, UnreachableError
from assay.runs.tracking import as_number, check_key

if TYPE_CHECKING:
    from assay.client import Client
    from assay.runs.entities import EndStatus

FLUSH_EVERY_S = 0.5
BATCH = 10_000  # points a request
MAX_BUFFERED = 2_000_000
_MAX_PAUSE_S = 5.0

Point = tuple[str, float | None, int | None, float]


class RemoteRecorder:
    """A run's metrics, params and artifacts, sent to the server from a background thread."""

    def __init__(
        self,
        client: Client,
        run_id: str,
        *,
        flush_timeout_s: float = 30.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.split_info: dict[str, Any] = {}
        self.flush_timeout_s = flush_timeout_s
        self._say = say or _warn
        self._points: deque[Point] = deque()
        self._ops: deque[tuple[str, Callable[[], None]]] = deque()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.logged = 0
        self.lost = 0
        self.failed_ops: list[str] = []
        self._down_since: float | None = None
        self._warned = False

    # ---- logging (the caller's thread: never waits on the network) ----------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self._add([(check_key(key), as_number(key, value), step, time.time())])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        now = time.time()
        self._add([(check_key(k), as_number(k, v), step, now) for k, v in metrics.items()])

    def log_params(self, params: Mapping[str, Any]) -> None:
        clean = {check_key(k): v for k, v in params.items()}
        self._op("params", lambda: self.client.runs.log_params(self.run_id, clean))

    def log_artifact(self, path: str | Path, name: str | None = None) -> str:
        """Send a file (or folder) now; if the server is away, it goes at the run's end."""
        from assay.errors import InvalidArgumentError
        from assay.store.objects import hash_file

        src = Path(path)
        if not src.exists():
            raise InvalidArgumentError(f"Artifact {str(src)!r} does not exist.")
        digest = hash_file(src) if src.is_file() else ""
        try:
            self.client.runs.log_artifact(self.run_id, src, name)
        except UnreachableError:
            self._op(
                f"artifact {src.name}",
                lambda: self.client.runs.log_artifact(self.run_id, src, name),
            )
        return digest

    def flush(self) -> None:
        """Send what is buffered now (the server may be away: then it stays buffered)."""
        self._send()

    def _add(self, points: list[Point]) -> None:
        with self._lock:
            self._points.extend(points)
            self.logged += len(points)
            over = len(self._points) - MAX_BUFFERED
            if over > 0:
                for _ in range(over):
                    self._points.popleft()
                self.lost += over
            if len(self._points) >= BATCH:
                self._wake.set()

    def _op(self, what: str, call: Callable[[], None]) -> None:
        with self._lock:
            self._ops.append((what, call))
        self._wake.set()

    # ---- sending (the background thread) --------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="assay-remote", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        pause = FLUSH_EVERY_S
        while not self._stop.is_set():
            self._wake.wait(pause)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                ok = self._send()
            except Exception:  # the training must not die of a logging thread
                ok = False
            pause = FLUSH_EVERY_S if ok else min(_MAX_PAUSE_S, pause * 2)

    def _send(self) -> bool:
        """Send queued calls, then points, in order; False if the server was away."""
        with self._send_lock:
            while True:
                with self._lock:
                    if not self._ops:
                        break
                    what, call = self._ops[0]
                try:
                    call()
                except UnreachableError:
                    return self._away()
                except AssayError as exc:  # refused for good (a bad value, a closed run)
                    self.failed_ops.append(f"{what}: {exc.message}")
                with self._lock:
                    self._ops.popleft()
            while True:
                with self._lock:
                    batch = [self._points[i] for i in range(min(BATCH, len(self._points)))]
                if not batch:
                    break
                try:
                    self.client.runs.log_points(self.run_id, batch)
                except UnreachableError:
                    return self._away()
                except AssayError as exc:
                    self.failed_ops.append(f"{len(batch)} metric points: {exc.message}")
                    with self._lock:
                        self.lost += len(batch)
                else:
                    with self._lock:
                        self.delivered += len(batch)
                with self._lock:
                    for _ in range(len(batch)):
                        self._points.popleft()
            if self._down_since is not None:
                away = time.monotonic() - self._down_since
                self._down_since = None
                self._say(
                    f"Assay server at {self.client.url} is back after {away:.0f} s; "
                    "everything buffered meanwhile was delivered."
                )
            return True

    def _away(self) -> bool:
        if self._down_since is None:
            self._down_since = time.monotonic()
        if not self._warned:
            self._warned = True
            with self._lock:
                waiting = len(self._points)
            self._say(
                f"Assay server at {self.client.url} is unreachable; training goes on and "
                f"metrics are buffered ({waiting} points so far) and retried until it is back."
            )
        return False

    # ---- the end -------------------------------------------------------------------------

    def stop(self) -> list[Point]:
        """Stop the background thread (what is left stays buffered for `finish`)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return []

    def finish(
        self,
        status: EndStatus,
        error: str | None,
        resources: dict[str, Any],
        environment: dict[str, Any],
    ) -> None:
        """Send what is left and close the run, retrying until `flush_timeout_s`; then
        say what was delivered if anything went wrong on the way."""
        self.stop()
        deadline = time.monotonic() + self.flush_timeout_s
        pause = 0.2
        closed = False
        while True:
            try:
                sent = self._send()
            except Exception:
                sent = False
            if sent:
                try:
                    self.client.runs.finish(
                        self.run_id, status, error, resources=resources, environment=environment
                    )
                    closed = True
                    break
                except UnreachableError:
                    pass
                except AssayError as exc:
                    self.failed_ops.append(f"closing the run: {exc.message}")
                    break
            if time.monotonic() >= deadline:
                break
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(_MAX_PAUSE_S, pause * 2)
        with self._lock:
            left = len(self._points)
            self.lost += left
            self._points.clear()
            pending = [what for what, _ in self._ops]
            self._ops.clear()
        if self._warned or self.lost or self.failed_ops or pending or not closed:
            self._say(self.summary(closed, pending))

    def summary(self, closed: bool, pending: list[str]) -> str:
        parts = [f"Run {self.run_id[:8]}: {self.delivered} of {self.logged} metric points "
                 f"delivered to {self.client.url}"]  # fmt: skip
        if self.lost:
            parts.append(f"{self.lost} lost")
        if pending:
            parts.append("not sent: " + ", ".join(pending))
        if self.failed_ops:
            parts.append("refused: " + "; ".join(self.failed_ops[:3]))
        if not closed:
            parts.append(
                "the run could not be closed and will be marked killed after an hour of silence"
            )
        return "; ".join(parts) + "."


def _warn(message: str) -> None:
    try:
        warnings.warn(message, AssayWarning, stacklevel=3)
    except Exception:  # warnings turned into errors must not kill the thread
        sys.stderr.write(f"AssayWarning: {message}\n")
