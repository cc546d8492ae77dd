"""Named, immutable files beside the content-addressed objects: append-only logs.

A service's prediction log is a growing set of segments, each written once and never
changed. They live under the object store's URL (`<store>/logs/...`), so a log on S3
works as one in a local folder, but by name rather than by hash: a reader lists them
by prefix and picks a time range from their names. Every segment's name ends with the
BLAKE3 of its bytes (`...-<hash>.parquet`), so a reader proves what it got, as it
does for objects.

Writes are atomic: a local file is written under a temporary name and renamed into
place; on an object store a segment arrives by a single PUT, visible only when
complete. A writer killed at any moment leaves at most a stray temporary file (which
no listing returns), never a torn segment under a real name.

Nothing here imports the metadata database: the inference process writes through it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from blake3 import blake3

from assay.errors import CorruptObjectError, NotFoundError, StorageError

LOGS = "logs"
_TMP = ".tmp-"


class SegmentStore:
    """The files under one prefix of a store (`<store>/logs/<prefix>/`)."""

    def __init__(self, store_url: str, prefix: str) -> None:
        self.url = store_url.rstrip("/")
        self.prefix = prefix.strip("/")
        self._fs: Any = None
        self._local: Path | None = None
        if "://" not in self.url or self.url.startswith("file://"):
            self._local = Path(self.url.removeprefix("file://")) / LOGS / self.prefix
            self._root = str(self._local)
        else:
            from assay.store.objects import open_fs

            self._fs, root = open_fs(self.url)
            self._root = f"{root.rstrip('/')}/{LOGS}/{self.prefix}"

    def __repr__(self) -> str:
        return f"SegmentStore({self.url!r}, {self.prefix!r})"

    # ---- writing -----------------------------------------------------------------------------

    def put(self, name: str, data: bytes) -> None:
        """Store `data` as `name` (a relative path) in one atomic step.

        Raises:
            StorageError: the store could not be written.
        """
        try:
            if self._local is not None:
                path = self._local / name
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{_TMP}{uuid.uuid4().hex}")
                try:
                    with open(tmp, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())  # the bytes are down before the name appears
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
            else:
                self._fs.pipe_file(f"{self._root}/{name}", data)  # a single PUT: atomic
        except OSError as exc:
            raise StorageError(f"Could not write log segment {name}: {exc}.") from exc

    # ---- reading -----------------------------------------------------------------------------

    def names(self, folder: str = "") -> list[str]:
        """The segments' names under `folder` (relative to the prefix), sorted; temporary
        files of writers in progress (or killed) are not listed."""
        if self._local is not None:
            base = self._local / folder if folder else self._local
            if not base.is_dir():
                return []
            return sorted(
                f"{folder}/{e.name}" if folder else e.name
                for e in os.scandir(base)
                if e.is_file() and not e.name.startswith(_TMP)
            )
        where = f"{self._root}/{folder}" if folder else self._root
        try:
            found = self._fs.ls(where, detail=False)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"Could not list log segments under {where}: {exc}.") from exc
        start = self._root + "/"
        out = []
        for path in found:
            rel = str(path).split(start, 1)[-1] if start in str(path) else str(path)
            leaf = rel.rsplit("/", 1)[-1]
            if leaf and not leaf.startswith(_TMP):
                out.append(rel)
        return sorted(out)

    def get(self, name: str) -> bytes:
        """The segment's bytes; when its name ends with a hash, checked against it.

        Raises:
            NotFoundError: no such segment.
            CorruptObjectError: the bytes do not match the hash in the name.
        """
        try:
            if self._local is not None:
                data = (self._local / name).read_bytes()
            else:
                data = bytes(self._fs.cat_file(f"{self._root}/{name}"))
        except FileNotFoundError:
            raise NotFoundError(f"No log segment {name} in {self!r}.") from None
        except OSError as exc:
            raise StorageError(f"Could not read log segment {name}: {exc}.") from exc
        expected = digest_in(name)
        if expected is not None and not blake3(data).hexdigest().startswith(expected):
            raise CorruptObjectError(
                f"Log segment {name} is corrupt: its bytes do not match the hash in its name.",
                segment=name,
            )
        return data


def digest_in(name: str) -> str | None:
    """The hash prefix a segment's name ends with (`...-<hex>.<ext>`), if any."""
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    tail = stem.rsplit("-", 1)[-1]
    if len(tail) >= 16 and all(c in "0123456789abcdef" for c in tail):
        return tail
    return None


def short_digest(data: bytes) -> str:
    """The hash a segment's name carries: the first 32 hex digits of its BLAKE3."""
    return str(blake3(data).hexdigest())[:32]
