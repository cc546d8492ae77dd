"""What monitoring offers, locally (`MonitoringService`) or over HTTP
(`assay.client.MonitoringClient`): one signature and one set of defaults for both.

Starting a retrain differs by where its run executes (here, or on the server) and stays
out of the contract: `MonitoringService.retrain` takes a launcher, the client's waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assay.monitoring.entities import (
        Monitor,
        MonitorCheck,
        MonitorReport,
        Retrain,
        Snapshot,
        Window,
    )

HISTORY_LIMIT = 200
CONFIG_SOURCE = "monitor config"
# A retrain's challenge is an A/B test of these two variants: the champion, then the new
# version. It is routed by CHALLENGE unless the caller names a strategy; SHADOW (`shadow`
# for short, `--shadow`) has the champion answer every request and send the challenger a
# copy of each, so the new version is compared on live traffic without answering any.
CHALLENGERS = ("champion", "challenger")
CHALLENGE = "weighted:50,50"
SHADOW = "shadow:champion"


class MonitoringAPI(Protocol):
    """Drift checks of services and A/B tests, snapshots of their traffic, retraining."""

    def configure(self, name: str, text: str, source: str = CONFIG_SOURCE) -> Monitor:
        """Set the monitor of service or A/B test `name` from its YAML `text`."""
        ...

    def monitors(self) -> list[Monitor]:
        """Every monitor and its last state."""
        ...

    def get(self, name: str) -> Monitor:
        """One monitor."""
        ...

    def history(self, name: str, *, limit: int = HISTORY_LIMIT) -> list[MonitorCheck]:
        """Its recorded checks, newest first."""
        ...

    def check(
        self,
        name: str,
        *,
        window: Window | None = None,
        reference: str | None = None,
        record: bool = True,
    ) -> MonitorReport:
        """Check `name`'s logged traffic in `window` for drift against its reference;
        with `record`, the state is stored (and the webhook called if it changed)."""
        ...

    def snapshot(
        self,
        name: str,
        dataset: str,
        *,
        window: Window | None = None,
        labeled_only: bool = False,
        message: str | None = None,
    ) -> Snapshot:
        """Commit a window of `name`'s traffic, labels joined, as `dataset`'s next version."""
        ...

    def snapshots(self, name: str | None = None) -> list[Snapshot]:
        """Every snapshot (of monitor `name` only, if given)."""
        ...

    def get_retrain(self, run_id: str) -> Retrain:
        """One retrain, by its run."""
        ...

    def retrains(self) -> list[Retrain]:
        """Every retrain."""
        ...
