"""Tracking from a script: data in and out, log_model with lineage, the code kept."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import assay
from assay.config import Settings
from assay.errors import InvalidArgumentError
from assay.workspace import Workspace

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _wine_frame() -> pd.DataFrame:
    frame: pd.DataFrame = load_wine(as_frame=True).frame
    return frame


def test_data_commit_and_load_round_trip_and_link_the_runs_that_used_it(
    here: Workspace,
) -> None:
    version = assay.data.commit("wine", _wine_frame(), "from the notebook")
    assert version.ref == "wine@1"
    df = assay.data.load("wine@latest")
    pd.testing.assert_frame_equal(df, _wine_frame())

    assay.autolog(log_models=False)
    X_train, _, y_train, _ = train_test_split(
        df.drop(columns="target"), df["target"], random_state=0
    )
    LogisticRegression(max_iter=2000).fit(X_train, y_train)  # a split keeps the frame's origin
    (run,) = here.runs.search()
    assert run.data_ref == "wine@1"
    assert run.extra["training_data"]["data"] == "wine@1"

    folder = here.data.commit("pics", _pictures(here), "two files").version
    path = assay.data.load(folder.ref)  # not one table: a local folder of its files
    assert isinstance(path, Path)
    assert sorted(p.name for p in path.iterdir()) == ["a.txt", "b.txt"]


def _pictures(ws: Workspace) -> Path:
    root = Path(ws.settings.root or ".") / "pics"
    root.mkdir()
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    return root


def test_log_model_registers_a_version_with_the_runs_lineage_and_load_model_predicts(
    here: Workspace,
) -> None:
    assay.data.commit("wine", _wine_frame())
    df = assay.data.load("wine")
    X, y = df.drop(columns="target"), df["target"]
    with assay.start_run(experiment="by-hand", params={"C": 0.3}) as run:
        model = LogisticRegression(C=0.3, max_iter=3000).fit(X, y)
        assay.log_metric("accuracy", float(model.score(X, y)))
        mv = assay.log_model(model, "wine-clf", input_example=X.head(3))
        again = assay.log_model(model, "wine-clf")  # once per run and name
    assert again.ref == mv.ref == "wine-clf@1"
    assert mv.lineage.run_id == run.id
    assert mv.lineage.data == "wine@1"
    assert mv.lineage.params == "params/by-hand@1"
    assert mv.lineage.code == here.runs.get(run.id).code  # none here: pytest is no script
    assert mv.metrics["accuracy"] == pytest.approx(model.score(X, y))
    assert mv.signature is not None
    assert mv.signature.names == list(X.columns)
    assert here.registry.register_run(run.id, "wine-clf").ref == "wine-clf@1"
    predictor = assay.load_model("wine-clf@latest")
    assert list(predictor.predict(X.head(4))) == list(model.predict(X.head(4)))


class Threshold:
    """Not an estimator any safe format knows: only pickle stores it."""

    def predict(self, X: Any) -> Any:
        return [1 for _ in range(len(X))]


def test_a_model_only_pickle_can_store_needs_allow_pickle(here: Workspace) -> None:
    with assay.start_run(experiment="odd"):
        with pytest.raises(InvalidArgumentError, match="allow_pickle=True"):
            assay.log_model(Threshold(), "odd")
        mv = assay.log_model(Threshold(), "odd", allow_pickle=True)
    assert mv.flavor == "python"


def test_log_model_without_a_run_is_an_error_that_says_so(here: Workspace) -> None:
    with pytest.raises(InvalidArgumentError, match="No active run"):
        assay.log_metric("x", 1.0)


# ---- a script, as a user runs it ------------------------------------------------------------

SCRIPT = """
import assay
from sklearn.linear_model import LogisticRegression

df = assay.data.load("wine@1")
X, y = df.drop(columns="target"), df["target"]
assay.autolog(experiment="script")
LogisticRegression(C={C}, max_iter=3000).fit(X, y)
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"},
    )  # fmt: skip


def _python(script: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_a_scripts_code_and_git_state_are_kept_and_two_runs_diff(
    here: Workspace, tmp_path: Path, cli: Any
) -> None:
    here.data.commit("wine", _csv(tmp_path))
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT.format(C=1.0)))
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "first")
    _python(script, tmp_path)
    script.write_text(textwrap.dedent(SCRIPT.format(C=0.1)))  # uncommitted
    _python(script, tmp_path)

    first, second = here.runs.search(sort="created_at asc")
    assert first.data_ref == second.data_ref == "wine@1"
    a, b = here.runs.code_of(first.id), here.runs.code_of(second.id)
    assert a.kind == b.kind == "script"
    assert a.entry == "train.py"
    assert a.hash != b.hash
    assert a.git
    assert b.git
    assert a.git["commit"] == b.git["commit"]
    assert a.git["branch"] == "main"
    assert not a.git["dirty"]
    assert b.git["dirty"]
    assert b"C=0.1" in here.runs.code_files(b)["git.diff"]

    shown = cli("runs", "code", second.id[:8])
    assert shown.exit_code == 0
    assert "script train.py, git" in shown.stdout
    assert "LogisticRegression(C=0.1" in shown.stdout
    assert "uncommitted changes" in shown.stdout
    diff = cli("runs", "code", first.id[:8], "--diff", second.id[:8])
    assert "-LogisticRegression(C=1.0" in diff.stdout
    assert "+LogisticRegression(C=0.1" in diff.stdout
    lineage = cli("models", "lineage", "script@2")
    assert "code      script train.py" in lineage.stdout
    assert "(main, uncommitted changes)" in (lineage.stdout)
    assert "data      wine@1" in lineage.stdout
    shown = cli("runs", "show", second.id[:8])
    assert "script train.py" in shown.stdout


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "wine.csv"
    path.parent.mkdir()
    _wine_frame().to_csv(path, index=False)
    return path


