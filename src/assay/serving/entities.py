"""What the serving control plane stores and reports, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from typing_extensions import TypedDict

from assay.errors import AssayError
from assay.serialize import json_shape


class ServiceFailedError(AssayError):
    """A service process did not come up, or a model did not load in it."""

    status = 502


ServiceDesired = Literal["running", "stopped"]
"""What the user last asked of a service."""
ServiceState = Literal["running", "starting", "stopped", "failed"]
"""What was found when a service was read (`failed`: asked to run, but its process is gone
or its application does not answer)."""


@dataclass(frozen=True)
class Service:
    """A model version deployed behind a REST endpoint, on this machine or a Ray cluster.

    `desired` is what the user last asked for (`running` or `stopped`); `state` is what
    was found when the service was read: `running` (answering and ready), `starting`,
    `stopped`, or `failed` (asked to run, but its process is gone).

    `on` is where it runs: `local` (a process here, `workers` uvicorn workers) or `ray`
    (a Ray Serve application, `workers` its replicas; `host` and `port` are the Serve
    HTTP proxy's, and the service answers under `/<name>` there).
    """

    name: str
    model: str
    version: int
    host: str
    port: int
    workers: int
    desired: ServiceDesired
    """`running` or `stopped`: what the user last asked for."""
    state: ServiceState
    """`running`, `starting`, `stopped` or `failed`: what was found."""
    pid: int | None
    started_at: datetime | None
    created_at: datetime
    updated_at: datetime
    settings: dict[str, Any] = field(default_factory=dict)
    """timeout_s, max_body_bytes and the other deploy settings."""
    last_error: str | None = None
    on: str = "local"

    @property
    def model_ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def url(self) -> str:
        if self.on == "ray":
            return f"http://{self.host}:{self.port}/{self.name}"
        return f"http://{self.host}:{self.port}"

    __get_pydantic_core_schema__ = json_shape(computed=("model_ref", "url"))
    # The attribute docstrings describe the fields in the OpenAPI document.
    __pydantic_config__: ClassVar[dict[str, bool]] = {"use_attribute_docstrings": True}


class WorkerState(TypedDict):
    """What one worker process of a service reports about itself (its
    `workers/<pid>.json`); times are ISO 8601."""

    pid: int
    port: int
    target_id: str | None
    """The deployment it serves (null before its first model loads)."""
    name: str | None
    """The model it serves."""
    version: int | None
    ready: bool
    """Loaded, warmed up, and not draining."""
    error: str | None
    """Why the last model it was asked to load failed to (null once a later one loads)."""
    failed_target_id: str | None
    started_at: str
    updated_at: str


class ReplicaState(TypedDict):
    """One replica of a service on Ray, as Ray Serve reports it."""

    deployment: str
    """`model` (loads and answers) or `http` (the entry that hands it requests)."""
    replica_id: str
    state: str
    """STARTING, RUNNING, UPDATING, RECOVERING or STOPPING."""
    pid: int | None
    node_ip: str | None
    started_at: str | None
    log_file: str | None
    """Its log, on its node (relative to that node's Ray logs folder)."""


class TrafficSummary(TypedDict):
    """Prediction requests answered, failed ones among them, and latency quantiles in
    milliseconds (null before any request)."""

    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None


class VersionTraffic(TrafficSummary):
    """The traffic of one model version the service has served."""

    model: str


class Traffic(TrafficSummary):
    """A running service's traffic since it started, read from its `/metrics`."""

    by_version: dict[int | str, VersionTraffic]
    """The same, for each model version served (by version number)."""


@dataclass(frozen=True, kw_only=True)
class ServiceStatus(Service):
    """A service with what it is doing now (`assay services status`): `uptime_s` is
    seconds since it started, `traffic` what its `/metrics` say (both null when it is
    not running, or its metrics could not be read), `workers_now` its live worker
    processes (empty when it is not running)."""

    uptime_s: float | None
    """Seconds since it started; null when it is not running."""
    traffic: Traffic | None
    """Null when it is not running, or its metrics could not be read."""
    workers_now: list[WorkerState]
    """Its live worker processes; empty when it is not running (or runs on Ray)."""
    replicas: list[ReplicaState]
    """On Ray: its replicas and their states, as Ray Serve reports them; empty here."""
