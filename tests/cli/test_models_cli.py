"""`assay models …` end to end: a run registers its model; list, show, lineage, alias,
register, export. The registry's service runs on both backends in tests/registry; its
CLI here runs on one."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

pytestmark = pytest.mark.one_backend

CLI = Callable[..., Result]

PIPELINE = """
import assay
import pandas as pd
from sklearn.linear_model import LogisticRegression


@assay.step
def load(data):
    return pd.read_csv(data / "iris.csv")


@assay.step
def split(load, params):
    return assay.split(load, target="target", seed=params["seed"], test_size=0.3)


@assay.step
def train(split, params):
    return LogisticRegression(C=params["C"], max_iter=500).fit(split.X("train"), split.y("train"))


@assay.step
def evaluate(train, split):
    return {"test_accuracy": float((train.predict(split.X("test")) == split.y("test")).mean())}


pipeline = assay.Pipeline("iris", [load, split, train, evaluate])
"""


@pytest.fixture
def trained(cli: CLI, cli_workspace: Path, tmp_path: Path) -> CLI:
    from sklearn.datasets import load_iris

    load_iris(as_frame=True).frame.to_csv(tmp_path / "iris.csv", index=False)
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "params.json").write_text('{"seed": 1, "C": 1.0}')
    assert cli("data", "commit", "iris", "iris.csv").exit_code == 0
    first = cli("run", "pipeline.py", "--data", "iris@1", "--params", "params.json")
    assert first.exit_code == 0, first.output
    assert "→ model iris@1 (sklearn)" in first.output
    second = cli("run", "iris", "--data", "iris@1", "--params", "params.json", "-p", "C=0.01")
    assert "→ model iris@2 (sklearn)" in second.output, second.output
    return cli


# Each test trains two models first (two pipeline runs): the tests are few and each reads
# or changes a lot, so the suite pays for training twice, not once per check.


def test_list_show_lineage_export_and_bad_refs(trained: CLI, tmp_path: Path) -> None:
    listing = trained("models", "list").output
    assert "iris" in listing
    assert "@2" in listing
    versions = trained("models", "show", "iris").output
    assert versions.index("@2") < versions.index("@1")
    assert "test_accuracy" in versions
    shown = trained("models", "show", "iris@1").output
    for text in ("sklearn", "scikit-learn", "petal width (cm)", "float64", "classes [0, 1, 2]"):
        assert text in shown, shown
    # Every input is listed unless --limit says how many.
    inputs = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")
    assert all(name in shown for name in inputs), shown
    cut = trained("models", "show", "iris@1", "--limit", "2").output
    assert "petal width (cm)" not in cut
    assert "… and 2 more inputs (--limit 2 cut them)" in cut, cut
    doc = json.loads(trained("models", "show", "iris@1", "--json").output)
    assert doc["lineage"]["data"] == "iris@1"
    assert doc["lineage"]["params"] == "params/iris@1"
    tree = trained("models", "lineage", "iris@1").output
    for text in ("run iris-1", "data      iris@1", "pipeline  iris@1", "params/iris@1", "C=1.0"):
        assert text in tree, tree
    for step in ("load", "split", "train", "evaluate"):
        assert step in tree

    out = trained("models", "export", "iris@2", "exported")
    assert out.exit_code == 0, out.output
    for name in ("MLmodel", "assay.json", "requirements.txt", "input_example.json"):
        assert (tmp_path / "exported" / name).is_file()
    again = trained("models", "export", "iris@2", "exported")
    assert again.exit_code == 1
    assert "not empty" in again.output

    for args, text in (
        (("models", "show", "iris@9"), "no version 9"),
        (("models", "show", "nope"), "No model named 'nope'"),
        (("models", "lineage", "iris@"), "nothing after '@'"),
        (("models", "alias", "iris@1", "3"), "would shadow a version"),
    ):
        result = trained(*args)
        assert result.exit_code == 1, result.output
        assert text in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_aliases_move_and_files_register(trained: CLI, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    assert "iris@champion -> version 1" in trained("models", "alias", "iris@1", "champion").output
    assert json.loads(trained("models", "show", "iris@champion", "--json").output)["version"] == 1
    trained("models", "alias", "iris@2", "champion")
    assert "champion→@2" in trained("models", "list").output
    gone = trained("models", "alias", "iris", "champion", "--delete")
    assert gone.exit_code == 0
    missing = trained("models", "show", "iris@champion")
    assert missing.exit_code == 1
    assert "no alias 'champion'" in missing.output

    X, y = load_iris(return_X_y=True, as_frame=True)
    (tmp_path / "tree.pkl").write_bytes(pickle.dumps(DecisionTreeClassifier().fit(X, y)))
    refused = trained("models", "register", "tree.pkl", "--name", "tree")
    assert refused.exit_code == 1
    assert "--trust" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    ok = trained("models", "register", "tree.pkl", "--name", "tree", "--trust")
    assert ok.exit_code == 0
    assert "Registered tree@1 (sklearn)" in ok.output
    bad = trained("models", "register", "params.json", "--name", "tree")
    assert bad.exit_code == 1
    assert "params.json" in bad.output
