"""What every part of the data service shares: its stores, finding a version, checking
tables (`DataService` is `DataCommitting` + `DataInspection` + reading and checking out).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.data import manifest
from assay.data.entities import (
    DataVersion,
    FileEntry,
    Ref,
    check_name,
    is_tabular_path,
)
from assay.data.repository import (
    DataRepository,
    DatasetRow,
    DataVersionRow,
    to_version,
)
from assay.data.statcache import StatCache
from assay.errors import (
    InvalidArgumentError,
    NotFoundError,
)
from assay.store import versioned
from assay.store.acting import author_or
from assay.store.db import Database
from assay.store.objects import ObjectStore
from assay.store.packs import Blobs

if TYPE_CHECKING:
    import pandas as pd

    from assay.data.checks import Checks
    from assay.data.validation import ValidationReport


class DataBase:
    """The stores of the data service, and what each of its parts reads."""

    def __init__(
        self, db: Database, store: ObjectStore, *, author: str, cache_dir: Path, workers: int = 0
    ) -> None:
        self.db = db
        self.store = store
        self.blobs = Blobs(db, store)
        self._unindexed: dict[str, Any] = {}
        self._author = author
        self.cache = StatCache(cache_dir, store.url)
        self.workers = workers or min(32, (os.cpu_count() or 1) * 4)

    @property
    def author(self) -> str:
        """Whom what this records names: the caller a server acts for, else the default."""
        return author_or(self._author)

    def resolve(self, ref: str | Ref) -> DataVersion:
        """`name@3`, `name@latest`, `name@TAG` (or just `name`) to a version.

        Raises:
            NotFoundError: no such dataset, version or tag.
        """
        ref = Ref.parse(ref) if isinstance(ref, str) else ref
        with self.db.read() as s:
            repo = DataRepository(s)
            ds = self._dataset(repo, ref.name)
            row = self._version_row(repo, ds, ref)
            return to_version(ref.name, row, repo.tags_by_number(ds.id).get(row.number))

    def files(self, version: DataVersion) -> tuple[FileEntry, ...]:
        return manifest.decode(self.store.get_bytes(version.manifest))

    def _dataset(self, repo: DataRepository, name: str) -> DatasetRow:
        ds = repo.dataset_row(check_name(name))
        if ds is None:
            raise NotFoundError(
                f"No dataset named {name!r}. List datasets with `assay data list`.", dataset=name
            )
        return ds

    def _version_row(self, repo: DataRepository, ds: DatasetRow, ref: Ref) -> DataVersionRow:
        number = ref.number
        if ref.selector == "latest":
            number = repo.latest_number(ds.id)
        elif number is None:
            number = repo.tag_number(ds.id, ref.selector)
            if number is None:
                raise NotFoundError(
                    f"Dataset {ref.name!r} has no tag {ref.selector!r}. "
                    f"See its versions with `assay data log {ref.name}`.",
                    dataset=ref.name,
                    tag=ref.selector,
                )
        row = repo.version_row(ds.id, number) if number is not None else None
        if row is None:
            gone = versioned.retired(repo.conn, "data", ds.id, number) if number else None
            if gone is not None:
                raise NotFoundError(
                    f"{ref.name}@{number} was deleted on {gone[0]:%Y-%m-%d %H:%M} by "
                    f"{gone[1]}. See the versions left with `assay data log {ref.name}`.",
                    dataset=ref.name,
                    version=number,
                )
            raise NotFoundError(
                f"Dataset {ref.name!r} has no version {ref.selector}. "
                f"See its versions with `assay data log {ref.name}`.",
                dataset=ref.name,
                version=ref.selector,
            )
        return row

    def _check(self, checks: Checks, files: list[FileEntry]) -> ValidationReport:
        from assay.data.validation import ValidationReport, validate_table

        targets = [f for f in files if is_tabular_path(f.path) and checks.matches(f.path)]
        if not targets:
            raise InvalidArgumentError(
                "The checks apply to no file in this version (no tabular file matches "
                f"{', '.join(checks.files) or 'any tabular file'})."
            )
        from assay.data.reading import UnreadableTableError
        from assay.data.validation import CheckResult

        results: list[Any] = []
        for f in targets:
            try:
                table = self._table(f.path, f.hash)
            except UnreadableTableError as exc:
                # The checks name this file; that it is no table is its one failure.
                message = f"Cannot read it as a table: {exc.reason}."
                results.append(CheckResult(f.path, None, "readable", False, 1, message))
                continue
            results.extend(validate_table(table, checks, f.path))
        return ValidationReport(passed=all(r.passed for r in results), results=tuple(results))

    def _table(self, path: str, digest: str) -> pd.DataFrame:
        from assay.data.reading import read_table

        return read_table(self.blobs.read(digest, self._unindexed), path)

    if TYPE_CHECKING:  # defined where versions are committed (`DataCommitting`)

        def _record_validation(
            self, version: DataVersion, checks: Checks, report: ValidationReport
        ) -> DataVersion: ...
