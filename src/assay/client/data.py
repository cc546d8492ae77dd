"""`client.data`: datasets and their versions, over HTTP (the `DataAPI` contract)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.client.http import Part, _checks, parse
from assay.data.api import Progress, no_progress
from assay.serialize import load

if TYPE_CHECKING:
    from assay.data.checks import Checks
    from assay.data.entities import (
        CommitResult,
        DataDiff,
        Dataset,
        DataVersion,
        FileEntry,
        VerifyReport,
    )
    from assay.data.profiles import TableProfile
    from assay.data.validation import ValidationReport


class DataClient(Part):
    """The server's datasets: what `DataService` offers, the same verbs and entities."""

    def datasets(self, *, include_params: bool = False) -> list[Dataset]:
        """Every dataset; the runs' `params/*` datasets only with `include_params`."""
        from assay.data.entities import Dataset

        return self._list(Dataset, "/datasets", all=include_params)

    def log(self, name: str) -> list[DataVersion]:
        from assay.data.entities import DataVersion

        return self._list(DataVersion, f"/datasets/{name}/versions")

    def version(self, ref: str) -> tuple[DataVersion, list[FileEntry]]:
        """A data version and its files: (DataVersion, [FileEntry])."""
        from assay.data.entities import DataVersion, FileEntry

        doc = self._call("GET", f"/versions/{ref}")
        return parse(DataVersion, doc["version"]), parse(list[FileEntry], doc["files"])

    def resolve(self, ref: str) -> DataVersion:
        return self.version(str(ref))[0]

    def files(self, version: DataVersion) -> tuple[FileEntry, ...]:
        return tuple(self.version(version.ref)[1])

    def commit(
        self,
        name: str,
        path: Path | str,
        message: str = "",
        *,
        checks: Checks | Path | str | None = None,
        allow_invalid: bool = False,
        progress: Progress = no_progress,
    ) -> CommitResult:
        """Upload a file or folder and commit it as the dataset's next version.

        Files go up in parts of 8 MB; each file's BLAKE3 hash goes with the commit, and
        the server refuses the commit if what arrived differs. With `checks` (parsed
        `Checks`, or a checks file's path) the server validates first and, unless
        `allow_invalid`, raises ValidationFailedError (the report in `.details`) and
        makes no version. Returns a CommitResult (`.version`, `.created` False when the
        content was already the latest, `.validation` the report when checked).
        """
        from dataclasses import replace

        from assay.data.entities import CommitResult
        from assay.data.validation import ValidationReport

        body: dict[str, Any] = {"dataset": name, "message": message}
        if checks is not None:
            from assay.data.checks import dump_checks

            parsed = _checks(checks)
            body.update(checks=dump_checks(parsed), checks_source=parsed.source,
                        allow_invalid=allow_invalid)  # fmt: skip
        upload, body["files"] = self.http.upload(Path(path), progress)
        doc = self._call("POST", f"/uploads/{upload}/commit", json=body)
        found = parse(CommitResult, doc)
        if doc.get("validation") is None:
            return found
        return replace(found, validation=load(ValidationReport, doc["validation"]))

    def tag(self, ref: str, tag: str, *, force: bool = False) -> DataVersion:
        from assay.data.entities import DataVersion

        doc = self._call("POST", "/tags", json={"ref": ref, "tag": tag, "force": force})
        return parse(DataVersion, doc)

    def checkout(
        self, ref: str, dest: Path, *, force: bool = False, progress: Progress = no_progress
    ) -> DataVersion:
        """Download every file of a version into `dest` (each checked against its hash)."""
        from assay.store.paths import check_destination

        version, files = self.version(ref)
        dest = Path(dest)
        check_destination(dest, force=force)
        for i, entry in enumerate(files, start=1):
            self.download(version.ref, entry.path, dest.joinpath(*entry.path.split("/")))
            progress(i, len(files))
        return version

    def download(self, ref: str, path: str, dest: Path | str) -> Path:
        """One file of a data version, streamed to `dest` and checked against its hash."""
        return self.http.download(ref, path, dest)

    def diff(self, old_ref: str, new_ref: str, *, key: str | None = None) -> DataDiff:
        """How data version `new_ref` differs from `old_ref`: a DataDiff whose `tables` hold
        a TableDiff per changed table (rows paired by `key`, or an id-like column)."""
        from dataclasses import replace

        from assay.data.entities import DataDiff
        from assay.data.tablediff import TableDiff

        params = {"old": old_ref, "new": new_ref, **({"key": key} if key is not None else {})}
        doc = self._call("GET", "/diffs", params=params)
        found = parse(DataDiff, doc)
        return replace(found, tables=parse(dict[str, TableDiff], doc.get("tables") or {}))

    def profile(self, ref: str) -> tuple[DataVersion, dict[str, TableProfile]]:
        from assay.data.entities import DataVersion
        from assay.data.profiles import TableProfile

        doc = self._call("GET", f"/profiles/{ref}")
        return parse(DataVersion, doc["version"]), parse(dict[str, TableProfile], doc["tables"])

    def validate(
        self, ref: str, checks: Checks | Path | str
    ) -> tuple[DataVersion, ValidationReport]:
        """Check a version's tables on the server: (DataVersion, ValidationReport); the
        result is stored with the version."""
        from assay.data.checks import dump_checks
        from assay.data.entities import DataVersion
        from assay.data.validation import ValidationReport

        parsed = _checks(checks)
        doc = self._call(
            "POST",
            f"/validations/{ref}",
            json={"checks": dump_checks(parsed), "source": parsed.source},
        )
        return parse(DataVersion, doc["version"]), load(ValidationReport, doc["report"])

    def verify(self, progress: Progress = no_progress) -> VerifyReport:
        """The server re-hashes its stored objects (`progress` hears only the end)."""
        from assay.data.entities import VerifyReport

        found = parse(VerifyReport, self._call("POST", "/verify"))
        progress(1, 1)
        return found
