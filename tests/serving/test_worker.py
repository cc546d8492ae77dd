"""`python -m assay.serving SERVICE_DIR` as a real process on loopback: start, serve,
follow target.json, survive a dead worker and a broken update, drain on SIGTERM."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay import httpclient
from servers import free_port  # type: ignore[import-not-found]  # tests/ is on sys.path

from .conftest import IRIS_ROW, wait_until

pytestmark = pytest.mark.timeout(180)

SLOW_MODULE = '''
import time
from pathlib import Path

import numpy as np

# Touched when a slow request is in the model: a test waits for it, not for a time.
IN_MODEL = Path(__file__).with_name("in-model")


class Sleepy:
    """Sleeps as many seconds as a row's second value when its first is over 100."""

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        if (X[:, 0] > 100).any():
            IN_MODEL.touch()
            time.sleep(X[:, 1].max())
        return X[:, 0]
'''


def write_target(service_dir: Path, bundle: Path, version: int, name: str = "iris") -> str:
    target_id = uuid.uuid4().hex
    tmp = service_dir / "target.json.tmp"
    tmp.write_text(
        json.dumps(
            {"bundle": str(bundle), "name": name, "version": version, "target_id": target_id}
        )
    )
    os.replace(tmp, service_dir / "target.json")
    return target_id


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """iris@1 (logistic regression), iris@2 (a tree), iris@3 (a tree whose stored bytes
    were changed after the fact) and slow@1 (a pickled model that sleeps on demand)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from assay.registry.bundle import write_bundle
    from assay.registry.signature import infer_signature

    root = tmp_path_factory.mktemp("bundles")
    X, y = load_iris(return_X_y=True, as_frame=True)
    models = {
        1: LogisticRegression(max_iter=500).fit(X, y),
        2: DecisionTreeClassifier(random_state=0).fit(X, y),
        3: DecisionTreeClassifier(random_state=0).fit(X, y),
    }
    out: dict[str, Path] = {}
    for version, model in models.items():
        signature, example = infer_signature(X, model)
        out[f"iris@{version}"] = folder = root / f"iris-{version}"
        write_bundle(
            model,
            folder,
            name="iris",
            version=version,
            signature=signature,
            input_example=example,
            lineage={},
            metrics={},
        )
    stored = next((out["iris@3"] / "model").iterdir())
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes() + b"changed")

    code = root / "code"
    code.mkdir()
    (code / "assay_slow_models.py").write_text(SLOW_MODULE)
    sys.path.insert(0, str(code))
    try:
        sleepy = importlib.import_module("assay_slow_models").Sleepy()
        import numpy as np

        rows = np.array([[1.0, 2.0], [3.0, 4.0]])
        signature, example = infer_signature(rows, sleepy)
        out["slow@1"] = root / "slow-1"
        write_bundle(
            sleepy,
            out["slow@1"],
            name="slow",
            version=1,
            signature=signature,
            input_example=example,
            lineage={},
            metrics={},
            flavor="python",
        )
    finally:
        sys.path.remove(str(code))
    out["code"] = code
    return out


class Service:
    """One `python -m assay.serving` process in its own session (workers included)."""

    def __init__(self, folder: Path, code: Path) -> None:
        self.folder = folder
        self.code = code
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, bundle: Path, name: str, **settings: Any) -> Service:
        self.folder.mkdir(parents=True, exist_ok=True)
        service = {"name": "svc", "host": "127.0.0.1", "port": self.port, **settings}
        (self.folder / "service.json").write_text(json.dumps(service))
        self.target_id = write_target(self.folder, bundle, 1, name)
        paths = [str(self.code), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(self.folder / "service.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "assay.serving", str(self.folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        assert wait_until(self.ready, timeout=60), self.log()
        return self

    def ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the service exited ({self.proc.returncode}):\n{self.log()}")
        try:
            return httpclient.get(f"{self.url}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def workers(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted((self.folder / "workers").glob("*.json")):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):  # replaced between the listing and the read
                continue
        return found

    def log(self) -> str:
        path = self.folder / "service.log"
        return path.read_text() if path.exists() else ""

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def services(tmp_path: Path, bundles: dict[str, Path]) -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()
        # Whatever the test did, no worker may outlive it.
        for worker in service.workers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker["pid"], signal.SIGKILL)


def start(
    services: list[Service],
    tmp_path: Path,
    bundles: dict[str, Path],
    ref: str = "iris@1",
    **settings: Any,
) -> Service:
    service = Service(tmp_path / f"svc-{len(services)}", bundles["code"])
    services.append(service)
    return service.start(bundles[ref], ref.split("@")[0], **settings)


def predict(client: httpx.Client, row: Any = IRIS_ROW, name: str = "iris") -> httpx.Response:
    return client.post(f"/v1/models/{name}:predict", json={"instances": [row]})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---- tests ------------------------------------------------------------------------------------


def test_one_worker_serves_reports_itself_and_stops_cleanly(
    services: list[Service], tmp_path: Path, bundles: dict[str, Path]
) -> None:
    service = start(services, tmp_path, bundles, drain_s=0.2)
    assert service.proc is not None
    with httpclient.client(base_url=service.url, timeout=10) as client:
        resp = predict(client)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"predictions": [0], "model": "iris", "version": 1}
        v2 = client.post(
            "/v2/models/iris/infer",
            json={
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [*IRIS_ROW.values()]}
                ]
            },
        )
        assert v2.json()["outputs"][0]["data"] == [0]
        metrics = client.get("/metrics").text
    assert 'assay_requests_total{code="200",model="iris",protocol="v1",version="1"} 1.0' in metrics

    [worker] = service.workers()
    assert worker["pid"] == service.proc.pid  # one worker: the process itself serves
    assert worker["target_id"] == service.target_id
    assert (worker["name"], worker["version"], worker["ready"]) == ("iris", 1, True)
    assert worker["error"] is None
    assert worker["port"] == service.port

    assert service.terminate() == 0
    assert service.workers() == []
    log = service.log()
    assert "serving iris@1" in log
    assert "draining" in log
    first = log.splitlines()[0]
    assert first[:4].isdigit()
    assert "T" in first[:11]


def test_two_workers_share_the_port_and_one_that_dies_is_replaced(
    services: list[Service], tmp_path: Path, bundles: dict[str, Path]
) -> None:
    service = start(services, tmp_path, bundles, workers=2, drain_s=0.1)
    assert wait_until(
        lambda: len(service.workers()) == 2 and all(w["ready"] for w in service.workers()), 60
    )
    pids = {w["pid"] for w in service.workers()}
    assert service.proc is not None
    assert service.proc.pid not in pids
    with httpclient.client(base_url=service.url, timeout=10) as client:
        assert all(predict(client).status_code == 200 for _ in range(20))

    victim = min(pids)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        now = {w["pid"] for w in service.workers() if w["ready"]}
        return len(now) == 2 and victim not in now

    assert wait_until(replaced, 60), service.log()
    with httpclient.client(base_url=service.url, timeout=10) as client:
        assert all(predict(client).status_code == 200 for _ in range(20))
    assert "died" in service.log()

    workers = {w["pid"] for w in service.workers()}
    assert service.terminate() == 0
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 10)
    assert service.workers() == []


def test_an_update_under_load_fails_no_request_and_switches_the_version(
    services: list[Service], tmp_path: Path, bundles: dict[str, Path]
) -> None:
    service = start(services, tmp_path, bundles)
    versions: list[int] = []
    failures: list[str] = []
    switched_at: list[int] = []

    def send() -> None:
        with httpclient.client(base_url=service.url, timeout=10) as client:
            for _ in range(3000):  # bounded, even if the switch never comes
                try:
                    resp = predict(client)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if resp.status_code != 200:
                    failures.append(f"{resp.status_code} {resp.text}")
                    continue
                versions.append(resp.json()["version"])
                if versions[-1] == 2 and not switched_at:
                    switched_at.append(len(versions))
                if switched_at and len(versions) >= switched_at[0] + 100:
                    return

    sender = threading.Thread(target=send)
    sender.start()
    assert wait_until(lambda: len(versions) >= 50, 30)
    new_id = write_target(service.folder, bundles["iris@2"], 2)
    sender.join(120)
    assert not sender.is_alive()

    assert failures == []
    assert versions[0] == 1
    assert versions[-1] == 2
    first_new = versions.index(2)
    assert set(versions[first_new:]) == {2}  # once switched, never back
    [worker] = service.workers()
    assert (worker["target_id"], worker["version"], worker["ready"]) == (new_id, 2, True)
    assert "replacing iris@1" in service.log()


def test_an_update_that_does_not_load_leaves_the_old_version_serving(
    services: list[Service], tmp_path: Path, bundles: dict[str, Path]
) -> None:
    service = start(services, tmp_path, bundles)
    broken = write_target(service.folder, bundles["iris@3"], 3)

    def failed() -> bool:
        return any(w["failed_target_id"] == broken for w in service.workers())

    assert wait_until(failed, 60), service.log()
    [worker] = service.workers()
    assert worker["target_id"] == service.target_id
    assert worker["version"] == 1
    assert worker["ready"] is True
    assert "CorruptObjectError" in worker["error"]
    with httpclient.client(base_url=service.url, timeout=10) as client:
        for _ in range(10):
            resp = predict(client)
            assert resp.status_code == 200
            assert resp.json()["version"] == 1
    assert "could not load iris@3" in service.log()
    assert "still serving iris@1" in service.log()

    # A good target after a bad one loads, and clears the error.
    fixed = write_target(service.folder, bundles["iris@2"], 2)
    assert wait_until(lambda: service.workers()[0]["target_id"] == fixed, 60)
    assert service.workers()[0]["error"] is None


def test_sigterm_drains_then_finishes_the_request_in_flight(
    services: list[Service], tmp_path: Path, bundles: dict[str, Path]
) -> None:
    service = start(services, tmp_path, bundles, ref="slow@1", drain_s=1.0)
    assert service.proc is not None
    slow: list[httpx.Response | Exception] = []

    def send_slow() -> None:
        try:
            slow.append(
                httpclient.post(
                    f"{service.url}/v1/models/slow:predict",
                    json={"instances": [[500.0, 2.0]]},  # sleeps 2 s: past the drain
                    timeout=30,
                )
            )
        except httpx.HTTPError as exc:
            slow.append(exc)

    in_model = bundles["code"] / "in-model"
    in_model.unlink(missing_ok=True)
    sender = threading.Thread(target=send_slow)
    sender.start()
    assert wait_until(in_model.exists, 10), "the slow request never reached the model"
    service.proc.send_signal(signal.SIGTERM)

    def not_ready() -> bool:
        try:
            return httpclient.get(f"{service.url}/health/ready", timeout=2).status_code == 503
        except httpx.HTTPError:
            return False

    assert wait_until(not_ready, 5), "readiness never turned false before the exit"
    sender.join(30)
    [resp] = slow
    assert isinstance(resp, httpx.Response), resp
    assert resp.status_code == 200
    assert resp.json()["predictions"] == [500.0]
    assert service.proc.wait(timeout=30) == 0
    assert "draining for 1 s" in service.log()


def test_a_prediction_stuck_past_its_timeout_does_not_hold_up_the_exit(
    services: list[Service], tmp_path: Path, bundles: dict[str, Path]
) -> None:
    service = start(services, tmp_path, bundles, ref="slow@1", drain_s=0.1, timeout_s=0.5)
    assert service.proc is not None
    resp = httpclient.post(
        f"{service.url}/v1/models/slow:predict", json={"instances": [[500.0, 120.0]]}, timeout=30
    )
    assert resp.status_code == 504
    assert "longer than 0.5 s" in resp.json()["error"]["message"]
    ok = httpclient.post(f"{service.url}/v1/models/slow:predict", json={"instances": [[5.0, 0.0]]})
    assert ok.status_code == 200
    started = time.monotonic()
    assert service.terminate() == 0
    assert time.monotonic() - started < 30  # not the 120 s the model is still sleeping
    assert "still running past their timeout" in service.log()


def test_a_folder_that_is_not_a_service_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "assay.serving", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "No service.json in" in done.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "assay.serving"], capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2
    assert "usage: python -m assay.serving SERVICE_DIR" in usage.stderr


def test_a_port_in_use_is_a_clear_error(tmp_path: Path, bundles: dict[str, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "service.json").write_text(
            json.dumps({"name": "svc", "host": "127.0.0.1", "port": port, "workers": 1})
        )
        write_target(tmp_path, bundles["iris@1"], 1)
        done = subprocess.run(
            [sys.executable, "-m", "assay.serving", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stderr
