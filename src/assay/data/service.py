"""The data repository's use cases: commit, log, show, checkout, diff, tag, profile, validate.

`DataService` is assembled from its parts: committing (`assay.data.committing`),
inspecting versions (`assay.data.inspection`), and reading, checking out, tagging and
deleting here; what they share is `assay.data.base`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from assay.data import manifest
from assay.data.entities import (
    PARAMS_PREFIX,
    Dataset,
    DataVersion,
    FileEntry,
    Ref,
    check_tag,
)
from assay.data.repository import (
    DataRepository,
    to_version,
)
from assay.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
)
from assay.store.packs import PACKABLE
from assay.store.paths import check_destination, not_a_folder

if TYPE_CHECKING:
    pass
from assay.data.api import Progress, no_progress
from assay.data.committing import Collected, DataCommitting
from assay.data.inspection import DataInspection

__all__ = ["Collected", "DataService", "Progress"]


class DataService(DataCommitting, DataInspection):
    """Versioned datasets over a metadata database and a content-addressed object store."""

    # ---- reading ------------------------------------------------------------------------

    def datasets(self, *, include_params: bool = False) -> list[Dataset]:
        """Every dataset, by name; the runs' `params/*` datasets only with `include_params`."""
        with self.db.read() as s:
            found = DataRepository(s).datasets()
        if include_params:
            return found
        return [d for d in found if not d.name.startswith(PARAMS_PREFIX)]

    def log(self, name: str) -> list[DataVersion]:
        """Every version of `name`, newest first."""
        with self.db.read() as s:
            repo = DataRepository(s)
            ds = self._dataset(repo, name)
            tags = repo.tags_by_number(ds.id)
            return [to_version(name, r, tags.get(r.number)) for r in repo.version_rows(ds.id)]

    def stream_file(
        self, version: DataVersion, path: str, chunk: int = 1 << 20
    ) -> tuple[FileEntry, Iterator[bytes]]:
        """One file of a version, as chunks (large files are never held whole).

        Raises:
            NotFoundError: the version has no such file (only listed paths are reachable).
        """
        for entry in self.files(version):
            if entry.path == path:
                if entry.size <= PACKABLE:  # small files may live inside a pack
                    return entry, iter([self.blobs.read(entry.hash)])
                return entry, self.store.iter_bytes(entry.hash, chunk)
        raise NotFoundError(
            f"{version.ref} has no file {path!r}. List them with `assay data show`.", path=path
        )

    def read_file(self, version: DataVersion, path: str) -> bytes:
        """The bytes of one file of a version, verified against its hash."""
        for entry in self.files(version):
            if entry.path == path:
                return self.blobs.read(entry.hash)
        raise NotFoundError(
            f"{version.ref} has no file {path!r}. List them with `assay data show`."
        )

    def checkout(
        self, ref: str, dest: Path, *, force: bool = False, progress: Progress = no_progress
    ) -> DataVersion:
        """Restore a version into folder `dest`, byte for byte.

        The tree is built beside `dest` and moved into place at the end, so an
        interrupted checkout leaves `dest` as it was.

        Raises:
            ConflictError: `dest` exists and is not an empty folder, and `force` is not set.
        """
        version = self.resolve(ref)
        dest = Path(dest)
        check_destination(dest, force=force)
        files = self.files(version)
        staging = dest.parent / f".{dest.name}.assay-{uuid.uuid4().hex[:8]}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
            targets = [(f.hash, staging.joinpath(*f.path.split("/"))) for f in files]
            for done, _ in enumerate(self.blobs.copy_many(targets), start=1):
                if done % 256 == 0 or done == len(targets):
                    progress(done, len(targets))
            if dest.exists():
                old = dest.parent / f".{dest.name}.assay-old-{uuid.uuid4().hex[:8]}"
                os.replace(dest, old)
                os.replace(staging, dest)
                _remove(old)
            else:
                os.replace(staging, dest)
        except (FileExistsError, NotADirectoryError):
            raise not_a_folder(dest) from None
        except PermissionError:
            raise InvalidArgumentError(
                f"Cannot write {dest}: permission denied. Check the folder's permissions."
            ) from None
        except OSError as exc:
            raise StorageError(f"Cannot write {dest}: {exc.strerror or exc}.") from exc
        finally:
            with contextlib.suppress(OSError):
                if staging.exists():
                    _remove(staging)
        return version

    def tag(self, ref: str, tag: str, *, force: bool = False) -> DataVersion:
        """Name a version: `name@TAG` then resolves to it.

        Raises:
            ConflictError: the tag is on another version and `force` is not set.
        """
        check_tag(tag)
        version = self.resolve(ref)
        with self.db.session() as s:
            repo = DataRepository(s)
            ds = self._dataset(repo, version.dataset)
            current = repo.tag_number(ds.id, tag)
            if current is not None and current != version.number and not force:
                raise ConflictError(
                    f"Tag {tag!r} already points at {version.dataset}@{current}; "
                    "use --force to move it.",
                    tag=tag,
                )
            repo.set_tag(ds.id, tag, version.number)
        return self.resolve(Ref(version.dataset, str(version.number)))

    def delete_version(self, ref: str) -> tuple[DataVersion, list[str]]:
        """Delete one version: its row, its validations and the tags on it; its number
        is never given out again, and its files go at the next `assay gc` unless other
        versions hold them. Checking what depends on it is the caller's (`Lifecycle`).

        Returns the version and the tags that pointed at it.

        Raises:
            NotFoundError: no such version.
        """
        version = self.resolve(ref)
        with self.db.session() as s:
            repo = DataRepository(s)
            ds = self._dataset(repo, version.dataset)
            tags = repo.delete_version(ds.id, version.number, self.author)
        return version, tags

    def live_objects(self, conn: Connection, read: Callable[[str], bytes]) -> Iterator[str]:
        """Every object a data version refers to: its manifest and its files."""
        for digest in DataRepository(conn).manifests():
            yield digest
            for entry in manifest.decode(read(digest)):
                yield entry.hash


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
