"""What a data workspace offers, locally (`DataService`) or over HTTP
(`assay.client.DataClient`): one signature for both, so that neither can drop an option
the other takes (mypy checks both against `DataAPI`, in `assay.api`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

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

Progress = Callable[[int, int], None]
"""Called with (files done, files in all) as a commit or a checkout proceeds."""


def no_progress(done: int, total: int) -> None:
    return None


class DataAPI(Protocol):
    """Datasets and their immutable, content-addressed versions."""

    def datasets(self, *, include_params: bool = False) -> list[Dataset]:
        """Every dataset; the runs' `params/*` datasets only with `include_params`."""
        ...

    def log(self, name: str) -> list[DataVersion]:
        """Every version of dataset `name`, newest first."""
        ...

    def resolve(self, ref: str) -> DataVersion:
        """The version `ref` (`name@3`, `name@latest`, `name@tag`) names."""
        ...

    def files(self, version: DataVersion) -> tuple[FileEntry, ...]:
        """A version's files: path, content hash and size."""
        ...

    def commit(
        self,
        name: str,
        path: Path,
        message: str = "",
        *,
        checks: Checks | None = None,
        allow_invalid: bool = False,
        progress: Progress = no_progress,
    ) -> CommitResult:
        """Commit a file or folder as the dataset's next version (none when the content
        is the latest's); with `checks`, validated first."""
        ...

    def tag(self, ref: str, tag: str, *, force: bool = False) -> DataVersion:
        """Name a version; `force` moves a tag that names another."""
        ...

    def checkout(
        self, ref: str, dest: Path, *, force: bool = False, progress: Progress = no_progress
    ) -> DataVersion:
        """Write a version's files into `dest`, each checked against its hash."""
        ...

    def diff(self, old_ref: str, new_ref: str, *, key: str | None = None) -> DataDiff:
        """How `new_ref` differs from `old_ref`; table rows paired by `key`."""
        ...

    def profile(self, ref: str) -> tuple[DataVersion, dict[str, TableProfile]]:
        """The version and a profile of each of its tables."""
        ...

    def validate(self, ref: str, checks: Checks) -> tuple[DataVersion, ValidationReport]:
        """Check a version's tables; the report is stored with the version."""
        ...

    def verify(self, progress: Progress = no_progress) -> VerifyReport:
        """Re-hash every stored object and report what is missing or damaged."""
        ...
