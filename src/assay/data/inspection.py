"""Looking into versions: row-level diffs, profiles, validation, and verifying the store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from assay.data import manifest
from assay.data.entities import (
    DataDiff,
    DataVersion,
    FileChange,
    VerifyReport,
    is_tabular_path,
)
from assay.data.repository import (
    DataRepository,
)
from assay.errors import (
    InvalidArgumentError,
)
from assay.serialize import dump, load

if TYPE_CHECKING:
    from assay.data.checks import Checks
    from assay.data.profiles import TableProfile
    from assay.data.validation import ValidationReport
from assay.data.api import Progress, no_progress
from assay.data.base import DataBase


class DataInspection(DataBase):
    """The inspecting part of `DataService`."""

    # ---- diff, profile, validate --------------------------------------------------------

    def diff(self, old_ref: str, new_ref: str, *, key: str | None = None) -> DataDiff:
        """Files added, removed and changed; for changed tables, rows (added, removed,
        changed, by `key` or a unique id-like column when there is one), columns and
        statistics. A changed table that cannot be read is named in `unreadable`.

        Raises:
            NotFoundError: no such version.
            InvalidArgumentError: `key` is a column of no changed table, or is not a key
                (empty or repeated values) in one that has it.
        """
        from assay.data.tablediff import diff_tables

        old, new = self.resolve(old_ref), self.resolve(new_ref)
        a = {f.path: f for f in self.files(old)}
        b = {f.path: f for f in self.files(new)}
        changed = tuple(
            FileChange(p, a[p].hash, b[p].hash, a[p].size, b[p].size)
            for p in sorted(a.keys() & b.keys())
            if a[p].hash != b[p].hash
        )
        tables: dict[str, Any] = {}
        unreadable: dict[str, str] = {}
        keyed = False
        for ch in changed:
            if not is_tabular_path(ch.path):
                continue
            before, after = self._profile(ch.path, ch.old_hash), self._profile(ch.path, ch.new_hash)
            problem = before.error or after.error
            if problem is not None:
                unreadable[ch.path] = problem
                continue
            # A key applies to the tables that have the column; the others pair rows
            # by their values.
            has_key = key is not None and all(p.column(key) for p in (before, after))
            keyed = keyed or has_key
            tables[ch.path] = diff_tables(
                self._table(ch.path, ch.old_hash),
                self._table(ch.path, ch.new_hash),
                before,
                after,
                key=key if has_key else None,
            )
        if key is not None and tables and not keyed:
            raise InvalidArgumentError(
                f"No changed table has a column {key!r} in both versions to match rows by. "
                "See the columns with `assay data profile`.",
                key=key,
            )
        return DataDiff(
            old=old.ref,
            new=new.ref,
            added=tuple(b[p] for p in sorted(b.keys() - a.keys())),
            removed=tuple(a[p] for p in sorted(a.keys() - b.keys())),
            changed=changed,
            tables=tables,
            unreadable=unreadable,
        )

    def profile(
        self, ref: str, *, limit: int | None = None
    ) -> tuple[DataVersion, dict[str, TableProfile]]:
        """The profile of every tabular file in a version (the first `limit` by path).

        A table is profiled the first time it is asked for and the profile kept by
        content hash. A file that cannot be read as a table has a profile that says why.

        Raises:
            InvalidArgumentError: the version holds no tabular file.
        """
        version = self.resolve(ref)
        tables = [f for f in self.files(version) if is_tabular_path(f.path)]
        if not tables:
            raise InvalidArgumentError(
                f"{version.ref} holds no tabular files (CSV, TSV or Parquet) to profile."
            )
        return version, {f.path: self._profile(f.path, f.hash) for f in tables[:limit]}

    def validate(self, ref: str, checks: Checks) -> tuple[DataVersion, ValidationReport]:
        """Run `checks` on a version's tables; the result is stored with the version."""
        version = self.resolve(ref)
        report = self._check(checks, list(self.files(version)))
        return self._record_validation(version, checks, report), report

    def verify(self, progress: Progress = no_progress) -> VerifyReport:
        """Re-hash every stored object and every packed member; find what versions lack."""
        digests = list(self.store.iter_digests())
        corrupt: list[str] = []
        done = 0
        with ThreadPoolExecutor(self.workers) as pool:
            for digest, ok in zip(digests, pool.map(self.store.verify, digests), strict=True):
                if not ok:
                    corrupt.append(digest)
                done += 1
                progress(done, len(digests))
        present = set(digests) - set(corrupt)
        packs = self.blobs.pack_members()
        damaged = set(corrupt)
        for pack, members in packs.items():
            if pack in present:
                damaged.update(self.blobs.verify_pack(pack, members))
        packed = {h: pack for pack, members in packs.items() for h, _, _ in members}
        missing: list[tuple[str, str]] = []
        with self.db.read() as s:
            versions = DataRepository(s).all_version_rows()
        for name, row in versions:
            where = f"{name}@{row.number}"
            if row.manifest not in present:
                if row.manifest not in damaged:
                    missing.append((row.manifest, f"{where} (manifest)"))
                continue
            for f in manifest.decode(self.store.get_bytes(row.manifest)):
                holder = packed.get(f.hash, f.hash)
                if holder not in present and holder not in damaged:
                    missing.append((f.hash, f"{where}:{f.path}"))
                elif holder in damaged and holder != f.hash:
                    damaged.add(f.hash)
        return VerifyReport(len(digests), tuple(sorted(damaged)), tuple(missing))

    def _profile(self, path: str, digest: str) -> TableProfile:
        """The stored profile of a table's content, made (and stored) if there is none
        or it is of an older format."""
        from assay.data.profiles import PROFILE_FORMAT, TableProfile

        with self.db.read() as s:
            stored = DataRepository(s).profile(digest)
        if stored is not None and stored.get("format") == PROFILE_FORMAT:
            return load(TableProfile, stored)
        from assay.data.reading import UnreadableTableError, load_table  # pandas: only now
        from assay.data.tabular import profile_table

        try:
            table = load_table(self.blobs.read(digest, self._unindexed), path)
        except UnreadableTableError as exc:
            prof = TableProfile.unreadable(exc.reason)
        else:
            prof = profile_table(
                table.frame,
                delimiter=table.delimiter,
                encoding=table.encoding,
                warnings=table.warnings,
            )
        try:
            with self.db.session() as s:
                DataRepository(s).put_profile(digest, dump(prof))
        except IntegrityError:
            pass  # another reader stored the same content's profile first
        return prof
