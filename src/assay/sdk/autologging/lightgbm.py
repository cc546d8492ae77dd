"""Autologging LightGBM's native `lightgbm.train` (its scikit-learn wrappers are
estimators, recorded by the scikit-learn patch): params, per-round series of every
validation set, the final values, and the booster as a model version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assay.sdk.autologging import record, wraps_fit
from assay.sdk.autologging.recording import json_param, record_training
from assay.sdk.autologging.sklearn import history_of, log_history


def install() -> Callable[[], None]:
    import lightgbm

    original = lightgbm.train
    if hasattr(original, "__assay_original__"):
        return lambda: None
    lightgbm.train = wraps_fit(original, _train)

    def unpatch() -> None:
        lightgbm.train = original

    return unpatch


def _train(
    original: Callable[..., Any], params: Any, train_set: Any, *args: Any, **kwargs: Any
) -> Any:
    import lightgbm

    rounds = args[0] if args else kwargs.get("num_boost_round", 100)
    recorded: dict[str, Any] = {}
    kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), lightgbm.record_evaluation(recorded)]

    def logged_params() -> dict[str, Any]:
        out = {str(k): json_param(v) for k, v in dict(params).items()}
        return {**out, "num_boost_round": json_param(rounds)}

    def after(booster: Any, active: Any) -> None:
        log_history(active, history_of(recorded))  # a key's last point is its value
        record_training(active, booster, _head(train_set), None)

    return record(
        lambda: original(params, train_set, *args, **kwargs),
        what="lightgbm.train",
        params=logged_params,
        after=after,
    )


def _head(train_set: Any, rows: int = 5) -> Any:
    """The first training rows, while the Dataset still holds them (it frees them after
    construction unless `free_raw_data=False`); else None and the booster's own names."""
    try:
        data = train_set.get_data()
    except Exception:
        return None
    head = getattr(data, "iloc", None)
    return data.iloc[:rows] if head is not None else data[:rows]
