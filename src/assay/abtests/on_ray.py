"""The control plane's side of A/B tests on a Ray cluster (`abtests create ... --on ray`).

The test is the Ray Serve application `abtest-NAME` (`assay.abtests.ray_router` says
what runs in it). Nothing about it lives in a folder of this machine, so any machine
of the team (or the server) can change it: the metadata row says it runs on Ray, and
the deployment (router spec, variant specs, replica options) is a document beside its
events in the object store, under `logs/abtests/NAME/<created>/`. A change (pause,
resume, weights, conclusion) rewrites the document and deploys it again: Ray Serve rolls
the application (new replicas up before old ones go, so no request fails), and what the
routers learned stays in the test's shared-state actor.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from assay.errors import ConflictError, InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from datetime import datetime

    from assay.abtests.entities import VariantSpec
    from assay.registry.entities import ModelVersion
    from assay.serving.ray_serve import RayServe

DEPLOYMENT = "deployment.json"
DECIDED = "decided.json"  # as `assay.abtests.ray_router` writes it


def prefix(name: str, created_at: datetime) -> str:
    """The test's folder in the store's logs: a test created again under the same name
    starts a new log."""
    return f"abtests/{name}/{created_at.strftime('%Y%m%dT%H%M%S%f')}"


class RayABTests:
    """Deploys, changes and removes A/B tests on the cluster, and reads what their
    routers left in the store."""

    def __init__(self, ray: RayServe, store_url: str) -> None:
        from assay.cluster import absolute

        self.ray = ray
        self.store_url = absolute(store_url)

    def check_free(self, name: str) -> None:
        """Raises ConflictError when the cluster already runs an application by that name."""
        from assay.serving.ray_serve import abtest_app

        if self.ray.exists(abtest_app(name)):
            raise ConflictError(
                f"The Ray cluster already runs an application {abtest_app(name)!r} that this "
                "workspace did not start (or lost track of); pick another name, or remove it "
                f"with `serve.delete({abtest_app(name)!r})`.",
                abtest=name,
            )

    def deployment(
        self,
        name: str,
        where: str,
        *,
        strategy: str,
        key: str | None,
        auto_promote: bool,
        specs: Sequence[VariantSpec],
        versions: Sequence[ModelVersion],
        replicas: int,
        cpus: float | None,
        timeout_s: float,
        max_body_bytes: int,
        log_sample: float,
    ) -> dict[str, Any]:
        """The document a test on Ray is deployed from (and kept as, in the store)."""
        from assay.abtests.service import provenance
        from assay.serving.predlog import log_prefix

        log = (
            {"store": self.store_url, "prefix": log_prefix("abtests", name), "sample": log_sample}
            if log_sample > 0
            else None
        )
        router = {
            "name": name,
            "strategy": strategy,
            "key": key,
            "status": "running",
            "winner": None,
            "auto_promote": auto_promote,
            "alpha": 0.05,
            "target_id": uuid.uuid4().hex,
            "variants": [
                {
                    "label": spec.label,
                    "name": mv.name,
                    "version": mv.version,
                    "provenance": provenance(mv),
                }
                for spec, mv in zip(specs, versions, strict=True)
            ],
            "store": self.store_url,
            "events": f"{where}/events",
            "timeout_s": timeout_s,
            "max_body_bytes": max_body_bytes,
        }
        variants = {
            spec.label: {
                "service": f"{name}-{spec.label}",
                "store": self.store_url,
                "bundle": mv.bundle,
                "name": mv.name,
                "version": mv.version,
                "timeout_s": timeout_s,
                "max_body_bytes": max_body_bytes,
                "log": log,
                "variant": spec.label,
            }
            for spec, mv in zip(specs, versions, strict=True)
        }
        options = {"replicas": replicas, "cpus": cpus, "timeout_s": timeout_s, "drain_s": 0.5}
        return {"router": router, "variants": variants, "options": options}

    def run(self, where: str, doc: dict[str, Any], timeout_s: float) -> None:
        """Deploy (or roll to) `doc`, then keep it in the store.

        Raises:
            RayDeployFailedError: it did not come up.
        """
        self.ray.run_abtest(
            doc["router"]["name"], doc["router"], doc["variants"], doc["options"],
            timeout_s=timeout_s,
        )  # fmt: skip
        self._store(where).put(DEPLOYMENT, json.dumps(doc).encode())

    def read(self, where: str) -> dict[str, Any]:
        """The deployment document a test was last deployed from.

        Raises:
            NotFoundError: the store has none (it was removed by hand).
        """
        try:
            doc = json.loads(self._store(where).get(DEPLOYMENT))
        except ValueError as exc:
            raise InvalidArgumentError(f"The A/B test's {DEPLOYMENT} is not JSON: {exc}.") from exc
        if not isinstance(doc, dict):
            raise NotFoundError(f"No deployment document under {where}.")
        return doc

    def change(
        self, where: str, timeout_s: float, *, status: str, strategy: str, winner: str | None
    ) -> None:
        """Roll the router to a new status, strategy or winner."""
        doc = self.read(where)
        doc["router"].update(
            status=status, strategy=strategy, winner=winner, target_id=uuid.uuid4().hex
        )
        self.run(where, doc, timeout_s)

    def delete(self, name: str) -> None:
        self.ray.delete_abtest(name)

    def decided(self, where: str) -> dict[str, Any] | None:
        """The decision the router took on its own (auto-promote), if it took one."""
        try:
            doc = json.loads(self._store(where).get(DECIDED))
        except (NotFoundError, ValueError):
            return None
        return doc if isinstance(doc, dict) and doc.get("winner") else None

    def events(self, where: str) -> list[dict[str, Any]]:
        from assay.abtests.eventlog import read_segments

        return read_segments(self.store_url, f"{where}/events")

    def _store(self, where: str) -> Any:
        from assay.store.segments import SegmentStore

        return SegmentStore(self.store_url, where)
