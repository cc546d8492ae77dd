"""`assay.autolog()` on real fits: scikit-learn, searches, XGBoost and LightGBM."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_diabetes, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import assay
from assay.errors import AssayWarning
from assay.workspace import Workspace

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def wine() -> tuple[pd.DataFrame, pd.Series[Any]]:
    X, y = load_wine(return_X_y=True, as_frame=True)
    order = np.random.default_rng(0).permutation(len(X))  # classes come sorted
    return X.iloc[order].reset_index(drop=True), y.iloc[order].reset_index(drop=True)


def _runs(ws: Workspace, **kw: Any) -> list[Any]:
    return ws.runs.search(sort="created_at asc", **kw)


def test_each_top_level_fit_is_a_run_with_params_metrics_model_and_fingerprint(
    here: Workspace, wine: Any
) -> None:
    X, y = wine
    assay.autolog(experiment="wine-nb")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)).fit(X, y)

    (run,) = _runs(here)  # the scaler and the classifier inside were not runs of their own
    assert run.experiment == "wine-nb"
    assert run.status == "succeeded"
    assert run.params["logisticregression__C"] == 0.5
    assert run.params["logisticregression__penalty"] == "deprecated" or (
        "logisticregression__tol" in run.params  # defaults too
    )
    assert run.params["standardscaler__with_mean"] is True
    assert set(run.metrics) >= {"train_accuracy", "train_f1_macro", "train_log_loss",
                                "train_roc_auc"}  # fmt: skip
    assert run.metrics["train_accuracy"] == pytest.approx(model.score(X, y))
    fp = run.extra["training_data"]
    assert fp["X"]["shape"] == [178, 13]
    assert fp["X"]["columns"][0] == "alcohol"
    assert len(fp["X"]["hash"]) == 64
    assert fp["y"]["shape"] == [178]
    assert run.extra["autolog"]["estimator"] == "Pipeline"

    (mv,) = here.registry.of_run(run.id)
    assert mv.name == "wine-nb"
    assert mv.flavor == "sklearn"
    assert mv.signature is not None
    assert mv.signature.names[0] == "alcohol"
    assert mv.lineage.run_id == run.id
    assert mv.lineage.params == run.params_ref
    assert mv.metrics["train_accuracy"] == run.metrics["train_accuracy"]
    predictor = assay.load_model("wine-nb@1")
    assert list(predictor.predict(X.head(5))) == list(model.predict(X.head(5)))


def test_the_same_data_has_the_same_fingerprint_and_other_data_another(
    here: Workspace, wine: Any
) -> None:
    X, y = wine
    assay.autolog(log_models=False)
    LogisticRegression(max_iter=50).fit(X, y)
    LogisticRegression(C=2.0, max_iter=50).fit(X.copy(), y.copy())
    LogisticRegression(max_iter=50).fit(X.iloc[:100], y.iloc[:100])
    a, b, c = (r.extra["training_data"]["X"]["hash"] for r in _runs(here))
    assert a == b != c
    assert here.registry.models() == []  # log_models=False


def test_a_regressor_gets_rmse_mae_and_r2(here: Workspace) -> None:
    X, y = load_diabetes(return_X_y=True)
    assay.autolog()
    LinearRegression().fit(X, y)
    (run,) = _runs(here)
    assert {"train_rmse", "train_mae", "train_r2"} <= set(run.metrics)
    assert 0 < run.metrics["train_r2"] < 1
    assert run.extra["training_data"]["X"]["dtype"] == "float64"


def test_a_grid_search_records_its_best_and_every_candidate_as_a_child(
    here: Workspace, wine: Any
) -> None:
    X, y = wine
    assay.autolog(experiment="search")
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
        {"logisticregression__C": [0.01, 0.1, 1.0]},
        cv=3,
    ).fit(X, y)

    (parent,) = here.runs.search(filter="parent_id is null")
    assert (
        parent.params["best.logisticregression__C"] == search.best_params_["logisticregression__C"]
    )
    assert parent.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    children = here.runs.children(parent.id)
    assert len(children) == 3
    assert sorted(c.params["logisticregression__C"] for c in children) == [0.01, 0.1, 1.0]
    best = min(children, key=lambda c: c.metrics["rank_test_score"] or 0.0)
    assert best.params["logisticregression__C"] == search.best_params_["logisticregression__C"]
    assert best.metrics["mean_test_score"] == pytest.approx(search.best_score_)
    assert all(c.parent_id == parent.id and c.status == "succeeded" for c in children)
    (mv,) = here.registry.of_run(parent.id)  # the refitted best estimator
    loaded = assay.load_model(mv.ref)
    assert list(loaded.predict(X.head(3))) == list(search.predict(X.head(3)))


def test_a_fit_inside_start_run_records_into_that_run(here: Workspace, wine: Any) -> None:
    X, y = wine
    assay.autolog()
    with assay.start_run(experiment="manual", params={"note": "mine"}) as run:
        scaler = StandardScaler().fit(X)
        LogisticRegression(max_iter=500).fit(scaler.transform(X), y)
        assay.log_metric("extra", 1.0)
    (found,) = _runs(here)
    assert found.id == run.id
    assert found.params["note"] == "mine"
    assert found.params["C"] == 1.0
    assert found.params["with_mean"] is True
    assert {"train_accuracy", "extra"} <= set(found.metrics)
    # the scaler does not predict: only the classifier became a model version
    assert [mv.name for mv in here.registry.of_run(run.id)] == ["manual"]


def test_disabling_restores_the_frameworks_own_methods(here: Workspace, wine: Any) -> None:
    X, y = wine
    original = LogisticRegression.fit
    assay.autolog()
    assert LogisticRegression.fit is not original
    assay.autolog(disable=True)
    assert LogisticRegression.fit is original
    LogisticRegression(max_iter=50).fit(X, y)
    assert _runs(here) == []


class _Unpredictable(ClassifierMixin, BaseEstimator):
    """Fits, then fails at predict: the metrics autolog computes cannot be computed."""

    def fit(self, X: Any, y: Any) -> _Unpredictable:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> Any:
        raise RuntimeError("broken predict")


def test_a_recording_failure_warns_once_and_the_fit_returns_as_usual(
    here: Workspace, wine: Any
) -> None:
    X, y = wine
    assay.autolog()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _Unpredictable().fit(X, y)
        second = _Unpredictable().fit(X, y)
    assert isinstance(first, _Unpredictable)
    assert isinstance(second, _Unpredictable)
    said = [w for w in caught if issubclass(w.category, AssayWarning)]
    assert len(said) == 1
    assert "broken predict" in str(said[0].message)
    assert [r.status for r in _runs(here)] == ["succeeded", "succeeded"]


def test_a_fit_that_raises_fails_its_run_and_raises(here: Workspace) -> None:
    assay.autolog()
    with pytest.raises(ValueError, match="class"):
        LogisticRegression().fit([[1.0], [2.0]], [0, 0])  # one class only
    (run,) = _runs(here)
    assert run.status == "failed"
    assert "ValueError" in (run.error or "")


def test_xgboost_wrapper_with_eval_set_logs_series_validation_metrics_and_a_native_model(
    here: Workspace, wine: Any
) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = wine
    assay.autolog()
    model = xgb.XGBClassifier(n_estimators=8, max_depth=2, eval_metric="mlogloss")
    model.fit(X.iloc[:120], y.iloc[:120], eval_set=[(X.iloc[120:], y.iloc[120:])], verbose=False)
    (run,) = _runs(here)
    assert run.params["n_estimators"] == 8
    assert run.params["max_depth"] == 2
    assert {"train_accuracy", "val_accuracy", "val_log_loss", "validation_0_mlogloss"} <= set(
        run.metrics
    )
    series = [v for k, v, s, _ in here.runs.series(run.id, "validation_0_mlogloss")]
    assert len(series) == 8
    assert series[-1] == pytest.approx(run.metrics["validation_0_mlogloss"])
    (mv,) = here.registry.of_run(run.id)
    assert mv.flavor == "xgboost"


def test_xgboost_native_train_logs_params_series_and_the_booster(
    here: Workspace, wine: Any
) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = wine
    assay.autolog(experiment="native")
    train, valid = xgb.DMatrix(X.iloc[:120], y.iloc[:120]), xgb.DMatrix(X.iloc[120:], y.iloc[120:])
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
        train,
        num_boost_round=5,
        evals=[(train, "train"), (valid, "eval")],
        verbose_eval=False,
    )
    (run,) = _runs(here)
    assert run.params["max_depth"] == 2
    assert run.params["num_boost_round"] == 5
    assert len(here.runs.series(run.id, "eval_mlogloss")) == 5
    assert "train_mlogloss" in run.metrics
    assert run.extra["training_data"]["X"]["shape"] == [120, 13]
    (mv,) = here.registry.of_run(run.id)
    assert mv.flavor == "xgboost"
    assert mv.signature is not None
    predictor = assay.load_model(mv.ref)
    expected = booster.predict(xgb.DMatrix(X.iloc[:3]))
    assert np.allclose(np.asarray(predictor.predict(X.iloc[:3])), expected)


def test_lightgbm_native_and_wrapper_are_recorded(here: Workspace, wine: Any) -> None:
    lgb = pytest.importorskip("lightgbm")
    X, y = wine
    assay.autolog(experiment="lgb")
    data = lgb.Dataset(X.iloc[:120], y.iloc[:120], free_raw_data=False)
    valid = lgb.Dataset(X.iloc[120:], y.iloc[120:], reference=data)
    lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 4},
        data,
        num_boost_round=4,
        valid_sets=[valid],
        valid_names=["val"],
    )
    clf = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1)
    clf.fit(X.iloc[:120], y.iloc[:120], eval_X=X.iloc[120:], eval_y=y.iloc[120:])
    native, wrapper = _runs(here)
    assert native.params["num_leaves"] == 4
    assert native.params["num_boost_round"] == 4
    assert len(here.runs.series(native.id, "val_multi_logloss")) == 4
    assert wrapper.params["n_estimators"] == 3
    assert "val_accuracy" in wrapper.metrics
    assert len(here.runs.series(wrapper.id, "valid_0_multi_logloss")) == 3
    assert [mv.flavor for mv in here.registry.of_run(native.id)] == ["lightgbm"]
    assert [mv.flavor for mv in here.registry.of_run(wrapper.id)] == ["lightgbm"]
