"""What deleting and collecting offer, locally (`LifecycleService`) or over HTTP
(`assay.client.LifecycleClient`): one signature and one set of defaults for both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assay.lifecycle.entities import Collection, Deleted

GRACE_S = 3600.0
"""Seconds an unreferenced object is kept before `collect` removes it (a commit may be
about to name it)."""


class LifecycleAPI(Protocol):
    """Deleting runs and versions safely, and collecting unreferenced objects."""

    def delete_runs(self, refs: Sequence[str], *, force: bool = False) -> Deleted:
        """Delete runs; refused while a model came from one, unless `force`."""
        ...

    def delete_model(self, ref: str, *, force: bool = False) -> Deleted:
        """Delete a model version; refused while a service serves it, unless `force`."""
        ...

    def delete_data(self, ref: str, *, force: bool = False) -> Deleted:
        """Delete a data version; refused while a run or model names it, unless `force`."""
        ...

    def collect(self, *, dry_run: bool = False, grace_s: float = GRACE_S) -> Collection:
        """Remove stored objects nothing refers to (older than `grace_s`)."""
        ...
