"""Recording a run as it happens: metrics, params, artifacts, heartbeats.

`log_metric` appends to an in-memory buffer and returns at once; a background
thread writes the buffer to the metadata database every half second (or sooner,
when it grows), and `flush()` (called when the run ends, normally or by an
exception, and at interpreter exit) writes what is left. So logging in a tight
loop costs microseconds, and nothing logged is lost at a normal exit or a failure.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from assay.errors import InvalidArgumentError
from assay.limits import MAX_NAME_LENGTH, check_document
from assay.runs.repository import RunRepository
from assay.runs.values import Point
from assay.store.db import Database, utcnow
from assay.store.objects import ObjectStore

FLUSH_EVERY_S = 0.5
FLUSH_AT_POINTS = 20_000
HEARTBEAT_EVERY_S = 2.0


class RunStopped(BaseException):
    """Raised in a run's own code when it was asked to stop (pruned by a sweep).

    A BaseException, so that a step's `except Exception` does not swallow it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Recorder(Protocol):
    """What the run being recorded in this process takes: a `RunRecorder` writing to the
    workspace, or (through a server) the SDK's buffering remote recorder."""

    run_id: str
    split_info: dict[str, Any]

    def log_metric(self, key: str, value: float, step: int | None = None) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_artifact(self, path: str | Path, name: str | None = None) -> str: ...


class RunRecorder:
    """Everything one live run writes; thread-safe."""

    def __init__(
        self, run_id: str, db: Database, store: ObjectStore, *, stoppable: bool = False
    ) -> None:
        self.run_id = run_id
        # A stoppable run (one a runner executes) ends when someone asks it to stop
        # (`RunService.request_stop`): its next `log_metric` raises `RunStopped`, as
        # Optuna's `TrialPruned` is raised from the objective's own report.
        self.stoppable = stoppable
        self.stop_reason: str | None = None
        self.db = db
        self.store = store
        self._points: list[Point] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._stopped = False
        self._last_beat = 0.0
        self.split_info: dict[str, Any] = {}
        self._capture: list[Point] | None = None
        self._split_before: dict[str, Any] = {}

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        _ticker.add(self)
        atexit.register(self.flush)

    def _tick(self) -> None:
        """One beat of the background writer: flush, look for a stop, send a heartbeat."""
        with self._tick_lock:
            if self._stopped:
                return
            try:
                self.flush()
                if self.stoppable and self.stop_reason is None:
                    self._check_stop()
                now = time.monotonic()
                if now - self._last_beat >= HEARTBEAT_EVERY_S:
                    with self.db.session() as conn:
                        RunRepository(conn).update(self.run_id, heartbeat_at=utcnow())
                    self._last_beat = now
            except Exception:  # the run itself must not die of a failed background write
                pass

    def _check_stop(self) -> None:
        with self.db.read() as conn:
            reason = RunRepository(conn).stop_reason(self.run_id)
        if reason is None:
            return
        self.stop_reason = reason  # the run's next `log_metric` raises RunStopped

    def close(self) -> None:
        """Stop the background writer and write what is left."""
        self._points[:0] = self.stop()
        self.flush()

    def stop(self) -> list[Point]:
        """Stop the background writer; return what is left, for the caller to write."""
        _ticker.remove(self)
        with self._tick_lock:  # a beat under way ends first; none comes after
            self._stopped = True
        atexit.unregister(self.flush)
        with self._flush_lock, self._lock:
            points, self._points = self._points, []
        return points

    # ---- logging ---------------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        if self.stop_reason is not None:
            raise RunStopped(self.stop_reason)
        point = (check_key(key), as_number(key, value), step, time.time())
        with self._lock:
            self._points.append(point)
            if self._capture is not None:
                self._capture.append(point)
            full = len(self._points) >= FLUSH_AT_POINTS
        if full:
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.stop_reason is not None:
            raise RunStopped(self.stop_reason)
        now = time.time()
        points = [(check_key(k), as_number(k, v), step, now) for k, v in metrics.items()]
        with self._lock:
            self._points.extend(points)
            if self._capture is not None:
                self._capture.extend(points)
            full = len(self._points) >= FLUSH_AT_POINTS
        if full:
            self.flush()

    def begin_capture(self) -> None:
        """Start keeping a copy of what is logged (a step's metrics, to cache with it)."""
        with self._lock:
            self._capture = []
            self._split_before = self.split_info

    def end_capture(self) -> dict[str, Any]:
        """What was logged since `begin_capture`: metric points and a split's fingerprints."""
        with self._lock:
            captured, self._capture = self._capture or [], None
        out: dict[str, Any] = {"points": [[k, v, s] for k, v, s, _ in captured]}
        if self.split_info and self.split_info is not self._split_before:
            out["split"] = self.split_info  # this step made the split
        return out

    def replay(self, logged: dict[str, Any]) -> None:
        """Log again what a cached step logged when it really ran."""
        now = time.time()
        with self._lock:
            self._points.extend((str(k), v, s, now) for k, v, s in logged.get("points", []))
        if logged.get("split"):
            self.split_info = logged["split"]

    def log_params(self, params: Mapping[str, Any]) -> None:
        check_document(dict(params), "Params")  # every listing reads them back
        with self.db.session() as conn:
            RunRepository(conn).add_params(
                self.run_id, {check_key(k): v for k, v in params.items()}
            )

    def log_artifact(self, path: str | Path, name: str | None = None) -> str:
        """Store a file (or every file under a folder) with the run; returns the stored hash."""
        src = Path(path)
        if not src.exists():
            raise InvalidArgumentError(f"Artifact {str(src)!r} does not exist.")
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        base = name or src.name
        named = {
            (f"{base}/{f.relative_to(src).as_posix()}" if src.is_dir() else base): f for f in files
        }
        digests = store_artifacts(self.db, self.store, self.run_id, named)
        return digests[-1] if digests else ""

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                points, self._points = self._points, []
            if not points:
                return
            try:
                with self.db.session() as conn:
                    RunRepository(conn).add_points(self.run_id, points)
            except BaseException:
                # Not written (the transaction rolled back): keep them, in order, for
                # the next flush or the run's end.
                with self._lock:
                    self._points[:0] = points
                raise


