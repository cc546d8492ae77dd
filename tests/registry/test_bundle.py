"""The model bundle: its manifest, its hashes (checked before anything is unpickled), the
MLflow view of it, and model files trained elsewhere (`assay models register FILE`)."""

from __future__ import annotations

import importlib.metadata
import json
import pickle
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from assay.errors import CorruptObjectError, InvalidArgumentError, NotFoundError
from assay.registry.bundle import (
    FORMAT,
    MANIFEST,
    load_bundle,
    read_manifest,
    write_bundle,
)
from assay.registry.entities import Lineage, OutputSpec, Signature
from assay.registry.external import load_model_file
from assay.registry.signature import infer_signature
from assay.serialize import dump
from assay.store.objects import hash_file

from . import fake_models
from .fake_models import MODELS, PickleTrap, TrapClassifier, UnpicklableClassifier, predict


def _bundle(model: Any, folder: Path, X: Any = None, **kwargs: Any) -> dict[str, Any]:
    signature, example = infer_signature(X, model) if X is not None else (None, [])
    return write_bundle(
        model,
        folder,
        name="churn",
        version=3,
        signature=signature,
        input_example=example,
        lineage=dump(Lineage(run_id="r1", data="cancer@2")),
        metrics={"accuracy": 0.95},
        **kwargs,
    )


def _mlmodel(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((folder / "MLmodel").read_text())
    return doc


# -- the manifest -----------------------------------------------------------------


def test_manifest_describes_the_model_and_hashes_every_other_file(tmp_path: Path) -> None:
    model, X = fake_models.logistic()

    manifest = _bundle(model, tmp_path / "b", X)

    assert manifest == json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert manifest["format"] == FORMAT
    assert (manifest["name"], manifest["version"], manifest["flavor"]) == ("churn", 3, "sklearn")
    assert manifest["flavor_meta"]["file"] == "model.skops"
    assert manifest["lineage"]["run_id"] == "r1"
    assert manifest["metrics"] == {"accuracy": 0.95}
    assert manifest["signature"]["inputs"][0]["name"] == "mean radius"
    assert len(manifest["input_example"]) == 5
    assert manifest["note"] is None
    assert datetime.fromisoformat(manifest["created_at"]).utcoffset() is not None
    on_disk = {
        p.relative_to(tmp_path / "b").as_posix(): hash_file(p)
        for p in (tmp_path / "b").rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    assert manifest["files"] == on_disk
    assert {"MLmodel", "requirements.txt", "input_example.json", "model/model.skops"} <= set(
        on_disk
    )


def test_input_example_is_written_as_json_rows(tmp_path: Path) -> None:
    model, X = fake_models.logistic()

    manifest = _bundle(model, tmp_path / "b", X)

    rows = json.loads((tmp_path / "b" / "input_example.json").read_text())
    assert rows == manifest["input_example"]
    assert rows[0]["mean radius"] == X.iloc[0]["mean radius"]


def test_bundle_is_written_only_into_an_empty_folder(tmp_path: Path) -> None:
    model, _X = fake_models.logistic()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "stray.txt").write_text("x")

    with pytest.raises(InvalidArgumentError, match="is not empty"):
        _bundle(model, tmp_path / "b")


@pytest.mark.parametrize("case", ["logistic", "xgb_classifier", "lgbm_classifier"])
def test_requirements_pin_the_versions_the_model_was_saved_with(case: str, tmp_path: Path) -> None:
    model, _X = MODELS[case][0]()

    manifest = _bundle(model, tmp_path / "b")

    lines = (tmp_path / "b" / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==\S+", line) for line in lines)
    for dist, version in pins.items():
        assert importlib.metadata.version(dist) == version
        assert manifest["frameworks"][dist] == version
    library = {
        "logistic": "scikit-learn",
        "xgb_classifier": "xgboost",
        "lgbm_classifier": "lightgbm",
    }
    assert any(d.startswith(library[case]) for d in pins)
    assert "numpy" in pins
    if case == "logistic":
        assert "skops" in pins  # what loads the file
    else:
        assert "scikit-learn" in pins  # the wrappers are scikit-learn estimators


# -- verified before loaded -------------------------------------------------------


def test_tampered_pickle_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    model, _X = fake_models.doubler()
    _bundle(model, tmp_path / "b")
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(PickleTrap(marker))
    (tmp_path / "b" / "model" / "model.pkl").write_bytes(payload)

    with pytest.raises(CorruptObjectError, match=r"model/model\.pkl .* does not match its hash"):
        load_bundle(tmp_path / "b")

    assert not marker.exists()
    pickle.loads(payload)  # the payload is live: had it been unpickled, the marker would exist
    assert marker.exists()


def test_missing_file_makes_the_bundle_corrupt(tmp_path: Path) -> None:
    model, _X = fake_models.logistic()
    _bundle(model, tmp_path / "b")
    (tmp_path / "b" / "model" / "model.skops").unlink()

    with pytest.raises(CorruptObjectError, match=r"missing model/model\.skops"):
        load_bundle(tmp_path / "b")


def test_file_the_manifest_does_not_list_is_refused(tmp_path: Path) -> None:
    model, _X = fake_models.logistic()
    _bundle(model, tmp_path / "b")
    (tmp_path / "b" / "model" / "model.pkl").write_bytes(pickle.dumps(model))

    with pytest.raises(CorruptObjectError, match=r"model/model\.pkl, which its manifest does not"):
        load_bundle(tmp_path / "b")


def test_folder_without_manifest_is_not_a_bundle(tmp_path: Path) -> None:
    model, _X = fake_models.logistic()
    _bundle(model, tmp_path / "b")
    (tmp_path / "b" / MANIFEST).unlink()

    with pytest.raises(InvalidArgumentError, match=r"is not a model bundle: it has no assay\.json"):
        load_bundle(tmp_path / "b")
    with pytest.raises(InvalidArgumentError, match=r"no assay\.json"):
        read_manifest(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: "{not json", "is not valid JSON"),
        (lambda m: json.dumps({**m, "format": FORMAT + 1}), "Upgrade Assay"),
        (lambda m: json.dumps({k: v for k, v in m.items() if k != "files"}), "lacks files"),
        (lambda m: json.dumps({**m, "files": {"../outside": "0" * 64}}), "outside the bundle"),
    ],
)
def test_malformed_manifest_is_refused_with_what_to_do(
    change: Any, message: str, tmp_path: Path
) -> None:
    model, _X = fake_models.logistic()
    manifest = _bundle(model, tmp_path / "b")
    (tmp_path / "b" / MANIFEST).write_text(change(manifest))

    with pytest.raises(InvalidArgumentError, match=message):
        load_bundle(tmp_path / "b")


