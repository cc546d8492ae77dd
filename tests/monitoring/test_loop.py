"""The production loop end to end, with real processes: a model trained by a pipeline is
served, its traffic drifts, the monitor turns `drift`, the traffic becomes a data version,
the model is retrained on it and challenges the champion, and the winner is promoted. And
the prediction log survives its service being killed."""

from __future__ import annotations

import io
import json
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import Result

from assay import httpclient
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


def _traffic(url: str, frame: pd.DataFrame, *, feedback: str | None) -> Counter[str | None]:
    """Send each row as one request; with `feedback` (a URL), its label after it. Returns
    how many requests each A/B variant answered (a service's answers name none: None)."""
    answered: Counter[str | None] = Counter()
    with httpclient.client(timeout=10) as client:
        for row in frame.to_dict("records"):
            label = row.pop("y")
            answer = client.post(url, json={"instances": [row]})
            assert answer.status_code == 200, answer.text
            rid = answer.headers.get("x-assay-request-id") or answer.json()["request_id"]
            answered[answer.json().get("variant")] += 1
            if feedback:
                sent = client.post(feedback, json={"request_id": rid, "label": label})
                assert sent.status_code in (200, 404), sent.text  # 404: a concluded test
    return answered


def _trained_and_served(cli: CLI, tmp_path: Path, rng: np.random.Generator) -> str:
    """drifty@1, the champion, made by a pipeline run on calm rows and served as
    drifty-api; the service's URL."""
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
    return str(json.loads(deployed.stdout)["url"])


def _abtest(cli: CLI, name: str) -> dict[str, Any]:
    listed = cli("abtests", "list", "--json")
    assert listed.exit_code == 0, listed.output
    found = [t for t in json.loads(listed.stdout) if t["name"] == name]
    assert found, f"no A/B test {name}: {listed.stdout}"
    return dict(found[0])


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
    url = _trained_and_served(cli, tmp_path, rng)
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
    metrics = httpclient.get(f"{url}/metrics").text
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


ON_DRIFT = """\
window: {last: 400}
on_drift:
  snapshot: drifty-live
  retrain: true
  challenge: weighted:50,50
"""

# Checked on a schedule (`assay monitor watch`), and the challenge a shadow.
SCHEDULED = """\
window: {last: 300}
schedule: 1s
on_drift: {snapshot: drifty-live, retrain: true, challenge: shadow}
"""


@pytest.mark.one_backend
def test_on_drift_the_monitor_snapshots_retrains_and_challenges(
    served: CLI, tmp_path: Path
) -> None:
    cli = served
    rng = np.random.default_rng(1)
    url = _trained_and_served(cli, tmp_path, rng)
    predict, feedback = f"{url}/v1/models/drifty:predict", f"{url}/feedback"
    (tmp_path / "on-drift.yaml").write_text(ON_DRIFT)
    configured = cli("monitor", "config", "drifty-api", "on-drift.yaml")
    assert configured.exit_code == 0, configured.output

    _traffic(predict, _rows(300, 0.0, rng), feedback=feedback)
    calm = json.loads(cli("monitor", "drifty-api", "--last", "300", "--json").stdout)
    assert calm["state"] == "ok", calm
    assert calm["actions"] == []

    # The check that turns `drift` does what the config says, to the end, here.
    _traffic(predict, _rows(400, 1.5, rng), feedback=feedback)
    checked = cli("monitor", "drifty-api")
    assert checked.exit_code == 0, checked.output
    assert "state  drift" in checked.output
    assert "→ snapshot drifty-live@1 (400 rows, 400 labeled)" in checked.output
    assert "✓ train" in checked.output  # the retrain's run, shown as `assay run` shows it
    said = re.search(r"→ retrain run ([0-9a-f]{8}): (.*)", checked.output)
    assert said is not None, checked.output
    assert said.group(2) == "challenged, drifty@2, A/B test drifty-retrain-2 (weighted:50,50)"

    history = json.loads(cli("monitor", "history", "drifty-api", "--json").stdout)
    assert [c["state"] for c in history] == ["ok", "drift"]
    [snap] = json.loads(cli("monitor", "snapshots", "drifty-api", "--json").stdout)
    assert (snap["ref"], snap["rows"], snap["labeled"], snap["source"]) == (
        "drifty-live@1", 400, 400, "service drifty-api"
    )  # fmt: skip
    [retrain] = json.loads(cli("monitor", "retrains", "--json").stdout)
    assert retrain["run_id"].startswith(said.group(1))
    assert (retrain["model"], retrain["with_data"], retrain["data"]) == (
        "drifty@1", "drifty-live@1", "drifty@2"
    )  # fmt: skip
    assert (retrain["status"], retrain["new_model"], retrain["abtest"]) == (
        "challenged", "drifty@2", "drifty-retrain-2"
    )  # fmt: skip
    lineage = json.loads(cli("models", "lineage", "drifty@2", "--json").stdout)
    assert lineage["run"]["id"] == retrain["run_id"]
    assert lineage["run"]["data"]["ref"] == "drifty@2"
    assert (
        "400 labeled rows of drifty-live@1 (live traffic of service drifty-api, drifty@1"
        in (lineage["run"]["data"]["message"])
    )
    test = _abtest(cli, "drifty-retrain-2")
    assert (test["strategy"], test["status"], test["auto_promote"]) == (
        "weighted:50,50", "running", True
    )  # fmt: skip
    assert [(v["label"], v["model_ref"], v["service"]) for v in test["variants"]] == [
        ("champion", "drifty@1", "drifty-api"), ("challenger", "drifty@2", None)
    ]  # fmt: skip

    # Calm again; then the scheduled check finds the next drift and starts a shadow.
    _traffic(predict, _rows(300, 0.0, rng), feedback=feedback)
    assert (
        json.loads(cli("monitor", "drifty-api", "--last", "300", "--json").stdout)["state"] == "ok"
    )
    (tmp_path / "scheduled.yaml").write_text(SCHEDULED)
    assert cli("monitor", "config", "drifty-api", "scheduled.yaml").exit_code == 0
    _traffic(predict, _rows(300, 1.5, rng), feedback=feedback)
    deadline = time.monotonic() + 30
    while "drifty-api" not in (watched := cli("monitor", "watch", "--once")).output:
        assert watched.exit_code == 0, watched.output
        assert time.monotonic() < deadline, "the scheduled check never came due"
        time.sleep(0.2)
    assert watched.exit_code == 0, watched.output
    assert "drifty-api: drift" in watched.output
    assert "→ snapshot drifty-live@2 (300 rows, 300 labeled)" in watched.output
    assert "challenged, drifty@3, A/B test drifty-retrain-3 (shadow:champion)" in watched.output
    assert "✓ train" not in watched.output  # a scheduled retrain runs quietly
    shadow = _abtest(cli, "drifty-retrain-3")
    assert (shadow["strategy"], shadow["status"]) == ("shadow:champion", "running")
    retrains = json.loads(cli("monitor", "retrains", "--json").stdout)
    assert [(r["with_data"], r["new_model"], r["challenge"]) for r in retrains] == [
        ("drifty-live@1", "drifty@2", "weighted:50,50"),
        ("drifty-live@2", "drifty@3", "shadow:champion"),
    ]
    history = json.loads(cli("monitor", "history", "drifty-api", "--json").stdout)
    assert [c["state"] for c in history] == ["ok", "drift", "ok", "drift"]


