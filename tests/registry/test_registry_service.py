"""The model repository through its service: a run's model becomes a version, on both backends."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.registry.bundle import load_bundle
from assay.registry.entities import LineageTree
from assay.runs.entities import Run
from assay.workspace import Workspace

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "assay" / "examples" / "cancer"

Served = Callable[[Any, Any], Any]


@pytest.fixture
def project(ws: Workspace, tmp_path: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    frame = frame.rename(columns=lambda c: c.replace(" ", "_"))
    src = tmp_path / "project"
    (src / "data").mkdir(parents=True)
    frame.to_csv(src / "data" / "cancer.csv", index=False)
    for name in ("pipeline.py", "params.json"):
        shutil.copyfile(EXAMPLE / name, src / name)
    ws.data.commit("cancer", src / "data")
    ws.pipelines.register(src / "pipeline.py")
    return src


def train(ws: Workspace, project: Path, *overrides: str) -> Run:
    queued = ws.runs.prepare(
        "cancer", data="cancer@1", params_file=project / "params.json", overrides=list(overrides)
    )
    done = ws.runs.execute(queued.id)
    assert done.status == "succeeded", done.error
    return done


def test_a_run_model_becomes_the_next_version_with_signature_metrics_and_lineage(
    ws: Workspace, project: Path
) -> None:
    run = train(ws, project)
    mv = ws.registry.register_run(run.id)
    assert (mv.name, mv.version, mv.flavor) == ("cancer", 1, "sklearn")
    assert mv.metrics["val_f1"] == pytest.approx(run.metrics["val_f1"])
    assert "scikit-learn" in mv.frameworks
    assert mv.signature is not None
    assert mv.signature.tabular
    assert "mean_radius" in mv.signature.names
    assert "diagnosis" not in mv.signature.names
    assert mv.signature.output is not None
    assert set(mv.signature.output.classes or ()) == {"benign", "malignant"}
    assert mv.signature.output.has_proba
    lin = mv.lineage
    assert (lin.run_id, lin.data, lin.pipeline, lin.params) == (
        run.id,
        "cancer@1",
        "cancer@1",
        "params/cancer@1",
    )
    assert lin.data_manifest
    assert lin.pipeline_manifest
    assert lin.params_manifest

    # Registering the same run again is the same version, not a new one.
    assert ws.registry.register_run(run.id[:8]).version == 1
    # So is a rerun that trained the same model again (a skops file differs in its bytes:
    # its zip carries the time it was written; the model in it is what counts).
    rerun = ws.runs.execute(ws.runs.rerun(run.id).id)
    assert ws.registry.register_run(rerun.id).ref == "cancer@1"
    # Under another name it is a version of that model.
    assert ws.registry.register_run(run.id, "cancer-best").ref == "cancer-best@1"
    second = ws.registry.register_run(train(ws, project, "C=0.1").id)
    assert second.version == 2
    assert [v.version for v in ws.registry.versions("cancer")] == [2, 1]
    [model] = [m for m in ws.registry.models() if m.name == "cancer"]
    assert (model.name, model.versions, model.latest) == ("cancer", 2, 2)


def test_a_stored_version_loads_and_predicts_like_the_trained_model(
    ws: Workspace, project: Path, tmp_path: Path
) -> None:
    mv = ws.registry.register_run(train(ws, project).id)
    loaded = load_bundle(ws.registry.materialize(mv, tmp_path / "bundle"))
    manifest = loaded.manifest
    assert manifest["files"]["model/model.skops"]
    example = loaded.input_example
    assert example
    assert set(example[0]) == set(mv.signature.names if mv.signature else [])
    import pandas as pd

    preds = loaded.model.predict(pd.DataFrame(example))
    assert set(preds) <= {"benign", "malignant"}


def test_aliases_move_and_resolve_everywhere(ws: Workspace, project: Path) -> None:
    ws.registry.register_run(train(ws, project).id)
    ws.registry.register_run(train(ws, project, "C=0.1").id)
    assert ws.registry.alias("cancer@1", "champion").aliases == ("champion",)
    assert ws.registry.resolve("cancer@champion").version == 1
    ws.registry.alias("cancer@2", "champion")
    assert ws.registry.resolve("cancer@champion").version == 2
    assert ws.registry.resolve("cancer@1").aliases == ()
    assert ws.registry.resolve("cancer").version == 2
    assert ws.registry.models()[0].aliases == {"champion": 2}
    ws.registry.unalias("cancer", "champion")
    with pytest.raises(NotFoundError, match="no alias 'champion'"):
        ws.registry.resolve("cancer@champion")
    with pytest.raises(InvalidArgumentError, match="would shadow a version"):
        ws.registry.alias("cancer@1", "7")
    with pytest.raises(InvalidArgumentError, match="would shadow a version"):
        ws.registry.alias("cancer@1", "latest")


def test_unknown_models_versions_and_bad_refs_are_clear_errors(
    ws: Workspace, project: Path
) -> None:
    with pytest.raises(NotFoundError, match="No model named 'nope'"):
        ws.registry.resolve("nope@1")
    ws.registry.register_run(train(ws, project).id)
    with pytest.raises(NotFoundError, match="no version 9"):
        ws.registry.resolve("cancer@9")
    with pytest.raises(InvalidArgumentError, match="nothing after '@'"):
        ws.registry.resolve("cancer@")
    with pytest.raises(InvalidArgumentError, match="not valid"):
        ws.registry.resolve("../etc@1")


def test_only_a_succeeded_run_with_a_model_registers(ws: Workspace, project: Path) -> None:
    notebook = ws.runs.begin("scratch")
    ws.runs.finish_here(notebook.id, "succeeded", None, 0.1, 0.1)
    with pytest.raises(ConflictError, match="has no model"):
        ws.registry.register_run(notebook.id)
    failed = ws.runs.begin("scratch")
    ws.runs.finish_here(failed.id, "failed", "boom", 0.1, 0.1)
    with pytest.raises(ConflictError, match="is failed"):
        ws.registry.register_run(failed.id)
    assert ws.registry.models() == []


def test_lineage_reaches_data_pipeline_steps_and_params(
    ws: Workspace, project: Path, as_served: Served
) -> None:
    run = train(ws, project, "C=0.5")
    ws.registry.register_run(run.id)
    tree = ws.registry.lineage("cancer@1")
    assert tree["model"] == "cancer@1"
    r = tree["run"]
    assert r is not None
    assert r["id"] == run.id
    assert r["data"]["ref"] == "cancer@1"
    assert len(r["data"]["manifest"] or "") == 64
    assert [s["name"] for s in r["pipeline"]["steps"]] == [
        "load",
        "clean",
        "features",
        "split",
        "train",
        "evaluate",
    ]
    assert r["params"]["values"]["C"] == 0.5
    # Its type describes all of it: the API answers the same document.
    assert as_served(LineageTree, tree) == json.loads(json.dumps(tree))


def test_register_a_file_trained_elsewhere(
    ws: Workspace, tmp_path: Path, as_served: Served
) -> None:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    sio.dump(model, tmp_path / "iris.skops")
    mv = ws.registry.register_file(tmp_path / "iris.skops", "iris")
    assert (mv.ref, mv.flavor) == ("iris@1", "sklearn")
    assert mv.lineage.run_id is None
    assert "iris.skops" in (mv.lineage.source or "")
    assert mv.signature is not None
    assert mv.signature.names == list(X.columns)
    tree = ws.registry.lineage("iris@1")
    assert tree["run"] is None
    assert tree["source"] == mv.lineage.source
    assert as_served(LineageTree, tree) == json.loads(json.dumps(tree))

    with open(tmp_path / "iris.pkl", "wb") as f:
        pickle.dump(model, f)
    with pytest.raises(InvalidArgumentError, match="--trust"):
        ws.registry.register_file(tmp_path / "iris.pkl", "iris")
    assert len(ws.registry.versions("iris")) == 1  # nothing stored by the refusal
    trusted = ws.registry.register_file(tmp_path / "iris.pkl", "iris", trust=True)
    # A trusted pickle of a scikit-learn model is stored in the safe format: here it is
    # the very model iris@1 holds, so it is that version.
    assert (trusted.version, trusted.flavor) == (1, "sklearn")
    with pytest.raises(NotFoundError, match="No model file"):
        ws.registry.register_file(tmp_path / "missing.skops", "iris")


def test_export_writes_a_self_contained_folder_mlflow_can_read(
    ws: Workspace, project: Path, tmp_path: Path
) -> None:
    import yaml

    ws.registry.register_run(train(ws, project).id)
    ws.registry.alias("cancer@1", "champion")
    mv, dest = ws.registry.export("cancer@champion", tmp_path / "export")
    assert mv.version == 1
    mlmodel = yaml.safe_load((dest / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert (dest / mlmodel["flavors"]["python_function"]["model_path"]).is_file()
    assert "scikit-learn==" in (dest / "requirements.txt").read_text()
    manifest = json.loads((dest / "assay.json").read_text())
    assert manifest["signature"]["inputs"][0]["name"]
    assert load_bundle(dest).version == 1
    with pytest.raises(ConflictError, match="not empty"):
        ws.registry.export("cancer@1", dest)
