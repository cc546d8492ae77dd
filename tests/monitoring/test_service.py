"""The monitoring service on both metadata backends, without processes: a service's log
written as its workers would, checks recorded over time, the schedule, the webhook, the
state left for /metrics, and a snapshot in the training data's layout."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from assay.errors import InvalidArgumentError, NotFoundError
from assay.registry.bundle import LoadedBundle
from assay.serving.metrics import Metrics
from assay.serving.predlog import LogConfig, PredictionLog, log_prefix
from assay.serving.repository import ServiceRepository
from assay.serving.served import prepare
from assay.store.db import utcnow
from assay.workspace import Workspace


class _Hook(BaseHTTPRequestHandler):
    got: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        type(self).got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []
    handler = type("Hook", (_Hook,), {"got": got})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def _frame(n: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, n) + shift * 10,
                          "plan": rng.choice([1, 2, 3], n, p=[0.6, 0.3, 0.1])})  # fmt: skip
    frame["churned"] = (frame["age"] > 45).astype(int)
    return frame


@pytest.fixture
def shop(ws: Workspace, tmp_path: Path) -> Workspace:
    """churn@1 (registered from a file) and its training data churn-data@1 (`plan` is a
    code of three values: compared as categories); a service row
    `churn-api` serving it (no process: its log is written here, as its workers would)."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    train = _frame(2000, 0.0, 0)
    (tmp_path / "data").mkdir()
    train.to_csv(tmp_path / "data" / "churn.csv", index=False)
    ws.data.commit("churn-data", tmp_path / "data")
    model = LogisticRegression().fit(train[["age", "plan"]], train["churned"])
    sio.dump(model, tmp_path / "m.skops")
    ws.registry.register_file(tmp_path / "m.skops", "churn")
    with ws.db.session() as s:
        ServiceRepository(s).upsert(
            "churn-api", model="churn", version=1, host="127.0.0.1", port=1, workers=1,
            desired="stopped", pid=None, started_at=None, settings={}, last_error=None,
        )  # fmt: skip
    return ws


def _serve_traffic(ws: Workspace, frame: pd.DataFrame, labels: bool = True) -> None:
    """What churn-api's worker would log for one request per row (and their feedback)."""
    from assay.registry.bundle import load_bundle

    mv = ws.registry.resolve("churn@1")
    bundle: LoadedBundle = load_bundle(ws.registry.materialize(mv, ws.settings.cache_dir / "b"))
    served = prepare(bundle, Metrics())
    log = PredictionLog(LogConfig(ws.settings.store_url, log_prefix("services", "churn-api")))
    served.log = log
    batch = uuid.uuid4().hex[:8]
    for i, row in enumerate(frame.to_dict("records")):
        label = row.pop("churned")
        served.v1(json.dumps({"instances": [row]}).encode(), request_id=f"{batch}-{i}")
        if labels:
            log.feedback(f"{batch}-{i}", label, None)
    log.close()
    shutil.rmtree(ws.settings.cache_dir / "b")


def test_checks_are_recorded_exported_and_call_the_webhook_on_change(
    shop: Workspace, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, got = hook
    config = f"""
reference: churn-data@1
schedule: 10m
window: {{last: 400}}
webhook: {{url: "{url}", allow_private: true}}
on_drift: {{snapshot: churn-live, retrain: true}}
"""
    monitor = shop.monitoring.configure("churn-api", config, "churn.yaml")
    assert monitor.next_check_at is not None
    assert monitor.state is None
    _serve_traffic(shop, _frame(400, 0.0, 1))
    calm = shop.monitoring.check("churn-api")
    assert calm["state"] == "ok", calm["notes"]
    assert calm["reference"] == "churn-data@1", calm["notes"]
    assert calm["performance"]["metric"] == "accuracy"
    assert calm["performance"]["n"] == 400
    assert got[-1]["state"] == "ok"
    assert got[-1]["previous"] is None

    _serve_traffic(shop, _frame(400, 1.0, 2))  # ten years older, on average
    moved = shop.monitoring.check("churn-api")
    states = {f["name"]: f["state"] for f in moved["features"]}
    assert moved["state"] == "drift"
    assert states == {"age": "drift", "plan": "ok"}
    assert got[-1] == {**got[-1], "state": "drift", "previous": "ok", "features": ["age"]}
    # On drift the config's on_drift commits the window; a retrain needs a pipeline run
    # and a way to execute it, which this check was not given.
    assert moved["actions"][1].startswith("snapshot churn-live@1 (400 rows, 400 labeled)")
    assert moved["actions"][2] == "retrain skipped: this check has no way to run it"
    shop.data.checkout("churn-live@1", shop.settings.cache_dir / "snap")
    snap = pd.read_csv(shop.settings.cache_dir / "snap" / "churn.csv")
    assert list(snap.columns) == ["age", "plan", "churned"]
    assert len(snap) == 400
    assert snap["churned"].dtype.kind == "i"  # integers stay integers

    again = shop.monitoring.check("churn-api")  # still drift: no second call, no snapshot
    assert again["actions"] == []
    assert len(got) == 2
    assert [c.state for c in shop.monitoring.history("churn-api")] == ["ok", "drift", "drift"]
    gauges = json.loads((shop.services.folder("churn-api") / "monitor.json").read_text())
    assert gauges["state"] == "drift"
    assert gauges["features"]["age"]["state"] == "drift"


def test_the_schedule_runs_due_checks_once(shop: Workspace) -> None:
    shop.monitoring.configure("churn-api", "reference: churn-data@1\nschedule: 1h\n")
    _serve_traffic(shop, _frame(150, 0.0, 3), labels=False)
    assert shop.monitoring.run_due() == []  # not due for an hour
    later = utcnow() + timedelta(hours=1, seconds=1)
    [(name, report)] = shop.monitoring.run_due(now=later)
    assert name == "churn-api"
    assert isinstance(report, dict)
    assert shop.monitoring.run_due(now=later) == []  # claimed: the next is an hour on
    assert shop.monitoring.get("churn-api").next_check_at > later  # type: ignore[operator]


def test_bad_requests_name_what_is_wrong(shop: Workspace) -> None:
    with pytest.raises(NotFoundError, match="No service or A/B test named 'nope'"):
        shop.monitoring.check("nope")
    with pytest.raises(NotFoundError, match="no version 7"):
        shop.monitoring.configure("churn-api", "reference: churn-data@7")
    with pytest.raises(InvalidArgumentError, match="Nothing was logged by service churn-api"):
        shop.monitoring.snapshot("churn-api", "churn-live")
    with pytest.raises(InvalidArgumentError, match="registered from a file"):
        shop.monitoring.start_retrain("churn@1", "churn-data@1")
    quiet = shop.monitoring.check("churn-api", reference="churn-data@1", record=False)
    assert quiet["rows"] == 0
    assert "No logged traffic" in quiet["notes"][-1]
    assert shop.monitoring.history("churn-api") == []