def test_runs_as_a_dataframe_and_runs_in_html(here: Workspace) -> None:
    for c in (0.1, 1.0):
        with assay.start_run(experiment="df", params={"C": c}):
            for step in range(3):
                assay.log_metric("loss", 1.0 / (step + 1 + c), step=step)
            assay.log_metric("acc", c)
    # `assay.runs` is the concept's package and, called, the SDK's runs table: mypy
    # sees only the package.
    frame = assay.runs(experiment="df", filter="params.C > 0.5")  # type: ignore[operator]
    assert list(frame["params.C"]) == [1.0]
    assert frame["metrics.acc"].iloc[0] == 1.0
    assert len(assay.runs("df", sort="metrics.acc asc")) == 2  # type: ignore[operator]
    first, second = assay.runs("df", sort="metrics.acc asc").index  # type: ignore[operator]
    html = assay.get_run(first)._repr_html_()
    assert "<svg" in html
    assert "loss" in html
    assert "params" not in html.split("<table>")[0]
    both = assay.compare(first, second)
    page = both._repr_html_()
    assert "assay-best" in page
    assert "★" in page
    assert "<polyline" in page
    assert both.to_frame().shape[1] == 2


LOOP = """
import json, threading
import assay
from assay.sdk.session import current
from sqlalchemy import event

with assay.start_run(experiment="warm", params={"a": 0}):
    assay.log_metrics({"x": 0.0})
started, commits = [], []
start = threading.Thread.start

def counting(self):
    started.append(self.name)
    start(self)

threading.Thread.start = counting
event.listen(current().ws.db.engine, "commit", lambda conn: commits.append(1))
for i in range(20):
    with assay.start_run(experiment="loop", params={"i": i}):
        assay.log_metrics({"loss": 1.0 / (i + 1)})
print(json.dumps({"started": started, "commits": len(commits)}))
"""


def test_runs_opened_in_a_loop_share_one_background_thread_and_close_in_two_commits(
    here: Workspace, tmp_path: Path
) -> None:
    """A script that trains a model per loop turn pays for its runs: no thread started
    per run (starting and joining one was a fifth of a short run), and one transaction
    to open a run and one to close it (its code, last points and resources together)."""
    import json

    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    found = json.loads(_python(script, tmp_path).stdout.splitlines()[-1])
    # One thread beats for every run; it ends after two beats with no run open, and
    # the next run starts it again: never one per run.
    assert found["started"].count("assay-recorder") <= 2
    # The code is read in a thread only when git was not asked in the last 2 s.
    assert found["started"].count("assay-code") < 5
    assert found["commits"] == 2 * 20
    runs = here.runs.search(experiment="loop")
    assert len(runs) == 20
    assert all(r.status == "succeeded" and (r.metrics["loss"] or 0) > 0 for r in runs)
    assert all(here.runs.code_of(r.id).entry == "loop.py" for r in runs)


def test_each_run_records_in_the_workspace_found_from_the_folder_it_opens_in(
    here: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_workspace: Callable[[Settings], Settings],
) -> None:
    """The SDK remembers where it found the workspace (finding it on every run cost a
    twentieth of a run), but a run opened after the folder changed, or after a nearer
    workspace appeared, records where `assay` itself would."""
    import assay

    sub = tmp_path / "notebooks"
    sub.mkdir()
    with assay.start_run(experiment="top"):
        pass
    monkeypatch.chdir(sub)  # no workspace here: the one above
    with assay.start_run(experiment="below"):
        pass
    nearer = Workspace(make_workspace(Settings.at(sub, {"ASSAY_AUTHOR": "tester"})))
    try:
        with assay.start_run(experiment="nearer"):
            pass
        monkeypatch.chdir(tmp_path)
        with assay.start_run(experiment="top"):
            pass
        assert sorted(r.experiment for r in here.runs.search()) == ["below", "top", "top"]
        assert [r.experiment for r in nearer.runs.search()] == ["nearer"]
    finally:
        nearer.close()


def test_a_run_opened_after_assay_toml_changed_records_where_it_now_points(
    here: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_workspace: Callable[[Settings], Settings],
) -> None:
    """The same folder, with `assay.toml` rewritten between two runs to point at another
    database and store: the second run goes there, as a new `assay` command's would."""
    import assay

    with assay.start_run(experiment="before"):
        pass
    elsewhere = Workspace(make_workspace(Settings.at(tmp_path / "team", {})))
    try:
        (tmp_path / "assay.toml").write_text(
            f'db_url = "{elsewhere.settings.db_url}"\n'
            f'store_url = "{elsewhere.settings.store_url}"\n'
        )
        with assay.start_run(experiment="after"):
            pass
        assert [r.experiment for r in here.runs.search()] == ["before"]
        assert [r.experiment for r in elsewhere.runs.search()] == ["after"]
    finally:
        elsewhere.close()