class _Ticker:
    """The one background thread that beats for every live recorder of this process.

    A thread per run cost more than the rest of a short run: starting it waits for the
    scheduler, and ending it waits for it to wake (a fifth of `start_run` + `log_metrics`
    + close in a loop, by py-spy). The thread ends after two beats with no run open, and
    a forked process starts afresh. Its runs share it: a beat held up by the database
    holds up the others' heartbeats too (they would wait on the same database).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recorders: dict[int, RunRecorder] = {}
        self._thread: threading.Thread | None = None

    def add(self, recorder: RunRecorder) -> None:
        with self._lock:
            self._recorders[id(recorder)] = recorder
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="assay-recorder", daemon=True
                )
                self._thread.start()

    def remove(self, recorder: RunRecorder) -> None:
        with self._lock:
            self._recorders.pop(id(recorder), None)

    def idle_thread(self) -> threading.Thread | None:
        """The thread, while it has no recorder to beat for (it is about to end, and
        holds nothing a fork could copy held: the child gets a fresh ticker)."""
        with self._lock:
            return self._thread if not self._recorders else None

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._recorders = {}
        self._thread = None

    def _loop(self) -> None:
        idle = 0
        while True:
            time.sleep(FLUSH_EVERY_S)
            with self._lock:
                # Two beats without a run: a loop of short runs keeps its one thread.
                idle = 0 if self._recorders else idle + 1
                if idle >= 2:
                    self._thread = None
                    return
                live = list(self._recorders.values())
            for recorder in live:
                recorder._tick()


_ticker = _Ticker()
# Threads do not survive a fork, and a lock the parent's thread held would never be let go.
os.register_at_fork(after_in_child=_ticker.reset)


def idle_recorder_thread() -> threading.Thread | None:
    """The recorders' thread if it is alive with no run to record (safe to fork beside)."""
    return _ticker.idle_thread()


def store_artifacts(
    db: Database, store: ObjectStore, run_id: str, files: Mapping[str, Path]
) -> list[str]:
    """Files into the store and onto the run's artifact list (name: file); their hashes."""
    stored = [(name, *store.ingest_file(path)) for name, path in files.items()]
    with db.session() as conn:
        repo = RunRepository(conn)
        for name, digest, size in stored:
            repo.add_artifact(run_id, name, digest, size)
    return [digest for _, digest, _ in stored]


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_NAME_LENGTH:
        raise InvalidArgumentError(
            f"Metric and param names must be 1-{MAX_NAME_LENGTH} characters, got {key!r}."
        )
    return key


def as_number(key: str, value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"Metric {key!r} must be a number, got {type(value).__name__} {value!r}."
        ) from None
    return number if math.isfinite(number) else None


# ---- the active run of this process ---------------------------------------------------------

# The run this thread records into; threads a step starts fall back to the run
# the process activated last, so `log_metric` works from worker threads too.
_active: Recorder | None = None
_local = threading.local()


def activate(recorder: Recorder | None) -> None:
    global _active
    if recorder is None:
        mine = getattr(_local, "run", None)
        _local.run = None
        if _active is mine:
            _active = None
        return
    _local.run = recorder
    _active = recorder


def active() -> Recorder:
    recorder = current()
    if recorder is None:
        raise InvalidArgumentError(
            "No active run: call this inside a pipeline step or in `with assay.start_run(...):`."
        )
    return recorder


def current() -> Recorder | None:
    found: Recorder | None = getattr(_local, "run", None)
    return found or _active


def current_run_id() -> str | None:
    recorder = current()
    return recorder.run_id if recorder else None


def usage() -> tuple[float, int]:
    """CPU seconds (user + system) and peak resident memory in bytes, for this process."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024
