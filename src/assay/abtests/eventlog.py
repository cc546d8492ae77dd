"""An A/B test's durable log: every assignment, prediction, latency, error and feedback.

Each router process appends JSON lines to a file of its own under the test's
`events/` folder (`O_APPEND`, one `write` per event, so a killed process loses at
most the line it was writing, and a torn last line is skipped on reading). Nothing
is ever rewritten: the analysis can be re-run from the files at any time.

Event kinds (`"t"`):
- `a` an answered request: `id`, `ts`, `v` (variant), `ms` (latency), `ok`, `err`
  (error kind or null), `pred` (the predictions), `n` (rows), `live` (false while
  the test is paused or concluded: kept out of the analysis);
- `s` a shadow's answer to a copy of request `id`: `v`, `ms`, `ok`, `pred`;
- `f` feedback for request `id`: `reward` (a number), `label` (the ground truth, when
  that is what was sent), `ts`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class EventLog:
    """This process's append-only file of events."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # The pid alone could repeat after a reboot; the start time makes the name unique.
        self.path = folder / f"{os.getpid()}-{time.time_ns()}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, event: dict[str, Any]) -> None:
        self.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")

    def write(self, line: bytes) -> None:
        """Append one event already encoded as a JSON line."""
        os.write(self._fd, line)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Tail:
    """Reads the events every process of a test has written, each line once."""

    def __init__(self, folder: Path, skip: Path | None = None) -> None:
        self.folder = folder
        self.skip = skip  # this process's own file: what it wrote, it already knows
        self._offsets: dict[Path, int] = {}

    def read(self) -> Iterator[dict[str, Any]]:
        """The events written since the last call (all of them, the first time)."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.jsonl")):
            if path == self.skip:
                continue
            start = self._offsets.get(path, 0)
            try:
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1  # a line still being written is read next time
            self._offsets[path] = start + end
            for line in data[:end].splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line torn by a crash
                if isinstance(event, dict):
                    yield event


def read_all(folder: Path) -> list[dict[str, Any]]:
    """Every event of the test, from every process's file."""
    return list(Tail(folder).read())


def parse_lines(data: bytes) -> Iterator[dict[str, Any]]:
    """The events in JSON lines; a torn or foreign line is skipped."""
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


class SegmentEventLog:
    """A router replica's events on a Ray cluster, where no folder is shared: buffered,
    and written every `FLUSH_S` (or `MAX_BYTES`) as one immutable segment under the test's
    prefix of the object store (`assay.store.segments`, atomic PUTs). A replica that dies
    loses at most the events of its last second; no segment is ever torn or rewritten.
    """

    FLUSH_S = 1.0
    MAX_BYTES = 1 << 20

    def __init__(self, store_url: str, prefix: str) -> None:
        import threading

        from assay.store.segments import SegmentStore

        self.store = SegmentStore(store_url, prefix)
        self.writer = os.urandom(6).hex()  # this replica's, in every segment's name
        self._lines: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="assay-events", daemon=True)
        self._thread.start()

    def append(self, event: dict[str, Any]) -> None:
        self.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")

    def write(self, line: bytes) -> None:
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            full = self._size >= self.MAX_BYTES
        if full:
            self._wake.set()  # the writer thread flushes now: never a PUT on the request path

    def flush(self) -> None:
        """Write what is buffered as one segment (nothing when the buffer is empty)."""
        from assay.store.segments import short_digest

        with self._lock:
            lines, self._lines, self._size = self._lines, [], 0
        if not lines:
            return
        data = b"".join(lines)
        try:
            self.store.put(f"{time.time_ns():020d}-{self.writer}-{short_digest(data)}.jsonl", data)
        except Exception:  # kept for the next flush, ahead of what came meanwhile
            with self._lock:
                self._lines[:0] = lines
                self._size += len(data)
            raise

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.FLUSH_S)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a store hiccup: the next flush writes these lines too
                import logging

                logging.getLogger("assay.abtests").exception("could not write events")

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()


def read_segments(store_url: str, prefix: str) -> list[dict[str, Any]]:
    """Every event of a test on a Ray cluster, from every replica's segments, in order of
    writing."""
    from assay.store.segments import SegmentStore

    store = SegmentStore(store_url, prefix)
    events: list[dict[str, Any]] = []
    for name in store.names():
        if name.endswith(".jsonl"):
            events.extend(parse_lines(store.get(name)))
    return events
