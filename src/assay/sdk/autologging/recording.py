"""What autolog records about a fit, whatever the framework: params as JSON values,
metrics suited to the estimator, the training data's fingerprint, the model."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.sdk import ActiveRun

MAX_PARAM_CHARS = 250
DATA_ATTR = "assay.data"  # pandas `attrs` key that `assay.data.load` tags frames with


def json_param(value: Any) -> Any:
    """A parameter value as JSON: numbers, strings, booleans and None as they are (numpy
    scalars unwrapped), lists and dicts of those, anything else (an estimator, a
    function, a random state) by its short description."""
    if value is None or isinstance(value, bool | str):
        return value if not isinstance(value, str) else value[:MAX_PARAM_CHARS]
    if isinstance(value, int | float):
        return value if not isinstance(value, float) or math.isfinite(value) else str(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return json_param(item())
    if isinstance(value, list | tuple) and len(value) <= 50:
        return [json_param(v) for v in value]
    if isinstance(value, Mapping) and len(value) <= 50:
        return {str(k): json_param(v) for k, v in value.items()}
    if hasattr(value, "get_params") and isinstance(value, type) is False:
        return type(value).__name__
    text = getattr(value, "__name__", None) or repr(value)
    return str(text)[:MAX_PARAM_CHARS]


def estimator_params(estimator: Any) -> dict[str, Any]:
    """Every parameter of a fitted scikit-learn-style estimator, defaults included; a
    pipeline's steps as `step__param`, as `get_params(deep=True)` names them."""
    try:
        raw = estimator.get_params(deep=True)
    except Exception:  # an estimator whose get_params fails still fits
        return {}
    out = {str(k): json_param(v) for k, v in raw.items()}
    # JSON round trip: what is stored is what is shown
    return dict(json.loads(json.dumps(out, default=str)))


# ---- metrics -----------------------------------------------------------------------------


def fit_metrics(
    estimator: Any, X: Any, y: Any, prefix: str, sample_weight: Any = None
) -> dict[str, float]:
    """Metrics of a fitted estimator on (X, y): a classifier's accuracy, macro F1, log
    loss and ROC-AUC (where it has `predict_proba`); a regressor's RMSE, MAE and R²."""
    if y is None or X is None:
        return {}
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return _classifier(estimator, X, y, prefix, sample_weight)
    if is_regressor(estimator):
        return _regressor(estimator, X, y, prefix, sample_weight)
    return {}


def _classifier(est: Any, X: Any, y: Any, prefix: str, weight: Any) -> dict[str, float]:
    from sklearn import metrics

    out: dict[str, float] = {}
    predicted = est.predict(X)
    out[f"{prefix}_accuracy"] = float(metrics.accuracy_score(y, predicted, sample_weight=weight))
    out[f"{prefix}_f1_macro"] = float(
        metrics.f1_score(y, predicted, average="macro", sample_weight=weight, zero_division=0)
    )
    if not hasattr(est, "predict_proba"):
        return out
    try:
        proba = est.predict_proba(X)
    except Exception:  # e.g. an SVC fitted without probability
        return out
    classes = getattr(est, "classes_", None)
    with contextlib.suppress(ValueError):
        out[f"{prefix}_log_loss"] = float(
            metrics.log_loss(y, proba, labels=classes, sample_weight=weight)
        )
    try:
        if proba.ndim == 2 and proba.shape[1] == 2:
            score = metrics.roc_auc_score(y, proba[:, 1], sample_weight=weight)
        else:
            score = metrics.roc_auc_score(
                y, proba, multi_class="ovr", average="macro", labels=classes, sample_weight=weight
            )
        out[f"{prefix}_roc_auc"] = float(score)
    except ValueError:
        pass  # one class only in y, say: no AUC to speak of
    return out


