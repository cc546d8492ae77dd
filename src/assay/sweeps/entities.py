"""A sweep and its trials, as read back from the store. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# A trial's states: Optuna's, plus "running" (its run is executing) and
# "interrupted" (the sweep stopped under it; `assay sweep resume` tries those
# params again).
TRIAL_STATES = ("running", "complete", "pruned", "fail", "interrupted")
FINISHED_STATES = ("complete", "pruned", "fail")
# A sweep's statuses while it has not ended: recorded, waiting for a driver (a server's),
# driven. It ends finished, stopped (a limit), failed or interrupted.
ACTIVE = ("created", "queued", "running")


@dataclass(frozen=True)
class Objective:
    """A quantity to optimise: a run metric, or `cost` / `wall_s` from its resources."""

    metric: str
    direction: str  # "maximize" | "minimize"

    @property
    def label(self) -> str:
        return f"{self.metric}:{'max' if self.direction == 'maximize' else 'min'}"

    def to_dict(self) -> dict[str, str]:
        return {"metric": self.metric, "direction": self.direction}


@dataclass(frozen=True)
class Trial:
    number: int
    state: str
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "run": self.run_id,
            "params": self.params,
            "values": self.values,
            "intermediate": {str(k): v for k, v in sorted(self.intermediate.items())},
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "seconds": self.seconds,
        }


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
    status: str
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pipeline": self.pipeline_ref,
            "data": self.data_ref,
            "objectives": [o.to_dict() for o in self.objectives],
            "sampler": self.sampler,
            "pruner": self.pruner,
            "prune_on": self.prune_on,
            "seed": self.seed,
            "trials": self.trials,
            "parallel": self.parallel,
            "executor": self.executor,
            "budget": self.budget,
            "timeout_s": self.timeout_s,
            "register": self.register,
            "status": self.status,
            "stop_cause": self.stop_cause,
            "best_runs": list(self.best_runs),
            "best_models": list(self.best_models),
            "created_at": self.created_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "space": self.space,
            "base_params": self.base_params,
            "trial_list": [t.to_dict() for t in self.trial_list],
        }