@pytest.mark.one_backend
def test_a_shadow_challenge_answers_with_the_champion_and_copies_to_the_challenger(
    served: CLI, tmp_path: Path
) -> None:
    cli = served
    rng = np.random.default_rng(2)
    url = _trained_and_served(cli, tmp_path, rng)
    _traffic(f"{url}/v1/models/drifty:predict", _rows(300, 1.5, rng), feedback=f"{url}/feedback")
    assert cli("monitor", "snapshot", "drifty-api", "--to", "drifty-live").exit_code == 0

    retrained = cli("retrain", "drifty@1", "--with", "drifty-live@1", "--challenge", "--shadow")
    assert retrained.exit_code == 0, retrained.output
    assert (
        "→ shadow test drifty-retrain-2 (shadow:champion: the champion answers, drifty@2 gets "
        "copies; conclude it yourself)" in retrained.output
    )
    test = _abtest(cli, "drifty-retrain-2")
    assert (test["strategy"], test["auto_promote"]) == ("shadow:champion", True)
    assert [(v["label"], v["model_ref"]) for v in test["variants"]] == [
        ("champion", "drifty@1"), ("challenger", "drifty@2")
    ]  # fmt: skip

    # The champion answers every request; the challenger gets a copy of each (when the
    # router is idle: between this client's requests), compared with what was answered.
    n = 150
    answered = _traffic(
        f"{test['url']}/predict", _rows(n, 1.5, rng), feedback=f"{test['url']}/feedback"
    )
    assert answered == Counter({"champion": n})

    def report() -> dict[str, Any]:
        shown = cli("abtests", "report", test["name"], "--json")
        assert shown.exit_code == 0, shown.output
        return dict(json.loads(shown.stdout))

    deadline = time.monotonic() + 20
    while (copies := report()["shadows"].get("challenger", {}).get("copies", 0)) < n * 0.8:
        assert time.monotonic() < deadline, f"the challenger had {copies} copies of {n}"
        time.sleep(0.2)
    doc = report()
    shadows = doc["shadows"]["challenger"]
    assert shadows["errors"] == 0
    # The new model moved its threshold with the world: it disagrees on some requests.
    assert 0 < shadows["agreement"] < 1
    assert doc["variants"]["challenger"]["requests"] == 0
    assert doc["variants"]["champion"]["outcomes"] == n
    assert doc["variants"]["challenger"]["outcomes"] == 0
    # Auto-promote, as it is: a shadow's answers get no feedback, so the sequential test
    # never decides, and neither the report nor the router (every 50 feedbacks) concludes.
    assert doc["verdict"]["decided"] is False
    assert doc["auto_concluded"] is False
    assert doc["abtest"]["status"] == "running"
    assert json.loads(cli("models", "show", "drifty@champion", "--json").stdout)["version"] == 1
    # Promoting a shadow is a person's call.
    concluded = cli("abtests", "conclude", test["name"], "--winner", "challenger")
    assert concluded.exit_code == 0, concluded.output
    assert json.loads(cli("models", "show", "drifty@champion", "--json").stdout)["version"] == 2


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
