"""Rows checked against a signature and turned into the model's input."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.errors import InvalidArgumentError
from assay.registry.entities import ColumnSpec, Signature
from assay.serving.inputs import InputSchema, twin_agrees, without_feature_names

from .conftest import floats

XY = Signature(floats("x", "y"))


def test_number_rows_become_one_float_matrix_in_signature_order() -> None:
    schema = InputSchema(XY, "m")
    matrix = schema.convert([{"y": 2, "x": 1.5}, {"x": 3, "y": 4}])
    assert isinstance(matrix, np.ndarray)
    assert matrix.dtype == np.float64
    assert matrix.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert schema.convert([[1, 2]]).tolist() == [[1.0, 2.0]]


def test_the_models_own_column_order_wins_over_the_signatures() -> None:
    schema = InputSchema(XY, "m", order=["y", "x"])
    assert schema.convert([{"x": 1, "y": 2}]).tolist() == [[2.0, 1.0]]
    assert schema.names == ["y", "x"]


def test_a_frame_schema_gives_a_dataframe_with_the_columns_named() -> None:
    frame = InputSchema(XY, "m", frame=True).convert([{"x": 1, "y": 2}])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["x", "y"]
    assert frame.to_numpy().tolist() == [[1.0, 2.0]]


def test_an_int_column_takes_integral_numbers_only() -> None:
    schema = InputSchema(Signature((ColumnSpec("n", "int", "int64"),)), "m")
    assert schema.convert([{"n": 3}, {"n": 4.0}]).tolist() == [[3.0], [4.0]]
    with pytest.raises(InvalidArgumentError, match=r"Instance 1, column 'n': expected an integer"):
        schema.convert([{"n": 3}, {"n": 4.5}])
    with pytest.raises(InvalidArgumentError, match="got boolean True"):
        schema.convert([{"n": True}])
    frame = InputSchema(schema.signature, "m", frame=True).convert([{"n": 3}])
    assert frame["n"].dtype == np.int64


def test_a_nullable_column_takes_null_and_nan_as_missing() -> None:
    schema = InputSchema(Signature(floats("x", nullable=True) + floats("y")), "m")
    matrix = schema.convert([{"x": None, "y": 1}, {"x": math.nan, "y": 2}, {"x": 3, "y": 3}])
    assert np.isnan(matrix[:2, 0]).all()
    assert matrix[2].tolist() == [3.0, 3.0]
    with pytest.raises(InvalidArgumentError, match="column 'y': missing value \\(NaN\\)"):
        schema.convert([{"x": 1, "y": math.nan}])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.inf, "inf is not a finite number"),
        (-math.inf, "-inf is not a finite number"),
        (10**400, "is too large"),
        ("1", "expected a number, got string '1'"),
        ({"v": 1}, "expected a number, got an object"),
    ],
)
def test_a_number_column_refuses_what_is_not_a_finite_number(value: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)) as caught:
        InputSchema(XY, "m").convert([[1.0, 2.0], [1.0, value]])
    assert caught.value.details["instance"] == 1
    assert caught.value.details["column"] == "y"


def test_bool_and_str_columns_take_their_own_json_types() -> None:
    signature = Signature(
        (ColumnSpec("on", "bool", "bool"), ColumnSpec("city", "str", "object", nullable=True))
    )
    matrix = InputSchema(signature, "m").convert([[True, "Oslo"], [False, None]])
    assert matrix.dtype == object
    assert matrix.tolist() == [[True, "Oslo"], [False, None]]
    with pytest.raises(InvalidArgumentError, match="column 'on': expected true or false"):
        InputSchema(signature, "m").convert([[1, "Oslo"]])
    numbers = InputSchema(Signature((ColumnSpec("on", "bool", "bool"), *floats("x"))), "m")
    assert numbers.convert([[True, 2], [False, 3]]).tolist() == [[1.0, 2.0], [0.0, 3.0]]


def test_shape_errors_name_the_instance() -> None:
    schema = InputSchema(XY, "m")
    with pytest.raises(InvalidArgumentError, match="Instance 2 has 3 values; the model takes 2"):
        schema.convert([[1, 2], [3, 4], [5, 6, 7]])
    with pytest.raises(InvalidArgumentError, match="Instance 1 has no column 'y'"):
        schema.convert([{"x": 1, "y": 2}, {"x": 1, "z": 2}])
    with pytest.raises(InvalidArgumentError, match=r"Instance 0 has a column .*: 'z'"):
        schema.convert([{"x": 1, "y": 2, "z": 3}])
    with pytest.raises(InvalidArgumentError, match="Instance 1 is null"):
        schema.convert([[1, 2], None])


def test_a_names_free_twin_answers_as_the_dataframe_fitted_pipeline() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "y": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, [0, 0, 0, 1, 1, 1])
    twin = without_feature_names(model)
    assert twin is not None
    assert twin_agrees(model, twin, X, X.to_numpy())
    # The served model itself is untouched: it still checks names on a DataFrame.
    assert list(model.feature_names_in_) == ["x", "y"]
    assert not hasattr(twin, "feature_names_in_")


def test_a_twin_of_a_model_that_selects_columns_by_name_is_refused() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [1.0, 0.0, 1.0]})
    model = make_pipeline(
        ColumnTransformer([("s", StandardScaler(), ["y", "x"])]), LinearRegression()
    ).fit(X, [0.0, 1.0, 2.0])
    twin = without_feature_names(model)
    assert twin is None or not twin_agrees(model, twin, X, X.to_numpy())
    assert without_feature_names(LinearRegression().fit(X.to_numpy(), [0, 1, 2])) is None
