"""`client.services`: inference services over HTTP (the `ServicesAPI` contract), and
predictions and feedback through the server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from assay.client.http import Part, parse
from assay.serialize import load
from assay.serving import api
from assay.serving.api import Progress, quiet

if TYPE_CHECKING:
    from assay.serving.entities import Service, ServiceStatus


class ServicesClient(Part):
    """The server's services: what `ServingService` offers, the same verbs and entities.

    A service runs on the server's machine; `progress` hears only that it was asked.
    """

    def deploy(
        self,
        name: str,
        model_ref: str,
        *,
        port: int | None = None,
        host: str = api.HOST,
        workers: int = api.WORKERS,
        timeout_s: float = api.TIMEOUT_S,
        max_body_bytes: int = api.MAX_BODY_BYTES,
        log_sample: float = api.LOG_SAMPLE,
        progress: Progress = quiet,
        on: str = api.ON,
        replicas: int | None = None,
        autoscale: tuple[int, int] | None = None,
        target_ongoing_requests: float = api.TARGET_ONGOING_REQUESTS,
        cpus: float | None = None,
        memory_bytes: int | None = None,
    ) -> Service:
        """Start `model_ref` as service `name` on the server's machine, bound to `host`
        there; returns once it answers. `log_sample` is the share of requests logged for
        monitoring (0: none)."""
        from assay.serving.entities import Service

        progress("starting it on the server" if on == "local" else "deploying it on Ray")
        body: dict[str, Any] = {
            "name": name, "model": model_ref, "port": port, "host": host, "workers": workers,
            "timeout_s": timeout_s, "max_body_bytes": max_body_bytes, "log_sample": log_sample,
            "on": on, "replicas": replicas, "cpus": cpus, "memory_bytes": memory_bytes,
        }  # fmt: skip
        if autoscale is not None:
            body["autoscale"] = {
                "min": autoscale[0],
                "max": autoscale[1],
                "target_ongoing_requests": target_ongoing_requests,
            }
        return parse(Service, self._call("POST", "/services", json=body))

    def services(self) -> list[Service]:
        from assay.serving.entities import Service

        return self._list(Service, "/services")

    def get(self, name: str) -> Service:
        from assay.serving.entities import Service

        return parse(Service, self._call("GET", f"/services/{name}"))

    def status(self, name: str) -> ServiceStatus:
        """The service with its uptime, its workers and its traffic (`by_version` is keyed
        by the version number as a string, as JSON has it)."""
        from assay.serving.entities import ServiceStatus

        return load(ServiceStatus, self._call("GET", f"/services/{name}/status"))

    def start(self, name: str, *, progress: Progress = quiet) -> Service:
        from assay.serving.entities import Service

        progress("starting it on the server")
        return parse(Service, self._call("POST", f"/services/{name}/start"))

    def update(self, name: str, model_ref: str, *, progress: Progress = quiet) -> Service:
        from assay.serving.entities import Service

        progress("swapping the model on the server")
        doc = self._call("PUT", f"/services/{name}", json={"model": model_ref})
        return parse(Service, doc)

    def stop(self, name: str, *, timeout_s: float = api.STOP_TIMEOUT_S) -> Service:
        from assay.serving.entities import Service

        doc = self._call("POST", f"/services/{name}/stop", json={"timeout_s": timeout_s})
        return parse(Service, doc)

    def logs(self, name: str, *, lines: int = api.LOG_LINES) -> str:
        return str(self._call("GET", f"/services/{name}/logs", params={"lines": lines}) or "")

    def predict(self, name: str, instances: Sequence[Any]) -> dict[str, Any]:
        """KServe V1 through the server to service `name`. The answer's `request_id` is
        the one its prediction was logged under: send it back with `feedback`."""
        import uuid

        request_id = uuid.uuid4().hex
        found: dict[str, Any] = self._call(
            "POST",
            f"/services/{name}/predict",
            json={"instances": list(instances)},
            headers={"X-Request-Id": request_id},
        )
        return {**found, "request_id": request_id}

    def feedback(
        self,
        name: str,
        request_id: str,
        *,
        label: Any = None,
        reward: float | None = None,
    ) -> dict[str, Any]:
        """The true `label` (or a `reward`) of a prediction service `name` made."""
        body: dict[str, Any] = {"request_id": request_id}
        body.update({"reward": reward} if reward is not None else {"label": label})
        found: dict[str, Any] = self._call("POST", f"/services/{name}/feedback", json=body)
        return found
