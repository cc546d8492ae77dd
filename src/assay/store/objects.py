"""Content-addressed, immutable object store over a local folder or any fsspec URL.

An object's name is the BLAKE3 hash of its bytes (`ab/cdef…` under the store's
root), so identical content is stored once, and any reader can prove what it got.
Writes are atomic: bytes go to a temporary name and are renamed into place (a
local folder), or arrive by a single PUT (object stores, where a multipart upload
becomes visible only when complete). A writer killed at any moment leaves at
most a stray temporary file, never a half-written object under a real name.

The local folder talks to the OS directly rather than through fsspec's
LocalFileSystem: a commit of ten thousand files makes tens of thousands of
calls, and the wrapper's per-call cost would dominate.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from blake3 import blake3

from assay.errors import CorruptObjectError, NotFoundError, StorageError

HASH_HEX_LEN = 64
CHUNK = 4 * 1024 * 1024
_COPY_CHUNK = 64 * 1024 * 1024
# Files at least this large are hashed with all cores via mmap.
PARALLEL_HASH_MIN = 8 * 1024 * 1024
_TMP_DIR = ".tmp"
# An object store cannot touch an object; one at most this large is freshened by
# writing it again (a manifest, a pack of small files, a params file).
_REWRITE_TO_FRESHEN = 64 * 1024 * 1024


def hash_bytes(data: bytes | memoryview) -> str:
    return blake3(data).hexdigest()


def hash_file(path: Path) -> str:
    """BLAKE3 of a file's bytes; large files are hashed with every core."""
    size = path.stat().st_size
    if size >= PARALLEL_HASH_MIN:
        return str(blake3(max_threads=blake3.AUTO).update_mmap(path).hexdigest())
    with open(path, "rb") as fh:
        return hash_bytes(fh.read())


def _copy_file(src: Path, dst: Path, cancel: threading.Event, failed: list[OSError]) -> None:
    """Copy in the kernel, a chunk at a time, stopping early once `cancel` is set."""
    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            while not cancel.is_set():
                try:
                    n = os.copy_file_range(fin.fileno(), fout.fileno(), _COPY_CHUNK)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    shutil.copyfileobj(fin, fout, CHUNK)  # filesystems without copy_file_range
                    return
                if n == 0:
                    return
    except OSError as exc:
        failed.append(exc)


def is_hash(name: str) -> bool:
    return len(name) == HASH_HEX_LEN and all(c in "0123456789abcdef" for c in name)


def _storage_error(exc: OSError, doing: str, *, storing: bool = True) -> StorageError:
    if exc.errno == errno.ENOSPC:
        # A full disk while storing leaves the commit undone; while writing a checkout,
        # the destination as it was (the tree is built beside it).
        outcome = (
            "Nothing was committed and your files are untouched"
            if storing
            else "The destination is as it was"
        )
        return StorageError(
            f"No space left on device while {doing}. {outcome}; free some space and retry.",
            errno=exc.errno,
        )
    return StorageError(f"Storage failed while {doing}: {exc.strerror or exc}.", errno=exc.errno)


@dataclass(frozen=True)
class StoredObject:
    """An object as a listing sees it: its name, size, and last write (Unix time)."""

    digest: str
    size: int
    modified: float