def _regressor(est: Any, X: Any, y: Any, prefix: str, weight: Any) -> dict[str, float]:
    from sklearn import metrics

    predicted = est.predict(X)
    mse = metrics.mean_squared_error(y, predicted, sample_weight=weight)
    return {
        f"{prefix}_rmse": float(math.sqrt(mse)),
        f"{prefix}_mae": float(metrics.mean_absolute_error(y, predicted, sample_weight=weight)),
        f"{prefix}_r2": float(metrics.r2_score(y, predicted, sample_weight=weight)),
    }


# ---- the training data ------------------------------------------------------------------


def fingerprint(X: Any, y: Any = None) -> dict[str, Any]:
    """Content hashes, shapes and column names of the training data: two fits on the
    same bytes have the same fingerprint, whatever they were called."""
    out: dict[str, Any] = {"X": _describe(X)}
    if y is not None:
        out["y"] = _describe(y)
    ref = data_ref(X, y)
    if ref:
        out["data"] = ref
    return out


def _describe(value: Any) -> dict[str, Any]:
    from blake3 import blake3

    hasher = blake3()
    doc: dict[str, Any] = {}
    try:
        import pandas as pd

        if isinstance(value, pd.DataFrame | pd.Series):
            hashed = pd.util.hash_pandas_object(value, index=False)
            hasher.update(hashed.to_numpy().tobytes())
            if isinstance(value, pd.DataFrame):
                names = [str(c) for c in value.columns]
                hasher.update(json.dumps([names, [str(t) for t in value.dtypes]]).encode())
                doc["columns"] = names[:200]
            else:
                doc["name"] = str(value.name) if value.name is not None else None
            doc["shape"] = list(value.shape)
            doc["hash"] = hasher.hexdigest()
            return doc
        import numpy as np

        if hasattr(value, "tocsr"):  # a scipy sparse matrix
            m = value.tocsr()
            for part in (m.data, m.indices, m.indptr):
                hasher.update(np.ascontiguousarray(part).tobytes())
            doc["shape"] = list(m.shape)
            doc["sparse"] = True
        else:
            arr = np.asarray(value)
            if arr.dtype == object:
                hasher.update(json.dumps(arr.tolist(), default=str).encode())
            else:
                hasher.update(np.ascontiguousarray(arr).tobytes())
            hasher.update(f"{arr.dtype}{arr.shape}".encode())
            doc["shape"] = list(arr.shape)
            doc["dtype"] = str(arr.dtype)
        doc["hash"] = hasher.hexdigest()
    except Exception as exc:  # an odd container still trains
        doc["error"] = f"not fingerprinted: {type(exc).__name__}"
    return doc


def data_ref(*values: Any) -> str | None:
    """The data version a frame came from, when `assay.data.load` made it (pandas
    carries `attrs` through selections, splits and copies)."""
    for value in values:
        attrs = getattr(value, "attrs", None)
        if isinstance(attrs, dict) and attrs.get(DATA_ATTR):
            return str(attrs[DATA_ATTR])
    return None


# ---- after a fit ----------------------------------------------------------------------------


def record_training(
    active: ActiveRun,
    model: Any,
    X: Any,
    y: Any,
    *,
    metrics: Mapping[str, float] | None = None,
    log_model: bool = True,
) -> None:
    """What every fit records once it returned: metrics, fingerprint and data link, the
    training signature (for `log_model`), and the model itself."""
    from assay.sdk import _quietly, warn_once
    from assay.sdk.autologging import config

    if metrics:
        active.recorder.log_metrics(
            {k: v for k, v in metrics.items() if v is not None and math.isfinite(v)}
        )
    if X is not None:
        print_ = fingerprint(X, y)
        active.notes["training_data"] = print_
        ref = print_.get("data")
        if ref and ref != active.run.data_ref:
            _quietly(lambda: active.session.link_data(active.id, ref), "link the data version")
        active.training = X
    if not (log_model and config.log_models and callable(getattr(model, "predict", None))):
        return
    name = config.model_name or active.experiment
    if name in active.models:  # a second model in one run: named after its class
        name = f"{name}-{type(model).__name__.lower()}"
        if name in active.models:
            warn_once("autolog-model-name", f"autolog logs one {name!r} model per run.")
            return
    from assay import sdk

    sdk.log_model(model, name)
