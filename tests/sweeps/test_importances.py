"""A sweep's parameter importances are computed once per set of finished trials."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from assay.sweeps import study as studies
from assay.sweeps.entities import Objective, Sweep, Trial
from assay.workspace import Workspace

FLOAT = json.dumps({"name": "FloatDistribution", "attributes": {"low": 0.0, "high": 1.0,
                    "step": None, "log": False}})  # fmt: skip


def sweep_of(n: int) -> Sweep:
    rng = random.Random(0)
    now = datetime.now(UTC)
    points = [(rng.random(), rng.random()) for _ in range(n)]  # the score is 3 a: a matters
    distributions = {"a": FLOAT, "b": FLOAT}
    trials = tuple(
        Trial(i, "complete", None, {"a": a, "b": b}, distributions, [3 * a], {}, None, now, now)
        for i, (a, b) in enumerate(points)
    )
    return Sweep(
        id=7, name="s", pipeline="p", pipeline_version=1, dataset="d", data_version=1,
        base_params={}, space={}, objectives=(Objective("score", "maximize"),),
        sampler="tpe", pruner="none", prune_on=None, seed=0, trials=n, parallel=1,
        executor="local", budget=None, timeout_s=None, register="none", status="finished",
        stop_cause=None, best_runs=(), best_models=(), created_at=now, ended_at=now,
        trial_list=trials,
    )  # fmt: skip


@pytest.mark.one_backend
def test_importances_are_computed_once_until_a_trial_lands(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[int] = []
    real = studies.importances

    def counting(study: Any, objective: int = 0) -> dict[str, float]:
        computed.append(len(study.trials))
        found: dict[str, float] = real(study, objective)
        return found

    monkeypatch.setattr(studies, "importances", counting)
    sweep = sweep_of(12)
    first = ws.sweeps.importances(sweep)
    assert first["a"] > first["b"]  # the score is mostly a
    assert ws.sweeps.importances(sweep) == first  # from the cache
    assert computed == [12]
    more = replace(sweep, trial_list=(*sweep.trial_list, *sweep_of(13).trial_list[12:]))
    ws.sweeps.importances(more)
    assert computed == [12, 13]  # a new trial: computed again
