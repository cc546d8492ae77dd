"""What a runs workspace offers, locally (`RunService`) or over HTTP
(`assay.client.RunsClient`): one signature and one set of defaults for both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assay.runs.code import CodeVersion
    from assay.runs.entities import Run

SEARCH_LIMIT = 100
"""How many runs a search returns unless told."""
LEADERBOARD_LIMIT = 10

Series = list[tuple[str, float | None, int | None, float]]
"""A run's metric points: (key, value, step, unix time), oldest first."""


class RunsAPI(Protocol):
    """Runs: what executed, on what, with which params, and what it measured."""

    def get(self, ref: str) -> Run:
        """One run, by its id or a unique prefix of it."""
        ...

    def search(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = SEARCH_LIMIT,
        offset: int = 0,
        archived: bool = False,
    ) -> list[Run]:
        """Runs matching `filter` (the query language), ordered by `sort`."""
        ...

    def children(self, ref: str) -> list[Run]:
        """The runs recorded under run `ref` (a search's candidates)."""
        ...

    def compare(self, refs: Sequence[str]) -> list[Run]:
        """At least two runs, in the order given."""
        ...

    def leaderboard(
        self,
        experiment: str,
        metric: str,
        *,
        minimize: bool | None = None,
        limit: int = LEADERBOARD_LIMIT,
    ) -> list[Run]:
        """An experiment's best runs by `metric` (its direction guessed from its name
        unless `minimize` says)."""
        ...

    def experiments(self) -> list[tuple[str, int]]:
        """Every experiment and how many runs it holds."""
        ...

    def logs(self, ref: str) -> str:
        """What the run printed."""
        ...

    def series(self, ref: str, key: str | None = None) -> Series:
        """The run's metric points (of `key` only, if given)."""
        ...

    def artifacts(self, ref: str) -> list[tuple[str, str, int]]:
        """The files stored with the run: (path, content hash, size)."""
        ...

    def code_of(self, ref: str) -> CodeVersion:
        """The code version the run executed."""
        ...

    def code_files(self, version: CodeVersion) -> dict[str, bytes]:
        """A code version's files."""
        ...

    def archive(self, refs: Sequence[str], *, restore: bool = False) -> list[str]:
        """Take runs out of listings (kept whole), or put them back; their full ids."""
        ...

    def archive_experiment(self, name: str, *, restore: bool = False) -> int:
        """Archive (or restore) an experiment; how many runs it holds."""
        ...
