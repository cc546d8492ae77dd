"""The notebook SDK through the team's server: same results, and training that never stops
when the server goes away."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import Server

REMOTE_CELLS = (
    """
import pandas as pd
import assay
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

version = assay.data.commit("wine", load_wine(as_frame=True).frame, "from a laptop")
df = assay.data.load(version.ref)
X, y = df.drop(columns="target"), df["target"]
X = (X - X.mean()) / X.std()  # scaled, lbfgs converges in 14 iterations instead of 2,400
assay.autolog(experiment="laptop")
search = GridSearchCV(LogisticRegression(max_iter=5000), {"C": [0.1, 1.0]}, cv=3).fit(X, y)
""",
    """
with assay.start_run(experiment="laptop-manual", data=version.ref, params={"C": 0.5}) as run:
    for step in range(5):
        assay.log_metric("loss", 1 / (step + 1), step=step)
    model = LogisticRegression(C=0.5, max_iter=5000).fit(X, y)
    mv = assay.log_model(model, "wine-remote")
loaded = assay.load_model("wine-remote@latest")
print("same:", list(loaded.predict(X.head(3))) == list(model.predict(X.head(3))))
frame = assay.runs(experiment="laptop-manual")
print("runs:", len(frame), frame["metrics.loss"].iloc[0])
""",
)


@pytest.mark.one_backend
def test_a_notebook_against_the_server_records_what_it_records_locally(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    laptop = tmp_path / "laptop"  # no workspace here: only the server's
    laptop.mkdir()
    path = laptop / "remote.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in REMOTE_CELLS]
    nbformat.write(nb, path)
    for key, value in server.client_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    client = NotebookClient(
        nbformat.read(path, as_version=4), kernel_name="python3", timeout=180,
        resources={"metadata": {"path": str(laptop)}},
    )  # fmt: skip
    executed = client.execute()
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "same: True" in printed
    assert "runs: 1 0.2" in printed

    ws = server.workspace()
    try:
        (search,) = ws.runs.search(experiment="laptop", filter="parent_id is null")
        assert search.data_ref == "wine@1"
        assert search.params["best.C"] in (0.1, 1.0)
        assert "best_cv_score" in search.metrics
        assert len(ws.runs.children(search.id)) == 2
        code = ws.runs.code_of(search.id)
        assert code.kind == "notebook"
        assert code.entry == "remote.ipynb"
        assert [mv.ref for mv in ws.registry.of_run(search.id)] == ["laptop@1"]
        (manual,) = ws.runs.search(experiment="laptop-manual")
        assert manual.status == "succeeded"
        assert manual.data_ref == "wine@1"
        loss = [v for _, v, _, _ in ws.runs.series(manual.id, "loss")]
        assert loss == [1, 0.5, 1 / 3, 0.25, 0.2]
        assert manual.resources.get("reported")
        assert manual.environment.get("python")
        # autolog (still on) logged the fit, and the notebook logged it again by name
        autologged, mv = ws.registry.of_run(manual.id)
        assert autologged.ref == "laptop-manual@1"
        assert mv.ref == "wine-remote@1"
        assert mv.lineage.data == "wine@1"
        assert mv.lineage.code == manual.code
        tree = ws.registry.lineage(mv.ref)
        assert tree["run"]
        assert tree["run"]["code"]
        assert tree["run"]["code"]["kind"] == "notebook"
    finally:
        ws.close()


TRAINING = """
import sys, time
from pathlib import Path
import assay

here = Path(sys.argv[1])

def wait_for(name):
    while not (here / name).exists():
        time.sleep(0.05)

with assay.start_run(experiment="flaky") as run:
    (here / "run-id.tmp").write_text(run.id)
    (here / "run-id.tmp").replace(here / "run-id")  # whole, or not there: the test reads it
    for step in range(100):
        assay.log_metric("loss", 1.0 / (step + 1), step=step)
    wait_for("server-down")
    for step in range(100, 250):  # the server is away: this must not stop or slow down
        assay.log_metric("loss", 1.0 / (step + 1), step=step)
    (here / "trained").write_text("done")
    wait_for("server-up")
print("training finished")
"""


@pytest.mark.one_backend
def test_a_server_that_goes_away_mid_training_never_stops_it_and_gets_every_point(
    server: Server, tmp_path: Path
) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(TRAINING))
    signals = tmp_path / "signals"
    signals.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(signals)],
        cwd=tmp_path, env=server.client_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait(lambda: (signals / "run-id").exists(), proc)
        run_id = (signals / "run-id").read_text()
        ws = server.workspace()
        try:
            wait(lambda: len(ws.runs.series(run_id, "loss")) == 100, proc)
        finally:
            ws.close()
        server.stop()
        (signals / "server-down").touch()
        wait(lambda: (signals / "trained").exists(), proc)  # trained with nobody listening
        server.start()
        (signals / "server-up").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # its pipes closed here, not in a later test's collection
    assert proc.returncode == 0, err
    assert "training finished" in out
    assert "is unreachable; training goes on" in err
    assert "is back after" in err or "250 of 250 metric points delivered" in err
    ws = server.workspace()
    try:
        run = ws.runs.get(run_id)
        points = ws.runs.series(run_id, "loss")
    finally:
        ws.close()
    assert run.status == "succeeded"
    assert [s for _, _, s, _ in points] == list(range(250))
    assert run.metrics["loss"] == pytest.approx(1 / 250)


def wait(check: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            said = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the training script exited: {said}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
