"""`client.monitoring`: drift checks, snapshots and retraining over HTTP (the
`MonitoringAPI` contract)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.client.http import Part, parse
from assay.monitoring import api

if TYPE_CHECKING:
    from assay.monitoring.entities import (
        Monitor,
        MonitorCheck,
        MonitorReport,
        Retrain,
        Snapshot,
        Window,
    )

POLL_S = 0.5


def _window(window: Window | None) -> dict[str, Any]:
    """A window as the API takes it: `last`, `start`, `end`."""
    if window is None:
        return {"last": None, "start": None, "end": None}
    last: str | None = None
    if window.requests is not None:
        last = str(window.requests)
    elif window.seconds is not None:
        # Plain digits: `:g` wrote two weeks as 1.2096e+06s, which no duration parser takes.
        last = f"{window.seconds:.3f}".rstrip("0").rstrip(".") + "s"
    start = window.start.isoformat() if window.start and last is None else None
    return {"last": last, "start": start, "end": window.end.isoformat() if window.end else None}


class MonitoringClient(Part):
    """The server's monitors: what `MonitoringService` offers, the same verbs and entities.
    A window is an `assay.monitoring.entities.Window` (`Window.parse(last="1h")`)."""

    def check(
        self,
        name: str,
        *,
        window: Window | None = None,
        reference: str | None = None,
        record: bool = True,
    ) -> MonitorReport:
        """Check service or A/B test `name` for drift against its model's training data
        (or `reference`) in `window`. With `record` the state is stored (and the webhook
        called if it changed)."""
        sent = _window(window)
        if record:
            doc = self._call(
                "POST", f"/monitors/{name}/checks", json={**sent, "reference": reference}
            )
        else:
            clean = {k: v for k, v in {**sent, "reference": reference}.items() if v}
            doc = self._call("GET", f"/monitors/{name}/report", params=clean)
        report: MonitorReport = doc
        return report

    def monitors(self) -> list[Monitor]:
        from assay.monitoring.entities import Monitor

        return self._list(Monitor, "/monitors")

    def get(self, name: str) -> Monitor:
        from assay.monitoring.entities import Monitor

        return self._get(Monitor, f"/monitors/{name}")

    def configure(self, name: str, text: str | Path, source: str = api.CONFIG_SOURCE) -> Monitor:
        """Set a monitor's config: YAML text, or a path to a file of it. (`source`, what
        errors name the text by, is the server's own.)"""
        from assay.monitoring.entities import Monitor

        config = text.read_text(encoding="utf-8") if isinstance(text, Path) else text
        doc = self._call("PUT", f"/monitors/{name}/config", json={"config": config})
        return parse(Monitor, doc)

    def history(self, name: str, *, limit: int = api.HISTORY_LIMIT) -> list[MonitorCheck]:
        from assay.monitoring.entities import MonitorCheck

        return self._get(list[MonitorCheck], f"/monitors/{name}/checks", limit=limit)

    def snapshot(
        self,
        name: str,
        dataset: str,
        *,
        window: Window | None = None,
        labeled_only: bool = False,
        message: str | None = None,
    ) -> Snapshot:
        """Commit a window of `name`'s logged traffic, labels joined, as the next version
        of `dataset`."""
        from assay.monitoring.entities import Snapshot

        doc = self._call(
            "POST", f"/monitors/{name}/snapshots",
            json={"dataset": dataset, **_window(window), "labeled_only": labeled_only,
                  "message": message},
        )  # fmt: skip
        return parse(Snapshot, doc)

    def snapshots(self, name: str | None = None) -> list[Snapshot]:
        from assay.monitoring.entities import Snapshot

        return self._get(list[Snapshot], "/snapshots", monitor=name)

    def retrain(
        self,
        model_ref: str,
        with_ref: str,
        *,
        alone: bool = False,
        challenge: str | None = None,
        label: str | None = None,
        wait: bool = True,
        poll_s: float = POLL_S,
    ) -> Retrain:
        """Rerun `model_ref`'s own pipeline and params on its training data plus `with_ref`
        (or `with_ref` alone) on the server; with `wait`, return once the new version is
        registered (and its A/B test started, with `challenge`, a strategy: `shadow` has
        the champion answer every request and the new version get a copy of each)."""
        from assay.monitoring.entities import Retrain

        retrain = parse(Retrain, self._call(
            "POST", "/retrains", json={"model": model_ref, "data": with_ref, "alone": alone,
                                       "challenge": challenge, "label": label},
        ))  # fmt: skip
        while wait and retrain.status == "running":
            time.sleep(poll_s)
            retrain = self.get_retrain(retrain.run_id)
        return retrain

    def get_retrain(self, run_id: str) -> Retrain:
        from assay.monitoring.entities import Retrain

        return self._get(Retrain, f"/retrains/{run_id}")

    def retrains(self) -> list[Retrain]:
        from assay.monitoring.entities import Retrain

        return self._get(list[Retrain], "/retrains")