def test_loaded_bundle_carries_signature_and_example(tmp_path: Path) -> None:
    model, X = fake_models.logistic()
    manifest = _bundle(model, tmp_path / "b", X)

    loaded = load_bundle(tmp_path / "b")

    assert loaded.ref == "churn@3"
    assert loaded.signature is not None
    assert dump(loaded.signature) == manifest["signature"]
    assert loaded.signature.output is not None
    assert loaded.signature.output.has_proba
    assert loaded.input_example == manifest["input_example"]


@pytest.mark.parametrize("case", sorted(MODELS))
def test_loaded_model_exports_again_and_still_predicts_the_same(case: str, tmp_path: Path) -> None:
    build, flavor = MODELS[case]
    model, X = build()
    _bundle(model, tmp_path / "stored")
    stored = load_bundle(tmp_path / "stored")

    _bundle(stored.model, tmp_path / "export", flavor=stored.flavor, mlflow_pickle=True)
    exported = load_bundle(tmp_path / "export")

    assert exported.flavor == flavor
    np.testing.assert_array_equal(exported.model.predict(X), predict(model, X))


# -- what MLflow reads ------------------------------------------------------------


def test_export_mlmodel_points_mlflow_sklearn_at_a_plain_pickle(tmp_path: Path) -> None:
    model, X = fake_models.logistic()

    manifest = _bundle(model, tmp_path / "b", X, mlflow_pickle=True)

    doc = _mlmodel(tmp_path / "b")
    pyfunc = doc["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "mlflow.sklearn"
    assert pyfunc["model_path"] == "mlflow/model.pkl"
    assert pyfunc["python_version"].count(".") == 2
    assert pyfunc["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert doc["flavors"]["sklearn"] == {
        "pickled_model": "mlflow/model.pkl",
        "serialization_format": "pickle",
        "sklearn_version": importlib.metadata.version("scikit-learn"),
        "code": None,
    }
    assert doc["artifact_path"] == "churn"
    datetime.strptime(doc["utc_time_created"], "%Y-%m-%d %H:%M:%S.%f")
    assert "mlflow/model.pkl" in manifest["files"]
    for name in ("conda.yaml", "python_env.yaml"):
        assert name in manifest["files"]
    python_env = yaml.safe_load((tmp_path / "b" / "python_env.yaml").read_text())
    assert python_env["dependencies"] == ["-r requirements.txt"]
    with open(tmp_path / "b" / "mlflow" / "model.pkl", "rb") as fh:
        unpickled = pickle.load(fh)
    np.testing.assert_array_equal(unpickled.predict(X), model.predict(X))


def test_mlmodel_signature_uses_mlflow_types(tmp_path: Path) -> None:
    model, X = fake_models.logistic()
    columns, _example = infer_signature(X.assign(n=1, flag=True, city="x"))
    signature = Signature(columns.inputs, OutputSpec("int", "int64", classes=(0, 1)))

    write_bundle(
        model,
        tmp_path / "b",
        name="churn",
        version=1,
        signature=signature,
        input_example=[],
        lineage={},
        metrics={},
    )

    sig = _mlmodel(tmp_path / "b")["signature"]
    inputs = {c["name"]: c for c in json.loads(sig["inputs"])}
    assert inputs["mean radius"] == {"type": "double", "name": "mean radius", "required": True}
    assert (inputs["n"]["type"], inputs["flag"]["type"], inputs["city"]["type"]) == (
        "long",
        "boolean",
        "string",
    )
    assert json.loads(sig["outputs"]) == [{"type": "long", "required": True}]
    assert sig["params"] is None


def test_mlmodel_signature_of_arrays_is_a_tensor_spec(tmp_path: Path) -> None:
    model, X = fake_models.doubler()

    _bundle(model, tmp_path / "b", X)

    sig = _mlmodel(tmp_path / "b")["signature"]
    assert json.loads(sig["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, X.shape[1]]}}
    ]
    assert json.loads(sig["outputs"]) == [{"type": "double", "required": True}]


def test_stored_sklearn_bundle_holds_no_pickle_and_no_mlflow_loader(tmp_path: Path) -> None:
    model, _X = fake_models.logistic()

    manifest = _bundle(model, tmp_path / "b")

    assert not any(rel.endswith(".pkl") for rel in manifest["files"])
    assert _mlmodel(tmp_path / "b")["flavors"] == {}


def test_mlmodel_reads_xgboost_from_its_native_json(tmp_path: Path) -> None:
    model, _X = fake_models.xgb_classifier()

    manifest = _bundle(model, tmp_path / "b", mlflow_pickle=True)

    flavors = _mlmodel(tmp_path / "b")["flavors"]
    assert flavors["python_function"]["loader_module"] == "mlflow.xgboost"
    assert "data" not in flavors["python_function"]  # MLflow then reads the xgboost entry
    entry = flavors["xgboost"]
    assert entry["data"] == "model/model.json"
    assert entry["data"] in manifest["files"]
    assert entry["model_class"] == "xgboost.sklearn.XGBClassifier"
    assert entry["model_format"] == "json"
    assert entry["xgb_version"] == manifest["frameworks"].get(
        "xgboost", manifest["frameworks"].get("xgboost-cpu")
    )
    assert not (tmp_path / "b" / "mlflow").exists()


def test_mlmodel_reads_lightgbm_from_its_native_text(tmp_path: Path) -> None:
    model, _X = fake_models.lgbm_regressor()

    manifest = _bundle(model, tmp_path / "b", mlflow_pickle=True)

    flavors = _mlmodel(tmp_path / "b")["flavors"]
    assert flavors["python_function"]["loader_module"] == "mlflow.lightgbm"
    entry = flavors["lightgbm"]
    assert entry["data"] == "model/model.txt"
    assert entry["data"] in manifest["files"]
    assert entry["model_class"] == "lightgbm.basic.Booster"
    assert entry["lgb_version"] == importlib.metadata.version("lightgbm")


def test_mlmodel_of_a_python_model_loads_its_pickle_through_mlflow_sklearn(
    tmp_path: Path,
) -> None:
    model, _X = fake_models.doubler()

    _bundle(model, tmp_path / "b", mlflow_pickle=True)

    flavors = _mlmodel(tmp_path / "b")["flavors"]
    assert flavors["python_function"]["loader_module"] == "mlflow.sklearn"
    assert flavors["python_function"]["model_path"] == "model/model.pkl"
    assert flavors["sklearn"]["pickled_model"] == "model/model.pkl"
    assert not (tmp_path / "b" / "mlflow").exists()  # its own file already is a pickle


# -- model files trained elsewhere ------------------------------------------------


def test_skops_file_registers_as_sklearn(tmp_path: Path) -> None:
    import skops.io as sio

    model, X = fake_models.pipeline()
    sio.dump(model, tmp_path / "model.skops")

    loaded, flavor = load_model_file(tmp_path / "model.skops", trust=False)

    assert flavor == "sklearn"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_skops_file_with_unknown_types_needs_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skops.io as sio

    marker = tmp_path / "unpickled"
    monkeypatch.setattr(fake_models, "MARKER", [marker])
    X, y = fake_models.cancer()
    model = TrapClassifier(max_iter=5000).fit(X, y)
    sio.dump(model, tmp_path / "model.skops")

    with pytest.raises(InvalidArgumentError, match=r"fake_models\.TrapClassifier.*pass --trust"):
        load_model_file(tmp_path / "model.skops", trust=False)
    loaded, flavor = load_model_file(tmp_path / "model.skops", trust=True)

    assert flavor == "sklearn"
    assert not marker.exists()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_xgboost_json_of_a_classifier_registers_as_the_classifier(tmp_path: Path) -> None:
    import xgboost as xgb

    model, X = fake_models.xgb_classifier()
    model.save_model(tmp_path / "model.json")

    loaded, flavor = load_model_file(tmp_path / "model.json", trust=False)

    assert flavor == "xgboost"
    assert isinstance(loaded, xgb.XGBClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_xgboost_ubj_booster_registers_as_a_booster(tmp_path: Path) -> None:
    import xgboost as xgb

    booster, X = fake_models.xgb_booster()
    booster.save_model(tmp_path / "model.ubj")

    loaded, flavor = load_model_file(tmp_path / "model.ubj", trust=False)

    assert flavor == "xgboost"
    assert isinstance(loaded, xgb.Booster)
    np.testing.assert_array_equal(predict(loaded, X), predict(booster, X))


def test_lightgbm_text_model_registers_whatever_its_extension(tmp_path: Path) -> None:
    import lightgbm as lgb

    model, X = fake_models.lgbm_regressor()
    model.booster_.save_model(tmp_path / "churn.model")

    loaded, flavor = load_model_file(tmp_path / "churn.model", trust=False)

    assert flavor == "lightgbm"
    assert isinstance(loaded, lgb.Booster)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".joblib"])
def test_pickle_is_refused_without_trust_and_never_unpickled(suffix: str, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    (tmp_path / f"model{suffix}").write_bytes(pickle.dumps(PickleTrap(marker)))

    with pytest.raises(InvalidArgumentError, match="arbitrary code when loaded; pass --trust"):
        load_model_file(tmp_path / f"model{suffix}", trust=False)

    assert not marker.exists()


def test_trusted_pickle_loads_and_is_stored_by_its_framework(tmp_path: Path) -> None:
    model, X = fake_models.forest()
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))

    loaded, flavor = load_model_file(tmp_path / "model.pkl", trust=True)

    assert flavor == "sklearn"  # so the registry stores it with skops, not as a pickle
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_trusted_joblib_file_loads(tmp_path: Path) -> None:
    import joblib

    model, X = fake_models.doubler()
    joblib.dump(model, tmp_path / "model.joblib")

    loaded, flavor = load_model_file(tmp_path / "model.joblib", trust=True)

    assert flavor == "python"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_unknown_file_format_names_the_supported_ones(tmp_path: Path) -> None:
    (tmp_path / "model.csv").write_text("a,b\n1,2\n")
    (tmp_path / "other.json").write_text('{"weights": [1, 2]}')

    with pytest.raises(InvalidArgumentError, match=r"model\.csv is\. Supported: \.skops"):
        load_model_file(tmp_path / "model.csv", trust=True)
    with pytest.raises(InvalidArgumentError, match=r"other\.json"):
        load_model_file(tmp_path / "other.json", trust=True)


