"""Models for the registry tests, defined at module level so that pickle can find them."""

from __future__ import annotations

import copy
import enum
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

# Where `make_marker` writes; set by a test (monkeypatch) before it pickles a trap.
MARKER: list[Path] = []


def make_marker(path: str) -> None:
    """What unpickling a `PickleTrap` calls: proof that a pickle was loaded."""
    Path(path).write_text("unpickled")


class Doubler:
    """Not a framework model: any object with predict(X) (the python flavor)."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def predict(self, X: Any) -> Any:
        return np.asarray(X, dtype=float).sum(axis=1) * self.factor


class PickleTrap:
    """Unpickling this calls `make_marker`, as a malicious pickle would run its payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return make_marker, (str(self.marker),)

    def predict(self, X: Any) -> Any:
        return np.zeros(len(X))


class TrapClassifier(LogisticRegression):
    """A scikit-learn estimator whose pickle would create `MARKER[0]` when loaded."""

    def __reduce__(self) -> tuple[Any, ...]:
        return make_marker, (str(MARKER[0]),)


class UnpicklableClassifier(LogisticRegression):
    """skops stores it (from its __dict__); pickle refuses it."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("UnpicklableClassifier refuses to be pickled")


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class ModalClassifier(ClassifierMixin, BaseEstimator):
    """A scikit-learn estimator holding an Enum, which skops writes but cannot read back."""

    def __init__(self, mode: Mode = Mode.FAST) -> None:
        self.mode = mode

    def fit(self, X: Any, y: Any) -> ModalClassifier:
        self.classes_ = np.unique(y)
        self.majority_ = self.classes_[np.argmax(np.bincount(np.searchsorted(self.classes_, y)))]
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.majority_)


class UncalibratedClassifier(ModalClassifier):
    """Has predict_proba, but it does not work (as with a model fitted without it)."""

    def predict_proba(self, X: Any) -> Any:
        raise ValueError("this model was fitted without probability estimates")


class Scaler:
    """Has no predict: no flavor accepts it."""

    def transform(self, X: Any) -> Any:
        return X


class FactorFlavor:
    """A third-party flavor: stores a `Doubler` as JSON (registered by a test)."""

    name = "factor"
    mlflow_needs_pickle = False

    def accepts(self, model: Any) -> bool:
        return isinstance(model, Doubler)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "factor.json").write_text(json.dumps({"factor": model.factor}))
        return {"file": "factor.json"}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        return Doubler(json.loads((folder / meta["file"]).read_text())["factor"])

    def frameworks(self) -> dict[str, str]:
        return {}

    def requirements(self) -> list[str]:
        return []

    def mlflow_flavor(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {}


# -- data and fitted models, built once per test session ------------------------------


@functools.cache
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@functools.cache
def iris() -> tuple[pd.DataFrame, pd.Series]:
    """Iris with the species names as labels (strings)."""
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    names = np.asarray(data.target_names)[data.target]
    return data.data, pd.Series(names, name="species")


@functools.cache
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


def logistic() -> tuple[Any, Any]:
    """A fitted logistic regression and its inputs, each test's own copy: the fit is made
    once a process (lbfgs on the unscaled features takes 2,000 iterations, a second of
    CPU, and 16 tests ask for it)."""
    model, X = _logistic()
    return copy.deepcopy(model), X.copy()


@functools.cache
def _logistic() -> tuple[Any, Any]:
    X, y = cancer()
    return LogisticRegression(max_iter=5000).fit(X, y), X


def pipeline() -> tuple[Any, Any]:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer()
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X


def forest() -> tuple[Any, Any]:
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris()
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), X


def xgb_classifier() -> tuple[Any, Any]:
    import xgboost as xgb

    X, y = cancer()
    return xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y), X


def xgb_booster() -> tuple[Any, Any]:
    import xgboost as xgb

    X, y = diabetes()
    params = {"max_depth": 2, "objective": "reg:squarederror"}
    return xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=5), X


def lgbm_classifier() -> tuple[Any, Any]:
    import lightgbm as lgb

    X, y = cancer()
    return lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y), X


def lgbm_multiclass() -> tuple[Any, Any]:
    import lightgbm as lgb

    X, y = iris()
    return lgb.LGBMClassifier(n_estimators=5, min_child_samples=5, verbose=-1).fit(X, y), X


def lgbm_regressor() -> tuple[Any, Any]:
    import lightgbm as lgb

    X, y = diabetes()
    return lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y), X


def lgbm_booster() -> tuple[Any, Any]:
    import lightgbm as lgb

    X, y = diabetes()
    params = {"objective": "regression", "verbose": -1}
    return lgb.train(params, lgb.Dataset(X.to_numpy(), label=y.to_numpy()), 5), X.to_numpy()


def doubler() -> tuple[Any, Any]:
    X, _y = diabetes()
    return Doubler(3.0), X.to_numpy()


# name -> (builder, the flavor that stores it)
MODELS: dict[str, tuple[Callable[[], tuple[Any, Any]], str]] = {
    "logistic": (logistic, "sklearn"),
    "pipeline": (pipeline, "sklearn"),
    "forest": (forest, "sklearn"),
    "xgb_classifier": (xgb_classifier, "xgboost"),
    "xgb_booster": (xgb_booster, "xgboost"),
    "lgbm_classifier": (lgbm_classifier, "lightgbm"),
    "lgbm_multiclass": (lgbm_multiclass, "lightgbm"),
    "lgbm_regressor": (lgbm_regressor, "lightgbm"),
    "lgbm_booster": (lgbm_booster, "lightgbm"),
    "python": (doubler, "python"),
}


def predict(model: Any, X: Any) -> Any:
    """The original model's predictions (a bare XGBoost booster needs a DMatrix)."""
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        return model.predict(xgb.DMatrix(X))
    return model.predict(X)
