"""Inference services through the control plane: real processes on loopback.

Each test deploys real service processes, so they run on SQLite only (the metadata
backend plays no part in serving; the registry's own tests cover PostgreSQL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay import httpclient
from assay.config import Settings
from assay.errors import ConflictError, NotFoundError
from assay.serialize import dump
from assay.serving.entities import ServiceFailedError, ServiceStatus
from assay.workspace import Workspace, init_workspace
from servers import ServerProcess  # type: ignore[import-not-found]  # tests/ is on sys.path

from .conftest import wait_until


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace holding iris@1 (a tree) and iris@2 (a logistic regression)."""
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    settings, _ = init_workspace(Settings.at(tmp_path, {"ASSAY_AUTHOR": "tester"}))
    ws = Workspace(settings)
    X, y = load_iris(return_X_y=True, as_frame=True)
    sio.dump(DecisionTreeClassifier(random_state=0).fit(X, y), tmp_path / "tree.skops")
    sio.dump(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "logreg.skops")
    ws.registry.register_file(tmp_path / "tree.skops", "iris")
    ws.registry.register_file(tmp_path / "logreg.skops", "iris")
    try:
        yield ws
    finally:
        for svc in ws.services.services():
            if svc.state in ("running", "starting"):
                ws.services.stop(svc.name, timeout_s=10)
        ws.close()


ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


