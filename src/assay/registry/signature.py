"""A model's signature: the columns it was trained on and what it predicts.

Inferred from the training features (and the fitted model, for the output) when a run
registers its model, or read off the model alone when a file trained elsewhere is
registered. The serving app checks requests against it, and a few training rows become
the bundle's input example.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import TYPE_CHECKING, Any

from assay.errors import InvalidArgumentError
from assay.registry.entities import ColumnSpec, OutputSpec, Signature

if TYPE_CHECKING:
    import numpy as np

DEFAULT_EXAMPLE_ROWS = 5
# LightGBM's name for a column it was not given a name for.
_LIGHTGBM_UNNAMED = re.compile(r"Column_\d+")
# pandas' `infer_dtype` answers for object columns, as column kinds.
_INFERRED_KINDS = {
    "boolean": "bool",
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
}


def json_value(value: Any) -> Any:
    """`value` as plain JSON: numpy scalars become Python ones, NaN (and any other
    missing or non-finite number) becomes None, dates their ISO text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalars (bool_, int64, float32, str_)
    if callable(item) and getattr(value, "shape", None) == ():
        return json_value(item())
    if _is_missing(value):  # before dates: pandas' NaT is a datetime
        return None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _is_missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # containers: not a missing scalar
        return False


def _kind_of(dtype: Any, values: Any = None) -> str:
    """The column kind (`COLUMN_KINDS`) of a numpy or pandas dtype; for `object`
    columns, of the `values` they hold (rows given as Python lists with None in them)."""
    from pandas.api import types as ptypes

    if ptypes.is_object_dtype(dtype) and values is not None:
        inferred = ptypes.infer_dtype(values, skipna=True)
        return _INFERRED_KINDS.get(inferred, "str")
    if ptypes.is_bool_dtype(dtype):
        return "bool"
    if ptypes.is_integer_dtype(dtype):
        return "int"
    if ptypes.is_float_dtype(dtype):
        return "float"
    return "str"


def infer_signature(
    X: Any, model: Any = None, *, example_rows: int = DEFAULT_EXAMPLE_ROWS
) -> tuple[Signature, list[Any]]:
    """The signature of training features `X`, and its first `example_rows` rows as a
    JSON-safe input example.

    A DataFrame gives named columns (`tabular`), each with its kind, dtype, and whether
    it had missing values; a 2-D array or list of rows gives columns "0".."n-1". When
    `model` is given it predicts on the first rows to describe the output: its kind,
    the classifier's classes, and whether `predict_proba` works.

    Raises:
        InvalidArgumentError: `X` is not a DataFrame or 2-D array, or the model cannot
            predict on it.
    """
    import pandas as pd

    head: Any
    if isinstance(X, pd.DataFrame):
        inputs = tuple(
            ColumnSpec(
                str(name),
                _kind_of(X[name].dtype, X[name]),
                str(X[name].dtype),
                bool(X[name].isna().any()),
            )
            for name in X.columns
        )
        head = X.iloc[:example_rows]
        example: list[Any] = [
            {str(k): json_value(v) for k, v in row.items()}
            for row in head.to_dict(orient="records")
        ]
        signature = Signature(inputs, tabular=True)
    else:
        arr = _as_2d(X)
        inputs = tuple(
            ColumnSpec(
                str(j), _kind_of(arr.dtype, arr[:, j]), str(arr.dtype), _has_missing(arr[:, j])
            )
            for j in range(arr.shape[1])
        )
        head = arr[:example_rows]
        example = [[json_value(v) for v in row] for row in head.tolist()]
        signature = Signature(inputs, tabular=False)
    if model is not None and len(head):
        signature = Signature(signature.inputs, _output_of(model, head), signature.tabular)
    elif model is not None:
        signature = Signature(signature.inputs, _output_from_attributes(model), signature.tabular)
    return signature, example


