"""Uploads staged on the way to a commit: files sent in parts or in batches, checked by hash.

Each upload is a folder of its own under the staging root, named by a random id:
`files/` holds the files sent as parts, `batches/` the batches of small files.

- A file arrives in one part or several; a part must start where the file's bytes so
  far end, so an interrupted upload resumes from `files`.
- Small files travel many to a request, as the store packs them: a batch is a JSON
  line naming each file (`[[path, blake3, size], …]`) followed by their bytes in that
  order. Every file is hashed as it arrives and a batch is kept whole or not at all;
  it stays one file on disk (its bytes) beside its index, never ten thousand.

Before anything uses an upload, `verified` checks it against the BLAKE3 hash the
client named with each file (re-hashing the parts; a batch's files were checked on
arrival). The upload is the client's until `discard`: a refused one stays, to be fixed
and tried again, until it has sat untouched for `max_age_s` (`expire`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from assay.errors import ConflictError, InvalidArgumentError, NotFoundError, PayloadTooLargeError
from assay.store.objects import hash_bytes, hash_file
from assay.store.paths import check_relative, safe_join

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")

BATCH_BYTES = 64 * 1024 * 1024  # the most one batch may carry (the client sends 8 MB)
BATCH_FILES = 20_000
_INDEX_BYTES = 8 * 1024 * 1024  # the JSON line naming a batch's files
_EXPIRY_EVERY_S = 60.0  # how often starting or reading an upload looks for expired ones


@dataclass(frozen=True)
class Member:
    """A file that came in a batch: its bytes are `size` bytes at `offset` of `batch`."""

    path: str
    hash: str
    size: int
    batch: Path
    offset: int


@dataclass(frozen=True)
class Staged:
    """An upload checked against the hashes named with it, ready to commit: the files
    sent as parts under `root`, laid out as in the dataset, and those sent in batches."""

    root: Path
    members: tuple[Member, ...]

    def path(self, rel: str) -> Path:
        """The file `rel` on disk (one that came in a batch is written out first)."""
        target = safe_join(self.root, rel)
        member = next((m for m in self.members if m.path == rel), None)
        if member is not None:
            with member.batch.open("rb") as fh:
                fh.seek(member.offset)
                data = fh.read(member.size)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return target

    def folder(self) -> Path:
        """Every file on disk under `root`, laid out as sent (a model bundle, say)."""
        for member in {m.path: m for m in self.members}.values():
            self.path(member.path)
        return self.root


class UploadService:
    """The staging area for uploads, under `root` (the workspace's `cache/uploads`).

    Uploads untouched for longer than `max_age_s` are deleted when uploads are started
    or read (`expire`); `clock` is injectable for tests.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_age_s: float = 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self.clock = clock
        self._last_expiry = float("-inf")

    def start(self) -> str:
        """A new, empty upload; returns its id."""
        self._expire_now_and_then()
        upload_id = uuid.uuid4().hex
        folder = self._folder(upload_id, create=True)
        (folder / "files").mkdir()
        (folder / "batches").mkdir()
        return upload_id

    def files(self, upload_id: str) -> dict[str, int]:
        """The bytes received so far, by path.

        Raises:
            NotFoundError: no such upload.
        """
        self._expire_now_and_then()
        folder = self._folder(upload_id)
        sizes = {m.path: m.size for m in self._members(folder)}
        root = folder / "files"
        sizes.update(
            {
                p.relative_to(root).as_posix(): p.stat().st_size
                for p in root.rglob("*")
                if p.is_file()
            }
        )
        return sizes

    def open_part(self, upload_id: str, path: str, offset: int) -> BinaryIO:
        """The file `path` of an upload, open to take the part that starts at `offset`.

        The caller writes the part's bytes and closes the file; an async transport
        streams a request body into it without holding the file in memory.

        Raises:
            NotFoundError: no such upload.
            InvalidArgumentError: `path` is not a safe relative path inside the upload.
            ConflictError: `offset` is not where the file's bytes so far end, or the
                path clashes with a folder or a file of this upload.
        """
        folder = self._folder(upload_id, touch=True)
        target = safe_join(folder / "files", path)
        if target.is_dir():
            raise ConflictError(f"{path!r} is a folder of this upload: it cannot be a file too.")
        have = target.stat().st_size if target.exists() else 0
        if offset != have:
            raise ConflictError(
                f"{path!r} has {have} bytes so far; send the part that starts there "
                f"(offset={have}).",
                received=have,
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            return target.open("ab" if offset else "wb")
        except (NotADirectoryError, FileExistsError, IsADirectoryError):
            raise ConflictError(
                f"{path!r} clashes with a file of this upload that is on its way: a file cannot "
                "also be a folder."
            ) from None

    def write(self, upload_id: str, path: str, offset: int, chunks: Iterable[bytes]) -> int:
        """Write one part of `path`, starting at `offset`; returns the file's size now.

        Raises as `open_part` does.
        """
        with self.open_part(upload_id, path, offset) as out:
            for chunk in chunks:
                out.write(chunk)
            return out.tell()

    @contextmanager
    def open_batch(self, upload_id: str) -> Iterator[BatchWriter]:
        """A batch of small files for an upload: `feed` it the body's bytes as they come.

        The batch is kept when the block ends, once every file named arrived with its
        hash; if the block raises, or anything is wrong, nothing of it is kept.

        Raises:
            NotFoundError: no such upload.
            InvalidArgumentError: a malformed batch, an unsafe path, or a file that
                arrived damaged (named in `details["path"]`).
            PayloadTooLargeError: more than BATCH_BYTES or BATCH_FILES.
        """
        folder = self._folder(upload_id, touch=True)
        (folder / "batches").mkdir(exist_ok=True)  # (an upload started by an older server)
        name = uuid.uuid4().hex
        writer = BatchWriter(folder / "files", folder / "batches" / f".{name}.tmp")
        try:
            yield writer
            writer.finish()
            # The bytes first, then the index: an index on disk means a batch complete.
            os.replace(writer.tmp, folder / "batches" / f"{name}.bin")
            index = folder / "batches" / f".{name}.json.tmp"
            index.write_text(json.dumps(writer.index))
            os.replace(index, folder / "batches" / f"{name}.json")
        finally:
            writer.close()
            writer.tmp.unlink(missing_ok=True)

    def write_batch(self, upload_id: str, chunks: Iterable[bytes]) -> tuple[int, int]:
        """Take a whole batch; returns (files, bytes). Raises as `open_batch` does."""
        with self.open_batch(upload_id) as batch:
            for chunk in chunks:
                batch.feed(chunk)
        return len(batch.index), batch.size

    def verified(self, upload_id: str, hashes: dict[str, str]) -> Staged:
        """The upload, holding exactly the files `hashes` names, each with the BLAKE3
        hash it was sent with.

        A file sent more than once (a part, then again in a batch) counts as the copy
        that matches its hash.

        Raises:
            NotFoundError: no such upload.
            InvalidArgumentError: nothing was sent, a file is missing or not named, or
                one arrived damaged; the upload is kept.
        """
        folder = self._folder(upload_id, touch=True)
        root = folder / "files"
        batched: dict[str, list[Member]] = {}
        for member in self._members(folder):
            batched.setdefault(member.path, []).append(member)
        parts = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
        received = set(parts) | set(batched)
        if not received:
            # What the upload holds, not how the request was put: a conflict with its state.
            raise ConflictError("Nothing was uploaded; send the files first.")
        missing = sorted(set(hashes) - received)
        extra = sorted(received - set(hashes))
        if missing or extra:
            what = f"never sent: {missing[0]!r}" if missing else f"not named: {extra[0]!r}"
            raise ConflictError(
                f"The upload does not match the files named with it ({what}); send them again."
            )
        chosen: list[Member] = []
        for rel in sorted(received):
            match = next((m for m in batched.get(rel, ()) if m.hash == hashes[rel]), None)
            if match is not None:
                chosen.append(match)
                if rel in parts:
                    parts[rel].unlink()  # superseded: the batch's copy is the one named
                continue
            digest = hash_file(parts[rel]) if rel in parts else batched[rel][-1].hash
            if digest != hashes[rel]:
                raise InvalidArgumentError(
                    f"{rel!r} arrived with hash {digest[:16]}…, not the {hashes[rel][:16]}… "
                    "it was sent with: it was damaged on the way. Upload it again.",
                    path=rel,
                )
        return Staged(root, tuple(chosen))

    def discard(self, upload_id: str) -> None:
        """Delete an upload and everything sent to it; an unknown one is already gone.

        Raises:
            NotFoundError: `upload_id` is not an upload id.
        """
        shutil.rmtree(self._folder(upload_id, must_exist=False), ignore_errors=True)

    def expire(self, *, dry_run: bool = False) -> list[str]:
        """Delete the uploads untouched for longer than `max_age_s` (`dry_run`: only
        find them); returns their ids."""
        if not dry_run:
            self._last_expiry = self.clock()
        cutoff = self.clock() - self.max_age_s
        gone: list[str] = []
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return gone
        for entry in entries:
            if not _UPLOAD_ID.match(entry.name):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    if not dry_run:
                        shutil.rmtree(entry.path, ignore_errors=True)
                    gone.append(entry.name)
            except FileNotFoundError:
                continue  # discarded meanwhile
        return sorted(gone)

    def _expire_now_and_then(self) -> None:
        # Cheap (one listing of the staging root), but no need to do it on every call.
        if self.clock() - self._last_expiry >= _EXPIRY_EVERY_S:
            self.expire()

    def _members(self, folder: Path) -> list[Member]:
        members: list[Member] = []
        for index in sorted((folder / "batches").glob("*.json")):
            batch = index.with_suffix(".bin")
            offset = 0
            for path, digest, size in json.loads(index.read_text()):
                members.append(Member(path, digest, size, batch, offset))
                offset += size
        return members

    def _folder(
        self, upload_id: str, *, create: bool = False, must_exist: bool = True, touch: bool = False
    ) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise NotFoundError(f"No upload {upload_id!r}.")
        root = self.root / upload_id
        if create:
            root.mkdir(parents=True)
        elif must_exist and not root.is_dir():
            raise NotFoundError(f"No upload {upload_id!r}; start one with POST /api/v1/uploads.")
        if touch:
            os.utime(root)  # in use: not abandoned (see `expire`)
        return root


class BatchWriter:
    """Parses a batch as its bytes come: the JSON line naming the files, then each file's
    bytes, hashed and checked as soon as they are all there."""

    def __init__(self, files_root: Path, tmp: Path) -> None:
        self.files_root = files_root
        self.tmp = tmp
        self.index: list[tuple[str, str, int]] = []
        self.size = 0  # bytes the index names
        self._out: BinaryIO | None = None
        self._head = bytearray()
        self._member = 0  # the file being received
        self._buffer = bytearray()
        self._received = 0

    def feed(self, chunk: bytes) -> None:
        if self._out is None:
            self._head += chunk
            end = self._head.find(b"\n")
            if end < 0:
                if len(self._head) > _INDEX_BYTES:
                    raise PayloadTooLargeError(
                        f"A batch's first line may hold at most {_INDEX_BYTES} bytes; "
                        "send fewer files per batch."
                    )
                return
            self._start(bytes(self._head[:end]))
            chunk, self._head = bytes(self._head[end + 1 :]), bytearray()
        self._received += len(chunk)
        if self._received > self.size:
            raise InvalidArgumentError(
                f"The batch holds more bytes than it names ({self.size}); send it again."
            )
        self._buffer += chunk
        self._drain()

    def finish(self) -> None:
        if self._out is None:
            raise InvalidArgumentError(_MALFORMED)
        if self._received < self.size:
            raise InvalidArgumentError(
                f"The batch ended after {self._received} of its {self.size} bytes; send it again."
            )
        self._drain()
        self._out.close()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()

    def _start(self, head: bytes) -> None:
        try:
            named = json.loads(head)
        except ValueError:
            raise InvalidArgumentError(_MALFORMED) from None
        index: list[tuple[str, str, int]] = []
        for item in named if isinstance(named, list) else [None]:
            if not (
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], str)
                and isinstance(item[1], str)
                and _HASH.match(item[1])
                and type(item[2]) is int
                and item[2] >= 0
            ):
                raise InvalidArgumentError(_MALFORMED)
            index.append((item[0], item[1], item[2]))
        if len(index) > BATCH_FILES or sum(n for _, _, n in index) > BATCH_BYTES:
            raise PayloadTooLargeError(
                f"A batch may carry at most {BATCH_FILES} files and {BATCH_BYTES} bytes; "
                "send more batches."
            )
        for path, _, _ in index:
            check_relative(path)  # nothing is written there: `Staged.path` joins it safely
        self.index = index
        self.size = sum(n for _, _, n in index)
        self._out = self.tmp.open("wb")

    def _drain(self) -> None:
        assert self._out is not None
        while self._member < len(self.index):
            path, digest, size = self.index[self._member]
            if len(self._buffer) < size:
                return
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            got = hash_bytes(data)
            if got != digest:
                raise InvalidArgumentError(
                    f"{path!r} arrived with hash {got[:16]}…, not the {digest[:16]}… it was "
                    "sent with: it was damaged on the way. Send the batch again.",
                    path=path,
                )
            self._out.write(data)
            self._member += 1


_MALFORMED = (
    "A batch starts with a JSON line naming its files, [[path, blake3, size], …], "
    "followed by their bytes in that order; send it so."
)