def test_deploy_predict_status_and_stop(
    served: Workspace, as_served: Callable[[Any, Any], Any]
) -> None:
    svc = served.services.deploy("flowers", "iris@1", drain_s=0.1)
    assert svc.state == "running"
    assert svc.model_ref == "iris@1"
    resp = httpclient.post(f"{svc.url}/v1/models/iris:predict", json={"instances": [ROW, ROW]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["predictions"] == [0, 0]
    assert (body["model"], body["version"]) == ("iris", 1)
    assert resp.headers["X-Assay-Model-Version"] == "1"
    v2 = httpclient.post(
        f"{svc.url}/v2/models/iris/infer",
        json={
            "inputs": [
                {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
            ]
        },
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == [0]

    status = served.services.status("flowers")
    assert status.state == "running"
    assert status.uptime_s is not None
    assert status.uptime_s >= 0
    assert status.traffic is not None
    assert status.traffic["requests"] >= 2
    assert status.traffic["p50_ms"] is not None
    assert status.traffic["by_version"][1]["requests"] >= 2
    [worker] = status.workers_now
    assert worker["ready"]
    assert worker["version"] == 1
    # Its type describes all of it: the API answers the same document.
    assert as_served(ServiceStatus, status) == dump(status)
    assert [s.name for s in served.services.services()] == ["flowers"]
    assert "flowers" in served.services.logs("flowers") or served.services.logs("flowers")

    with pytest.raises(ConflictError, match="already running"):
        served.services.deploy("flowers", "iris@2")
    stopped = served.services.stop("flowers", timeout_s=10)
    assert stopped.state == "stopped"
    status = served.services.status("flowers")
    assert (status.uptime_s, status.traffic, status.workers_now) == (None, None, [])
    assert as_served(ServiceStatus, status) == dump(status)
    with pytest.raises(httpx.HTTPError):
        httpclient.get(f"{svc.url}/health/live", timeout=1)


def test_update_swaps_the_model_under_load_without_a_failed_request(served: Workspace) -> None:
    svc = served.services.deploy("flowers", "iris@1", workers=2, drain_s=0.1)
    versions: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpclient.client(base_url=svc.url, timeout=10) as client:
            for _ in range(3000):  # bounded, even if the update hangs
                if stop.is_set():
                    return
                try:
                    r = client.post("/v1/models/iris:predict", json={"instances": [ROW]})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                else:
                    versions.append(r.json()["version"])

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        # The old version must have answered before the switch: on a loaded machine the
        # threads' first requests can otherwise land after it (the last full suite saw it).
        assert wait_until(lambda: len(versions) >= 20 or bool(failures), timeout=30)
        updated = served.services.update("flowers", "iris@2")
        assert updated.model_ref == "iris@2"
        # Keep the load going a little after the switch.
        seen = len(versions)
        while len(versions) < seen + 100 and any(t.is_alive() for t in threads):
            threads[0].join(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    assert versions[0] == 1
    assert versions[-1] == 2
    # Once switched, it stays switched: no request goes back to the old version.
    first_new = versions.index(2)
    assert set(versions[first_new:]) == {2} or versions[-50:] == [2] * 50
    assert served.services.get("flowers").model_ref == "iris@2"


def test_an_update_that_fails_to_load_leaves_the_old_version_serving(
    served: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model whose class lives in a module only this test process can import: the
    # service's workers fail to load it.
    (tmp_path / "only_here.py").write_text(
        "class Constant:\n    def predict(self, X):\n        return [7] * len(X)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import pickle

    from only_here import Constant  # type: ignore[import-not-found]

    (tmp_path / "constant.pkl").write_bytes(pickle.dumps(Constant()))
    bad = served.registry.register_file(tmp_path / "constant.pkl", "iris", trust=True)
    assert bad.flavor == "python"
    svc = served.services.deploy("flowers", "iris@1", workers=2, drain_s=0.1)
    with pytest.raises(
        ServiceFailedError, match=r"could not switch to iris@3.*still serves iris@1"
    ):
        served.services.update("flowers", "iris@3")
    for _ in range(20):
        r = httpclient.post(f"{svc.url}/v1/models/iris:predict", json={"instances": [ROW]})
        assert r.status_code == 200
        assert r.json()["version"] == 1
    current = served.services.get("flowers")
    assert current.model_ref == "iris@1"
    assert "iris@3" in (current.last_error or "")


def test_a_corrupt_stored_model_is_refused_before_anything_is_served(served: Workspace) -> None:
    from assay.errors import CorruptObjectError

    manifest = served.registry.manifest(served.registry.resolve("iris@1"))
    path = served.store.path(manifest["files"]["model/model.skops"])  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.write_bytes(b"not a model")
    with pytest.raises(CorruptObjectError):
        served.services.deploy("flowers", "iris@1")
    assert served.services.services() == []


def test_stopped_services_come_back_with_start_all(served: Workspace) -> None:
    served.services.deploy("flowers", "iris@2", drain_s=0.1)
    row = served.services.get("flowers")
    # A reboot: the process is gone but the definition says running.
    import os
    import signal

    assert row.pid
    os.kill(row.pid, signal.SIGKILL)
    for _ in range(200):
        if served.services.get("flowers").state == "failed":
            break
        threading.Event().wait(0.05)
    assert served.services.get("flowers").state == "failed"
    [(name, started)] = served.services.start_all()
    assert name == "flowers"
    assert not isinstance(started, Exception)
    assert started.state == "running"
    assert started.model_ref == "iris@2"
    r = httpclient.post(f"{started.url}/v1/models/iris:predict", json={"instances": [ROW]})
    assert r.json()["version"] == 2


def test_bad_deploys_are_clear_errors(served: Workspace) -> None:
    with pytest.raises(NotFoundError, match="no version 7"):
        served.services.deploy("flowers", "iris@7")
    with pytest.raises(NotFoundError, match="No service named"):
        served.services.status("nope")
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConflictError, match=f"Port {port}"):
            served.services.deploy("flowers", "iris@1", port=port)
    assert served.services.services() == []


def test_a_service_the_server_deployed_stops_at_once_from_another_process_and_is_reaped(
    served: Workspace, tmp_path: Path
) -> None:
    """The server deploys (its child); this process, as `assay services stop` would, stops
    it. Our stop must not wait on a process that is only a zombie of the server's, and the
    server must collect its child."""
    import time

    from assay.store.liveness import alive

    _, secret = served.tokens.create("admin", "admin")
    with ServerProcess(tmp_path) as server:
        url = f"{server.url}/api/v1"
        deployed = httpclient.post(
            f"{url}/services",
            json={"name": "viaapi", "model": "iris@1"},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=120,
        )
        assert deployed.status_code == 201, deployed.text
        pid = deployed.json()["pid"]
        start = time.monotonic()
        served.services.stop("viaapi", timeout_s=30)
        # It returned when the process ended, not when its own timeout ran out.
        assert time.monotonic() - start < 30, "the stop waited out its whole timeout"
        # The server collected its child: no zombie left under it.
        assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=10)
        assert not alive(pid)


def test_predicting_through_the_server_with_a_stopped_service_names_it_and_says_start_it(
    served: Workspace,
) -> None:
    """Not a 503 naming the port the service listened on: the server says which service
    is stopped and how to start it, as its document says (409)."""
    from starlette.testclient import TestClient

    from assay.server.app import create_app

    svc = served.services.deploy("flowers", "iris@1", drain_s=0.1)
    with TestClient(create_app(served, auth=False)) as api:
        through = api.post("/api/v1/services/flowers/predict", json={"instances": [ROW]})
        assert through.status_code == 200, through.text
        assert through.json()["predictions"] == [0]
        served.services.stop("flowers", timeout_s=10)
        for route in ("predict", "feedback"):
            answer = api.post(f"/api/v1/services/flowers/{route}", json={"instances": [ROW]})
            assert answer.status_code == 409, answer.text
            error = answer.json()["error"]
            assert error["type"] == "ConflictError"
            assert "'flowers' is stopped" in error["message"]
            assert "services start flowers" in error["message"]
            assert error["details"] == {"service": "flowers", "state": "stopped"}
            assert str(svc.port) not in answer.text
            assert "127.0.0.1" not in answer.text
        documented = api.get("/api/v1/openapi.json").json()
        responses = documented["paths"]["/api/v1/services/{name}/predict"]["post"]["responses"]
        assert "409" in responses
