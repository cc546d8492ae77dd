"""Committing: a folder, staged uploads or bytes become the next version of a dataset."""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from assay.data import manifest
from assay.data.entities import (
    CommitResult,
    DataVersion,
    FileEntry,
    Ref,
    check_name,
)
from assay.data.repository import (
    DataRepository,
    to_version,
)
from assay.data.scanning import Scanned, scan, unreadable
from assay.data.statcache import Signature
from assay.data.uploads import Member, Staged
from assay.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    ValidationFailedError,
)
from assay.serialize import dump
from assay.store.db import utcnow
from assay.store.objects import hash_bytes
from assay.store.packs import PACKABLE, Blobs, PackWriter
from assay.store.paths import kind_of
from assay.store.retry import retrying

if TYPE_CHECKING:
    from assay.data.checks import Checks
    from assay.data.validation import ValidationReport
from assay.data.api import Progress, no_progress
from assay.data.base import DataBase

# Files read in memory per round while packing small files.
_PACK_ROUND = 4096


class Collected(StorageError):
    """Objects a commit found stored when it began were collected by `assay gc` before
    its version was made; the commit stores them again and retries."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            f"{len(missing)} object(s) were collected while this commit ran; commit again.",
            objects=missing[:10],
        )
        self.missing = missing


class DataCommitting(DataBase):
    """The committing part of `DataService`."""

    # ---- commit -------------------------------------------------------------------------

    def commit(
        self,
        name: str,
        path: Path,
        message: str = "",
        *,
        checks: Checks | None = None,
        allow_invalid: bool = False,
        reuse: bool = False,
        progress: Progress = no_progress,
    ) -> CommitResult:
        """Make `path` (a file or a folder) the next version of dataset `name`.

        Unchanged files are not re-hashed (stat cache) and not re-stored (content
        addressing). With `reuse`, content equal to ANY earlier version (not only the
        latest) returns that version instead of making a new one (params files).
        `checks` run whether or not a new version is made; on content that is already a
        version, their result is stored with that version.

        The version appears in one transaction after every object is stored, so a
        commit killed at any point leaves no partial version.

        Raises:
            NotFoundError: `path` does not exist.
            InvalidArgumentError: a bad name, or an empty folder.
            ValidationFailedError: `checks` failed and `allow_invalid` is not set, whether
                the content is new or already a version (then nothing is recorded).
            StorageError: the store could not be written (disk full, …); nothing was committed.
        """
        check_name(name)
        path = Path(path)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise NotFoundError(
                f"Path {str(path)!r} does not exist. Check the path and retry."
            ) from None
        except OSError as exc:
            raise unreadable(path, exc) from None
        if not (stat_mod.S_ISREG(mode) or stat_mod.S_ISDIR(mode)):
            raise InvalidArgumentError(
                f"{path} is {kind_of(mode)}, not a file or a folder: it has no content to "
                "commit. Give a file or a folder."
            )
        root = path.resolve()
        scanned = scan(root)
        if not scanned:
            raise InvalidArgumentError(f"{path} holds no files; there is nothing to commit.")

        for attempt in range(3):
            # The stat cache says which files are stored already; after a collection
            # took some of them mid-commit (Collected), every file is stored again.
            cached = self.cache.load(root) if attempt == 0 else {}
            entries: list[FileEntry | None] = [None] * len(scanned)
            todo: list[int] = []
            for i, item in enumerate(scanned):
                hit = cached.get(item.abspath)
                if hit is not None and hit[0] == item.sig:
                    entries[i] = FileEntry(item.rel, hit[1], item.sig[0])
                else:
                    todo.append(i)
            n_cached = len(scanned) - len(todo)
            progress(n_cached, len(scanned))
            packer = PackWriter(self.store)
            stored_bytes = 0
            fresh: list[tuple[str, Signature, str]] = []
            for i, entry in self._ingest(scanned, todo, packer, progress, n_cached):
                entries[i] = entry
                stored_bytes += entry.size
                fresh.append((scanned[i].abspath, scanned[i].sig, entry.hash))
            files = [e for e in entries if e is not None]
            try:
                found = self._record(
                    name, files, packer, message,
                    checks=checks, allow_invalid=allow_invalid, reuse=reuse,
                )  # fmt: skip
            except Collected as exc:
                if attempt == 2:
                    raise
                self.blobs.forget(exc.missing)
                continue
            self.cache.save(fresh)
            if not found.created:
                return CommitResult(found.version, False, len(todo), n_cached, 0, found.validation)
            return CommitResult(
                found.version, True, len(todo), n_cached, stored_bytes, found.validation
            )
        raise AssertionError("unreachable")

    def commit_staged(
        self,
        name: str,
        staged: Staged,
        message: str = "",
        *,
        checks: Checks | None = None,
        allow_invalid: bool = False,
    ) -> CommitResult:
        """Commit an upload (checked by `UploadService.verified`) as the next version of
        `name`, as committing its files from a folder would.

        The files that came in batches were hashed on arrival: their bytes go straight
        into packs, read once per batch, with no file of their own on the way.

        Raises:
            InvalidArgumentError: a bad name.
            ValidationFailedError: `checks` failed and `allow_invalid` is not set, whether
                the content is new or already a version.
            StorageError: the store could not be written; nothing was committed.
        """
        check_name(name)
        for attempt in range(3):
            try:
                return self._commit_staged(name, staged, message, checks, allow_invalid)
            except Collected as exc:
                if attempt == 2:
                    raise
                self.blobs.forget(exc.missing)
        raise AssertionError("unreachable")

    def _commit_staged(
        self,
        name: str,
        staged: Staged,
        message: str,
        checks: Checks | None,
        allow_invalid: bool,
    ) -> CommitResult:
        scanned = scan(staged.root) if staged.root.is_dir() else []
        packer = PackWriter(self.store)
        files = [e for _, e in self._ingest(scanned, list(range(len(scanned))), packer)]
        by_batch: dict[Path, list[Member]] = {}
        for member in staged.members:
            by_batch.setdefault(member.batch, []).append(member)
        # What a pack holds already (from an earlier version, or a part packed above)
        # is not packed again.
        seen = set(self.blobs.locate(m.hash for m in staged.members)) | set(packer.locations())
        for batch, members in by_batch.items():
            data = batch.read_bytes()
            for m in members:
                files.append(FileEntry(m.path, m.hash, m.size))
                if m.hash not in seen:
                    seen.add(m.hash)
                    packer.add(m.hash, data[m.offset : m.offset + m.size])
        packer.flush()
        files.sort(key=lambda e: e.path)
        found = self._record(
            name, files, packer, message, checks=checks, allow_invalid=allow_invalid
        )
        n = len(files)
        if not found.created:
            return CommitResult(found.version, False, n, 0, 0, found.validation)
        stored = sum(f.size for f in files)
        return CommitResult(found.version, True, n, 0, stored, found.validation)

    def _ingest(
        self,
        scanned: list[Scanned],
        todo: list[int],
        packer: PackWriter,
        progress: Progress = no_progress,
        done: int = 0,
    ) -> Iterator[tuple[int, FileEntry]]:
        """Hash and store the files `todo` (indexes into `scanned`); yields (index, entry).

        Large files go to threads (hashing and copying them runs outside the GIL).
        Small ones are read here and packed: ten thousand tiny objects would cost ten
        thousand file creations (or PUTs), and thread hand-offs, per commit. The packer
        is flushed before the last file is yielded.
        """
        large = [i for i in todo if scanned[i].sig[0] >= PACKABLE]
        small = [i for i in todo if scanned[i].sig[0] < PACKABLE]
        total = len(scanned)  # `done` of them need no work (the stat cache knew them)

        def step() -> None:
            nonlocal done
            done += 1
            if done % 256 == 0 or done == total:
                progress(done, total)

        with ThreadPoolExecutor(max(1, min(self.workers, len(large)))) as pool:
            futures = [(i, pool.submit(self._store_large, scanned[i])) for i in large]
            for start in range(0, len(small), _PACK_ROUND):
                for i, entry in self._pack_small(
                    [(i, scanned[i]) for i in small[start : start + _PACK_ROUND]], packer
                ):
                    step()
                    yield i, entry
            packer.flush()
            for i, future in futures:
                entry = future.result()
                step()
                yield i, entry

    def _record(
        self,
        name: str,
        files: list[FileEntry],
        packer: PackWriter,
        message: str,
        *,
        checks: Checks | None,
        allow_invalid: bool,
        reuse: bool = False,
    ) -> CommitResult:
        """Make `files` (stored, the small ones in `packer`'s packs) the next version of
        `name`, unless it is the latest already (or, with `reuse`, any earlier one).
        `checks` run either way: the gate holds for content that is already a version.

        Returns the version, whether it was made, and the validation (counts are the
        caller's to fill).
        """
        data = manifest.encode(files)
        digest = hash_bytes(data)
        existing = self._holding(name, digest, reuse)
        if existing is not None:
            report = None
            if checks is not None:
                # A CI job that commits bad data twice must fail twice.
                report = self._check(checks, files)
                if not report.passed and not allow_invalid:
                    raise ValidationFailedError(
                        f"{name}: {len(report.failures)} check(s) failed; {existing.ref} "
                        "already holds this content. See the report, fix the data, or "
                        "commit with --allow-invalid.",
                        report=dump(report),
                    )
                existing = self._record_validation(existing, checks, report)
            return CommitResult(existing, False, 0, 0, 0, report)

        # Tables are profiled when first looked at (profile, diff, the dashboard), not
        # here: a commit stores bytes, whatever they hold, at the speed of storing them.
        report = None
        if checks is not None:
            # The new small files sit in packs this transaction has not indexed yet.
            self._unindexed = packer.locations()
            try:
                report = self._check(checks, files)
            finally:
                self._unindexed = {}
        if report is not None and not report.passed and not allow_invalid:
            raise ValidationFailedError(
                f"{name}: {len(report.failures)} check(s) failed; nothing was committed. "
                "See the report, fix the data, or commit with --allow-invalid.",
                report=dump(report),
            )
        self.store.put_bytes(data, digest)
        version = self._insert_version(name, digest, message, files, report, checks, packer)
        return CommitResult(version, True, 0, 0, 0, report)

    def _holding(self, name: str, digest: str, reuse: bool) -> DataVersion | None:
        """The version of `name` whose tree is `digest`: the latest, or with `reuse` any."""
        with self.db.read() as s:
            repo = DataRepository(s)
            ds = repo.dataset_row(name)
            latest = repo.latest_number(ds.id) if ds else None
            if ds is None or latest is None:
                return None
            head = repo.version_row(ds.id, latest)
            if head is not None and head.manifest != digest and reuse:
                head = repo.version_with_manifest(ds.id, digest) or head
            if head is None or head.manifest != digest:
                return None
            return to_version(name, head, repo.tags_by_number(ds.id).get(head.number))

    def _record_validation(
        self, version: DataVersion, checks: Checks, report: ValidationReport
    ) -> DataVersion:
        """Store a validation's result with the version it checked; the version, updated."""
        with self.db.session() as s:
            repo = DataRepository(s)
            ds = self._dataset(repo, version.dataset)
            row = self._version_row(repo, ds, Ref(version.dataset, str(version.number)))
            repo.add_validation(row.id, _checks_digest(checks), report.passed, dump(report))
            repo.set_validation(row.id, _status(report))
        return self.resolve(Ref(version.dataset, str(version.number)))

    def commit_bytes_in(
        self,
        conn: Connection,
        name: str,
        filename: str,
        data: bytes,
        message: str = "",
        *,
        reuse: bool = False,
    ) -> CommitResult:
        """Commit one in-memory file as the next version of `name`, in the caller's transaction.

        The same as committing a folder holding just that file (params files: one per
        run). With `reuse`, content equal to any earlier version returns that version.
        A lost race for the version number raises IntegrityError: the caller retries.
        """
        check_name(name)
        entry = FileEntry(filename, hash_bytes(data), len(data))
        encoded = manifest.encode([entry])
        digest = hash_bytes(encoded)
        repo = DataRepository(conn)
        if reuse:
            ds_id, head = repo.named_with_manifest(name, digest)
        else:
            ds = repo.dataset_row(name)
            ds_id = ds.id if ds is not None else None
            head = repo.head_row(ds_id) if ds_id is not None else None
        if head is not None and head.manifest == digest:
            return CommitResult(to_version(name, head), False, 1, 0, 0)
        # The store's lock first (`assay gc` waits, or has finished): then the objects,
        # written or freshened now, are there when the version names them.
        self.db.store_lock(conn, exclusive=False)
        self.store.put_bytes(data, entry.hash)
        self.store.put_bytes(encoded, digest)
        if ds_id is None:
            ds_id = repo.get_or_create_dataset(name).id
        latest, number = repo.newest_and_next(ds_id)
        values: dict[str, Any] = {
            "dataset_id": ds_id,
            "number": number,
            "manifest": digest,
            "message": message,
            "author": self.author,
            "created_at": utcnow(),
            "parent": latest,
            "file_count": 1,
            "total_bytes": len(data),
            "validation": None,
        }
        repo.add_version(values)
        version = DataVersion(
            dataset=name,
            number=values["number"],
            manifest=digest,
            message=message,
            author=self.author,
            created_at=values["created_at"],
            parent=latest,
            file_count=1,
            total_bytes=len(data),
        )
        return CommitResult(version, True, 1, 0, len(data))

    def _pack_small(
        self, items: list[tuple[int, Scanned]], packer: PackWriter
    ) -> list[tuple[int, FileEntry]]:
        """Read and hash small files; pack the ones no pack holds yet."""
        read: list[tuple[int, FileEntry, bytes]] = []
        for i, item in items:
            # Read whole in one call; the entry keeps the stat taken before the read,
            # so a file that changes now is re-hashed by the next commit, never trusted.
            try:
                with open(item.abspath, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError as exc:
                raise ConflictError(
                    f"{item.abspath} disappeared during the commit. Retry."
                ) from exc
            except OSError as exc:
                raise unreadable(Path(item.abspath), exc) from exc
            read.append((i, FileEntry(item.rel, hash_bytes(data), len(data)), data))
        known = self.blobs.locate(e.hash for _, e, _ in read)
        seen: set[str] = set()
        for _, entry, data in read:
            if entry.hash not in known and entry.hash not in seen:
                seen.add(entry.hash)
                packer.add(entry.hash, data)
        return [(i, entry) for i, entry, _ in read]

    def _store_large(self, item: Scanned) -> FileEntry:
        try:
            digest, size = self.store.ingest_file(Path(item.abspath))
        except (OSError, StorageError) as exc:
            # The store names what failed as it stored; a source that is gone or closed
            # to us is the user's file, not the store.
            cause = exc if isinstance(exc, OSError) else exc.__cause__
            if not os.path.lexists(item.abspath):
                raise ConflictError(
                    f"{item.abspath} disappeared during the commit. Retry."
                ) from exc
            if isinstance(cause, PermissionError) and cause.filename == item.abspath:
                raise unreadable(Path(item.abspath), cause) from exc
            raise
        if size != item.sig[0]:
            raise ConflictError(f"{item.abspath} changed while it was being committed. Retry.")
        return FileEntry(item.rel, digest, size)

    def _insert_version(
        self,
        name: str,
        digest: str,
        message: str,
        files: list[FileEntry],
        report: ValidationReport | None,
        checks: Checks | None,
        packer: PackWriter,
    ) -> DataVersion:
        # Two writers may race for the same number; the unique constraint picks one
        # and the other simply takes the next number.
        needed = self._objects_of(digest, files, packer)

        def attempt() -> DataVersion:
            with self.db.session() as s:
                # Under the store's lock (shared; `assay gc` takes it exclusive), make
                # sure every object the version names is there: one found at the start
                # of the commit may have been collected since.
                self.db.store_lock(s, exclusive=False)
                missing = [d for d in needed if not self.store.has(d)]
                if missing:
                    raise Collected(missing)
                repo = DataRepository(s)
                ds = repo.get_or_create_dataset(name)
                latest = repo.latest_number(ds.id)
                row = repo.insert_version(
                    dataset_id=ds.id,
                    number=repo.next_number(ds.id),
                    manifest=digest,
                    message=message,
                    author=self.author,
                    created_at=utcnow(),
                    parent=latest,
                    file_count=len(files),
                    total_bytes=sum(f.size for f in files),
                    validation=None if report is None else _status(report),
                )
                Blobs.index(s, packer.written)
                if report is not None and checks is not None:
                    repo.add_validation(row.id, _checks_digest(checks), report.passed, dump(report))
                return to_version(name, row)

        return retrying(attempt, f"Too many concurrent commits to {name!r}; retry.")

    def _objects_of(self, digest: str, files: list[FileEntry], packer: PackWriter) -> list[str]:
        """The stored objects a version of `files` names: its manifest, the packs holding
        its small files, its large files."""
        fresh = packer.locations()
        objects = {digest, *(fresh[f.hash][0] for f in files if f.hash in fresh)}
        objects |= self.blobs.holders(f.hash for f in files if f.hash not in fresh)
        return sorted(objects)


def _checks_digest(checks: Checks) -> str:
    """Content hash of the parsed checks: the same rules hash the same, however written."""
    import dataclasses
    import json

    canonical = json.dumps(dataclasses.asdict(checks), sort_keys=True, default=str)
    return hash_bytes(canonical.encode())


def _status(report: ValidationReport) -> str:
    return "passed" if report.passed else "failed"
