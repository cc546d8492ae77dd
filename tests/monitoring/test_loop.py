"""The production loop end to end, with real processes: a model trained by a pipeline is
served, its traffic drifts, the monitor turns `drift`, the traffic becomes a data version,
the model is retrained on it and challenges the champion, and the winner is promoted. And
the prediction log survives its service being killed."""

from __future__ import annotations

import io
import json
import os
import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import Result

from assay.config import Settings
from assay.monitoring.live import store_of
from assay.serving import processes
from assay.serving.predlog import request_flush
from assay.workspace import Workspace, init_workspace

CLI = Callable[..., Result]

PIPELINE = """\
import assay
import pandas as pd
from sklearn.linear_model import LogisticRegression

FEATURES = ["x1", "x2", "x3"]


@assay.step
def load(data):
    return pd.read_csv(data / "train.csv")


@assay.step
def train(load, params):
    return LogisticRegression(C=params["C"]).fit(load[FEATURES], load["y"])


@assay.step
def evaluate(train, load):
    return {"train_acc": float(train.score(load[FEATURES], load["y"]))}


pipeline = assay.Pipeline("drifty", [load, train, evaluate], model="train")
"""


def _rows(n: int, shift: float, rng: np.random.Generator) -> pd.DataFrame:
    """Three features; the label is whether x1 is above `shift` (the world moved with it)."""
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["x1", "x2", "x3"])
    frame["x1"] += shift
    frame["y"] = (frame["x1"] + 0.3 * rng.normal(size=n) > shift).astype(int)
    return frame


def _traffic(url: str, frame: pd.DataFrame, *, feedback: str | None) -> list[str]:
    """Send each row as one request; with `feedback` (a URL), its label after it."""
    ids = []
    with httpx.Client(timeout=10) as client:
        for row in frame.to_dict("records"):
            label = row.pop("y")
            answer = client.post(url, json={"instances": [row]})
            assert answer.status_code == 200, answer.text
            rid = answer.headers.get("x-assay-request-id") or answer.json()["request_id"]
            ids.append(rid)
            if feedback:
                sent = client.post(feedback, json={"request_id": rid, "label": label})
                assert sent.status_code in (200, 404), sent.text  # 404: a concluded test
    return ids


@pytest.fixture
def served(cli: CLI, tmp_path: Path) -> Iterator[CLI]:
    yield cli
    for what, key in (("abtests", "name"), ("services", "name")):
        listed = cli(what, "list", "--json")
        for item in json.loads(listed.stdout) if listed.exit_code == 0 else []:
            if item.get("state") in ("running", "starting"):
                cli(what, "stop", item[key])


