"""The control plane's side of A/B tests on a Ray cluster (`abtests create ... --on ray`).

The test is the Ray Serve application `abtest-NAME` (`assay.abtests.ray_router` says
what runs in it). Nothing about it lives in a folder of this machine, so any machine
of the team (or the server) can change it: the metadata row says it runs on Ray, and
the deployment (router spec, variant specs, replica options) is a document beside its
events in the object store, under `logs/abtests/NAME/<created>/`. A change (pause,
resume, weights, conclusion) rewrites the document and deploys it again: Ray Serve rolls
the application (new replicas up before old ones go, so no request fails), and what the
routers learned stays in the test's shared-state actor.

`ABTestService` keeps the metadata row; for a test whose `on` is `ray` it asks
`RayABTests` for everything on the cluster: create, change, start, stop, what its router
is doing, its logs and events, and the decision the router took on its own.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from assay.abtests.entities import (
    ABTestFailedError,
    ABTestStatus,
    RouterState,
    provenance,
)
from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.serving import processes

if TYPE_CHECKING:
    from datetime import datetime

    from assay.abtests.api import Progress
    from assay.abtests.entities import ABTest, VariantSpec
    from assay.registry.entities import ModelVersion
    from assay.serving.ray_serve import RayServe

DEPLOYMENT = "deployment.json"
DECIDED = "decided.json"  # as `assay.abtests.ray_router` writes it


def prefix(name: str, created_at: datetime) -> str:
    """The test's folder in the store's logs: a test created again under the same name
    starts a new log."""
    return f"abtests/{name}/{created_at.strftime('%Y%m%dT%H%M%S%f')}"


def prefix_of(test: ABTest) -> str:
    """`prefix` of a test as read from the metadata store."""
    return prefix(test.name, test.created_at)


class RayABTests:
    """Deploys, changes and removes A/B tests on the cluster, and reads what their
    routers left in the store."""

    def __init__(self, ray: RayServe, store_url: str) -> None:
        from assay.cluster import absolute

        self.ray = ray
        self.store_url = absolute(store_url)

    # ---- what the service asks of a test on Ray ----------------------------------------------

    def place(self, name: str) -> tuple[str, int]:
        """Where a new test `name` will answer: the host and port of the cluster's proxy.
        Connects first, so an unreachable cluster fails quickly.

        Raises:
            InvalidArgumentError: the cluster cannot be reached.
            ConflictError: the cluster already runs an application by that name.
        """
        host, port = self.ray.proxy()
        self.check_free(name)
        return host, port

    def create(
        self,
        test: ABTest,
        specs: Sequence[VariantSpec],
        versions: Sequence[ModelVersion],
        *,
        replicas: int,
        cpus: float | None,
        timeout_s: float,
        max_body_bytes: int,
        log_sample: float,
        ready_timeout_s: float,
        progress: Progress,
    ) -> None:
        """Deploy a new test (its row is written) and wait until the proxy routes it; when
        it does not come up, nothing is left on the cluster.

        Raises:
            ABTestFailedError: Ray Serve gave up on it (the reason, one line).
        """
        from assay.serving.ray_serve import RayDeployFailedError

        doc = self.deployment(
            test.name,
            prefix_of(test),
            strategy=test.strategy,
            key=test.key,
            auto_promote=test.auto_promote,
            specs=specs,
            versions=versions,
            replicas=replicas,
            cpus=cpus,
            timeout_s=timeout_s,
            max_body_bytes=max_body_bytes,
            log_sample=log_sample,
        )
        progress("starting the router and the variants on Ray Serve; each loads and warms up")
        try:
            self.run(prefix_of(test), doc, ready_timeout_s)
        except Exception as exc:  # nothing left behind, whatever stopped it
            with contextlib.suppress(Exception):
                self.delete(test.name)
            if isinstance(exc, RayDeployFailedError):
                raise ABTestFailedError(
                    f"A/B test {test.name!r} did not start on Ray: {exc.message}", abtest=test.name
                ) from None
            raise
        processes.await_route(test.url, ready_timeout_s)

    def change(
        self,
        test: ABTest,
        *,
        status: ABTestStatus | None,
        strategy: str | None,
        winner: str | None,
        timeout_s: float = 120.0,
    ) -> dict[str, Any]:
        """Roll the application to a new status, strategy or winner (None: as it is; no
        request fails); what it now runs with, for the row.

        Raises:
            ABTestFailedError: the router did not take the change.
        """
        from assay.serving.ray_serve import RayDeployFailedError

        self.ray.proxy()
        now: ABTestStatus = status or test.status
        strategy = strategy or test.strategy
        winner = winner if winner is not None else test.winner
        try:
            self.roll(prefix_of(test), timeout_s, status=now, strategy=strategy, winner=winner)
        except RayDeployFailedError as exc:
            raise ABTestFailedError(
                f"The router did not take the change: {exc.message}.", abtest=test.name
            ) from None
        return {"status": now, "strategy": strategy, "winner": winner}

    def start(self, test: ABTest, status: ABTestStatus, ready_timeout_s: float) -> None:
        """Deploy a stopped test again from its document, with `status`; what a failed
        router left is replaced whole.

        Raises:
            ABTestFailedError: it did not come up.
        """
        self.ray.proxy()
        with contextlib.suppress(Exception):
            self.delete(test.name)
        try:
            self.roll(
                prefix_of(test),
                ready_timeout_s,
                status=status,
                strategy=test.strategy,
                winner=test.winner,
            )
        except Exception as exc:
            raise ABTestFailedError(
                f"A/B test {test.name!r} did not start on Ray: {getattr(exc, 'message', exc)}",
                abtest=test.name,
            ) from None

    def stop(self, test: ABTest) -> None:
        """Remove the application; Ray Serve drains each replica before it stops it."""
        self.ray.proxy()
        self.delete(test.name)

    def logs(self, test: ABTest, lines: int) -> str:
        from assay.serving.ray_serve import abtest_app

        self.ray.proxy()
        return self.ray.logs(abtest_app(test.name), lines)

    def state(self, name: str, status: str, host: str, port: int) -> RouterState:
        """What a test's router is doing, asked through the cluster's HTTP proxy and a
        router replica (no connection to Ray, so a list stays quick): `running`,
        `starting` or `stopped`."""
        if status == "stopped":
            return "stopped"
        url = f"{processes.probe_url(host, port)}/abtests/{name}"
        # Through the cluster's proxy and a router replica: a busy cluster gets longer.
        code = processes.ready_code(url, timeout_s=10.0)
        answered: dict[int, RouterState] = {200: "running", 503: "starting"}
        return answered.get(code or 0, "stopped")

    def winner(self, test: ABTest) -> str | None:
        """The winner the router picked on its own (auto-promote), if it picked one."""
        found = self.decided(prefix_of(test))
        return None if found is None else str(found["winner"])

    # ---- the cluster and the store ------------------------------------------------------------

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
        from assay.serving.predlog import log_block

        log = log_block(self.store_url, "abtests", name, log_sample)
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

    def roll(
        self,
        where: str,
        timeout_s: float,
        *,
        status: ABTestStatus,
        strategy: str,
        winner: str | None,
    ) -> None:
        """Redeploy the document under `where` with a new status, strategy or winner."""
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

    def events(self, test: ABTest) -> list[dict[str, Any]]:
        """Every event the test's routers logged, from the store."""
        from assay.abtests.eventlog import read_segments

        return read_segments(self.store_url, f"{prefix_of(test)}/events")

    def _store(self, where: str) -> Any:
        from assay.store.segments import SegmentStore

        return SegmentStore(self.store_url, where)
