"""Real fitted models, and models that misbehave on purpose, loaded as the app gets them.

The app tests build a `LoadedBundle` in memory (what `load_bundle` returns); the process
tests write real bundles with `write_bundle`.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.registry.bundle import LoadedBundle
from assay.registry.entities import ColumnSpec, OutputSpec, Signature
from assay.serving.app import ServingState, create_app

with warnings.catch_warnings():
    # Starlette 1.10 prefers httpx2 for its test client; plain httpx works the same.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient as TestClient


def make_bundle(
    model: Any,
    signature: Signature | None,
    example: list[Any],
    *,
    name: str = "m",
    version: int = 1,
    flavor: str = "python",
) -> LoadedBundle:
    return LoadedBundle(name, version, flavor, model, signature, example, {})


def floats(*names: str, nullable: bool = False) -> tuple[ColumnSpec, ...]:
    return tuple(ColumnSpec(n, "float", "float64", nullable) for n in names)


# ---- real models ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cancer_data() -> tuple[pd.DataFrame, pd.Series[Any]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


@pytest.fixture(scope="session")
def cancer(cancer_data: tuple[pd.DataFrame, pd.Series[Any]]) -> LoadedBundle:
    """Breast cancer: a scaler + logistic regression pipeline fitted on a DataFrame."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer_data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    signature = Signature(
        floats(*X.columns), OutputSpec("int", "int64", classes=(0, 1), has_proba=True)
    )
    example = X.iloc[:3].to_dict(orient="records")
    return make_bundle(model, signature, example, name="cancer", version=1, flavor="sklearn")


@pytest.fixture(scope="session")
def iris() -> LoadedBundle:
    """Iris: a logistic regression fitted on a DataFrame, predicting species names."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    X = data.data
    y = data.target.map(dict(enumerate(data.target_names)))
    model = LogisticRegression(max_iter=1000).fit(X, y)
    signature = Signature(
        floats(*X.columns), OutputSpec("str", "object", (-1,), tuple(model.classes_), True)
    )
    example = X.iloc[:2].to_dict(orient="records")
    return make_bundle(model, signature, example, name="iris", version=3, flavor="sklearn")


IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


# ---- models that misbehave --------------------------------------------------------------------

TWO = Signature(floats("a", "b"), tabular=False)
TWO_EXAMPLE = [[1.0, 2.0]]


class Exploding:
    """Raises when a row's first value is negative (its warm-up rows are positive)."""

    def predict(self, X: Any) -> Any:
        X = np.asarray(X)
        if (X[:, 0] < 0).any():
            raise ValueError("cannot take a negative a")
        return X[:, 0] * 2


class Sleepy:
    """Sleeps `seconds` when a row's first value is over 100; counts calls in flight."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.released = threading.Event()

    def predict(self, X: Any) -> Any:
        X = np.asarray(X)
        if (X[:, 0] > 100).any():
            self.released.wait(self.seconds)
        return X[:, 0]


class NonFinite:
    """Answers NaN, +inf and -inf (and one finite number) whatever it is asked."""

    def predict(self, X: Any) -> Any:
        return np.array([math.nan, math.inf, -math.inf, 1.5])[: len(X)]

    def predict_proba(self, X: Any) -> Any:
        return np.array([[math.nan, 1.0]] * len(X))


class Columns:
    """A model trained on a DataFrame of mixed kinds: answers each row as a string."""

    def predict(self, X: Any) -> Any:
        assert isinstance(X, pd.DataFrame), type(X)

        def shown(value: Any) -> str:
            return "-" if pd.isna(value) else str(value)

        return np.array(
            ["|".join(shown(v) for v in row) for row in X.itertuples(index=False)], dtype=object
        )


MIXED = Signature(
    (
        ColumnSpec("n", "int", "int64"),
        ColumnSpec("flag", "bool", "bool"),
        ColumnSpec("city", "str", "object", nullable=True),
        ColumnSpec("score", "float", "float64", nullable=True),
    ),
    OutputSpec("str", "object"),
)
MIXED_ROW = {"n": 3, "flag": True, "city": "Oslo", "score": 0.5}


# ---- clients ----------------------------------------------------------------------------------

ClientFor = Callable[..., TestClient]


@pytest.fixture
def client_for() -> Iterator[ClientFor]:
    """Serve a bundle with the real app; keyword arguments go to `create_app`."""
    clients: list[TestClient] = []

    def make(bundle: LoadedBundle, **options: Any) -> TestClient:
        client = TestClient(create_app(ServingState.of(bundle), **options))
        client.__enter__()  # runs the lifespan, so the predict threads are shut down after
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()
