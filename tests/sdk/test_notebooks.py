"""Real notebooks on real kernels: tracked from Jupyter, and executed as pipelines."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from sklearn.datasets import load_wine
from typer.testing import Result

from assay.workspace import Workspace

CLI = Callable[..., Result]

TRAIN = """
import assay
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.datasets import load_wine

assay.autolog()
X, y = load_wine(return_X_y=True, as_frame=True)
model = make_pipeline(StandardScaler(), LogisticRegression(C={C})).fit(X, y)
"""


def notebook(path: Path, *cells: str, parameters: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, path)
    return path


def execute(path: Path, monkeypatch: pytest.MonkeyPatch, *, session: bool = True) -> Any:
    """Run every cell on a fresh kernel, as Jupyter would; with `session`, the kernel is
    told its notebook's path as Jupyter Server tells it (JPY_SESSION_NAME)."""
    if session:
        monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    else:
        monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    return nb


@pytest.mark.one_backend
def test_a_notebook_records_its_fits_and_its_own_code_and_two_runs_diff(
    here: Workspace, tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = notebook(tmp_path / "analysis.ipynb", TRAIN.format(C=1.0))
    execute(path, monkeypatch)
    notebook(path, TRAIN.format(C=0.2))  # the user edits the cell and runs it again
    execute(path, monkeypatch)

    first, second = here.runs.search(sort="created_at asc")
    assert first.experiment == "analysis"  # named after the notebook
    assert first.params["logisticregression__C"] == 1.0
    assert second.params["logisticregression__C"] == 0.2
    assert {"train_accuracy", "train_roc_auc"} <= set(second.metrics)
    code = here.runs.code_of(second.id)
    assert code.kind == "notebook"
    assert code.entry == "analysis.ipynb"
    stored = json.loads(here.runs.code_files(code)["analysis.ipynb"])
    assert all(not c.get("outputs") for c in stored["cells"])  # code, not results
    diff = cli("runs", "code", first.id[:8], "--diff", second.id[:8])
    assert "-model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))" in diff.stdout
    assert "+model = make_pipeline(StandardScaler(), LogisticRegression(C=0.2))" in diff.stdout
    assert [mv.ref for mv in here.registry.of_run(second.id)] == ["analysis@2"]


@pytest.mark.one_backend
def test_without_its_path_a_kernel_keeps_the_cells_it_executed(
    here: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = notebook(tmp_path / "scratch.ipynb", "x = 41", TRAIN.format(C=0.5))
    execute(path, monkeypatch, session=False)
    (run,) = here.runs.search()
    code = here.runs.code_of(run.id)
    assert code.kind == "cells"
    assert run.experiment == "notebook"
    text = here.runs.code_files(code)["cells.py"].decode()
    assert text.index("x = 41") < text.index("LogisticRegression(C=0.5)")


# ---- a notebook is a pipeline -----------------------------------------------------------

PIPELINE_CELLS = (
    """
from pathlib import Path
import pandas as pd
import assay
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

assay.autolog()
frame = pd.read_csv(Path(data) / "wine.csv")
X, y = frame.drop(columns="target"), frame["target"]
X = (X - X.mean()) / X.std()  # scaled, lbfgs converges in 14 iterations instead of 2,400
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=seed)
""",
    """
model = LogisticRegression(C=C, max_iter=5000).fit(X_train, y_train)
assay.log_metric("val_f1", f1_score(y_val, model.predict(X_val), average="macro"))
print("trained with C =", C)
""",
)


@pytest.fixture
def wine_version(here: Workspace, tmp_path: Path) -> str:
    folder = tmp_path / "wine-data"
    folder.mkdir()
    load_wine(as_frame=True).frame.to_csv(folder / "wine.csv", index=False)
    return here.data.commit("wine", folder).version.ref


@pytest.mark.one_backend
def test_a_notebook_runs_as_a_pipeline_with_injected_params_and_its_rerun_reproduces(
    here: Workspace, tmp_path: Path, cli: CLI, wine_version: str
) -> None:
    path = notebook(
        tmp_path / "train.ipynb", *PIPELINE_CELLS, parameters='data = "."\nC = 1.0\nseed = 0'
    )
    (tmp_path / "p.json").write_text(json.dumps({"C": 0.05, "seed": 3}))
    done = cli("run", str(path), "--data", wine_version, "--params", "p.json")
    assert done.exit_code == 0, done.stdout + (done.stderr or "")
    assert "✓ notebook" in done.stdout
    assert "→ model train@1" in done.stdout

    (run,) = here.runs.search()
    assert run.pipeline_ref == "train@1"
    assert run.data_ref == wine_version
    assert run.params["C"] == 0.05
    assert run.status == "succeeded"
    assert "val_f1" in run.metrics
    assert "train_accuracy" in run.metrics
    assert run.params["max_iter"] == 5000  # autolog inside the kernel recorded into the run
    artifacts = {p: h for p, h, _ in here.runs.artifacts(run.id)}
    executed = json.loads(here.store.get_bytes(artifacts["notebook.ipynb"]))
    outputs = "".join(
        "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])
    )
    assert "trained with C = 0.05" in outputs  # the injected params, and the outputs kept
    assert "trained with C = 0.05" in here.runs.logs(run.id)
    (mv,) = here.registry.of_run(run.id)
    assert mv.lineage.pipeline == "train@1"
    assert mv.lineage.data == wine_version

    again = cli("runs", "rerun", run.id[:8])
    assert again.exit_code == 0
    assert "Reproduced" in again.stdout

    notebook(path, *PIPELINE_CELLS, "1 / 0", parameters='data = "."\nC = 1.0\nseed = 0')
    failed = cli("run", str(path), "--data", wine_version, "--params", "p.json")
    assert failed.exit_code == 1
    broken = here.runs.search(filter="status = 'failed'")[0]
    assert broken.pipeline_ref == "train@2"
    assert "ZeroDivisionError" in (broken.error or "")
    assert "Cell" in (broken.error or "")


@pytest.mark.one_backend
def test_a_sweep_tunes_a_notebooks_parameters(
    here: Workspace, tmp_path: Path, cli: CLI, wine_version: str
) -> None:
    path = notebook(
        tmp_path / "tune.ipynb", *PIPELINE_CELLS, parameters='data = "."\nC = 1.0\nseed = 0'
    )
    (tmp_path / "p.json").write_text(json.dumps({"C": 1.0, "seed": 0}))
    (tmp_path / "space.yaml").write_text("C: {log-float: [0.01, 10]}\n")
    typo = cli("sweep", str(path), "--data", wine_version, "--params", "p.json",
               "--space", "space.yaml", "--trials", "2", "--objective", "val_f1:max",
               "--name", "typo", "--register", "none")  # fmt: skip
    assert typo.exit_code == 0, typo.stdout
    (tmp_path / "bad.yaml").write_text("CC: {log-float: [0.01, 10]}\n")
    refused = cli("sweep", str(path), "--data", wine_version, "--params", "p.json",
                  "--space", "bad.yaml", "--trials", "2", "--objective", "val_f1:max")  # fmt: skip
    assert refused.exit_code == 1
    assert "Did you mean 'C'?" in refused.stdout + (refused.stderr or "")
    trials = here.runs.search(experiment="typo")
    assert len(trials) == 2
    assert all(t.status == "succeeded" for t in trials)
    assert len({t.params["C"] for t in trials}) == 2


BOOSTERS = """
import assay
import lightgbm as lgb
import xgboost as xgb
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

assay.autolog()
X, y = load_wine(return_X_y=True, as_frame=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0, stratify=y)
xgb.XGBClassifier(n_estimators=6, max_depth=2).fit(
    X_train, y_train, eval_set=[(X_val, y_val)], verbose=False
)
lgb.LGBMClassifier(n_estimators=4, num_leaves=4, verbose=-1).fit(
    X_train, y_train, eval_X=X_val, eval_y=y_val
)
"""


@pytest.mark.one_backend
def test_a_notebook_autologs_xgboost_and_lightgbm_fits(
    here: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xgboost")
    pytest.importorskip("lightgbm")
    execute(notebook(tmp_path / "boosters.ipynb", BOOSTERS), monkeypatch)

    xgb_run, lgb_run = here.runs.search(sort="created_at asc")
    assert xgb_run.params["n_estimators"] == 6
    assert {"train_accuracy", "val_accuracy"} <= set(xgb_run.metrics)
    # One point per boosting round of the eval set's metric, as each library names it.
    assert len(here.runs.series(xgb_run.id, "validation_0_mlogloss")) == 6
    assert lgb_run.params["num_leaves"] == 4
    assert len(here.runs.series(lgb_run.id, "valid_0_multi_logloss")) == 4
    assert [mv.flavor for mv in here.registry.of_run(xgb_run.id)] == ["xgboost"]
    assert [mv.flavor for mv in here.registry.of_run(lgb_run.id)] == ["lightgbm"]
    assert here.runs.code_of(lgb_run.id).entry == "boosters.ipynb"
