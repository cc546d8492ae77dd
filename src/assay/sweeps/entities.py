"""A sweep and its trials, as read back from the store. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from assay.serialize import json_shape

TrialState = Literal["running", "complete", "pruned", "fail", "interrupted", "retried"]
"""A trial's states: Optuna's (complete, pruned, fail), plus "running" (its run is
executing), "interrupted" (the sweep stopped under it; `assay sweep resume` tries those
params again) and "retried" (an interrupted trial whose params a later trial tried)."""
SweepStatus = Literal[
    "created", "queued", "running", "finished", "stopped", "failed", "interrupted"
]
"""A sweep is recorded (created), waiting for a driver (a server's: queued), or driven
(running); it ends finished, stopped (a limit), failed or interrupted."""

TRIAL_STATES: tuple[TrialState, ...] = get_args(TrialState)
FINISHED_STATES: tuple[TrialState, ...] = ("complete", "pruned", "fail")
# A sweep's statuses while it has not ended.
ACTIVE: tuple[SweepStatus, ...] = ("created", "queued", "running")


@dataclass(frozen=True)
class Objective:
    """A quantity to optimise: a run metric, or `cost` / `wall_s` from its resources."""

    metric: str
    direction: str  # "maximize" | "minimize"

    @property
    def label(self) -> str:
        return f"{self.metric}:{'max' if self.direction == 'maximize' else 'min'}"


@dataclass(frozen=True)
class Trial:
    number: int
    state: TrialState
    run_id: str | None
    params: dict[str, Any]
    distributions: dict[str, str]  # name -> Optuna's distribution JSON
    values: list[float] | None
    intermediate: dict[int, float]
    error: str | None
    started_at: datetime
    ended_at: datetime | None

    @property
    def seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    __get_pydantic_core_schema__ = json_shape(computed=("seconds",))


@dataclass(frozen=True)
class Sweep:
    id: int
    name: str
    pipeline: str
    pipeline_version: int
    dataset: str
    data_version: int
    base_params: dict[str, Any]
    space: dict[str, Any]
    objectives: tuple[Objective, ...]
    sampler: str
    pruner: str
    prune_on: str | None
    seed: int
    trials: int
    parallel: int
    executor: str
    budget: float | None
    timeout_s: float | None
    register: str
    status: SweepStatus
    stop_cause: str | None
    best_runs: tuple[str, ...]
    best_models: tuple[str, ...]
    created_at: datetime
    ended_at: datetime | None
    pid: int | None = None
    host: str | None = None
    trial_list: tuple[Trial, ...] = field(default=())

    @property
    def pipeline_ref(self) -> str:
        return f"{self.pipeline}@{self.pipeline_version}"

    @property
    def data_ref(self) -> str:
        return f"{self.dataset}@{self.data_version}"

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def counted(self) -> int:
        """Trials that count toward `trials`: finished ones (interrupted ones are retried)."""
        return sum(1 for t in self.trial_list if t.state in FINISHED_STATES)