def _as_2d(X: Any) -> np.ndarray[Any, Any]:
    import numpy as np

    if hasattr(X, "toarray") or not hasattr(X, "__len__"):  # sparse matrices, scalars
        raise InvalidArgumentError(
            f"Cannot infer a signature from a {type(X).__name__}: pass a pandas DataFrame "
            "or a 2-D array of the training features."
        )
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise InvalidArgumentError(
            f"Cannot infer a signature from an array of {arr.ndim} dimension(s): pass the "
            "training features as rows of columns (a DataFrame or a 2-D array)."
        )
    return arr


def _has_missing(column: np.ndarray[Any, Any]) -> bool:
    import pandas as pd

    return bool(pd.isna(column).any())


def _output_of(model: Any, head: Any) -> OutputSpec:
    """What `model.predict` returns on the first training rows."""
    import numpy as np

    try:
        pred = np.asarray(model.predict(head))
    except Exception as exc:  # the framework's own error, wrapped where it enters
        raise InvalidArgumentError(
            f"The model could not predict on the first training rows ({exc}). "
            "Pass the same features the model was fitted on.",
        ) from exc
    attrs = _output_from_attributes(model)
    classes = attrs.classes if attrs else None
    has_proba = False
    if callable(getattr(model, "predict_proba", None)):
        try:
            model.predict_proba(head)
            has_proba = True
        except Exception:  # e.g. SVC(probability=False): predict works, predict_proba not
            has_proba = False
    return OutputSpec(
        _kind_of(pred.dtype),
        str(pred.dtype),
        (-1, *pred.shape[1:]),
        classes,
        has_proba,
    )


def _output_from_attributes(model: Any) -> OutputSpec | None:
    """A classifier's output, from its fitted `classes_`; None for anything else."""
    import numpy as np

    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    arr = np.asarray(classes)
    return OutputSpec(
        _kind_of(arr.dtype),
        str(arr.dtype),
        (-1,),
        tuple(json_value(c) for c in arr.tolist()),
        callable(getattr(model, "predict_proba", None)),
    )


def signature_from_model(model: Any) -> Signature | None:
    """What the model itself knows of its inputs, for a model registered without its
    training data: scikit-learn's `feature_names_in_` / `n_features_in_`, an XGBoost
    booster's `feature_names`, a LightGBM booster's `feature_name()`. Kinds default to
    float. None when the model records nothing.
    """
    names, count = _feature_names(model)
    output = _output_from_attributes(model)
    if names is not None:
        inputs = tuple(ColumnSpec(n, "float", "float64") for n in names)
        return Signature(inputs, output, tabular=True)
    if count is not None:
        inputs = tuple(ColumnSpec(str(j), "float", "float64") for j in range(count))
        return Signature(inputs, output, tabular=False)
    return None


def _feature_names(model: Any) -> tuple[list[str] | None, int | None]:
    """(column names, column count) as far as the model knows them."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names], len(names)
    count = getattr(model, "n_features_in_", None)
    if isinstance(count, int):
        return None, count
    if _from(model, "xgboost") and callable(getattr(model, "num_features", None)):
        xgb_names = model.feature_names  # a Booster: None when trained on an array
        if xgb_names:
            return [str(n) for n in xgb_names], len(xgb_names)
        return None, int(model.num_features())
    if _from(model, "lightgbm") and callable(getattr(model, "feature_name", None)):
        lgb_names = [str(n) for n in model.feature_name()]
        if all(_LIGHTGBM_UNNAMED.fullmatch(n) for n in lgb_names):
            return None, len(lgb_names)
        return lgb_names, len(lgb_names)
    booster = getattr(model, "booster", None)  # Assay's wrappers of a loaded booster
    if booster is not None and (_from(booster, "xgboost") or _from(booster, "lightgbm")):
        return _feature_names(booster)
    return None, None


def _from(model: Any, library: str) -> bool:
    return type(model).__module__.partition(".")[0] == library
