"""A replica of a service on a Ray cluster: the local service's inference app, unchanged,
inside a Ray Serve deployment.

`assay services deploy NAME --on ray` runs `ModelReplica` as the deployment `model` of the
Ray Serve application NAME (`assay.serving.ray_serve` builds it). Each replica:

- materializes the model version's bundle from the workspace's object store (a replica
  needs the store's URL and credentials, not the database, nor the model's code),
- loads it and answers a warm-up request (`served.prepare`) in its constructor, so Ray
  Serve routes no request to it before it is ready,
- answers with the same Starlette app a local service's worker runs (`app.create_app`):
  the same routes, answers, error bodies, provenance headers and `/metrics`.

Like the service process, it imports no control-plane code (no SQLAlchemy): a replica
starts fast and holds only what answers requests.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from assay.serving.predlog import PredictionLog

__all__ = ["ModelReplica", "ReplicaSpec"]

log = logging.getLogger("assay.serving")

# What the control plane hands every replica (JSON values only, so it pickles anywhere):
# {"service", "store", "bundle" (the manifest's digest), "name", "version",
#  "timeout_s", "max_body_bytes", "log" (the prediction log's config, or None)}
ReplicaSpec = dict[str, Any]


class ModelReplica:
    """One replica: a model version loaded and warmed up, behind the inference app."""

    def __init__(self, spec: ReplicaSpec) -> None:
        from dataclasses import replace

        from assay.registry.bundle import load_bundle, materialize
        from assay.serving.app import ServingState
        from assay.serving.metrics import Metrics
        from assay.serving.served import prepare
        from assay.store.objects import ObjectStore

        self.spec = spec
        self.dir = Path(tempfile.mkdtemp(prefix=f"assay-{spec['service']}-"))
        self.state = ServingState(Metrics())
        self.predlog = _prediction_log(spec, self.dir)
        self.state.log = self.predlog
        ref = f"{spec['name']}@{spec['version']}"
        log.info("loading %s from %s", ref, spec["store"])
        try:
            bundle = load_bundle(
                materialize(ObjectStore.open(spec["store"]), spec["bundle"], self.dir / "bundle")
            )
            # The control plane's numbering wins: it is what its users asked for.
            bundle = replace(bundle, name=spec["name"], version=int(spec["version"]))
            self.state.install(prepare(bundle, self.state.metrics))
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        log.info("serving %s", ref)

    def __serve_build_asgi_app__(self) -> Starlette:
        from assay.serving.app import create_app

        return create_app(
            self.state,
            timeout_s=float(self.spec["timeout_s"]),
            max_body_bytes=int(self.spec["max_body_bytes"]),
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        import asyncio

        if self.predlog is not None:
            self.predlog.start()
        try:
            yield
        finally:
            # Ray Serve stopped routing here and requests in flight have finished.
            self.state.draining = True
            if self.predlog is not None:
                await asyncio.to_thread(self.predlog.close)
            shutil.rmtree(self.dir, ignore_errors=True)

    def serving(self) -> dict[str, Any]:
        """The model this replica serves (called through a deployment handle)."""
        current = self.state.current
        return {
            "name": current.name if current else None,
            "version": current.version if current else None,
            "ready": self.state.ready,
        }


def _prediction_log(spec: ReplicaSpec, folder: Path) -> PredictionLog | None:
    from assay.serving.predlog import LogConfig, PredictionLog

    found = LogConfig.from_doc(spec.get("log"))
    return None if found is None else PredictionLog(found, folder)
