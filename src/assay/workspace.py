"""The composition root: one `Workspace` wires settings to stores and services.

Transports (the CLI, later the server) build a `Workspace` at their edge and call
its services; nothing below this module knows where settings came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from assay.config import CONFIG_FILE, WORKSPACE_DIR, Settings
from assay.data.service import DataService
from assay.errors import ConflictError
from assay.store.db import Database
from assay.store.objects import LocalObjectStore, ObjectStore
from assay.store.packs import Blobs

if TYPE_CHECKING:
    from assay.abtests.service import ABTestService
    from assay.auth.service import TokenService
    from assay.data.uploads import UploadService
    from assay.lifecycle.service import LifecycleService
    from assay.monitoring.service import MonitoringService
    from assay.pipelines.service import PipelineService
    from assay.registry.service import RegistryService
    from assay.runs.service import RunService
    from assay.serving.service import ServingService
    from assay.sweeps.service import SweepService


@dataclass
class Workspace:
    settings: Settings
    _closed: bool = field(default=False, repr=False)
    # Where `ASSAY_RAY_ADDRESS` and the object store's credentials are read for `--on ray`.
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    @cached_property
    def db(self) -> Database:
        db = Database(self.settings.db_url, timeout_s=self.settings.db_timeout_s)
        db.ensure_current()
        return db

    @cached_property
    def store(self) -> ObjectStore:
        return ObjectStore.open(self.settings.store_url)

    @cached_property
    def data(self) -> DataService:
        return DataService(
            self.db, self.store, author=self.settings.author, cache_dir=self.settings.cache_dir
        )

    @cached_property
    def uploads(self) -> UploadService:
        from assay.data.uploads import UploadService

        return UploadService(
            self.settings.cache_dir / "uploads", max_age_s=self.settings.upload_max_age_s
        )

    @cached_property
    def pipelines(self) -> PipelineService:
        from assay.pipelines.service import PipelineService

        return PipelineService(
            self.db, self.store, Blobs(self.db, self.store), author=self.settings.author
        )

    @cached_property
    def runs(self) -> RunService:
        from assay.runs.service import RunService, RunSettings

        return RunService(
            self.db,
            self.store,
            self.data,
            self.pipelines,
            RunSettings(
                author=self.settings.author,
                cache_dir=self.settings.cache_dir,
                cost_per_hour=self.settings.cost_per_hour,
                heartbeat_s=self.settings.heartbeat_s,
            ),
        )

    @cached_property
    def registry(self) -> RegistryService:
        from assay.registry.service import RegistryService

        return RegistryService(
            self.db,
            self.store,
            self.runs,
            author=self.settings.author,
            cache_dir=self.settings.cache_dir,
        )

    @property
    def models(self) -> RegistryService:
        """The registry, by the name the CLI, the REST API and the SDK give it."""
        return self.registry

    @cached_property
    def tokens(self) -> TokenService:
        from assay.auth.service import TokenService

        return TokenService(self.db, author=self.settings.author)

    @cached_property
    def sweeps(self) -> SweepService:
        from assay.sweeps.service import SweepService

        return SweepService(self.db, self.runs, self.pipelines, self.data, self.registry)

    @cached_property
    def services(self) -> ServingService:
        from assay.serving.ray_serve import RayServe
        from assay.serving.service import ServingService

        return ServingService(
            self.db,
            self.registry,
            self.settings.services_dir,
            ray=RayServe(self.settings, self.environ),
        )

    @cached_property
    def abtests(self) -> ABTestService:
        from assay.abtests.service import ABTestService

        return ABTestService(
            self.db,
            self.registry,
            self.services,
            self.settings.services_dir / "abtests",
            cost_per_hour=self.settings.cost_per_hour,
        )

    @cached_property
    def monitoring(self) -> MonitoringService:
        from assay.monitoring.service import MonitoringService

        return MonitoringService(
            self.db,
            self.store,
            self.data,
            self.registry,
            self.runs,
            self.services,
            self.abtests,
        )

    @cached_property
    def lifecycle(self) -> LifecycleService:
        from assay.lifecycle.service import LifecycleService

        return LifecycleService(
            self.db,
            self.store,
            data=self.data,
            pipelines=self.pipelines,
            runs=self.runs,
            registry=self.registry,
            services=self.services,
            abtests=self.abtests,
            uploads=self.uploads,
        )

    def close(self) -> None:
        if "data" in self.__dict__:
            self.data.cache.close()
        if "db" in self.__dict__:
            self.db.dispose()


# What `.assay/.gitignore` says: nothing in the workspace folder belongs in git.
GITIGNORE = "# Assay's workspace: metadata, objects, caches.\n*\n"


def init_workspace(settings: Settings) -> tuple[Settings, bool]:
    """Create `.assay/` under `settings.root` and bring the database schema up to date.

    Returns the settings and whether the workspace was new. Running it again on an
    existing workspace only applies pending migrations.
    """
    assert settings.root is not None
    ws = settings.root / WORKSPACE_DIR
    created = not ws.exists()
    if ws.exists() and not ws.is_dir():
        raise ConflictError(f"{ws} exists and is not a folder; move it away and retry.")
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "cache").mkdir(exist_ok=True)
    (ws / ".gitignore").write_text(GITIGNORE)
    store = ObjectStore.open(settings.store_url)
    if isinstance(store, LocalObjectStore):
        store.root.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url, timeout_s=settings.db_timeout_s)
    try:
        db.migrate()
    finally:
        db.dispose()
    return settings, created


__all__ = ["CONFIG_FILE", "GITIGNORE", "Workspace", "init_workspace"]
