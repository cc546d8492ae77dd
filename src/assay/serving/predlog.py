"""The prediction log: each answered request's inputs and outputs, written off the request path.

A service (or an A/B router) records what it answered for monitoring: the predict
thread hands a reference to the rows it already parsed and the model's output to
`PredictionLog.record` (a sampling draw and a deque append, nothing more), and one
background thread per worker process turns them into Parquet segments in the object
store (`assay.store.segments`), rolled by row count, by size and by age. Feedback
(`POST /feedback`, or an A/B test's) is logged the same way, to be joined by request id.

A worker killed outright loses what it had not written yet (at most the open segment,
`max_age_s` of traffic); every segment already written is whole, and a restarted worker
starts new ones. A reader that must see everything answered so far (a monitor check)
asks every worker to write what it holds: it replaces the service folder's `log-flush`
file, and each worker's writer answers in `workers/<pid>.flushed` with the request's
mtime once it has written everything it held (`request_flush` waits for that).

Names sort by time and say which span they hold:

    predictions/<first_ms>-<last_ms>-<writer>-<seq>-<hash>.parquet
    feedback/<first_ms>-<last_ms>-<writer>-<seq>-<hash>.parquet

A predictions segment has one row per input row: `request_id`, `ts` (Unix seconds),
`model`, `version`, `variant` (null for a service), `row` (its index in the request),
`in.<column>` for every input column, and `prediction` (a JSON text for a model with
several outputs per row). A feedback segment: `request_id`, `ts`, `label` (JSON text,
null when a reward was sent) and `reward`.

pyarrow is imported by the writer thread when it first writes, not at start-up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assay.errors import AssayError, InvalidArgumentError
from assay.limits import check_document
from assay.store.liveness import alive
from assay.store.segments import SegmentStore, short_digest

log = logging.getLogger("assay.serving")

PREDICTIONS = "predictions"
FEEDBACK = "feedback"
INPUT_PREFIX = "in."
# How often the writer thread takes in what the request threads recorded. Each wake-up
# takes the GIL from the requests: bench/monitor.py's method (best of 3 runs of 8 s per
# mode, logging off then on) kept 91-96% of the throughput waking every 0.25 s (three runs), and
# 94-99% waking every second (two runs). A flush request (a monitor check) waits up to this long.
POLL_S = 1.0
FLUSH_FILE = "log-flush"
RETRY_S = 5.0  # after a failed write, how long before the next try


@dataclass(frozen=True)
class LogConfig:
    """service.json's `log`: where segments go, what share of requests, when to roll."""

    store: str
    prefix: str
    sample: float = 1.0
    max_rows: int = 50_000
    max_bytes: int = 32 * 1024 * 1024
    max_age_s: float = 60.0

    @classmethod
    def from_doc(cls, doc: Any) -> LogConfig | None:
        """The config in a service.json, or None when logging is off (absent, or sample 0).

        Raises:
            InvalidArgumentError: the block is malformed.
        """
        if not doc:
            return None
        try:
            config = cls(
                store=str(doc["store"]),
                prefix=str(doc["prefix"]),
                sample=float(doc.get("sample", 1.0)),
                max_rows=int(doc.get("max_rows", 50_000)),
                max_bytes=int(doc.get("max_bytes", 32 * 1024 * 1024)),
                max_age_s=float(doc.get("max_age_s", 60.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"The service's log settings are malformed ({exc}); redeploy the service."
            ) from exc
        check_sample(config.sample)
        if config.max_rows < 1 or config.max_bytes < 1 or config.max_age_s <= 0:
            raise InvalidArgumentError("The log's roll limits must be positive; redeploy.")
        return config if config.sample > 0 else None

    def to_doc(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_sample(rate: float) -> float:
    """A sample rate in [0, 1], or InvalidArgumentError."""
    if not 0.0 <= rate <= 1.0:
        raise InvalidArgumentError(
            f"--log-sample must be between 0 (no logging) and 1 (every request), not {rate:g}."
        )
    return rate


def log_block(
    store: str, kind: str, name: str, sample: float, roll: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The `log` block (`LogConfig.from_doc`) of a service (`kind` "services") or an A/B
    test ("abtests"): where its log goes, its sample rate and roll limits; None when
    logging is off (`sample` 0)."""
    if sample <= 0:
        return None
    return {"store": store, "prefix": log_prefix(kind, name), "sample": sample, **(roll or {})}


def service_log(store: str, name: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """A service's `log` block from its settings (`log_sample`, `log_roll`)."""
    sample = float(settings.get("log_sample", 1.0))
    return log_block(store, "services", name, sample, settings.get("log_roll"))


def log_prefix(kind: str, name: str) -> str:
    """Where a service's (`services`) or an A/B test's (`abtests`) log lives in the store."""
    return f"{PREDICTIONS}/{kind}/{name}"


def segment_span(name: str) -> tuple[float, float] | None:
    """(first, last) Unix seconds of the records a segment holds, read from its name."""
    leaf = name.rsplit("/", 1)[-1]
    parts = leaf.split("-")
    if len(parts) < 5 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]) / 1000.0, int(parts[1]) / 1000.0


# ---- one open segment ---------------------------------------------------------------------


class _Open:
    """Records waiting to become one segment: same model version, same input columns."""

    def __init__(self, now: float) -> None:
        self.opened = now
        self.records: list[tuple[Any, ...]] = []
        self.rows = 0
        self.bytes = 0

    def add(self, record: tuple[Any, ...], rows: int, size: int) -> None:
        self.records.append(record)
        self.rows += rows
        self.bytes += size


def _size(X: Any) -> int:
    if isinstance(X, np.ndarray):
        return X.nbytes * (4 if X.dtype.kind == "O" else 1)  # objects: their values too
    return 64 * len(X) * max(1, len(getattr(X, "columns", ())))


class PredictionLog:
    """One worker process's writer: `record` and `feedback` from any thread, a
    background thread writes. `close` writes what is left."""

    def __init__(self, config: LogConfig, folder: Path | None = None) -> None:
        self.config = config
        # The service folder, where flush requests come in and are answered.
        self.folder = folder
        self._flushed_ns = 0
        self.store = SegmentStore(config.store, config.prefix)
        self.rate = config.sample
        # The writer's name in segment names: unique across restarts and hosts.
        self.writer = f"{os.getpid()}{os.urandom(3).hex()}"
        self._seq = 0
        self._pending: deque[tuple[Any, ...]] = deque()
        self._feedback: deque[tuple[Any, ...]] = deque()
        self._open: dict[tuple[Any, ...], _Open] = {}
        self._full: list[_Open] = []
        self._open_feedback: _Open | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_at = 0.0
        self.written = 0  # segments
        self.dropped = 0  # records dropped because the store could not keep up

    # ---- the request side: cheap, never blocks ------------------------------------------

    def wants(self) -> bool:
        """This request's sampling draw."""
        return self.rate >= 1.0 or random.random() < self.rate

    def record(
        self,
        request_id: str,
        model: str,
        version: int,
        variant: str | None,
        names: tuple[str, ...],
        X: Any,
        out: Any,
    ) -> None:
        """Log one answered request: its rows as the model got them (`X`, columns
        `names`) and what it returned. Only references are kept; nothing is copied."""
        if len(self._pending) + len(self._full) * self.config.max_rows >= self.config.max_rows * 4:
            self.dropped += 1  # the writer is behind: never let memory grow without bound
            return
        self._pending.append((request_id, time.time(), model, version, variant, names, X, out))

    def feedback(self, request_id: str, label: Any, reward: float | None) -> None:
        """Log feedback for `request_id`: the true label, or a reward."""
        text = None if label is None else json.dumps(label, separators=(",", ":"), default=str)
        self._feedback.append((request_id, time.time(), text, reward))

    # ---- the writer thread ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="assay-prediction-log", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop the writer and write every record still held (a graceful stop loses none)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
            self._thread = None
        self._take()
        self._roll(force=True)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                # The request first, then the records: whatever was answered before the
                # request is taken in and written.
                asked = self._flush_asked()
                self._take()
                self._roll(force=asked is not None)
                if asked is not None:
                    self._answer_flush(asked)
            except Exception:  # the log must never take the serving down
                log.exception("the prediction log could not write a segment")

    def _flush_asked(self) -> int | None:
        """The pending flush request's mtime (ns), if one came since the last."""
        if self.folder is None:
            return None
        try:
            asked = (self.folder / FLUSH_FILE).stat().st_mtime_ns
        except OSError:
            return None
        return asked if asked > self._flushed_ns else None

    def _answer_flush(self, asked: int) -> None:
        if self._open or self._full or self._open_feedback is not None:
            return  # the store refused a write: the reader waits, or gives up
        assert self.folder is not None
        self._flushed_ns = asked
        done = self.folder / "workers" / f"{os.getpid()}.flushed"
        tmp = done.with_name(done.name + ".tmp")
        try:
            tmp.write_text(str(asked))
            os.replace(tmp, done)
        except OSError as exc:
            log.error("could not answer a log flush: %s", exc)

    def _take(self) -> None:
        now = time.time()
        pending = self._pending
        limits = (self.config.max_rows, self.config.max_bytes)
        while pending:
            record = pending.popleft()
            _rid, _ts, model, version, variant, names, X, _out = record
            key = (model, version, variant, names)
            seg = self._open.get(key)
            if seg is None:
                seg = self._open[key] = _Open(now)
            seg.add(record, len(X), _size(X))
            if seg.rows >= limits[0] or seg.bytes >= limits[1]:
                self._full.append(self._open.pop(key))  # full: the next rows start another
        feedback = self._feedback
        if feedback and self._open_feedback is None:
            self._open_feedback = _Open(now)
        while feedback:
            assert self._open_feedback is not None
            self._open_feedback.add(feedback.popleft(), 1, 64)

    def _due(self, seg: _Open, now: float, force: bool) -> bool:
        c = self.config
        return bool(seg.records) and (
            force
            or seg.rows >= c.max_rows
            or seg.bytes >= c.max_bytes
            or now - seg.opened >= c.max_age_s
        )

    def _roll(self, *, force: bool) -> None:
        now = time.time()
        if not force and now - self._failed_at < RETRY_S:
            return
        while self._full:
            if not self._write(PREDICTIONS, self._full[0], _prediction_table):
                return
            self._full.pop(0)
        for key, seg in list(self._open.items()):
            if self._due(seg, now, force) and self._write(PREDICTIONS, seg, _prediction_table):
                del self._open[key]
        fb = self._open_feedback
        due = fb is not None and self._due(fb, now, force)
        if due and fb is not None and self._write(FEEDBACK, fb, _feedback_table):
            self._open_feedback = None

    def _write(self, folder: str, seg: _Open, build: Any) -> bool:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = build(seg.records)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            data = sink.getvalue().to_pybytes()
            stamps = [r[1] for r in seg.records]
            self._seq += 1
            name = (
                f"{folder}/{int(min(stamps) * 1000):013d}-{int(max(stamps) * 1000):013d}-"
                f"{self.writer}-{self._seq:06d}-{short_digest(data)}.parquet"
            )
            self.store.put(name, data)
        except AssayError as exc:
            self._failed_at = time.time()
            log.error("could not write a %s segment (%s); retrying in %g s", folder, exc, RETRY_S)
            if len(self._full) > 4:  # the store has been down a while: shed the oldest
                self.dropped += len(seg.records)
                log.error("dropped %d records the store could not take", len(seg.records))
                return True
            return False
        self.written += 1
        return True


# ---- records to Arrow tables ----------------------------------------------------------------


def _column(X: Any, j: int, name: str) -> Any:
    if isinstance(X, np.ndarray):
        return X[:, j] if X.ndim == 2 else X
    return X[name].to_numpy()  # a DataFrame


def _arrow(values: np.ndarray[Any, Any]) -> Any:
    import pyarrow as pa

    if values.dtype != object:
        return pa.array(values)
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds: kept as text
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _prediction_table(records: list[tuple[Any, ...]]) -> Any:
    import pyarrow as pa

    names: tuple[str, ...] = records[0][5]
    counts = np.fromiter((len(r[6]) for r in records), dtype=np.int64, count=len(records))
    n = int(counts.sum())
    ids = np.repeat(np.array([r[0] for r in records], dtype=object), counts)
    ts = np.repeat(np.fromiter((r[1] for r in records), dtype=np.float64), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    columns: dict[str, Any] = {
        "request_id": pa.array(ids, type=pa.string()),
        "ts": pa.array(ts),
        "model": pa.array([records[0][2]] * n, type=pa.string()),
        "version": pa.array(np.full(n, records[0][3], dtype=np.int64)),
        "variant": pa.array([records[0][4]] * n, type=pa.string()),
        "row": pa.array((np.arange(n) - starts).astype(np.int32)),
    }
    Xs = [r[6] for r in records]
    if all(isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" for X in Xs):
        matrix = np.concatenate(Xs, axis=0)  # the common case: one float matrix, one copy
        for j, name in enumerate(names):
            columns[INPUT_PREFIX + name] = pa.array(matrix[:, j])
    else:
        for j, name in enumerate(names):
            columns[INPUT_PREFIX + name] = _arrow(np.concatenate([_column(X, j, name) for X in Xs]))
    outs = [np.asarray(r[7]) for r in records]
    if all(o.ndim == 1 for o in outs):
        columns["prediction"] = _arrow(np.concatenate(outs))
    else:
        columns["prediction"] = pa.array(
            [json.dumps(v, default=str) for o in outs for v in o.tolist()], type=pa.string()
        )
    return pa.table(columns)


def _feedback_table(records: list[tuple[Any, ...]]) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "request_id": pa.array([r[0] for r in records], type=pa.string()),
            "ts": pa.array([r[1] for r in records], type=pa.float64()),
            "label": pa.array([r[2] for r in records], type=pa.string()),
            "reward": pa.array([r[3] for r in records], type=pa.float64()),
        }
    )


def feedback_fields(doc: Any) -> tuple[str, float | None, Any]:
    """`{"request_id", "reward"}` or `{"request_id", "label"}` checked: (id, reward, label).

    Raises:
        InvalidArgumentError: no request id, or not exactly one of reward and label.
    """
    import math

    if not isinstance(doc, dict):
        raise InvalidArgumentError('Send a JSON object: {"request_id": ..., "label": ...}.')
    request_id = doc.get("request_id")
    if not isinstance(request_id, str) or not request_id or len(request_id) > 128:
        raise InvalidArgumentError(
            "Feedback needs 'request_id', the id a prediction answered with "
            "(its X-Assay-Request-Id header).",
            field="request_id",
        )
    has_reward, has_label = "reward" in doc, "label" in doc
    if has_reward == has_label:
        raise InvalidArgumentError(
            "Send exactly one of 'reward' (a number) or 'label' (the ground truth).",
            field="reward",
        )
    if has_reward:
        reward = doc["reward"]
        if (
            isinstance(reward, bool)
            or not isinstance(reward, int | float)
            or not math.isfinite(reward)
        ):
            raise InvalidArgumentError(
                f"'reward' must be a finite number, not {json.dumps(reward)}.", field="reward"
            )
        return request_id, float(reward), None
    check_document(doc["label"], "The label")  # kept in the log, read back by every check
    return request_id, None, doc["label"]


def client_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The caller's own request id (`X-Request-Id`), when it is a sensible one."""
    for key, value in headers:
        if key == b"x-request-id":
            if 0 < len(value) <= 128 and all(33 <= c < 127 for c in value):
                return value.decode("ascii")
            return None
    return None


def request_flush(folder: Path, timeout_s: float = 5.0) -> bool:
    """Ask every worker of the service in `folder` to write the records it holds, and
    wait until each has (or `timeout_s` passed); returns whether all of them did."""
    import json as _json

    try:
        doc = _json.loads((folder / "service.json").read_bytes())
    except (OSError, ValueError):
        return False
    if not doc.get("log"):
        return True  # nothing is logged, so nothing is held
    path = folder / FLUSH_FILE
    tmp = path.with_name(f"{FLUSH_FILE}.{os.getpid()}.tmp")
    tmp.write_text(str(time.time_ns()))
    os.replace(tmp, path)
    asked = path.stat().st_mtime_ns
    deadline = time.monotonic() + timeout_s
    while True:
        pids = [p.stem for p in (folder / "workers").glob("*.json") if _alive(p.stem)]
        answered = 0
        for pid in pids:
            with contextlib.suppress(OSError, ValueError):
                answered += int((folder / "workers" / f"{pid}.flushed").read_text()) >= asked
        if answered == len(pids) or time.monotonic() > deadline:
            return answered == len(pids)
        time.sleep(0.05)


def _alive(pid: str) -> bool:
    """Whether the worker named by a file stem (its pid) runs."""
    return pid.isdigit() and alive(int(pid))


class RequestIds:
    """Fresh request ids: a random prefix per process and a counter (no syscall each)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._next = 0

    def __call__(self) -> str:
        self._next += 1
        return f"{self._prefix}{self._next:010x}"
