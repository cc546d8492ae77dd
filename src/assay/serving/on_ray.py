"""Services on a Ray cluster: what `ServingService` asks of one whose row says `ray`.

A service deployed `on="ray"` is a Ray Serve application (`assay.serving.ray_serve`): no
folder and no process here. This module runs, rolls and removes it, reads its replicas,
its logs and its state (through the cluster's HTTP proxy), and checks the replicas'
settings; the service's row stays `ServingService`'s to write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from assay.errors import AssayError, ConflictError, InvalidArgumentError
from assay.serving import processes
from assay.serving.entities import ReplicaState, ServiceFailedError, ServiceState

if TYPE_CHECKING:
    from assay.registry.entities import ModelVersion
    from assay.serving.ray_serve import RayServe


class RayServices:
    """Runs, rolls and removes services on the cluster, and reads them back."""

    def __init__(self, ray: RayServe, store_url: str) -> None:
        from assay.cluster import absolute

        self.ray = ray
        self.store_url = absolute(store_url)

    def place(self, name: str) -> tuple[str, int]:
        """Where a new service `name` will answer: the cluster proxy's host and port.
        Connects first, so an unreachable cluster is a quick answer.

        Raises:
            InvalidArgumentError: the cluster cannot be reached.
            ConflictError: the cluster already runs an application by that name.
        """
        host, port = self.ray.proxy()
        if self.ray.exists(name):
            raise ConflictError(
                f"The Ray cluster already runs an application named {name!r} that this "
                "workspace did not start (or lost track of); pick another name, or remove it "
                f"with `serve shutdown` / `serve.delete({name!r})`.",
                service=name,
            )
        return host, port

    def replace(self, name: str) -> tuple[str, int]:
        """Where a stopped service `name` will answer again; what a failed start left on
        the cluster is removed first."""
        host, port = self.ray.proxy()
        if self.ray.exists(name):
            self.ray.delete(name)
        return host, port

    def run(
        self,
        name: str,
        mv: ModelVersion,
        settings: Mapping[str, Any],
        log: dict[str, Any] | None,
        ready_timeout_s: float,
        *,
        rollback: ModelVersion | None,
    ) -> None:
        """Run (or roll the application to) `mv`. When it fails, roll back to `rollback`,
        or remove the application when there is none to roll back to.

        Raises:
            ServiceFailedError: a replica could not load `mv` (what serves now is said).
        """
        from assay.serving.ray_serve import RayDeployFailedError

        try:
            self.ray.run(name, self._spec(name, mv, settings, log), dict(settings),
                         timeout_s=ready_timeout_s)  # fmt: skip
        except RayDeployFailedError as exc:
            if rollback is None:
                self.ray.delete(name)
                raise ServiceFailedError(
                    f"Service {name!r} did not start on Ray: a replica could not load "
                    f"{mv.ref}: {exc.message}",
                    service=name,
                ) from None
            self.ray.run(name, self._spec(name, rollback, settings, log), dict(settings),
                         timeout_s=ready_timeout_s)  # fmt: skip
            raise ServiceFailedError(
                f"Service {name!r} could not switch to {mv.ref}: {exc.message}. "
                f"It still serves {rollback.ref}.",
                service=name,
                model=mv.ref,
            ) from None

    def _spec(
        self,
        name: str,
        mv: ModelVersion,
        settings: Mapping[str, Any],
        log: dict[str, Any] | None,
    ) -> dict[str, Any]:
        return {
            "service": name,
            "store": self.store_url,
            "bundle": mv.bundle,
            "name": mv.name,
            "version": mv.version,
            "timeout_s": float(settings["timeout_s"]),
            "max_body_bytes": int(settings["max_body_bytes"]),
            "log": log,
        }

    def stop(self, name: str) -> None:
        self.ray.proxy()
        self.ray.delete(name)  # Ray Serve drains each replica before it stops it

    def replicas(self, name: str) -> list[ReplicaState]:
        """The replicas, or none when the cluster cannot be reached (the status still is)."""
        with contextlib.suppress(AssayError):
            self.ray.proxy()
            return self.ray.replicas(name)
        return []

    def logs(self, name: str, lines: int) -> str:
        self.ray.proxy()
        return self.ray.logs(name, lines)

    @staticmethod
    def state(name: str, desired: str, host: str, port: int) -> ServiceState:
        """Asked through the cluster's HTTP proxy: no connection to Ray for a list."""
        if desired != "running":
            return "stopped"
        code = processes.ready_code(f"{processes.probe_url(host, port)}/{name}")
        answered: dict[int, ServiceState] = {200: "running", 503: "starting"}
        return answered.get(code or 0, "failed")


def ray_settings(
    replicas: int | None,
    autoscale: tuple[int, int] | None,
    target_ongoing_requests: float,
    cpus: float | None,
    memory_bytes: int | None,
) -> dict[str, Any]:
    """The replicas' settings of a service on Ray, checked.

    Raises:
        InvalidArgumentError: a setting out of range, or both --replicas and --autoscale.
    """
    if replicas is not None and autoscale is not None:
        raise InvalidArgumentError("Give --replicas or --autoscale, not both.")
    if replicas is not None and replicas < 1:
        raise InvalidArgumentError(f"--replicas must be at least 1, not {replicas}.")
    scale = None
    if autoscale is not None:
        low, high = autoscale
        if not 0 <= low <= high or high < 1:
            raise InvalidArgumentError(
                f"--autoscale MIN..MAX needs 0 <= MIN <= MAX and MAX >= 1, not {low}..{high}."
            )
        if target_ongoing_requests <= 0:
            raise InvalidArgumentError(
                f"--target-ongoing must be positive, not {target_ongoing_requests:g}."
            )
        scale = {"min": low, "max": high, "target_ongoing_requests": target_ongoing_requests}
    if cpus is not None and cpus <= 0:
        raise InvalidArgumentError(f"--cpus must be positive, not {cpus:g}.")
    if memory_bytes is not None and memory_bytes <= 0:
        raise InvalidArgumentError(f"--memory must be positive, not {memory_bytes}.")
    return {
        "replicas": None if scale else (replicas or 1),
        "autoscale": scale,
        "cpus": cpus if cpus is not None else 0.5,
        "memory_bytes": memory_bytes,
    }


def replica_count(settings: Mapping[str, Any]) -> int:
    """How many replicas a service on Ray starts with."""
    scale = settings.get("autoscale")
    return int(scale["min"]) if scale else int(settings.get("replicas") or 1)


__all__ = ["RayServices", "ray_settings", "replica_count"]
