"""What an A/B tests workspace offers, locally (`ABTestService`) or over HTTP
(`assay.client.ABTestsClient`): one signature and one set of defaults for both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from assay.serving.api import (
    HOST,
    LOG_LINES,
    LOG_SAMPLE,
    MAX_BODY_BYTES,
    ON,
    TIMEOUT_S,
    WORKERS,
    Progress,
    quiet,
)

if TYPE_CHECKING:
    from assay.abtests.entities import ABReport, ABTest

ALIAS = "champion"
"""The alias a test's winner gets when it is concluded with promotion."""

__all__ = [
    "ALIAS",
    "HOST",
    "LOG_LINES",
    "LOG_SAMPLE",
    "MAX_BODY_BYTES",
    "ON",
    "TIMEOUT_S",
    "WORKERS",
    "ABTestsAPI",
    "Progress",
    "quiet",
]


class ABTestsAPI(Protocol):
    """A/B tests: route live traffic among model versions and tell which is better."""

    def create(
        self,
        name: str,
        variants: Sequence[str],
        strategy: str,
        *,
        key: str | None = None,
        port: int | None = None,
        host: str = HOST,
        workers: int = WORKERS,
        baseline: float | None = None,
        mde: float | None = None,
        auto_promote: bool = False,
        alias: str = ALIAS,
        timeout_s: float = TIMEOUT_S,
        log_sample: float = LOG_SAMPLE,
        on: str = ON,
        replicas: int | None = None,
        cpus: float | None = None,
        progress: Progress = quiet,
    ) -> ABTest:
        """Start a test of `variants` (`LABEL=MODEL@V` or `LABEL=SERVICE`) routed by
        `strategy`; with `baseline` and `mde`, planned (samples needed per variant).
        `on="ray"`: on the Ray cluster, `replicas` of the router and of each variant."""
        ...

    def tests(self) -> list[ABTest]:
        """Every A/B test."""
        ...

    def get(self, name: str) -> ABTest:
        """One A/B test."""
        ...

    def report(self, name: str) -> ABReport:
        """The analysis of everything the test logged (a test with auto-promotion whose
        sequential test has decided is concluded now)."""
        ...

    def conclude(self, name: str, winner: str, *, promote: bool = True) -> ABTest:
        """Stop the test and record the verdict; with `promote`, move its alias to the
        winner's model version."""
        ...

    def pause(self, name: str) -> ABTest:
        """Send every request to the control until `resume`."""
        ...

    def resume(self, name: str) -> ABTest:
        """Route by the strategy again."""
        ...

    def set_weights(self, name: str, weights: Sequence[float]) -> ABTest:
        """Change the split of a weighted or sticky test while it runs."""
        ...

    def start(self, name: str) -> ABTest:
        """Start a stopped test's router again where it was."""
        ...

    def stop(self, name: str) -> ABTest:
        """Stop the test's router (the log and the analysis are kept)."""
        ...

    def logs(self, name: str, *, lines: int = LOG_LINES) -> str:
        """The last `lines` lines of the router's log."""
        ...
