"""What a services workspace offers, locally (`ServingService`) or over HTTP
(`assay.client.ServicesClient`): one signature and one set of defaults for both.

The defaults are written here once; the service, the client, the CLI's options and the
server's wire models all read them, so a caller gets the same service whichever way it
asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assay.serving.entities import Service, ServiceStatus

Progress = Callable[[str], None]
"""Told what a long operation is doing now, one short line at a time."""

HOST = "127.0.0.1"
WORKERS = 1
TIMEOUT_S = 30.0
"""Seconds a prediction may take before a 504."""
MAX_BODY_BYTES = 10 * 1024 * 1024
LOG_SAMPLE = 1.0
"""Share of requests whose inputs and outputs are logged for monitoring (0: none)."""
STOP_TIMEOUT_S = 60.0
"""Seconds a stopping service gets to finish the requests in flight."""
LOG_LINES = 200
ON = "local"
"""Where a service runs: `local` (a process on this machine) or `ray` (a Ray Serve
application on the cluster at ASSAY_RAY_ADDRESS)."""
TARGET_ONGOING_REQUESTS = 2.0
"""On Ray, with autoscaling: the ongoing requests per replica it scales to keep."""


def quiet(_message: str) -> None:
    """A `Progress` that says nothing."""


class ServicesAPI(Protocol):
    """Inference services: deploy a model version, read, change, stop and start them."""

    def deploy(
        self,
        name: str,
        model_ref: str,
        *,
        port: int | None = None,
        host: str = HOST,
        workers: int = WORKERS,
        timeout_s: float = TIMEOUT_S,
        max_body_bytes: int = MAX_BODY_BYTES,
        log_sample: float = LOG_SAMPLE,
        progress: Progress = quiet,
        on: str = ON,
        replicas: int | None = None,
        autoscale: tuple[int, int] | None = None,
        target_ongoing_requests: float = TARGET_ONGOING_REQUESTS,
        cpus: float | None = None,
        memory_bytes: int | None = None,
    ) -> Service:
        """Start `model_ref` as service `name`; returns once it answers as ready.

        `on="ray"` deploys it as a Ray Serve application instead: `replicas` of it, or
        between `autoscale`'s (min, max) at `target_ongoing_requests` per replica, each
        with `cpus` and `memory_bytes`."""
        ...

    def start(self, name: str, *, progress: Progress = quiet) -> Service:
        """Start a stopped service again, with the model and settings it had."""
        ...

    def update(self, name: str, model_ref: str, *, progress: Progress = quiet) -> Service:
        """Swap the model a running service serves, without dropping a request."""
        ...

    def stop(self, name: str, *, timeout_s: float = STOP_TIMEOUT_S) -> Service:
        """Stop taking requests, finish those in flight (for up to `timeout_s`), exit."""
        ...

    def services(self) -> list[Service]:
        """Every service, with the state its process is in now."""
        ...

    def get(self, name: str) -> Service:
        """One service and its current state."""
        ...

    def status(self, name: str) -> ServiceStatus:
        """The service with its uptime, its workers and its traffic."""
        ...

    def logs(self, name: str, *, lines: int = LOG_LINES) -> str:
        """The last `lines` lines of the service's log."""
        ...