def test_missing_model_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="No model file at"):
        load_model_file(tmp_path / "nope.skops", trust=False)


@pytest.mark.parametrize("case", ["forest", "hist_gradient_boosting", "neighbours", "mlp"])
def test_skops_file_of_a_standard_estimator_needs_no_trust(case: str, tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = fake_models.iris()
    model: Any = {
        "forest": lambda: fake_models.forest()[0],
        "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=3).fit(X, y),
        "neighbours": lambda: KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
        # Seeded and short: whether it converges is beside the point (the types it holds
        # are), so the convergence warning is silenced rather than waited out.
        "mlp": lambda: make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0)
        ).fit(X, y),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = model[case]()
    sio.dump(model, tmp_path / "model.skops")
    assert sio.get_untrusted_types(file=tmp_path / "model.skops")  # skops alone would refuse

    loaded, flavor = load_model_file(tmp_path / "model.skops", trust=False)

    assert flavor == "sklearn"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_export_of_a_model_that_cannot_be_pickled_says_mlflow_cannot_load_it(
    tmp_path: Path,
) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = fake_models.cancer()
    model = make_pipeline(FunctionTransformer(np.log1p), UnpicklableClassifier(max_iter=5000))
    model.fit(X, y)

    manifest = _bundle(model, tmp_path / "b", mlflow_pickle=True)

    assert manifest["flavor"] == "sklearn"
    assert "MLflow cannot load this export" in manifest["note"]
    assert not (tmp_path / "b" / "mlflow").exists()
    assert _mlmodel(tmp_path / "b")["flavors"] == {}
    np.testing.assert_array_equal(load_bundle(tmp_path / "b").model.predict(X), model.predict(X))
