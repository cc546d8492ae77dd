"""Monitoring: watch served models, record their state, and turn live traffic into training data.

A monitor is named after what it watches, a service or an A/B test. A check reads a
window of the prediction log (`assay.serving.predlog`), compares it with the training
data of the model that serves (`reference`, `drift`, `report`), records the state, leaves
it in the service's folder for its `/metrics`, and when the state changes calls the
monitor's webhook; on drift it may snapshot the window, retrain and challenge the
champion. Snapshots commit logged rows, labels joined, as a data version in the training
data's own layout; a retrain reruns the model's own pipeline version and params on them.

Runs execute where the transport says (`Launch`): the CLI runs them in a subprocess and
shows their steps; the server launches them and finishes the retrain when they end.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.errors import AssayError, InvalidArgumentError, NotFoundError
from assay.monitoring import api
from assay.monitoring.config import default_text, load_config
from assay.monitoring.entities import (
    Monitor,
    MonitorCheck,
    MonitorConfig,
    MonitorReport,
    Retrain,
    Snapshot,
    Window,
)
from assay.monitoring.repository import (
    MonitorRepository,
    to_check,
    to_monitor,
    to_snapshot,
)
from assay.store.db import Database, utcnow

if TYPE_CHECKING:
    from assay.abtests.service import ABTestService
    from assay.data.service import DataService
    from assay.monitoring.live import LiveData
    from assay.monitoring.reference import References, Training
    from assay.monitoring.retraining import Retraining
    from assay.registry.service import RegistryService
    from assay.runs.entities import Run
    from assay.runs.service import RunService
    from assay.serving.service import ServingService
    from assay.store.objects import ObjectStore

# Start a queued run; call `done` once it has finished (at once, or from another thread).
Launch = Callable[["Run", Callable[[], None]], None]


@dataclass(frozen=True)
class Target:
    """What a monitor watches: a service or an A/B test, and the model whose training
    data is the reference (a test's control, or its winner once concluded)."""

    kind: str  # service or abtest
    name: str
    model: str  # MODEL@V
    folder: Path

    @property
    def source(self) -> str:
        return f"{self.kind} {self.name}"


class MonitoringService:
    """Monitors of the services and A/B tests on this machine, their checks over time,
    snapshots of their traffic, and retrains on it."""

    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        data: DataService,
        registry: RegistryService,
        runs: RunService,
        services: ServingService,
        abtests: ABTestService,
    ) -> None:
        self.db = db
        self.store = store
        self.data = data
        self.registry = registry
        self.runs = runs
        self.services = services
        self.abtests = abtests

    # numpy, pandas, scipy, yaml and httpx are imported where a check, a snapshot or a
    # config needs them: `assay monitor list` and the server's start do without.

    @cached_property
    def references(self) -> References:
        from assay.monitoring.reference import References

        return References(self.data, self.registry)

    @cached_property
    def retraining(self) -> Retraining:
        from assay.monitoring.retraining import Retraining

        return Retraining(
            self.db, self.data, self.registry, self.runs, self.services, self.abtests,
            self.references,
        )  # fmt: skip

    # ---- monitors and their config -------------------------------------------------------

    def target(self, name: str) -> Target:
        """The service or A/B test named `name` (a service first).

        Raises:
            NotFoundError: neither exists.
        """
        try:
            svc = self.services.get(name)
            return Target("service", name, svc.model_ref, self.services.folder(name))
        except NotFoundError:
            pass
        try:
            test = self.abtests.get(name)
        except NotFoundError:
            raise NotFoundError(
                f"No service or A/B test named {name!r} to monitor. List them with "
                "`assay services list` and `assay abtests list`.",
                monitor=name,
            ) from None
        chosen = test.variant(test.winner) if test.winner else None
        model = (chosen or test.variants[0]).model_ref
        return Target("abtest", name, model, self.abtests.folder(name))

    def configure(self, name: str, text: str, source: str = api.CONFIG_SOURCE) -> Monitor:
        """Set the monitor's config (YAML, see `assay.monitoring.config`); its schedule
        starts now.

        Raises:
            NotFoundError: no such service or A/B test.
            InvalidArgumentError: the config does not parse (the message says where).
        """
        target = self.target(name)
        config = load_config(text, source)
        if config.reference:
            self.data.resolve(config.reference)  # a typo is an error now, not at 3 am
        next_at = utcnow() + timedelta(seconds=config.schedule_s) if config.schedule_s else None
        with self.db.session() as s:
            row = MonitorRepository(s).upsert(
                name, target=target.kind, config=text, next_check_at=next_at
            )
        return to_monitor(row)

    def monitors(self) -> list[Monitor]:
        """Every monitor that has a config or a recorded check."""
        with self.db.read() as s:
            return [to_monitor(r) for r in MonitorRepository(s).rows()]

    def get(self, name: str) -> Monitor:
        """One monitor; a service or test never checked has the default config.

        Raises:
            NotFoundError: no such monitor, service or A/B test.
        """
        with self.db.read() as s:
            row = MonitorRepository(s).row(name)
        if row is not None:
            return to_monitor(row)
        target = self.target(name)
        now = utcnow()
        return Monitor(name, target.kind, default_text(), None, None, None, now, now)

    def config(self, name: str) -> MonitorConfig:
        return load_config(self.get(name).config_text, f"monitor {name}")

    def history(self, name: str, *, limit: int = api.HISTORY_LIMIT) -> list[MonitorCheck]:
        """The monitor's recorded checks, oldest first (the latest `limit`)."""
        with self.db.read() as s:
            repo = MonitorRepository(s)
            row = repo.row(name)
            if row is None:
                self.target(name)  # a real target, never checked: no history yet
                return []
            return [to_check(r, name) for r in repo.checks(row.id, limit)]

    # ---- checks ------------------------------------------------------------------------------

    def check(
        self,
        name: str,
        *,
        window: Window | None = None,
        reference: str | None = None,
        record: bool = True,
        launch: Launch | None = None,
        now: datetime | None = None,
    ) -> MonitorReport:
        """Compare a window of `name`'s logged traffic with its model's training data.

        With `record`, the state is stored (and left in the service's folder for its
        `/metrics`); a change of state calls the webhook, and a change to `drift` runs
        the config's `on_drift` (a snapshot, and with `launch` a retrain and challenge).

        Raises:
            NotFoundError: no such service or A/B test, or reference data version.
            InvalidArgumentError: the reference has no table with the model's inputs.
        """
        from assay.monitoring.report import build_report
        from assay.monitoring.webhook import notify

        now = now or datetime.now(UTC)
        target = self.target(name)
        config = self.config(name)
        window = window or config.window
        mv = self.registry.resolve(target.model)
        training = self.references.training(mv, reference or config.reference, config.label)
        live = self._live(target, window, now)
        report = build_report(
            monitor=name,
            target=target.kind,
            model=mv.ref,
            model_version=(mv.name, mv.version),
            live=live,
            training=training,
            config=config,
            window=window,
            now=now,
        )
        if record:
            previous = self._record(target, report, now)
            self._export(target, report, now)
            if previous != report["state"]:
                said = notify(config.webhook, _event(report, previous))
                if said:
                    report["actions"].append(said)
                if report["state"] == "drift" and config.on_drift is not None:
                    report["actions"].extend(self._on_drift(target, config, window, launch, now))
        return report

    def _live(self, target: Target, window: Window, now: datetime) -> LiveData:
        from assay.monitoring.live import read_window, store_of
        from assay.serving.predlog import request_flush

        # What the workers still hold is written first, so the window has all of it.
        request_flush(target.folder)
        return read_window(store_of(self.store.url, target.kind + "s", target.name), window, now)

    def _record(self, target: Target, report: MonitorReport, now: datetime) -> str | None:
        """Store the check; returns the state before it."""
        from assay.monitoring.report import summary

        with self.db.session() as s:
            repo = MonitorRepository(s)
            row = repo.row(target.name)
            if row is None:
                row = repo.upsert(target.name, target=target.kind, config=default_text())
            previous = row.state
            repo.add_check(
                row.id,
                at=now,
                state=report["state"],
                model=report["model"],
                reference=report["reference"],
                window_start=report["start"],
                window_end=report["end"],
                rows=report["rows"],
                summary=summary(report),
            )
            repo.upsert(target.name, state=report["state"], checked_at=now)
        return str(previous) if previous else None

    def _export(self, target: Target, report: MonitorReport, now: datetime) -> None:
        """`monitor.json` in the service's folder: its `/metrics` exports it as gauges."""
        from assay.monitoring.report import summary

        doc = {
            "monitor": report["monitor"],
            "state": report["state"],
            "at": now.timestamp(),
            "model": report["model"],
            "rows": report["rows"],
            **summary(report),
        }
        path = target.folder / "monitor.json"
        try:
            target.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"monitor.json.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(doc, default=str))
            os.replace(tmp, path)
        except OSError:
            pass  # the service's folder is on another machine: the record still holds it

    def _on_drift(
        self,
        target: Target,
        config: MonitorConfig,
        window: Window,
        launch: Launch | None,
        now: datetime,
    ) -> list[str]:
        assert config.on_drift is not None
        actions: list[str] = []
        try:
            snap = self.snapshot(target.name, config.on_drift.snapshot, window=window, now=now)
            actions.append(f"snapshot {snap.ref} ({snap.rows} rows, {snap.labeled} labeled)")
            if config.on_drift.retrain and launch is not None:
                retrain = self.retrain(
                    target.model,
                    snap.ref,
                    alone=config.on_drift.alone,
                    challenge=config.on_drift.challenge,
                    label=config.label,
                    launch=launch,
                )
                actions.append(_retrained(retrain))
            elif config.on_drift.retrain:
                actions.append("retrain skipped: this check has no way to run it")
        except AssayError as exc:
            actions.append(f"on_drift stopped: {exc.message}")
        return actions

    def due(self, now: datetime | None = None) -> list[str]:
        """The monitors whose scheduled check is due."""
        with self.db.read() as s:
            return [r.name for r in MonitorRepository(s).due(now or utcnow())]

    def run_due(
        self, *, launch: Launch | None = None, now: datetime | None = None
    ) -> list[tuple[str, MonitorReport | AssayError]]:
        """Check every monitor whose schedule is due. Each is claimed first, so of several
        watchers (the server's workers) exactly one checks it."""
        now = now or utcnow()
        out: list[tuple[str, MonitorReport | AssayError]] = []
        with self.db.read() as s:
            rows = MonitorRepository(s).due(now)
        for row in rows:
            config = load_config(row.config, f"monitor {row.name}")
            if not config.schedule_s:
                continue
            next_at = now + timedelta(seconds=config.schedule_s)
            with self.db.session() as s:
                if not MonitorRepository(s).claim(row.id, row.next_check_at, next_at):
                    continue
            try:
                out.append((row.name, self.check(row.name, launch=launch)))
            except AssayError as exc:
                out.append((row.name, exc))
        return out

    # ---- snapshots -----------------------------------------------------------------------------

    def snapshot(
        self,
        name: str,
        dataset: str,
        *,
        window: Window | None = None,
        labeled_only: bool = False,
        message: str | None = None,
        now: datetime | None = None,
    ) -> Snapshot:
        """Commit a window of `name`'s logged traffic, labels joined from feedback, as the
        next version of `dataset`, in the layout of the model's training data.

        Raises:
            NotFoundError: no such service or A/B test.
            InvalidArgumentError: nothing was logged in the window.
        """
        from assay.data.entities import check_name
        from assay.monitoring import snapshots
        from assay.monitoring.retraining import iso

        check_name(dataset)
        now = now or datetime.now(UTC)
        target = self.target(name)
        config = self.config(name)
        window = window or config.window
        mv = self.registry.resolve(target.model)
        training = self.references.training(mv, config.reference, config.label)
        live = self._live(target, window, now)
        if not len(live.rows):
            raise InvalidArgumentError(
                f"Nothing was logged by {target.source} in the window ({window.describe()}); "
                "widen it with --last, or send it traffic first.",
                monitor=name,
            )
        columns, label, dtypes, path = _layout(training, live)
        frame = snapshots.snapshot_frame(live.rows, columns, label, dtypes)
        if labeled_only:
            frame = snapshots.labeled(frame, label)
        n_labeled = int(frame[label].notna().sum()) if label else 0
        models = sorted(
            {f"{m}@{int(v)}" for m, v in live.rows[["model", "version"]].drop_duplicates().values}
        )
        start, end = live.span()
        text = message or (
            f"Live traffic of {target.source} ({', '.join(models)}), "
            f"{iso(start)} → {iso(end)}: {len(frame)} rows, {n_labeled} labeled"
        )
        with tempfile.TemporaryDirectory(prefix="assay-snapshot-") as tmp:
            snapshots.write_table(frame, Path(tmp) / path)
            version = self.data.commit(dataset, Path(tmp), text).version
        with self.db.session() as s:
            repo = MonitorRepository(s)
            if repo.snapshot(version.dataset, version.number) is None:
                repo.add_snapshot(
                    dataset=version.dataset,
                    number=version.number,
                    source=target.source,
                    models=models,
                    window_start=start,
                    window_end=end,
                    rows=len(frame),
                    labeled=n_labeled,
                    path=path,
                )
            row = repo.snapshot(version.dataset, version.number)
        assert row is not None
        return to_snapshot(row)

    def snapshots(self, name: str | None = None) -> list[Snapshot]:
        """Snapshots taken (of one service or A/B test's traffic, or of all)."""
        source = self.target(name).source if name else None
        with self.db.read() as s:
            return [to_snapshot(r) for r in MonitorRepository(s).snapshots(source)]

    # ---- retrains (`retraining`) ------------------------------------------------------------

    def start_retrain(
        self,
        model_ref: str,
        with_ref: str,
        *,
        alone: bool = False,
        challenge: str | None = None,
        label: str | None = None,
    ) -> tuple[Retrain, Run]:
        """Queue a run of `model_ref`'s own pipeline version and params on its training
        data plus the labeled rows of `with_ref` (or, `alone`, those rows only); returns
        the retrain and its queued run, for the caller to execute and `finish_retrain`.
        `challenge` is the routing of the new version's A/B test against the champion
        (`shadow` is short for `shadow:champion`); None starts none. `label` names the
        label column when the training table has several non-inputs.

        Raises:
            NotFoundError: no such model or data version.
            InvalidArgumentError: the model was not made by a pipeline run, the new data
                has no labeled rows, or the challenge is not a strategy for two variants.
        """
        return self.retraining.start(
            model_ref, with_ref, alone=alone, challenge=challenge, label=label
        )

    def finish_retrain(self, run_id: str) -> Retrain:
        """After the run ended: register its model as the next version, and start the
        challenge (an A/B test against the champion, auto-promoting) if one was asked."""
        return self.retraining.finish(run_id)

    def retrain(
        self,
        model_ref: str,
        with_ref: str,
        *,
        alone: bool = False,
        challenge: str | None = None,
        label: str | None = None,
        launch: Launch,
    ) -> Retrain:
        """`start_retrain`, run it with `launch`, and `finish_retrain` when it ends. With
        a `launch` that returns before the run ends, the retrain is `running` until then."""
        retrain, run = self.start_retrain(
            model_ref, with_ref, alone=alone, challenge=challenge, label=label
        )

        def done() -> None:
            self.finish_retrain(run.id)

        launch(run, done)
        return self.get_retrain(retrain.run_id)

    def get_retrain(self, run_id: str) -> Retrain:
        """A retrain by its run's id (or a unique prefix of it).

        Raises:
            NotFoundError: no such retrain.
        """
        return self.retraining.get(run_id)

    def retrains(self) -> list[Retrain]:
        """Every retrain, oldest first."""
        return self.retraining.all()


