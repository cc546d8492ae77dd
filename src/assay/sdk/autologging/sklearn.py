"""Autologging scikit-learn: every estimator's `fit` (and `fit_transform`,
`fit_predict` where a class defines its own), including classes defined after
`autolog()` — the boosting libraries' wrappers, the user's own estimators.

Searches (`GridSearchCV`, `RandomizedSearchCV`, any `BaseSearchCV`) record their best
parameters and score, and every candidate as a child run of the search's run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assay.sdk.autologging import record, wraps_fit
from assay.sdk.autologging.recording import estimator_params, fit_metrics, record_training

METHODS = ("fit", "fit_transform", "fit_predict")
_CV_PREFIXES = ("mean_", "std_", "rank_")


def install() -> Callable[[], None]:
    """Patch every estimator class there is, and every one defined from now on."""
    from sklearn.base import BaseEstimator

    patched: list[tuple[type, str, Any]] = []

    def patch(cls: type) -> None:
        for method in METHODS:
            original = cls.__dict__.get(method)
            if original is None or hasattr(original, "__assay_original__"):
                continue
            if not callable(original):
                continue  # a property or a descriptor: not a method to wrap
            setattr(cls, method, wraps_fit(original, _fit))
            patched.append((cls, method, original))

    for cls in _subclasses(BaseEstimator):
        patch(cls)

    had_hook = "__init_subclass__" in BaseEstimator.__dict__
    previous = BaseEstimator.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: Any, /, **kwargs: Any) -> None:
        if previous is not None:
            previous.__func__(cls, **kwargs)
        else:
            super(BaseEstimator, cls).__init_subclass__(**kwargs)
        patch(cls)

    BaseEstimator.__init_subclass__ = classmethod(__init_subclass__)

    def unpatch() -> None:
        for cls, method, original in reversed(patched):
            setattr(cls, method, original)
        if had_hook:
            BaseEstimator.__init_subclass__ = previous
        else:
            del BaseEstimator.__init_subclass__

    return unpatch


def _subclasses(root: Any) -> list[type]:
    seen: list[type] = []
    todo: list[type] = [root]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        subs: list[type] = cls.__subclasses__()
        todo.extend(sub for sub in subs if sub not in seen)
    return seen


def _fit(original: Callable[..., Any], estimator: Any, *args: Any, **kwargs: Any) -> Any:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")

    def after(result: Any, active: Any) -> None:
        _after_fit(estimator, X, y, kwargs, active)

    return record(
        lambda: original(estimator, *args, **kwargs),
        what=type(estimator).__name__,
        params=lambda: estimator_params(estimator),
        after=after,
    )


def _after_fit(estimator: Any, X: Any, y: Any, kwargs: dict[str, Any], active: Any) -> None:
    from sklearn.model_selection._search import BaseSearchCV

    weight = kwargs.get("sample_weight")
    metrics = fit_metrics(estimator, X, y, "train", weight)
    model = estimator
    if isinstance(estimator, BaseSearchCV):
        metrics.update(_search(estimator, active))
        model = getattr(estimator, "best_estimator_", None)  # absent without refit
    metrics.update(_eval_sets(estimator, _validation(kwargs), active))
    record_training(active, model, X, y, metrics=metrics, log_model=model is not None)


def _search(search: Any, active: Any) -> dict[str, float]:
    """A search's best parameters and score on its run, its candidates as children."""
    from assay.runs.entities import Candidate
    from assay.sdk.autologging.recording import json_param

    best = getattr(search, "best_params_", None)
    if isinstance(best, dict):
        active.log_params({f"best.{k}": json_param(v) for k, v in best.items()})
    results = getattr(search, "cv_results_", None) or {}
    candidates = []
    for i, params in enumerate(results.get("params", [])):
        scores: dict[str, float | None] = {}
        for key, column in results.items():
            if key.startswith(_CV_PREFIXES):
                try:
                    scores[key] = float(column[i])
                except (TypeError, ValueError):
                    continue
        candidates.append(
            Candidate(
                params={str(k): json_param(v) for k, v in params.items()},
                metrics=scores,
                name=f"{active.name}-c{i + 1}",
            )
        )
    if candidates:
        active.session.add_children(active.id, candidates)
    out: dict[str, float] = {}
    score = getattr(search, "best_score_", None)
    if isinstance(score, int | float):
        out["best_cv_score"] = float(score)
    return out


def _validation(kwargs: dict[str, Any]) -> list[tuple[Any, Any]] | None:
    """The validation sets a fit was given: `eval_set=[(X, y), …]` (XGBoost, older
    LightGBM) or `eval_X=…, eval_y=…` (LightGBM 4.6 and later), as (X, y) pairs."""
    if kwargs.get("eval_set"):
        return list(kwargs["eval_set"])
    eval_x, eval_y = kwargs.get("eval_X"), kwargs.get("eval_y")
    if eval_x is None or eval_y is None:
        return None
    if isinstance(eval_x, tuple):  # several sets
        return list(zip(eval_x, eval_y, strict=False))
    return [(eval_x, eval_y)]


def _eval_sets(estimator: Any, eval_set: Any, active: Any) -> dict[str, float]:
    """Metrics on validation data the user gave (the boosters' option): the
    estimator's suite on the last set, and each booster's per-iteration series."""
    if not eval_set:
        return {}
    try:
        X_val, y_val = eval_set[-1]
    except (TypeError, ValueError):
        return {}
    metrics = fit_metrics(estimator, X_val, y_val, "val")
    log_history(active, booster_history(estimator))
    return metrics


def log_history(active: Any, history: dict[str, list[float]]) -> None:
    """Per-iteration series, one point per boosting round."""
    for key, values in history.items():
        for step, value in enumerate(values):
            active.recorder.log_metric(key, value, step=step)


def booster_history(estimator: Any) -> dict[str, list[float]]:
    """`{validation_0_logloss: [...]}`: XGBoost's `evals_result()`, LightGBM's
    `evals_result_`, one list per evaluation set and metric."""
    found: Any = None
    getter = getattr(estimator, "evals_result", None)
    if callable(getter):
        try:
            found = getter()
        except Exception:
            found = None
    if found is None:
        found = getattr(estimator, "evals_result_", None)
    return history_of(found)


def history_of(found: Any) -> dict[str, list[float]]:
    """`{set: {metric: [values]}}` (both boosters' shape) as `{set_metric: [values]}`."""
    out: dict[str, list[float]] = {}
    if isinstance(found, dict):
        for set_name, by_metric in found.items():
            if not isinstance(by_metric, dict):
                continue
            for metric, values in by_metric.items():
                key = f"{set_name}_{metric}".replace("@", "_at_").replace(" ", "_")
                out[key] = [float(v) for v in values if isinstance(v, int | float)]
    return out
