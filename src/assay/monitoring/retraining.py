"""Retraining on live data: the model's own pipeline and params, on its training data plus
the labeled rows of a snapshot (or those rows alone), then a challenge of the champion.

The data the run trains on is committed first, as the next version of the training
dataset (training plus live rows, its other files as they were) or of the live one (its
labeled rows only), with a message that names where the live rows came from: that is
what `assay models lineage` shows of the new version. `MonitoringService` offers these
as its retrain use cases; the transport executes the run between `start` and `finish`.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.errors import AssayError, ConflictError, InvalidArgumentError, NotFoundError
from assay.monitoring import api, snapshots
from assay.monitoring.config import challenge_strategy
from assay.monitoring.entities import Retrain, RetrainStatus, Snapshot
from assay.monitoring.reference import References, label_column
from assay.monitoring.repository import MonitorRepository, to_retrain, to_snapshot
from assay.store.db import Database

if TYPE_CHECKING:
    from assay.abtests.service import ABTestService
    from assay.data.entities import DataVersion
    from assay.data.service import DataService
    from assay.registry.entities import ModelVersion
    from assay.registry.service import RegistryService
    from assay.runs.entities import Run
    from assay.runs.service import RunService
    from assay.serving.service import ServingService


def iso(ts: float | None) -> str:
    """Unix seconds as ISO 8601 UTC, to the second (`?` for none)."""
    if ts is None:
        return "?"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Retraining:
    """Retrains: their data, their runs' results, and their challenges."""

    def __init__(
        self,
        db: Database,
        data: DataService,
        registry: RegistryService,
        runs: RunService,
        services: ServingService,
        abtests: ABTestService,
        references: References,
    ) -> None:
        self.db = db
        self.data = data
        self.registry = registry
        self.runs = runs
        self.services = services
        self.abtests = abtests
        self.references = references

    def start(
        self,
        model_ref: str,
        with_ref: str,
        *,
        alone: bool = False,
        challenge: str | None = None,
        label: str | None = None,
    ) -> tuple[Retrain, Run]:
        """See `MonitoringService.start_retrain`."""
        mv = self.registry.resolve(model_ref)
        old = self._training_run(mv)
        new = self.data.resolve(with_ref)
        if challenge is not None:
            challenge = challenge_strategy(challenge)  # refused before any run
        dv = self._data(mv, old, new, alone, label)
        params = json.loads(
            self.data.read_file(self.data.resolve(old.params_ref or ""), "params.json")
        )
        run = self.runs.prepare(
            old.pipeline_ref or "",
            data=dv.ref,
            params=params,
            experiment=old.experiment,
            force=True,
            extra={"retrain": {"model": mv.ref, "with": new.ref, "alone": alone}},
        )
        with self.db.session() as s:
            MonitorRepository(s).add_retrain(
                run_id=run.id,
                model=mv.ref,
                with_data=new.ref,
                data=dv.ref,
                alone=alone,
                status="running",
                challenge=challenge,
            )
        return self.get(run.id), run

    def finish(self, run_id: str) -> Retrain:
        """See `MonitoringService.finish_retrain`."""
        retrain = self.get(run_id)
        if retrain.status != "running":
            return retrain
        run = self.runs.get(run_id)
        if run.status != "succeeded":
            return self._done(run_id, "failed", error=f"run {run.short_id} {run.status}")
        try:
            old = self.registry.resolve(retrain.model)
            new = self.registry.register_run(run.id, old.name)
        except AssayError as exc:
            return self._done(run_id, "failed", error=exc.message)
        if retrain.challenge is None:
            return self._done(run_id, "registered", new_model=new.ref)
        try:
            test = self._challenge(old, new, retrain.challenge)
        except AssayError as exc:
            return self._done(
                run_id, "registered", new_model=new.ref, error=f"challenge: {exc.message}"
            )
        return self._done(run_id, "challenged", new_model=new.ref, abtest=test)

    def get(self, run_id: str) -> Retrain:
        """See `MonitoringService.get_retrain`."""
        with self.db.read() as s:
            repo = MonitorRepository(s)
            row = repo.retrain(run_id)
            if row is None and len(run_id) >= 4:
                found = [r for r in repo.retrains() if r.run_id.startswith(run_id)]
                row = found[0] if len(found) == 1 else None
        if row is None:
            raise NotFoundError(
                f"No retrain with run {run_id!r}. List them with `assay monitor retrains`.",
                run=run_id,
            )
        return to_retrain(row)

    def all(self) -> list[Retrain]:
        with self.db.read() as s:
            return [to_retrain(r) for r in MonitorRepository(s).retrains()]

    def _done(self, run_id: str, status: RetrainStatus, **values: Any) -> Retrain:
        with self.db.session() as s:
            MonitorRepository(s).update_retrain(run_id, status=status, **values)
        return self.get(run_id)

    def _training_run(self, mv: ModelVersion) -> Run:
        if not mv.lineage.run_id:
            raise InvalidArgumentError(
                f"{mv.ref} was registered from a file: there is no pipeline run to repeat. "
                "Retrain models that an `assay run` made.",
                model=mv.ref,
            )
        old = self.runs.get(mv.lineage.run_id)
        if not (old.pipeline_ref and old.data_ref and old.params_ref):
            raise InvalidArgumentError(
                f"{mv.ref} comes from run {old.short_id}, which was not a pipeline run (a "
                "notebook or script tracked by hand); there is no pipeline to rerun.",
                model=mv.ref,
            )
        return old

    def _snapshot_of(self, dv: DataVersion) -> Snapshot | None:
        with self.db.read() as s:
            row = MonitorRepository(s).snapshot(dv.dataset, dv.number)
        return to_snapshot(row) if row is not None else None

    def _data(
        self, mv: ModelVersion, old: Run, new: DataVersion, alone: bool, label: str | None
    ) -> DataVersion:
        """The data version the retrain runs on, committed when it is a new one."""
        names = mv.signature.names if mv.signature else []
        train_dv = self.data.resolve(old.data_ref or "")
        path, train = self.references.table(train_dv, names)
        label = label_column(train, names, label, train_dv.ref)
        new_path, fresh = self.references.table(new, names)
        rows = snapshots.labeled(fresh, label)
        if not len(rows):
            raise InvalidArgumentError(
                f"{new.ref} has no rows with a label ({label or 'no label column'}) to train "
                "on: send feedback for the predictions, then snapshot again.",
                data=new.ref,
            )
        origin = self._snapshot_of(new)
        about = (
            f" (live traffic of {origin.source}, {', '.join(origin.models)}, "
            f"{iso(origin.window_start)} → {iso(origin.window_end)})"
            if origin
            else ""
        )
        if alone:
            if len(rows) == len(fresh):
                return new
            frame, dataset = rows, new.dataset
            text = f"The {len(rows)} labeled rows of {new.ref}{about}"
            dest_path = new_path
        else:
            frame, dataset = snapshots.combine(train, rows, label), train_dv.dataset
            text = f"{train_dv.ref} + {len(rows)} labeled rows of {new.ref}{about}"
            dest_path = path
        with tempfile.TemporaryDirectory(prefix="assay-retrain-") as tmp:
            folder = Path(tmp) / "data"
            if alone:
                folder.mkdir()
            else:
                self.data.checkout(train_dv.ref, folder)  # the other files, as they were
            snapshots.write_table(frame, folder / dest_path)
            return self.data.commit(dataset, folder, text).version

    def _challenge(self, old: ModelVersion, new: ModelVersion, strategy: str) -> str:
        """Start an A/B test of `new` against the champion (auto-promoting); its name.
        The champion is named by the service that serves it, when one does."""
        try:
            champion = self.registry.resolve(f"{old.name}@champion")
        except NotFoundError:
            champion = old
        served = [
            s.name
            for s in self.services.services()
            if s.state == "running" and s.model_ref == champion.ref
        ]
        left, right = api.CHALLENGERS
        variants = [f"{left}={served[0] if served else champion.ref}", f"{right}={new.ref}"]
        name = f"{new.name.replace('/', '-')}-retrain-{new.version}"
        try:
            self.abtests.get(name)
        except NotFoundError:
            pass
        else:
            raise ConflictError(f"An A/B test named {name!r} exists already.", abtest=name)
        # Auto-promote as for any challenge; a shadow's copies have no feedback joined, so
        # its sequential test never decides: a shadow test is concluded by hand.
        self.abtests.create(name, variants, strategy, auto_promote=True, alias="champion")
        return name