def _layout(
    training: Training, live: LiveData
) -> tuple[list[str], str | None, dict[str, Any], str]:
    """The snapshot's columns, label column, column types and file name."""
    from assay.monitoring import snapshots

    if training.table is not None and training.path is not None:
        table = training.table
        dtypes = {str(c): table[c].dtype for c in table.columns}
        return [str(c) for c in table.columns], training.label, dtypes, training.path
    columns = [*live.inputs, snapshots.DEFAULT_LABEL]
    return columns, snapshots.DEFAULT_LABEL, {}, snapshots.DEFAULT_FILE


def _retrained(r: Retrain) -> str:
    """What a check that retrained says of it: the run, and what it made, if it ended."""
    said = f"retrain run {r.run_id[:8]}: {r.status}"
    if r.new_model:
        said += f", {r.new_model}"
    if r.abtest:
        said += f", A/B test {r.abtest} ({r.challenge})"
    if r.error:
        said += f" ({r.error})"
    return said


def _event(report: MonitorReport, previous: str | None) -> dict[str, Any]:
    """What the webhook receives."""
    changed = [f["name"] for f in report["features"] if f["state"] != "ok"]
    return {
        "monitor": report["monitor"],
        "target": report["target"],
        "state": report["state"],
        "previous": previous,
        "model": report["model"],
        "reference": report["reference"],
        "at": report["at"],
        "rows": report["rows"],
        "features": changed,
        "prediction": report["prediction"]["state"] if report["prediction"] else None,
        "performance": report["performance"]["value"],
    }
