"""Signatures: inferred from training features and the fitted model, or read off a model
registered without its data."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.errors import InvalidArgumentError
from assay.registry.entities import Signature
from assay.registry.signature import infer_signature, json_value, signature_from_model
from assay.serialize import dump, load

from . import fake_models
from .fake_models import Doubler, UncalibratedClassifier


def _mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "income": [52.5, np.nan, 31.0, 40.0, 12.0, 70.0, 33.0],
            "age": np.array([34, 51, 22, 45, 60, 29, 38], dtype="int64"),
            "member": [True, False, True, True, False, False, True],
            "city": ["Oslo", "Lima", "Pune", "Oslo", "Lima", "Pune", "Oslo"],
            "visits": pd.array([1, None, 3, 4, 5, 6, 7], dtype="Int64"),
        }
    )


def test_dataframe_columns_get_their_kind_dtype_and_nullability() -> None:
    signature, _example = infer_signature(_mixed_frame())

    assert signature.tabular
    assert dump(signature.inputs) == [
        {"name": "income", "kind": "float", "dtype": "float64", "nullable": True},
        {"name": "age", "kind": "int", "dtype": "int64", "nullable": False},
        {"name": "member", "kind": "bool", "dtype": "bool", "nullable": False},
        {
            "name": "city",
            "kind": "str",
            "dtype": str(_mixed_frame()["city"].dtype),
            "nullable": False,
        },
        {"name": "visits", "kind": "int", "dtype": "Int64", "nullable": True},
    ]
    assert signature.output is None


def test_example_is_the_first_rows_as_plain_json() -> None:
    _signature, example = infer_signature(_mixed_frame(), example_rows=2)

    assert example == [
        {"income": 52.5, "age": 34, "member": True, "city": "Oslo", "visits": 1},
        {"income": None, "age": 51, "member": False, "city": "Lima", "visits": None},
    ]
    assert type(example[0]["age"]) is int
    assert type(example[0]["member"]) is bool
    json.dumps(example, allow_nan=False)


def test_array_columns_are_numbered_and_not_tabular() -> None:
    X = np.array([[1.0, 2.0], [np.nan, 4.0], [5.0, 6.0]])

    signature, example = infer_signature(X, example_rows=2)

    assert not signature.tabular
    assert signature.names == ["0", "1"]
    assert [(c.kind, c.dtype, c.nullable) for c in signature.inputs] == [
        ("float", "float64", True),
        ("float", "float64", False),
    ]
    assert example == [[1.0, 2.0], [None, 4.0]]


def test_rows_given_as_lists_with_gaps_keep_their_kinds() -> None:
    signature, example = infer_signature([[1.5, 2, "a"], [None, 3, "b"]])

    assert [(c.kind, c.nullable) for c in signature.inputs] == [
        ("float", True),
        ("int", False),
        ("str", False),
    ]
    assert example == [[1.5, 2, "a"], [None, 3, "b"]]


@pytest.mark.parametrize("X", [np.arange(5.0), np.zeros((2, 2, 2)), 3.0])
def test_features_that_are_not_rows_of_columns_are_refused(X: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="Cannot infer a signature"):
        infer_signature(X)


def test_classifier_output_has_its_classes_and_probabilities() -> None:
    model, X = fake_models.logistic()

    signature, _example = infer_signature(X, model)

    assert signature.output is not None
    out = signature.output
    assert (out.kind, out.dtype, out.shape) == ("int", "int64", (-1,))
    assert out.classes == (0, 1)
    assert all(type(c) is int for c in out.classes)
    assert out.has_proba


def test_string_labels_make_a_str_output_with_those_classes() -> None:
    model, X = fake_models.forest()

    signature, _example = infer_signature(X, model)

    assert signature.output is not None
    assert signature.output.kind == "str"
    assert signature.output.classes == ("setosa", "versicolor", "virginica")


def test_regressor_output_is_float_without_classes_or_probabilities() -> None:
    from sklearn.linear_model import LinearRegression

    X, y = fake_models.diabetes()
    model = LinearRegression().fit(X, y)

    signature, _example = infer_signature(X, model)

    assert signature.output is not None
    assert (signature.output.kind, signature.output.classes) == ("float", None)
    assert not signature.output.has_proba


def test_classifier_whose_predict_proba_does_not_work_has_no_probabilities() -> None:
    X, y = fake_models.cancer()
    model = UncalibratedClassifier().fit(X, y)

    signature, _example = infer_signature(X, model)

    assert signature.output is not None
    assert signature.output.classes == (0, 1)
    assert not signature.output.has_proba


def test_classifier_without_predict_proba_has_no_probabilities() -> None:
    from sklearn.linear_model import RidgeClassifier

    X, y = fake_models.cancer()
    model = RidgeClassifier().fit(X, y)

    signature, _example = infer_signature(X, model)

    assert signature.output is not None
    assert signature.output.classes == (0, 1)
    assert not signature.output.has_proba


def test_model_that_cannot_predict_on_the_features_is_an_invalid_argument() -> None:
    model, X = fake_models.logistic()

    with pytest.raises(InvalidArgumentError, match="could not predict on the first training"):
        infer_signature(X.iloc[:, :3], model)


def test_signature_round_trips_through_its_dict() -> None:
    model, X = fake_models.logistic()
    signature, _example = infer_signature(X, model)

    assert load(Signature, json.loads(json.dumps(dump(signature)))) == signature


# -- from the model alone ---------------------------------------------------------


def test_sklearn_model_fitted_on_a_frame_knows_its_column_names() -> None:
    model, X = fake_models.pipeline()

    signature = signature_from_model(model)

    assert signature is not None
    assert signature.tabular
    assert signature.names == list(X.columns)
    assert {c.kind for c in signature.inputs} == {"float"}
    assert signature.output is not None
    assert signature.output.classes == (0, 1)


def test_model_fitted_on_an_array_knows_only_its_column_count() -> None:
    from sklearn.linear_model import LinearRegression

    X, y = fake_models.diabetes()
    model = LinearRegression().fit(X.to_numpy(), y)

    signature = signature_from_model(model)

    assert signature is not None
    assert not signature.tabular
    assert signature.names == [str(j) for j in range(X.shape[1])]
    assert signature.output is None


def test_xgboost_booster_gives_its_feature_names() -> None:
    booster, X = fake_models.xgb_booster()

    signature = signature_from_model(booster)

    assert signature is not None
    assert signature.names == list(X.columns)


def test_lightgbm_booster_without_names_gives_its_column_count() -> None:
    booster, X = fake_models.lgbm_booster()

    signature = signature_from_model(booster)

    assert signature is not None
    assert not signature.tabular
    assert len(signature.inputs) == X.shape[1]


def test_lightgbm_classifier_gives_names_and_classes() -> None:
    model, _X = fake_models.lgbm_classifier()

    signature = signature_from_model(model)

    assert signature is not None
    assert signature.tabular
    assert len(signature.inputs) == 30
    assert signature.output is not None
    assert signature.output.has_proba


def test_model_that_records_nothing_has_no_signature() -> None:
    assert signature_from_model(Doubler()) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float32(1.5), 1.5),
        (np.float64("nan"), None),
        (math.inf, None),
        (np.int64(7), 7),
        (np.bool_(True), True),
        (np.str_("a"), "a"),
        (pd.NA, None),
        (pd.NaT, None),
        (pd.Timestamp("2024-05-01 12:00"), "2024-05-01T12:00:00"),
    ],
)
def test_json_value_makes_plain_json(value: Any, expected: Any) -> None:
    result = json_value(value)

    assert result == expected
    assert type(result) is type(expected)
