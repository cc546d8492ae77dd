"""Monitoring through the server: the REST routes, the SDK and `assay … --remote`, against a
served model whose traffic drifted; the retrain runs on the server."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from assay import Client, httpclient
from assay.cli import context
from assay.cli.main import app
from assay.config import Settings
from assay.errors import InvalidArgumentError, NotFoundError
from assay.executors.local import LocalExecutor
from assay.monitoring.entities import Window
from assay.workspace import Workspace, init_workspace

from .conftest import assert_error, serve_app

PIPELINE = """\
import assay
import pandas as pd
from sklearn.linear_model import LogisticRegression


@assay.step
def load(data):
    return pd.read_csv(data / "train.csv")


@assay.step
def train(load, params):
    return LogisticRegression(C=params["C"]).fit(load[["x1", "x2"]], load["y"])


pipeline = assay.Pipeline("drifty", [load, train], model="train")
"""


def _rows(n: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 2)), columns=["x1", "x2"])
    frame["x1"] += shift
    frame["y"] = (frame["x1"] > shift).astype(int)
    return frame


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Workspace, str, str]]:
    """A workspace whose drifty@1 (a pipeline run's model) is served as drifty-api, behind
    a server on loopback; yields it, the server's URL and an admin token."""
    root = tmp_path / "server"
    settings, _ = init_workspace(Settings.at(root, {"ASSAY_AUTHOR": "tester"}))
    ws = Workspace(settings)
    (root / "data").mkdir()
    _rows(300, 0.0, 0).to_csv(root / "data" / "train.csv", index=False)
    (root / "pipeline.py").write_text(PIPELINE)
    ws.data.commit("drifty", root / "data")
    run = ws.runs.prepare(str(root / "pipeline.py"), data="drifty@1", params={"C": 1.0})
    env = {**os.environ, "ASSAY_DB_URL": settings.db_url, "ASSAY_STORE_URL": settings.store_url}
    handle = LocalExecutor(root, env).launch(run.id)
    handle.settle(ws.runs, run.id, handle.wait())
    ws.registry.register_run(run.id)
    ws.services.deploy("drifty-api", "drifty@1", drain_s=0.1)
    _, secret = ws.tokens.create("admin", "admin")
    try:
        with serve_app(ws) as url:
            yield ws, url, secret
    finally:
        for test in ws.abtests.tests():
            if test.state != "stopped":
                ws.abtests.stop(test.name)
        ws.services.stop("drifty-api", timeout_s=10)
        ws.close()


def _remote(url: str, secret: str, laptop: Path) -> Callable[..., tuple[int, str]]:
    """`assay ARGS --remote URL` from a folder with no workspace; (exit code, stdout)."""
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        old = os.getcwd()
        os.chdir(laptop)
        os.environ.update(ASSAY_REMOTE=url, ASSAY_TOKEN=secret)
        try:
            done = runner.invoke(app, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)
            for key in ("ASSAY_REMOTE", "ASSAY_TOKEN"):
                os.environ.pop(key, None)
            context.close()
        return done.exit_code, done.stdout

    return run


@pytest.mark.one_backend
def test_check_snapshot_and_retrain_through_the_api_sdk_and_remote(
    server: tuple[Workspace, str, str], tmp_path: Path
) -> None:
    ws, url, secret = server
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    remote = _remote(url, secret, laptop)
    with Client(url, secret) as client:
        # Predictions through the server carry the id their feedback is joined by.
        for frame in (_rows(40, 0.0, 1), _rows(100, 2.0, 2)):
            for row in frame.to_dict("records"):
                label = row.pop("y")
                answer = client.services.predict("drifty-api", [row])
                assert client.services.feedback("drifty-api", answer["request_id"], label=label)[
                    "logged"
                ]
        monitor = client.monitoring.configure("drifty-api", "alpha: 0.01\nwindow: {last: 100}\n")
        assert monitor.target == "service"
        assert "alpha: 0.01" in monitor.config_text

        report = client.monitoring.check("drifty-api")  # the config's window: the drifted traffic
        assert report["state"] == "drift"
        assert report["requests"] == 100
        assert report["performance"]["n"] == 100
        recent = client.monitoring.check("drifty-api", window=Window(requests=60), record=False)
        assert recent["requests"] == 60
        assert recent["state"] == "drift"
        assert [c.state for c in client.monitoring.history("drifty-api")] == ["drift"]

        code, out = remote("monitor", "drifty-api", "--last", "100")
        assert code == 0, out
        assert "state  drift" in out, out
        code, out = remote("monitor", "snapshot", "drifty-api", "--to", "drifty-live",
                           "--last", "100")  # fmt: skip
        assert code == 0, out
        assert "Committed drifty-live@1: 100 rows (100 labeled)" in out, out
        assert [s.ref for s in client.monitoring.snapshots("drifty-api")] == ["drifty-live@1"]

        # The server runs the pipeline; the CLI waits for the new version and its shadow.
        code, out = remote(
            "retrain", "drifty@1", "--with", "drifty-live@1", "--challenge", "--shadow", "--json"
        )
        assert code == 0, out
        retrain = json.loads(out)
        assert (retrain["status"], retrain["new_model"]) == ("challenged", "drifty@2")
        assert (retrain["abtest"], retrain["challenge"]) == ("drifty-retrain-2", "shadow:champion")
        assert client.abtests.get("drifty-retrain-2").strategy == "shadow:champion"
        assert client.monitoring.get_retrain(retrain["run_id"][:8]).data == "drifty@2"
        lineage = client.models.lineage("drifty@2")
        assert lineage["run"] is not None
        assert "live traffic of service drifty-api" in (lineage["run"]["data"]["message"] or "")

        with pytest.raises(NotFoundError, match="No service or A/B test named 'nope'"):
            client.monitoring.check("nope")
        with pytest.raises(InvalidArgumentError, match="unknown key 'alpah'"):
            client.monitoring.configure("drifty-api", "alpah: 0.1")

    with httpclient.client(base_url=f"{url}/api/v1") as anonymous:
        assert_error(anonymous.get("/monitors/drifty-api/report"), 401)
    # The dashboard's Monitoring page, and its snapshot form for a write token.
    with httpclient.client(base_url=url, cookies={"assay_token": secret}) as browser:
        page = browser.get("/monitoring/drifty-api")
        assert page.status_code == 200
        assert "Drift over time" in page.text
        assert "x1" in page.text
        assert "drifty-live@1" in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        posted = browser.post(
            "/monitoring/drifty-api/snapshot",
            data={"csrf": token.group(1), "dataset": "from-dashboard", "last": "50"},
            headers={"Origin": url},
        )
        assert posted.status_code == 303, posted.text
        assert "Committed from-dashboard@1: 50 rows" in browser.get(posted.headers["location"]).text
    reader = ws.tokens.create("reader", "read")[1]
    with httpclient.client(base_url=url, cookies={"assay_token": reader}) as browser:
        token = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/monitoring").text)
        assert token is not None  # a valid token: what refuses the post is the scope
        refused = browser.post(
            "/monitoring/drifty-api/snapshot",
            data={"csrf": token.group(1), "dataset": "x"},
            headers={"Origin": url},
        )
        assert refused.status_code == 403
        assert "write token" in refused.text


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page's forms carry no csrf field"
    return found.group(1)


@pytest.mark.one_backend
def test_the_dashboards_retrain_form_retrains_and_challenges_the_champion(
    server: tuple[Workspace, str, str],
) -> None:

    ws, url, secret = server
    with Client(url, secret) as client:
        for row in _rows(150, 2.0, 3).to_dict("records"):
            label = row.pop("y")
            answer = client.services.predict("drifty-api", [row])
            client.services.feedback("drifty-api", answer["request_id"], label=label)
    assert ws.monitoring.snapshot("drifty-api", "drifty-live").ref == "drifty-live@1"

    with httpclient.client(base_url=url, timeout=30) as browser:
        login = browser.get("/login")
        signed = browser.post(
            "/login",
            data={"token": secret, "next": "/monitoring/drifty-api", "csrf": _csrf(login.text)},
            headers={"Origin": url},
        )
        assert signed.status_code == 303, signed.text
        page = browser.get(signed.headers["location"])
        assert page.status_code == 200, page.text
        form = re.search(
            r'<form method="post" action="/monitoring/drifty-api/retrain".*?</form>',
            page.text,
            flags=re.S,
        )
        assert form is not None, "no retrain form for a write token"
        hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', form.group(0)))
        assert hidden["model"] == "drifty@1"
        assert re.findall(r"<option>([^<]+)</option>", form.group(0)) == ["drifty-live@1"]
        assert 'name="challenge" value="true" checked' in form.group(0)

        posted = browser.post(
            "/monitoring/drifty-api/retrain",
            data={**hidden, "data": "drifty-live@1", "challenge": "true"},
            headers={"Origin": url},
        )
        assert posted.status_code == 303, posted.text
        started = browser.get(posted.headers["location"])
        said = re.search(
            r"Retraining drifty@1 on drifty@2: run ([0-9a-f]{8}) started\.", started.text
        )
        assert said is not None, started.text
        run = said.group(1)

        # The run executes on the server, in the background; the page shows how it ended.
        deadline = time.monotonic() + 120
        while (retrain := ws.monitoring.get_retrain(run)).status == "running":
            assert time.monotonic() < deadline, "the retrain never finished"
            time.sleep(0.2)
        assert (retrain.status, retrain.error) == ("challenged", None)
        page = browser.get("/monitoring/drifty-api")
        assert (
            f"{run}</a>: drifty@1 on drifty@2 → <strong>challenged</strong> drifty@2, "
            '<a href="/abtests/drifty-retrain-2">drifty-retrain-2</a>'
        ) in page.text

    assert ws.registry.resolve("drifty@2").lineage.run_id == retrain.run_id
    test = ws.abtests.get("drifty-retrain-2")
    assert (test.strategy, test.status, test.auto_promote) == ("weighted:50,50", "running", True)
    assert [(v.label, v.model_ref) for v in test.variants] == [
        ("champion", "drifty@1"), ("challenger", "drifty@2")
    ]  # fmt: skip
