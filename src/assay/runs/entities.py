"""What a run records, as plain values (no I/O, no SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from assay.serialize import json_shape

RunStatus = Literal["queued", "running", "succeeded", "failed", "killed", "pruned"]
"""A run is queued, running, or has ended: succeeded, failed, killed, or pruned (stopped
early at a sweep's request)."""
EndStatus = Literal["succeeded", "failed", "killed"]
"""How a caller closes a run (a sweep's pruning is a `StopReason`, seen by the runner)."""
StopReason = Literal["pruned", "killed"]
"""Why a running run is asked to stop; its runner ends it with this status."""
StepStatus = Literal["pending", "running", "succeeded", "failed"]
"""A step waits (pending), runs, or has ended."""

STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
_LOWER_IS_BETTER = ("loss", "error", "rmse", "mse", "mae", "cost", "latency", "time")


def lower_is_better(metric: str) -> bool:
    """A metric's direction, guessed from its name (losses, errors, costs go down)."""
    name = metric.lower()
    return any(word in name for word in _LOWER_IS_BETTER)


def same_metrics(a: dict[str, float | None], b: dict[str, float | None]) -> bool:
    """Whether two runs' final metrics agree (to 1e-9, relative): did a rerun reproduce?"""
    if set(a) != set(b):
        return False
    for key, x in a.items():
        y = b[key]
        if x is None or y is None:
            if x is not y:
                return False
        elif abs(x - y) > 1e-9 * max(1.0, abs(x)):
            return False
    return True


FINISHED: frozenset[RunStatus] = frozenset({"succeeded", "failed", "killed", "pruned"})


@dataclass(frozen=True)
class StepRun:
    """One step of one run: how long it took, and whether its output came from the cache."""

    position: int
    name: str
    status: StepStatus
    cached: bool
    seconds: float | None
    output: str | None
    output_format: str | None = None


@dataclass(frozen=True)
class Run:
    """An execution of a pipeline version on a data version with a params version.

    A notebook run (`assay.start_run`) has no pipeline; its data version is optional.
    `code` is the content hash of the code version it executed (`assay.runs.code`);
    `parent_id` the run it was made inside (a search's candidate, under the search).
    """

    id: str
    name: str
    experiment: str
    status: RunStatus
    created_at: datetime
    pipeline: str | None = None
    pipeline_version: int | None = None
    dataset: str | None = None
    data_version: int | None = None
    params_dataset: str | None = None
    params_version: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    model: str | None = None
    model_flavor: str | None = None
    logs: str | None = None
    rerun_of: str | None = None
    parent_id: str | None = None
    code: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    steps: tuple[StepRun, ...] = ()

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def pipeline_ref(self) -> str | None:
        return f"{self.pipeline}@{self.pipeline_version}" if self.pipeline else None

    @property
    def data_ref(self) -> str | None:
        return f"{self.dataset}@{self.data_version}" if self.dataset else None

    @property
    def params_ref(self) -> str | None:
        return f"{self.params_dataset}@{self.params_version}" if self.params_dataset else None

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.ended_at:
            return (self.ended_at - self.started_at).total_seconds()
        return None

    __get_pydantic_core_schema__ = json_shape(computed=("duration_s",))


@dataclass(frozen=True)
class Candidate:
    """A run recorded inside another without code of its own: one candidate of a
    hyperparameter search, with the params it tried and the scores it got."""

    params: dict[str, Any]
    metrics: dict[str, float | None]
    name: str | None = None
    status: EndStatus = "succeeded"


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float | None
    step: int | None
    ts: float
