"""Autologging XGBoost's native `xgboost.train` (its scikit-learn wrappers are
estimators, recorded by the scikit-learn patch): params, per-round series of every
evaluation set, the final values, and the booster as a model version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assay.sdk.autologging import record, wraps_fit
from assay.sdk.autologging.recording import json_param, record_training
from assay.sdk.autologging.sklearn import history_of, log_history


def install() -> Callable[[], None]:
    import xgboost

    original = xgboost.train
    if hasattr(original, "__assay_original__"):
        return lambda: None
    xgboost.train = wraps_fit(original, _train)

    def unpatch() -> None:
        xgboost.train = original

    return unpatch


def _train(
    original: Callable[..., Any], params: Any, dtrain: Any, *args: Any, **kwargs: Any
) -> Any:
    rounds = args[0] if args else kwargs.get("num_boost_round", 10)
    if kwargs.get("evals_result") is None:
        kwargs["evals_result"] = {}
    evals_result = kwargs["evals_result"]

    def logged_params() -> dict[str, Any]:
        raw = dict(params) if not isinstance(params, dict) else params
        out = {str(k): json_param(v) for k, v in raw.items()}
        return {**out, "num_boost_round": json_param(rounds)}

    def after(booster: Any, active: Any) -> None:
        from assay.registry.flavors import XGBoostBoosterModel

        log_history(active, history_of(evals_result))  # a key's last point is its value
        record_training(active, XGBoostBoosterModel(booster), _head(dtrain), None)
        shape: dict[str, Any] = {"shape": [int(dtrain.num_row()), int(dtrain.num_col())]}
        if dtrain.feature_names:
            shape["columns"] = [str(n) for n in dtrain.feature_names][:200]
        active.notes["training_data"] = {"X": shape}

    return record(
        lambda: original(params, dtrain, *args, **kwargs),
        what="xgboost.train",
        params=logged_params,
        after=after,
    )


def _head(dtrain: Any, rows: int = 5) -> Any:
    """The first rows of a DMatrix as a frame (for the model's signature and example)."""
    try:
        import pandas as pd

        data = dtrain.get_data()[:rows].toarray()
        names = dtrain.feature_names or [str(i) for i in range(data.shape[1])]
        return pd.DataFrame(data, columns=names)
    except Exception:  # without it the signature comes from the booster
        return None
