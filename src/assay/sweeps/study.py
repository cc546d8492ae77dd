"""Optuna's side of a sweep: samplers, pruners, and a study rebuilt from stored trials.

The sweep's own tables are the record; an Optuna study is rebuilt from them in
memory whenever one is needed (running, resuming, importances, plots). So the
study lives in the same database as everything else, under Assay's migrations,
and a resumed sweep's sampler sees every finished trial.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from assay.errors import InvalidArgumentError
from assay.sweeps.entities import Objective, Trial

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "grid", "nsga2")
PRUNERS = ("median", "hyperband", "none")

_STATES = {"complete": "COMPLETE", "pruned": "PRUNED", "fail": "FAIL"}


def optuna_module() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def check_choices(sampler: str, pruner: str, objectives: list[Objective]) -> None:
    if sampler not in SAMPLERS:
        raise InvalidArgumentError(
            f"Unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}."
        )
    if pruner not in PRUNERS:
        raise InvalidArgumentError(
            f"Unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}."
        )
    if sampler == "nsga2" and len(objectives) < 2:
        raise InvalidArgumentError("--sampler nsga2 is for two or more objectives.")


def make_study(
    objectives: Iterable[Objective],
    *,
    sampler: str,
    pruner: str,
    seed: int,
    parallel: int,
    trials: Iterable[Trial] = (),
) -> optuna.Study:
    """A study in memory, holding the finished `trials` (for the sampler to learn from)."""
    optuna = optuna_module()
    objectives = list(objectives)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            directions=[o.direction for o in objectives],
            sampler=_sampler(optuna, sampler, seed, parallel, multi=len(objectives) > 1),
            pruner=_pruner(optuna, pruner if len(objectives) == 1 else "none"),
        )
        for trial in trials:
            frozen = frozen_trial(optuna, trial, len(objectives))
            if frozen is not None:
                study.add_trial(frozen)
    return study  # type: ignore[no-any-return]


def frozen_trial(optuna: Any, trial: Trial, n_objectives: int) -> Any:
    state = _STATES.get(trial.state)
    if state is None:
        return None
    from optuna.distributions import json_to_distribution

    values = trial.values
    if trial.state == "pruned":
        last = max(trial.intermediate) if trial.intermediate else None
        values = [trial.intermediate[last]] if last is not None and n_objectives == 1 else None
    return optuna.trial.create_trial(
        state=getattr(optuna.trial.TrialState, state),
        params=trial.params,
        distributions={k: json_to_distribution(v) for k, v in trial.distributions.items()},
        values=values if state != "FAIL" else None,
        intermediate_values=trial.intermediate if n_objectives == 1 else None,
    )


def _sampler(optuna: Any, name: str, seed: int, parallel: int, *, multi: bool) -> Any:
    samplers = optuna.samplers
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "grid":
        return _Grid(seed=seed)
    if name == "nsga2":
        return samplers.NSGAIISampler(seed=seed)
    # TPE; `group` handles conditional sub-spaces (algorithm selection), and the
    # constant liar keeps parallel workers from sampling the same point.
    return samplers.TPESampler(
        seed=seed, multivariate=True, group=True, constant_liar=parallel > 1 and not multi
    )


def _pruner(optuna: Any, name: str) -> Any:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def _grid_class() -> Any:
    optuna = optuna_module()

    class Grid(optuna.samplers.BruteForceSampler):  # type: ignore[misc,name-defined]
        """Every point of a discrete (possibly conditional) space, once."""

        exhausted = False

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            try:
                super().after_trial(study, trial, state, values)
            except RuntimeError:
                # It calls `study.stop()` when the grid is done, which only works
                # inside `study.optimize`; the sweep's own loop reads this flag.
                self.exhausted = True

    return Grid


def _Grid(seed: int) -> Any:
    return _grid_class()(seed=seed)


def importances(study: Any, objective: int = 0) -> dict[str, float]:
    """fANOVA parameter importances for one objective ({} when there is too little to say)."""
    optuna = optuna_module()
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return {}
    target = None
    if len(study.directions) > 1:

        def target(t: Any) -> float:
            return float(t.values[objective])

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study, target=target)
    except (RuntimeError, ValueError):
        return {}  # e.g. no parameter is shared by every trial of a conditional space
    return {k: float(v) for k, v in found.items()}
