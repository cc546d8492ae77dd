"""A sweep's options and objectives: checking them, reading a run's values, ranking trials.

No store and no Optuna here: a client (`assay sweep --remote`) checks a sweep's options
with these before it sends anything, and the scheduler, the service and the CLI's views
rank trials with the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from assay.errors import InvalidArgumentError
from assay.runs.entities import Run, lower_is_better
from assay.sweeps import study as studies
from assay.sweeps.entities import Objective, Sweep, Trial

# Quantities a run has besides its metrics: its resources.
RESOURCE_OBJECTIVES = {"cost": "cost", "wall_s": "wall_s"}
REGISTER = ("best", "all", "none")


def check_options(
    *,
    trials: int,
    objectives: Sequence[str],
    direction: str | None,
    parallel: int,
    sampler: str,
    pruner: str,
    prune_on: str | None,
    timeout_s: float | None,
    budget: float | None,
    register: str,
) -> list[Objective]:
    """The checks of a sweep's options that need no store; returns the objectives.

    A client (`assay sweep --remote`) runs them before it sends anything, so that a bad
    option is refused before its pipeline is registered on the server.

    Raises:
        InvalidArgumentError: the first option that is wrong, and what it takes.
    """
    if trials < 1:
        raise InvalidArgumentError("--trials must be at least 1.")
    if parallel < 1:
        raise InvalidArgumentError("--parallel must be at least 1.")
    if timeout_s is not None and timeout_s <= 0:
        raise InvalidArgumentError("--timeout must be a number of seconds above 0.")
    if budget is not None and budget <= 0:
        raise InvalidArgumentError("--budget must be a cost above 0.")
    if register not in REGISTER:
        raise InvalidArgumentError(f"--register takes {', '.join(REGISTER)}, not {register!r}.")
    goals = parse_objectives(objectives, direction)
    studies.check_choices(sampler, pruner, goals)
    if len(goals) > 1 and prune_on:
        raise InvalidArgumentError(
            "Pruning works on one objective; drop --prune-on or keep one --objective."
        )
    return goals


def parse_objectives(specs: Sequence[str], direction: str | None) -> list[Objective]:
    """`val_f1`, `val_f1:max`, `cost:min` → objectives; the direction defaults from the name.

    Raises:
        InvalidArgumentError: no objective, a bad direction, or one named twice.
    """
    if direction is not None and direction not in ("max", "min"):
        raise InvalidArgumentError(f"--direction takes max or min, not {direction!r}.")
    if not specs:
        raise InvalidArgumentError("Give the metric to optimise with --objective, e.g. val_f1:max.")
    out: list[Objective] = []
    for spec in specs:
        metric, _, way = spec.strip().rpartition(":") if ":" in spec else (spec.strip(), "", "")
        if not metric:
            raise InvalidArgumentError(f"--objective {spec!r} names no metric.")
        way = way or direction or ""
        if way not in ("", "max", "min"):
            raise InvalidArgumentError(
                f"--objective {spec!r}: the direction after ':' is max or min, not {way!r}."
            )
        if not way:
            way = "min" if metric in RESOURCE_OBJECTIVES or lower_is_better(metric) else "max"
        if any(o.metric == metric for o in out):
            raise InvalidArgumentError(f"--objective {metric!r} is given twice.")
        out.append(Objective(metric, "maximize" if way == "max" else "minimize"))
    return out


def objective_values(run: Run, objectives: Sequence[Objective]) -> tuple[list[float], str | None]:
    """The run's value of each objective, and the first one it lacks (or None)."""
    values: list[float] = []
    for goal in objectives:
        value = run.metrics.get(goal.metric)
        if value is None and goal.metric in RESOURCE_OBJECTIVES:
            value = (run.resources or {}).get(RESOURCE_OBJECTIVES[goal.metric])
        if value is None or not math.isfinite(float(value)):
            return [], goal.metric
        values.append(float(value))
    return values, None


def best_trial(trials: Sequence[Trial], goal: Objective) -> Trial | None:
    scored = [t for t in trials if t.state == "complete" and t.values]
    if not scored:
        return None
    pick = max if goal.direction == "maximize" else min
    return pick(scored, key=lambda t: (t.values or [0.0])[0])


def pareto_front(trials: Sequence[Trial], objectives: Sequence[Objective]) -> list[Trial]:
    """The trials no other trial beats on every objective (at least as good, better on one)."""
    signs = [1.0 if o.direction == "maximize" else -1.0 for o in objectives]

    def score(t: Trial) -> list[float]:
        return [s * v for s, v in zip(signs, t.values or [], strict=True)]

    scored = [(t, score(t)) for t in trials if t.values]
    front = []
    for t, a in scored:
        dominated = any(
            all(x >= y for x, y in zip(b, a, strict=True))
            and any(x > y for x, y in zip(b, a, strict=True))
            for _, b in scored
        )
        if not dominated:
            front.append(t)
    return sorted(front, key=lambda t: t.number)


def rank(sweep: Sweep) -> list[Trial]:
    """The trials, best first by the first objective; unfinished and failed ones last."""
    goal = sweep.objectives[0]
    sign = -1.0 if goal.direction == "maximize" else 1.0

    def key(t: Trial) -> tuple[int, float, int]:
        if t.state == "complete" and t.values:
            return (0, sign * t.values[0], t.number)
        if t.state == "pruned":
            return (1, 0.0, t.number)
        return (2, 0.0, t.number)

    return sorted(sweep.trial_list, key=key)


__all__ = [
    "REGISTER",
    "RESOURCE_OBJECTIVES",
    "best_trial",
    "check_options",
    "objective_values",
    "pareto_front",
    "parse_objectives",
    "rank",
]