class ObjectStore(ABC):
    """Immutable objects named by the hash of their content.

    Writing an object that is already stored freshens it (its modification time is
    now), as git freshens an object it finds instead of writing: the garbage collector
    spares every object written or reused within its grace period, so a writer that
    relies on an old object is not robbed of it mid-write.
    """

    url: str

    @staticmethod
    def open(url: str) -> ObjectStore:
        """The store at `url`: a plain path or `file://` is a local folder, anything else fsspec."""
        if "://" not in url or url.startswith("file://"):
            return LocalObjectStore(Path(url.removeprefix("file://")))
        return FsspecObjectStore(url)

    @abstractmethod
    def has(self, digest: str) -> bool: ...

    @abstractmethod
    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store `data` and return its hash (pass `digest` if already known: it saves a pass)."""

    @abstractmethod
    def ingest_file(self, path: Path) -> tuple[str, int]:
        """Store the file at `path`; returns (hash, size) of exactly the bytes stored."""

    @abstractmethod
    def _read_raw(self, digest: str) -> bytes: ...

    @abstractmethod
    def _open_raw(self, digest: str) -> BinaryIO: ...

    @abstractmethod
    def iter_digests(self) -> Iterator[str]:
        """Every object's name, in no particular order."""

    @abstractmethod
    def size(self, digest: str) -> int: ...

    @abstractmethod
    def iter_objects(self) -> Iterator[StoredObject]:
        """Every object with its size and when it was last written or reused (freshened)."""

    @abstractmethod
    def modified(self, digest: str) -> float | None:
        """When the object was last written or freshened (Unix time); None if absent."""

    @abstractmethod
    def delete(self, digests: Iterable[str]) -> int:
        """Remove these objects (those already gone are skipped); returns how many went.
        Only the garbage collector calls it: stored objects are otherwise immutable."""

    def get_bytes(self, digest: str) -> bytes:
        """The object's bytes, checked against its name.

        Raises:
            NotFoundError: no such object.
            CorruptObjectError: the bytes do not hash to the name.
        """
        data = self._read_raw(digest)
        if hash_bytes(data) != digest:
            raise self._corrupt(digest)
        return data

    def iter_bytes(self, digest: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The object's bytes in chunks, without holding them whole; the hash is checked
        as they pass, and a mismatch raises CorruptObjectError after the last chunk."""
        hasher = blake3()
        with self._open_raw(digest) as src:
            while part := src.read(chunk):
                hasher.update(part)
                yield part
        if hasher.hexdigest() != digest:
            raise self._corrupt(digest)

    def copy_to(self, digest: str, dest: Path) -> None:
        """Write the object to `dest` atomically, verifying its hash on the way."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
        hasher = blake3()
        try:
            with self._open_raw(digest) as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
            if hasher.hexdigest() != digest:
                raise self._corrupt(digest)
            os.replace(tmp, dest)
        except OSError as exc:
            raise _storage_error(exc, f"writing {dest}", storing=False) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def verify(self, digest: str) -> bool:
        """True if the object exists and its bytes hash to its name."""
        try:
            hasher = blake3()
            with self._open_raw(digest) as src:
                while chunk := src.read(CHUNK):
                    hasher.update(chunk)
        except NotFoundError:
            return False
        return bool(hasher.hexdigest() == digest)

    def _corrupt(self, digest: str) -> CorruptObjectError:
        return CorruptObjectError(
            f"Object {digest[:12]} in {self.url} is corrupt: its bytes no longer match its "
            "hash. Run `assay data verify` to list every damaged object.",
            object=digest,
        )

    def _missing(self, digest: str) -> NotFoundError:
        return NotFoundError(
            f"Object {digest[:12]} is missing from {self.url}. "
            "Run `assay data verify` to list every missing object.",
            object=digest,
        )


class LocalObjectStore(ObjectStore):
    """A folder: `root/ab/cdef…`, temporary files in `root/.tmp/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)
        self._tmp = root / _TMP_DIR
        self._made: set[str] = set()
        # Paths as strings on the way of every object written: a run writes four, and
        # pathlib's joins were a tenth of writing them.
        self._prefix = os.path.join(str(root), "")
        self._tmp_prefix = os.path.join(str(self._tmp), "")

    def path(self, digest: str) -> Path:
        return Path(self._file(digest))

    def _file(self, digest: str) -> str:
        return f"{self._prefix}{digest[:2]}/{digest[2:]}"

    def has(self, digest: str) -> bool:
        return os.path.exists(self._file(digest))

    def _tmp_path(self) -> Path:
        return Path(self._tmp_file())

    def _tmp_file(self) -> str:
        if "." not in self._made:
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._made.add(".")
        return self._tmp_prefix + uuid.uuid4().hex

    def _place(self, tmp: Path | str, digest: str) -> None:
        fan = digest[:2]
        if fan not in self._made:
            (self.root / fan).mkdir(parents=True, exist_ok=True)
            self._made.add(fan)
        os.replace(tmp, self._file(digest))

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hash_bytes(data)
        if self._freshen(digest):
            return digest
        tmp = self._tmp_file()
        placed = False
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            self._place(tmp, digest)
            placed = True
        except OSError as exc:
            raise _storage_error(exc, f"storing object {digest[:12]}") from exc
        finally:
            if not placed:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return digest

    def ingest_file(self, path: Path) -> tuple[str, int]:
        # Copy (in the kernel, one thread) while hashing the source (all cores): the
        # two overlap instead of adding up. If the content turns out to be stored
        # already, the copy is cancelled. The source's stat before and after proves
        # that the copy holds what was hashed.
        tmp = self._tmp_path()
        cancel = threading.Event()
        failed: list[OSError] = []
        copier = threading.Thread(target=_copy_file, args=(path, tmp, cancel, failed))
        try:
            before = path.stat()
            copier.start()
            try:
                digest = hash_file(path)
                if self._freshen(digest):
                    cancel.set()
            except BaseException:
                cancel.set()
                raise
            finally:
                copier.join()
            if failed:
                raise failed[0]
            after = path.stat()
            if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
                raise StorageError(f"{path} changed while it was being stored. Retry.")
            if not self.has(digest):
                self._place(tmp, digest)
        except OSError as exc:
            raise _storage_error(exc, f"storing {path}") from exc
        finally:
            cancel.set()
            if copier.is_alive():
                copier.join()
            tmp.unlink(missing_ok=True)
        return digest, before.st_size

    def _freshen(self, digest: str) -> bool:
        """Whether the object is stored; if it is, its modification time becomes now."""
        try:
            os.utime(self._file(digest))
        except FileNotFoundError:
            return False
        except OSError:
            return self.has(digest)  # a read-only store: present, just not freshened
        return True

    def iter_objects(self) -> Iterator[StoredObject]:
        for digest in self.iter_digests():
            try:
                st = os.stat(self.path(digest))
            except FileNotFoundError:
                continue
            yield StoredObject(digest, st.st_size, st.st_mtime)

    def modified(self, digest: str) -> float | None:
        try:
            return os.stat(self.path(digest)).st_mtime
        except FileNotFoundError:
            return None

    def delete(self, digests: Iterable[str]) -> int:
        removed = 0
        for digest in digests:
            try:
                os.unlink(self.path(digest))
                removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _storage_error(exc, f"removing object {digest[:12]}") from exc
        return removed

    def _read_raw(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise self._missing(digest) from exc

    def _open_raw(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError as exc:
            raise self._missing(digest) from exc

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise self._missing(digest) from exc

    def iter_digests(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        with os.scandir(self.root) as fans:
            for fan in fans:
                if len(fan.name) != 2 or not fan.is_dir():
                    continue
                with os.scandir(fan.path) as entries:
                    names = [fan.name + entry.name for entry in entries]
                yield from (name for name in names if is_hash(name))

    def count_temporaries(self, older_than_s: float = 3600) -> int:
        """How many temporary files `clean_temporaries` would remove."""
        import time

        if not self._tmp.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        count = 0
        for entry in os.scandir(self._tmp):
            with contextlib.suppress(FileNotFoundError):
                count += entry.stat().st_mtime < cutoff
        return count

    def clean_temporaries(self, older_than_s: float = 3600) -> int:
        """Remove temporary files left by killed writers; returns how many."""
        import time

        removed = 0
        if not self._tmp.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        for entry in os.scandir(self._tmp):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def open_fs(url: str, **storage_options: Any) -> tuple[Any, str]:
    """The fsspec filesystem of a store URL (`s3://bucket/prefix`, …) and its root path.

    Without fsspec's listings cache: other processes write to the same store (every
    service, replica and runner), and fsspec would answer `exists`, `info` and listings
    from what it listed earlier, for the life of this process.

    Raises:
        StorageError: no filesystem for the URL (for S3: `assay[s3]` not installed).
    """
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url, **{"use_listings_cache": False, **storage_options})
    except (ImportError, ValueError) as exc:
        raise StorageError(
            f"Cannot open store {url!r}: {exc}. For S3 install `assay[s3]`."
        ) from exc
    return fs, str(root)


class FsspecObjectStore(ObjectStore):
    """Any fsspec URL (`s3://bucket/prefix`, `gs://…`, `memory://…`)."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url.rstrip("/")
        self.fs, self._root = open_fs(self.url, **storage_options)
        self._root = self._root.rstrip("/")

    def key(self, digest: str) -> str:
        return f"{self._root}/{digest[:2]}/{digest[2:]}"

    def has(self, digest: str) -> bool:
        try:
            return bool(self.fs.exists(self.key(digest)))
        except OSError as exc:
            raise _storage_error(exc, f"looking up object {digest[:12]}") from exc

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hash_bytes(data)
        # An object store's objects cannot be touched: writing the same bytes again (a
        # single PUT, atomic) is the freshening. Small objects only; a large one found
        # again is kept by its referrer's check (see the data commit).
        if len(data) > _REWRITE_TO_FRESHEN and self.has(digest):
            return digest
        try:
            self.fs.pipe_file(self.key(digest), data)  # a single PUT: atomic
        except OSError as exc:
            raise _storage_error(exc, f"storing object {digest[:12]}") from exc
        return digest

    def ingest_file(self, path: Path) -> tuple[str, int]:
        try:
            before = path.stat()
            digest = hash_file(path)
            # Found again: small enough to write again, which freshens it (see put_bytes).
            if before.st_size <= _REWRITE_TO_FRESHEN or not self.has(digest):
                self.fs.put_file(str(path), self.key(digest))
            after = path.stat()
        except OSError as exc:
            raise _storage_error(exc, f"uploading {path}") from exc
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            # The upload may hold other bytes than were hashed; drop it rather than lie.
            self.fs.rm_file(self.key(digest))
            raise StorageError(f"{path} changed while it was being stored. Retry the commit.")
        return digest, before.st_size

    def _read_raw(self, digest: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.key(digest)))
        except FileNotFoundError as exc:
            raise self._missing(digest) from exc
        except OSError as exc:
            raise _storage_error(exc, f"reading object {digest[:12]}") from exc

    def _open_raw(self, digest: str) -> BinaryIO:
        try:
            fh: BinaryIO = self.fs.open(self.key(digest), "rb")
        except FileNotFoundError as exc:
            raise self._missing(digest) from exc
        return fh

    def size(self, digest: str) -> int:
        try:
            return int(self.fs.size(self.key(digest)))
        except FileNotFoundError as exc:
            raise self._missing(digest) from exc

    def iter_objects(self) -> Iterator[StoredObject]:
        try:
            found = self.fs.find(self._root, detail=True)
        except FileNotFoundError:
            return
        prefix = self._root + "/"
        for p, info in found.items():
            rest = p.removeprefix(prefix).split("/") if p.startswith(prefix) else []
            if len(rest) == 2 and is_hash(rest[0] + rest[1]):
                when = info.get("LastModified") or info.get("mtime") or info.get("created")
                yield StoredObject(rest[0] + rest[1], int(info.get("size") or 0), _timestamp(when))

    def modified(self, digest: str) -> float | None:
        try:
            info = self.fs.info(self.key(digest))
        except FileNotFoundError:
            return None
        return _timestamp(info.get("LastModified") or info.get("mtime") or info.get("created"))

    def delete(self, digests: Iterable[str]) -> int:
        keys = [self.key(d) for d in digests]
        removed = 0
        for start in range(0, len(keys), 1000):  # S3 deletes up to 1,000 keys a request
            chunk = keys[start : start + 1000]
            try:
                self.fs.rm(chunk)
            except FileNotFoundError:
                for key in chunk:
                    with contextlib.suppress(FileNotFoundError):
                        self.fs.rm_file(key)
            except OSError as exc:
                raise _storage_error(exc, "removing objects") from exc
            removed += len(chunk)
        return removed

    def iter_digests(self) -> Iterator[str]:
        try:
            paths = self.fs.find(self._root)
        except FileNotFoundError:
            return
        prefix = self._root + "/"
        for p in paths:
            # Exactly `root/ab/cdef…`: anything deeper (another store nested under
            # this prefix, stray uploads) is not one of our objects.
            rest = p.removeprefix(prefix).split("/") if p.startswith(prefix) else []
            if len(rest) == 2 and is_hash(rest[0] + rest[1]):
                yield rest[0] + rest[1]


def _timestamp(value: Any) -> float:
    """A listing's modification time (a datetime, a number, an ISO string) as Unix time;
    unknown is now, so that an object of unknown age is never collected."""
    import time
    from datetime import datetime

    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return time.time()
