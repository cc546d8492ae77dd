"""Flavors: each framework's models saved into a bundle and loaded back, predicting the same.

Every model is a real fitted estimator on one of scikit-learn's bundled datasets; the
bundle is written and loaded exactly as the registry and a service do.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.errors import InvalidArgumentError
from assay.registry import flavors as flavors_module
from assay.registry.bundle import load_bundle, write_bundle
from assay.registry.flavors import BUILTINS, GROUP, flavor_for, flavor_named, flavors

from . import fake_models
from .fake_models import MODELS, Doubler, ModalClassifier, Scaler, TrapClassifier, predict


def _bundle(model: Any, folder: Path, **kwargs: Any) -> dict[str, Any]:
    return write_bundle(
        model,
        folder,
        name="m",
        version=1,
        signature=None,
        input_example=[],
        lineage={},
        metrics={},
        **kwargs,
    )


@pytest.fixture
def plugin_flavor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A third-party package's `assay.flavors` entry point, next to the built-ins."""
    real = importlib.metadata.entry_points
    extra = importlib.metadata.EntryPoint(
        name="factor", value="registry.fake_models:FactorFlavor", group=GROUP
    )

    def entry_points(**kwargs: Any) -> Any:
        found = list(real(**kwargs))
        return [*found, extra] if kwargs.get("group") == GROUP else found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    flavors.cache_clear()
    yield
    flavors.cache_clear()


def test_builtin_flavors_register_through_their_entry_points() -> None:
    registered = {ep.name for ep in importlib.metadata.entry_points(group=GROUP)}

    assert set(BUILTINS) <= registered
    assert {name: f.name for name, f in flavors().items() if name in BUILTINS} == {
        name: name for name in BUILTINS
    }


@pytest.mark.parametrize("case", sorted(MODELS))
def test_flavor_is_chosen_by_the_models_type(case: str) -> None:
    build, expected = MODELS[case]
    model, _X = build()

    assert flavor_for(model).name == expected


def test_object_without_predict_has_no_flavor() -> None:
    with pytest.raises(InvalidArgumentError, match=r"Scaler: it has no predict\(\) method"):
        flavor_for(Scaler())


def test_unknown_flavor_name_lists_the_known_ones() -> None:
    with pytest.raises(InvalidArgumentError, match=r"'onnx'.*lightgbm, python, sklearn, xgboost"):
        flavor_named("onnx")