@pytest.mark.one_backend
def test_drift_snapshot_retrain_challenge_and_promote(served: CLI, tmp_path: Path) -> None:
    cli = served
    rng = np.random.default_rng(0)
    assert cli("init").exit_code == 0
    (tmp_path / "data").mkdir()
    _rows(300, 0.0, rng).to_csv(tmp_path / "data" / "train.csv", index=False)
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "params.json").write_text('{"C": 1.0}')
    assert cli("data", "commit", "drifty", "data").exit_code == 0
    trained = cli("run", "pipeline.py", "--data", "drifty@1", "--params", "params.json")
    assert trained.exit_code == 0, trained.output
    assert cli("models", "alias", "drifty@1", "champion").exit_code == 0
    deployed = cli("services", "deploy", "drifty-api", "--model", "drifty@champion", "--json")
    assert deployed.exit_code == 0, deployed.output
    url = json.loads(deployed.stdout)["url"]
    predict, feedback = f"{url}/v1/models/drifty:predict", f"{url}/feedback"

    # Traffic like the training data: the monitor says ok.
    _traffic(predict, _rows(300, 0.0, rng), feedback=feedback)
    calm = json.loads(cli("monitor", "drifty-api", "--last", "300", "--json").stdout)
    assert calm["state"] == "ok", calm
    assert (calm["requests"], calm["reference"], calm["model"]) == (300, "drifty@1", "drifty@1")

    # The world moves: x1 shifts, and what it means with it.
    _traffic(predict, _rows(600, 1.5, rng), feedback=feedback)
    shown = cli("monitor", "drifty-api", "--last", "600")
    assert shown.exit_code == 0, shown.output
    assert "state  drift" in shown.output
    assert "x1" in shown.output
    report = json.loads(cli("monitor", "drifty-api", "--last", "600", "--json").stdout)
    states = {f["name"]: f["state"] for f in report["features"]}
    assert states["x1"] == "drift"
    assert report["prediction"]["state"] == "drift"
    assert report["performance"]["metric"] == "accuracy"
    assert report["performance"]["value"] < 0.75  # it was 0.9 before the move

    # The state is recorded over time, and exported on the service's /metrics.
    history = json.loads(cli("monitor", "history", "drifty-api", "--json").stdout)
    assert [c["state"] for c in history] == ["ok", "drift", "drift"]
    metrics = httpx.get(f"{url}/metrics").text
    assert 'assay_monitor_state{monitor="drifty-api"} 2.0' in metrics
    assert 'assay_monitor_feature_state{monitor="drifty-api",feature="x1"} 2.0' in metrics

    # The drifted window becomes data, in the training data's own layout, labels joined.
    snap = cli("monitor", "snapshot", "drifty-api", "--to", "drifty-live", "--last", "600")
    assert snap.exit_code == 0, snap.output
    assert "Committed drifty-live@1: 600 rows (600 labeled)" in snap.output
    live = json.loads(cli("monitor", "snapshots", "--json").stdout)[0]
    assert (live["source"], live["models"], live["path"]) == (
        "service drifty-api", ["drifty@1"], "train.csv"
    )  # fmt: skip

    # Retrain on training + live rows; the new version challenges the champion.
    retrained = cli("retrain", "drifty@1", "--with", "drifty-live@1", "--challenge")
    assert retrained.exit_code == 0, retrained.output
    done = json.loads(cli("monitor", "retrains", "--json").stdout)[0]
    assert (done["status"], done["new_model"], done["data"]) == (
        "challenged", "drifty@2", "drifty@2"
    )  # fmt: skip
    test = json.loads(cli("abtests", "list", "--json").stdout)[0]
    assert test["name"] == done["abtest"]
    assert test["auto_promote"]
    assert [v["service"] for v in test["variants"]] == ["drifty-api", None]  # the champion

    # Live traffic decides: the sequential test promotes the retrained model.
    _traffic(f"{test['url']}/predict", _rows(500, 1.5, rng), feedback=f"{test['url']}/feedback")
    concluded = json.loads(cli("abtests", "report", test["name"], "--json").stdout)
    assert concluded["abtest"]["winner"] == "challenger", concluded["verdict"]
    champion = json.loads(cli("models", "show", "drifty@champion", "--json").stdout)
    assert champion["version"] == 2
    # The A/B router logged its traffic too; once concluded, the winner's is the reference.
    watched = json.loads(cli("monitor", test["name"], "--json", "--no-record").stdout)
    assert (watched["target"], watched["model"], watched["reference"]) == (
        "abtest", "drifty@2", "drifty@2"
    )  # fmt: skip
    assert watched["requests"] == 500
    assert watched["performance"]["n"] > 0

    # Its lineage names the monitored service and the window it was trained on.
    tree = cli("models", "lineage", "drifty@2")
    assert tree.exit_code == 0, tree.output
    assert "drifty@1 + 600 labeled rows of drifty-live@1" in tree.output
    assert "live traffic of service drifty-api, drifty@1" in tree.output
    lineage = json.loads(cli("models", "lineage", "drifty@2", "--json").stdout)
    assert "→" in lineage["run"]["data"]["message"]  # the window: from → to


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Workspace]:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    settings, _ = init_workspace(Settings.at(tmp_path, {"ASSAY_AUTHOR": "tester"}))
    workspace = Workspace(settings)
    frame = _rows(200, 0.0, np.random.default_rng(1))
    X, y = frame[["x1", "x2", "x3"]], frame["y"]
    sio.dump(LogisticRegression().fit(X, y), tmp_path / "m.skops")
    workspace.registry.register_file(tmp_path / "m.skops", "drifty")
    yield workspace
    for svc in workspace.services.services():
        if svc.state in ("running", "starting", "failed"):
            workspace.services.stop(svc.name, timeout_s=10)
    workspace.close()


def _segments(ws: Workspace) -> list[tuple[str, Any]]:
    store = store_of(ws.settings.store_url, "services", "api")
    return [(n, pq.read_table(io.BytesIO(store.get(n)))) for n in store.names("predictions")]


def test_a_service_killed_while_logging_loses_only_what_it_had_not_written(
    lab: Workspace,
) -> None:
    svc = lab.services.deploy("api", "drifty@1", drain_s=0.1)
    folder = lab.services.folder("api")
    predict = f"{svc.url}/v1/models/drifty:predict"
    rng = random.Random(0)

    def send(n: int) -> None:
        rows = [{"x1": rng.random(), "x2": rng.random(), "x3": rng.random()} for _ in range(n)]
        _traffic(predict, pd.DataFrame(rows).assign(y=0), feedback=None)

    send(40)
    assert request_flush(folder)
    send(15)  # answered, still held by the writer
    assert svc.pid is not None
    os.kill(svc.pid, signal.SIGKILL)
    processes.wait_gone(svc.pid, timeout_s=10)

    before = _segments(lab)  # every segment reads back whole and matches its hash
    assert sum(t.num_rows for _, t in before) == 40
    assert lab.services.get("api").state == "failed"

    restarted = lab.services.start("api")
    send(10)
    assert request_flush(lab.services.folder("api"))
    after = _segments(lab)
    assert [n for n, _ in after][: len(before)] == [n for n, _ in before]  # untouched
    assert sum(t.num_rows for _, t in after) == 50
    writers = {n.rsplit("/", 1)[-1].split("-")[2] for n, _ in after}
    assert len(writers) == 2  # the restarted worker writes segments of its own
    assert restarted.pid != svc.pid
