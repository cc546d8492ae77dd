"""Deleting data versions, model versions and runs, safely; and `assay gc`.

A deletion removes metadata only, at once: what depends on the thing is checked first,
and the deletion is refused with a list of it unless forced (then the list says what
broke). The bytes go at the next `assay gc`, which removes every object no live row
refers to, once it is older than the grace period.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from assay.errors import ConflictError
from assay.lifecycle.api import GRACE_S
from assay.lifecycle.entities import Collection, Deleted
from assay.store.gc import Collector

if TYPE_CHECKING:
    from assay.abtests.service import ABTestService
    from assay.data.service import DataService
    from assay.data.uploads import UploadService
    from assay.pipelines.service import PipelineService
    from assay.registry.service import RegistryService
    from assay.runs.service import RunService
    from assay.serving.service import ServingService
    from assay.store.db import Database
    from assay.store.objects import ObjectStore


class LifecycleService:
    """Deletes and collects over every concept of a workspace."""

    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        *,
        data: DataService,
        pipelines: PipelineService,
        runs: RunService,
        registry: RegistryService,
        services: ServingService,
        abtests: ABTestService,
        uploads: UploadService,
    ) -> None:
        self.db = db
        self.store = store
        self.data = data
        self.pipelines = pipelines
        self.runs = runs
        self.registry = registry
        self.services = services
        self.abtests = abtests
        self.uploads = uploads

    # ---- deleting ----------------------------------------------------------------------

    def delete_data(self, ref: str, *, force: bool = False) -> Deleted:
        """Delete a data version; refused while runs used it or models name it in their
        lineage, or tags point at it, unless `force`.

        Raises:
            NotFoundError: no such version.
            ConflictError: something depends on it and `force` is not set.
        """
        version = self.data.resolve(ref)
        users = [f"run {r[:8]}" for r in self.runs.using_data(version.dataset, version.number)]
        users += [f"model {m} (its lineage)" for m in self.registry.naming_data(version.ref)]
        users += [f"tag {version.dataset}@{t}" for t in version.tags]
        _refuse_unless(force, f"data {version.ref}", users)
        self.data.delete_version(version.ref)
        return Deleted((version.ref,), tuple(users) if force else ())

    def delete_model(self, ref: str, *, force: bool = False) -> Deleted:
        """Delete a model version; refused while an alias points at it, a service serves
        it or an A/B test routes to it, unless `force` (services and tests keep running
        on the copy they loaded; the alias is removed).

        Raises:
            NotFoundError: no such version.
            ConflictError: something depends on it and `force` is not set.
        """
        mv = self.registry.resolve(ref)
        users = [f"alias {mv.name}@{a}" for a in mv.aliases]
        users += [
            f"service {s.name} ({s.state})"
            for s in self.services.services()
            if (s.model, s.version) == (mv.name, mv.version) and s.desired != "stopped"
        ]
        users += [
            f"A/B test {t.name} (variant {v.label})"
            for t in self.abtests.tests()
            if t.status not in ("stopped",)
            for v in t.variants
            if (v.model, v.version) == (mv.name, mv.version)
        ]
        _refuse_unless(force, f"model {mv.ref}", users)
        self.registry.delete_version(mv.ref)
        return Deleted((mv.ref,), tuple(users) if force else ())

    def delete_runs(self, refs: Sequence[str], *, force: bool = False) -> Deleted:
        """Delete runs (and the runs made inside them); refused while a model version
        came from one, unless `force` (its lineage then names a deleted run).

        Raises:
            NotFoundError: no such run.
            ConflictError: a model came from one and `force` is not set, or one is
                still queued or running.
        """
        # A ref named twice is looked up once (each look-up also reaps dead runners): a
        # request naming the same run 10,000 times took over 10 s under load.
        found = {run.id: run for run in (self.runs.get(r) for r in dict.fromkeys(refs))}
        runs = list(found.values())
        users = [f"model {m} (its lineage)" for r in runs for m in self.registry.naming_run(r.id)]
        _refuse_unless(force, ", ".join(f"run {r.short_id}" for r in runs), users)
        deleted = self.runs.delete([r.id for r in runs])
        return Deleted(tuple(deleted), tuple(users) if force else ())

    # ---- collecting --------------------------------------------------------------------

    def collect(self, *, dry_run: bool = False, grace_s: float = GRACE_S) -> Collection:
        """Remove every object nothing refers to that is older than `grace_s`, the
        temporaries of killed writers, and expired uploads (`dry_run`: only count)."""
        collector = Collector(
            self.db,
            self.store,
            [
                self.data.live_objects,
                self.pipelines.live_objects,
                self.runs.live_objects,
                self.registry.live_objects,
            ],
            grace_s=grace_s,
        )
        report = collector.collect(dry_run=dry_run)
        temporaries = collector.temporaries(dry_run=dry_run)
        uploads = len(self.uploads.expire(dry_run=dry_run))
        return Collection(
            dry_run=dry_run,
            objects=report.objects,
            live=report.live,
            young=report.young,
            removed=report.removed,
            removed_bytes=report.removed_bytes,
            packs=report.packs,
            temporaries=temporaries,
            uploads=uploads,
            largest=report.examples,
        )


def _refuse_unless(force: bool, what: str, users: list[str]) -> None:
    if users and not force:
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise ConflictError(
            f"Cannot delete {what}: {shown} depend(s) on it. Pass --force to delete it "
            "anyway (they will name something deleted).",
            depends=users,
        )
