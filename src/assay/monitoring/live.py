"""Reading a service's prediction log back: a window of its rows, feedback joined.

The segments (`assay.serving.predlog`) name the time span they hold, so a time window
opens only the segments that overlap it; "the last N requests" reads from the newest
backwards until it has N. Segments are fetched and decoded on a few threads (the store
may be S3; Parquet decodes outside the GIL). A segment that cannot be read or does not
match its hash is skipped and named, never fatal: the rest of the log still answers.
"""

from __future__ import annotations

import io
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from assay.errors import AssayError
from assay.monitoring.entities import Window
from assay.serving.predlog import FEEDBACK, INPUT_PREFIX, PREDICTIONS, log_prefix, segment_span
from assay.store.segments import SegmentStore

log = logging.getLogger("assay.monitoring")

READERS = 8


@dataclass
class LiveData:
    """A window of logged rows: `rows` has `request_id`, `ts`, `model`, `version`,
    `variant`, `row`, `in.<column>`, `prediction`, and `label` / `reward` from feedback
    (NaN where none came)."""

    rows: pd.DataFrame
    segments: int = 0
    skipped: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def inputs(self) -> list[str]:
        return [c[len(INPUT_PREFIX) :] for c in self.rows.columns if c.startswith(INPUT_PREFIX)]

    def span(self) -> tuple[float | None, float | None]:
        if not len(self.rows):
            return None, None
        return float(self.rows["ts"].min()), float(self.rows["ts"].max())


def store_of(store_url: str, kind: str, name: str) -> SegmentStore:
    """The segments of a service's (`services`) or A/B test's (`abtests`) log."""
    return SegmentStore(store_url, log_prefix(kind, name))


def read_window(store: SegmentStore, window: Window, now: datetime) -> LiveData:
    """The logged rows in `window`, with their feedback joined."""
    start, end = window.bounds(now)
    t0 = start.timestamp() if start else None
    t1 = end.timestamp()
    names = store.names(PREDICTIONS)
    spans = [(n, segment_span(n)) for n in names]
    chosen = [n for n, s in spans if s is not None and s[1] >= (t0 or -math.inf) and s[0] <= t1]
    skipped: list[str] = []
    if window.requests is not None:
        tables, used = _newest(store, chosen, window.requests, skipped)
    else:
        tables, used = _read(store, chosen, skipped), len(chosen)
    rows = _concat(tables)
    requests = 0
    if len(rows):
        ts = rows["ts"].to_numpy(dtype=np.float64)
        keep = ts <= t1
        if t0 is not None:
            keep &= ts >= t0
        rows = rows[keep]
        # Requests by integer code: grouping 100,000 ids as strings costs more than the
        # drift tests themselves.
        codes, ids = pd.factorize(rows["request_id"])
        requests = len(ids)
        if window.requests is not None and requests > window.requests:
            last = np.full(requests, -np.inf)
            np.maximum.at(last, codes, rows["ts"].to_numpy(dtype=np.float64))
            newest = np.argpartition(-last, window.requests - 1)[: window.requests]
            rows = rows[np.isin(codes, newest)]
            requests = window.requests
        rows = rows.sort_values(["ts", "row"], kind="stable").reset_index(drop=True)
    first = float(rows["ts"].min()) if len(rows) else None
    return LiveData(_join(rows, _feedback(store, first, skipped)), used, skipped, requests)


def _newest(
    store: SegmentStore, names: list[str], requests: int, skipped: list[str]
) -> tuple[list[pd.DataFrame], int]:
    """Segments from the newest back until they hold `requests` requests."""
    tables: list[pd.DataFrame] = []
    seen = 0
    ordered = sorted(names, key=lambda n: segment_span(n) or (0.0, 0.0), reverse=True)
    used = 0
    for start in range(0, len(ordered), READERS):
        batch = ordered[start : start + READERS]
        got = _read(store, batch, skipped)
        used += len(batch)
        tables.extend(got)
        seen += sum(int(t["request_id"].nunique()) for t in got)
        if seen >= requests:
            break
    return tables, used


def _read(store: SegmentStore, names: list[str], skipped: list[str]) -> list[pd.DataFrame]:
    import pyarrow.parquet as pq

    def one(name: str) -> pd.DataFrame | None:
        try:
            frame: pd.DataFrame = pq.read_table(io.BytesIO(store.get(name))).to_pandas()
            return frame
        except (AssayError, OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors
            log.warning("skipping log segment %s: %s", name, exc)
            skipped.append(name)
            return None

    if len(names) <= 1:
        found = [one(n) for n in names]
    else:
        with ThreadPoolExecutor(min(READERS, len(names))) as pool:
            found = list(pool.map(one, names))
    return [t for t in found if t is not None and len(t)]


def _concat(tables: list[pd.DataFrame]) -> pd.DataFrame:
    if not tables:
        return pd.DataFrame(
            {c: [] for c in ("request_id", "ts", "model", "version", "variant", "row")}
        )
    return pd.concat(tables, ignore_index=True, sort=False) if len(tables) > 1 else tables[0]


def _feedback(store: SegmentStore, since: float | None, skipped: list[str]) -> pd.DataFrame:
    """Every feedback logged since `since` (it arrives after its prediction)."""
    if since is None:
        return pd.DataFrame({"request_id": [], "label": [], "reward": []})
    names = [n for n in store.names(FEEDBACK) if (segment_span(n) or (0.0, 0.0))[1] >= since]
    tables = _read(store, names, skipped)
    if not tables:
        return pd.DataFrame({"request_id": [], "label": [], "reward": []})
    fb = pd.concat(tables, ignore_index=True).sort_values("ts", kind="stable")
    return fb.drop_duplicates("request_id", keep="first")[["request_id", "label", "reward"]]


def _join(rows: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """`label` and `reward` on each row: a list label gives one per row of its request."""
    if not len(rows):
        return rows.assign(label=pd.Series(dtype=object), reward=pd.Series(dtype=float))
    if not len(feedback):
        out = rows.copy()
        out["label"] = pd.Series([None] * len(rows), dtype=object)
        out["reward"] = np.nan
        return out
    joined = rows.merge(feedback, on="request_id", how="left")
    labels = joined["label"].to_numpy(dtype=object)
    positions = joined["row"].to_numpy()
    decoded: list[Any] = [None] * len(labels)
    for i, (text, k) in enumerate(zip(labels, positions, strict=True)):
        if not isinstance(text, str):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, list):
            decoded[i] = value[int(k)] if int(k) < len(value) else None
        elif int(k) == 0:
            decoded[i] = value
    joined["label"] = pd.Series(decoded, dtype=object)
    joined["reward"] = joined["reward"].astype(float)
    return joined