@pytest.mark.parametrize("case", sorted(MODELS))
def test_loaded_model_predicts_exactly_what_the_original_did(case: str, tmp_path: Path) -> None:
    build, expected = MODELS[case]
    model, X = build()

    manifest = _bundle(model, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")

    assert manifest["flavor"] == loaded.flavor == expected
    assert manifest["note"] is None
    np.testing.assert_array_equal(loaded.model.predict(X), predict(model, X))
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(loaded.model.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("case", ["lgbm_classifier", "lgbm_multiclass"])
def test_lightgbm_classifier_loads_with_labels_and_probabilities(case: str, tmp_path: Path) -> None:
    model, X = MODELS[case][0]()

    _bundle(model, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b").model

    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    labels = loaded.predict(X)
    assert set(labels) <= set(model.classes_)  # labels, not probabilities
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_lightgbm_regressor_loads_without_predict_proba(tmp_path: Path) -> None:
    model, X = fake_models.lgbm_regressor()

    _bundle(model, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b").model

    assert not hasattr(loaded, "predict_proba")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_lightgbm_model_gets_a_dataframe_with_its_columns_and_categories(tmp_path: Path) -> None:
    import lightgbm as lgb

    X, y = fake_models.cancer()
    X = X.iloc[:, :4].assign(size=pd.Categorical(np.where(X["mean area"] > 600, "big", "small")))
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)

    _bundle(model, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b").model

    # The category column only predicts right if the frame reaches LightGBM as it is
    # (an array of its values would hold strings LightGBM cannot map to categories).
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_xgboost_booster_predicts_from_an_array_with_its_feature_names(tmp_path: Path) -> None:
    booster, X = fake_models.xgb_booster()

    _bundle(booster, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b").model

    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), predict(booster, X))


def test_skops_file_holds_json_and_plain_arrays_only(tmp_path: Path) -> None:
    model, _X = fake_models.pipeline()

    _bundle(model, tmp_path / "b")

    with zipfile.ZipFile(tmp_path / "b" / "model" / "model.skops") as archive:
        names = archive.namelist()
        json.loads(archive.read("schema.json"))
        for name in names:
            data = archive.read(name)
            assert not data.startswith(b"\x80"), f"{name} is a pickle"
            if name.endswith(".npy"):
                with archive.open(name) as fh:
                    np.load(fh, allow_pickle=False)  # raises if it needs pickle
    assert set(names) - {"schema.json"} == {n for n in names if n.endswith(".npy")}


def test_loading_a_skops_bundle_never_unpickles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "unpickled"
    monkeypatch.setattr(fake_models, "MARKER", [marker])
    X, y = fake_models.cancer()
    model = TrapClassifier(max_iter=5000).fit(X, y)
    pickle.loads(pickle.dumps(model))  # the trap is live: a pickle would create the marker
    assert marker.exists()
    marker.unlink()

    manifest = _bundle(model, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")

    assert manifest["flavor"] == "sklearn"
    assert "registry.fake_models.TrapClassifier" in manifest["flavor_meta"]["trusted"]
    assert not marker.exists()
    np.testing.assert_array_equal(loaded.model.predict(X), model.predict(X))


def test_sklearn_model_skops_cannot_store_falls_back_to_pickle_with_a_note(
    tmp_path: Path,
) -> None:
    X, y = fake_models.cancer()
    model = ModalClassifier().fit(X, y)

    manifest = _bundle(model, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")

    assert manifest["flavor"] == loaded.flavor == "python"
    assert "skops could not store this registry.fake_models.ModalClassifier" in manifest["note"]
    assert sorted(p.name for p in (tmp_path / "b" / "model").iterdir()) == ["model.pkl"]
    np.testing.assert_array_equal(loaded.model.predict(X), model.predict(X))


def test_model_that_cannot_be_pickled_is_refused_with_what_to_do(tmp_path: Path) -> None:
    model = Doubler(factor=lambda: 2)  # type: ignore[arg-type]

    with pytest.raises(InvalidArgumentError, match=r"cannot be pickled.*at module level"):
        _bundle(model, tmp_path / "b")


def test_named_flavor_that_does_not_take_the_model_is_refused(tmp_path: Path) -> None:
    model, _X = fake_models.logistic()

    with pytest.raises(InvalidArgumentError, match="xgboost flavor cannot store"):
        _bundle(model, tmp_path / "b", flavor="xgboost")


def test_third_party_flavor_is_asked_before_the_builtins(
    plugin_flavor: None, tmp_path: Path
) -> None:
    model, X = fake_models.doubler()

    manifest = _bundle(model, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")

    assert flavor_for(model).name == manifest["flavor"] == "factor"
    assert manifest["flavor_meta"] == {"file": "factor.json"}
    np.testing.assert_array_equal(loaded.model.predict(X), model.predict(X))


def test_broken_flavor_plugin_is_skipped_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = importlib.metadata.entry_points
    broken = importlib.metadata.EntryPoint(name="broken", value="no_such_module:X", group=GROUP)

    def entry_points(**kwargs: Any) -> Any:
        found = list(real(**kwargs))
        return [*found, broken] if kwargs.get("group") == GROUP else found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    flavors.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger=flavors_module.__name__):
            known = flavors()
    finally:
        flavors.cache_clear()

    assert "broken" not in known
    assert set(BUILTINS) <= set(known)
    assert "'broken'" in caplog.text
