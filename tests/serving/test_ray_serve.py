"""Services on a Ray cluster (`--on ray`): a real Ray head on loopback, Ray Serve on it.

The workspace is a team's (PostgreSQL + the local S3-compatible server), as a cluster
needs. One Ray service with two replicas is deployed once for the session and shared by
the tests that only read or load it; each replica loads the model from the bucket.
The head (`ray_head`, tests/conftest.py) is shared with the Ray run tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from assay import httpclient
from assay.config import Settings
from assay.serving.entities import ServiceFailedError
from assay.workspace import Workspace, init_workspace
from servers import free_port  # type: ignore[import-not-found]  # tests/ is on sys.path

from .conftest import wait_until

if TYPE_CHECKING:
    from tests.conftest import RayHead

pytestmark = [pytest.mark.timeout(300), pytest.mark.one_backend]

BIN = Path(sys.executable).parent
ROWS = [
    {
        "sepal length (cm)": 5.1,
        "sepal width (cm)": 3.5,
        "petal length (cm)": 1.4,
        "petal width (cm)": 0.2,
    },
    {
        "sepal length (cm)": 6.7,
        "sepal width (cm)": 3.0,
        "petal length (cm)": 5.2,
        "petal width (cm)": 2.3,
    },
]


def team_env(ray_head: RayHead, db_url: str, store_url: str) -> dict[str, str]:
    """What a team member's shell holds to deploy on the cluster."""
    return {
        "ASSAY_AUTHOR": "tester",
        "ASSAY_DB_URL": db_url,
        "ASSAY_STORE_URL": store_url,
        "ASSAY_RAY_ADDRESS": ray_head.address,
        "ASSAY_RAY_SERVE_PORT": str(ray_head.serve_port),
        "ASSAY_RAY_SERVE_HOST": "127.0.0.1",
        **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
        **ray_head.env,
    }


@contextlib.contextmanager
def driver_env(env: dict[str, str]) -> Iterator[None]:
    """This process as a Ray driver: Ray reads its token from the process's environment."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        import ray

        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _pg_schema(server: str) -> Iterator[str]:
    """A schema of the module's own on the test PostgreSQL (dropped when resumed)."""
    import uuid
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in server else "?"
    try:
        yield f"{server}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(autouse=True)
def ray_driver_env(
    cluster: tuple[Workspace, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head's RAY_* variables in this process for each test: another module's
    fixture, torn down between two of these tests on the same xdist worker, restores the
    environment it found, without them (then `ray.init` finds no token)."""
    for key, value in cluster[1].items():
        if key.startswith("RAY_"):
            monkeypatch.setenv(key, value)


# Session-wide, not per module: the Ray tests are one xdist group (they share the head),
# run back to back across their modules. The head stops after the group's last test
# (tests/conftest.py), and this fixture and `flowers` with it; a run without xdist that
# puts another test between Ray tests starts them again.
@pytest.fixture(scope="session")
def cluster(
    ray_head: RayHead,
    s3_server: str,
    pg_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Workspace, dict[str, str]]]:
    """A team workspace holding iris@1 (a tree), iris@2 (a logistic regression) and iris@3
    (a model only this process can load), with its environment for the CLI."""
    import boto3
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    folder = tmp_path_factory.mktemp("team")
    bucket = f"assay-ray-{os.getpid()}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    schema = _pg_schema(pg_server_url)
    db_url = next(schema)
    env = team_env(ray_head, db_url, f"s3://{bucket}/objects")
    env["_FOLDER"] = str(folder)
    settings, _ = init_workspace(Settings.at(folder, env))
    ws = Workspace(settings, environ=env)
    X, y = load_iris(return_X_y=True, as_frame=True)
    sio.dump(DecisionTreeClassifier(random_state=0).fit(X, y), folder / "tree.skops")
    sio.dump(LogisticRegression(max_iter=500).fit(X, y), folder / "logreg.skops")
    ws.registry.register_file(folder / "tree.skops", "iris")
    ws.registry.register_file(folder / "logreg.skops", "iris")
    # A model whose class lives in a module only this process can import: Ray's workers
    # fail to load it.
    (folder / "only_here.py").write_text(
        "class Constant:\n    def predict(self, X):\n        return [7] * len(X)\n"
    )
    sys.path.insert(0, str(folder))
    from only_here import Constant  # type: ignore[import-not-found]

    (folder / "constant.pkl").write_bytes(pickle.dumps(Constant()))
    ws.registry.register_file(folder / "constant.pkl", "iris", trust=True)
    sys.path.remove(str(folder))
    ray_head.wait_ready()
    with driver_env({k: v for k, v in env.items() if k.startswith("RAY_")}):
        try:
            yield ws, env
        finally:
            for svc in ws.services.services():
                if svc.desired == "running":
                    with contextlib.suppress(Exception):
                        ws.services.stop(svc.name, timeout_s=10)
            ws.close()
            with contextlib.suppress(StopIteration):
                next(schema)


@pytest.fixture(scope="session")
def flowers(cluster: tuple[Workspace, dict[str, str]]) -> str:
    """`flowers`: iris@1 on Ray Serve with two replicas; its URL."""
    ws, _ = cluster
    svc = ws.services.deploy("flowers", "iris@1", on="ray", replicas=2, cpus=0.25, drain_s=0.5)
    assert svc.on == "ray"
    assert svc.state == "running"
    assert svc.workers == 2
    return svc.url


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "RAY_"))}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in the team's folder (where local services keep their state)."""
    return subprocess.run(
        [str(BIN / "assay"), *args],
        cwd=env["_FOLDER"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "RAY_"))},
            **{k: v for k, v in env.items() if not k.startswith("_")},
            "COLUMNS": "200",
        },
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


# ---- the same answers as a local service ----------------------------------------------------


def _exchanges(url: str) -> list[tuple[int, bytes, dict[str, str]]]:
    """The same requests, in order: statuses, bodies and Assay's own headers."""
    v2_body = {
        "inputs": [
            {"name": name, "shape": [2], "datatype": "FP64", "data": [r[name] for r in ROWS]}
            for name in ROWS[0]
        ]
    }
    calls: list[tuple[str, str, Any]] = [
        ("POST", "/v1/models/iris:predict", {"instances": ROWS}),
        ("POST", "/v1/models/iris:predict_proba", {"instances": ROWS}),
        ("POST", "/v2/models/iris/infer", v2_body),
        ("POST", "/v2/models/iris/versions/1/infer", v2_body),
        ("POST", "/v1/models/iris:predict", {"instances": [{"sepal length (cm)": 1}]}),
        ("POST", "/v2/models/iris/infer", {"inputs": "nope"}),
        ("POST", "/v2/models/iris/versions/9/infer", v2_body),
        ("POST", "/v1/models/roses:predict", {"instances": ROWS}),
        ("GET", "/v2/models/iris", None),
        ("GET", "/v1/models/iris", None),
        ("GET", "/v2/health/ready", None),
        ("GET", "/health/ready", None),
    ]
    out = []
    with httpclient.client(base_url=url, timeout=30) as client:
        for i, (method, path, body) in enumerate(calls):
            r = client.request(method, path, json=body, headers={"X-Request-Id": f"req-{i}"})
            mine = {k: v for k, v in r.headers.items() if k.startswith("x-assay-")}
            out.append((r.status_code, r.content, mine))
    return out


def test_a_ray_service_answers_byte_for_byte_as_a_local_one(
    cluster: tuple[Workspace, dict[str, str]], flowers: str
) -> None:
    ws, env = cluster
    local = ws.services.deploy("flowers-here", "iris@1", drain_s=0.1)
    try:
        on_ray, here = _exchanges(flowers), _exchanges(local.url)
        assert [status for status, _, _ in on_ray] == [
            200, 200, 200, 200, 400, 400, 404, 404, 200, 200, 200, 200,
        ]  # fmt: skip
        assert on_ray == here
        # Provenance in every prediction answer.
        assert json.loads(on_ray[0][1])["version"] == 1
        assert on_ray[0][2]["x-assay-model-version"] == "1"
        # The V2 error body is the protocol's, under the application's route prefix too.
        assert isinstance(json.loads(on_ray[5][1])["error"], str)

        # Both side by side in the workspace, each saying where it runs.
        listed = cli(env, "services", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        where = {s["name"]: (s["on"], s["state"], s["url"]) for s in json.loads(listed.stdout)}
        assert where == {"flowers": ("ray", "running", flowers),
                         "flowers-here": ("local", "running", local.url)}  # fmt: skip
        table = cli(env, "services", "list").stdout
        assert "on" in table.splitlines()[0]
        assert " ray " in table
        assert " local " in table
    finally:
        ws.services.stop("flowers-here", timeout_s=10)
    # Ray Serve's metrics beside Assay's, per model and version, on each replica.
    # (The replica that takes the scrape answers it: its own counts.)
    metrics = httpclient.get(f"{flowers}/metrics").text
    assert 'assay_model_info{model="iris",version="1"} 1.0' in metrics
    assert "# TYPE assay_requests_total counter" in metrics


# ---- losing a replica, and updating, under traffic -------------------------------------------


class Traffic:
    """Threads sending one-row predictions until stopped; what each answer said."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.failures: list[str] = []
        self.answers: list[tuple[float, float, int]] = []  # sent, answered, version
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._load) for _ in range(threads)]

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        wait_until(lambda: len(self.answers) >= 20, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def more(self, n: int) -> None:
        """Let `n` more answers come in."""
        seen = len(self.answers)
        wait_until(lambda: len(self.answers) >= seen + n, timeout=60)

    def _load(self) -> None:
        with httpclient.client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    r = client.post("/v1/models/iris:predict", json={"instances": ROWS[:1]})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    self.failures.append(f"{r.status_code} {r.text}")
                else:
                    self.answers.append((sent, time.monotonic(), r.json()["version"]))


def _running(ws: Workspace, name: str) -> list[int]:
    return sorted(
        r["pid"]
        for r in ws.services.status(name).replicas
        if r["deployment"] == "model" and r["state"] == "RUNNING" and r["pid"]
    )


def test_a_killed_replica_is_replaced_without_a_failed_request(
    cluster: tuple[Workspace, dict[str, str]], flowers: str
) -> None:
    ws, env = cluster
    before = _running(ws, "flowers")
    assert len(before) == 2
    with Traffic(flowers) as traffic:
        os.kill(before[0], signal.SIGKILL)
        assert wait_until(lambda: before[0] not in _running(ws, "flowers"), timeout=30)
        # Ray Serve starts a replica in its place; the status shows it come back.
        assert wait_until(lambda: len(_running(ws, "flowers")) == 2, timeout=120)
        traffic.more(50)
    assert traffic.failures == []
    after = _running(ws, "flowers")
    assert before[1] in after
    assert before[0] not in after
    shown = cli(env, "services", "status", "flowers")
    assert shown.returncode == 0, shown.stderr
    # The replicas' table: deployment, replica, state, pid, node, started.
    models = [ln.split() for ln in shown.stdout.splitlines() if len(ln.split()) == 6]
    models = [cells for cells in models if cells[0] == "model"]
    assert len(models) == 2, shown.stdout
    assert all(c[2] == "RUNNING" for c in models), shown.stdout
    assert str(before[0]) not in shown.stdout
    # The replicas' logs, each under its replica (the head is on this machine).
    logs = cli(env, "services", "logs", "flowers", "-n", "5")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.count("--- replica") == 4, logs.stdout
    assert "its log is" not in logs.stdout  # read here, not only named


def test_an_update_rolls_the_replicas_without_a_failed_request(
    cluster: tuple[Workspace, dict[str, str]], flowers: str
) -> None:
    ws, _ = cluster
    with Traffic(flowers) as traffic:
        began = time.monotonic()
        updated = ws.services.update("flowers", "iris@2")
        ended = time.monotonic()
        traffic.more(50)
    assert traffic.failures == []
    assert updated.model_ref == "iris@2"
    assert updated.on == "ray"
    # Every answer names a version live when it was given: 1 before the update began,
    # 2 for requests sent once it returned, either while it rolled.
    for sent, answered, version in traffic.answers:
        if answered < began:
            assert version == 1
        elif sent > ended:
            assert version == 2
        else:
            assert version in (1, 2)
    assert {v for _, _, v in traffic.answers} == {1, 2}
    # An update to a version the replicas cannot load leaves the old one serving.
    with pytest.raises(
        ServiceFailedError, match=r"could not switch to iris@3.*still serves iris@2"
    ):
        ws.services.update("flowers", "iris@3", ready_timeout_s=120)
    r = httpclient.post(f"{flowers}/v1/models/iris:predict", json={"instances": ROWS})
    assert r.status_code == 200
    assert r.json()["version"] == 2
    assert ws.services.get("flowers").model_ref == "iris@2"


# ---- errors: one line, nothing half-deployed ----------------------------------------------


def test_an_unreachable_cluster_or_a_model_that_fails_to_load_is_one_line(
    cluster: tuple[Workspace, dict[str, str]], flowers: str
) -> None:
    _, env = cluster
    nobody = free_port()
    away = cli({**env, "ASSAY_RAY_ADDRESS": f"127.0.0.1:{nobody}"},
               "services", "deploy", "lost", "--model", "iris@1", "--on", "ray")  # fmt: skip
    assert away.returncode == 1
    assert away.stderr.count("\n") == 1, away.stderr  # a quick error: no progress line
    assert f"Cannot reach the Ray cluster at 127.0.0.1:{nobody}" in away.stderr

    bad = cli(env, "services", "deploy", "broken", "--model", "iris@3", "--on", "ray",
              "--replicas", "1", "--cpus", "0.25")  # fmt: skip
    assert bad.returncode == 1
    # Progress lines (it took a while), then the error: one line, no traceback.
    errors = [line for line in bad.stderr.splitlines() if not line.startswith("Deploying")]
    assert len(errors) == 1, bad.stderr
    assert errors[0].startswith("error: "), bad.stderr
    assert "did not start on Ray" in bad.stderr
    assert "No module named 'only_here'" in bad.stderr

    listed = cli(env, "services", "list", "--json")
    assert {s["name"] for s in json.loads(listed.stdout)} <= {"flowers", "flowers-here"}
    from ray import serve

    assert set(serve.status().applications) == {"flowers"}


# ---- through the server: REST, the SDK and --remote ----------------------------------------


def test_the_server_deploys_on_ray_for_the_sdk_and_remote_cli(
    cluster: tuple[Workspace, dict[str, str]], tmp_path: Path
) -> None:
    from assay.client import Client
    from client.conftest import (  # type: ignore[import-not-found]  # tests/ is on sys.path
        assay_server,
        run_assay,
    )

    ws, env = cluster
    server_env = {**_clean_env(), **{k: v for k, v in env.items() if not k.startswith("_")}}
    (tmp_path / "server").mkdir()
    (tmp_path / "laptop").mkdir()
    with assay_server(tmp_path / "server", server_env, process=True) as (url, secret):
        with Client(url, token=secret) as client:
            svc = client.services.deploy("sdk-flowers", "iris@2", on="ray", replicas=1, cpus=0.25)
            assert (svc.on, svc.state, svc.workers) == ("ray", "running", 1)
            r = httpclient.post(f"{svc.url}/v1/models/iris:predict", json={"instances": ROWS})
            assert r.status_code == 200
            assert r.json()["version"] == 2
            # A bad request is a 4xx with a JSON body, before anything is deployed.
            bad = httpclient.post(
                f"{url}/api/v1/services",
                json={"name": "x", "model": "iris@1", "on": "mars"},
                headers={"Authorization": f"Bearer {secret}"},
            )
            assert bad.status_code == 422
            assert "on" in bad.text
        laptop = {
            **{k: v for k, v in _clean_env().items() if not k.startswith("AWS_")},
            "ASSAY_TOKEN": secret,
        }
        done = run_assay(
            "services", "deploy", "remote-flowers", "--model", "iris@1", "--on", "ray",
            "--autoscale", "1..2", "--cpus", "0.25", "--json", "--remote", url,
            cwd=tmp_path / "laptop", env=laptop,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["on"] == "ray"
        assert doc["settings"]["autoscale"]["max"] == 2
        r = httpclient.post(f"{doc['url']}/v2/models/iris/infer", json={
            "inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
                       for n, v in ROWS[0].items()]})  # fmt: skip
        assert r.status_code == 200
        assert r.json()["model_version"] == "1"
        for name in ("sdk-flowers", "remote-flowers"):
            stopped = run_assay("services", "stop", name, "--json", "--remote", url,
                                cwd=tmp_path / "laptop", env=laptop)  # fmt: skip
            assert stopped.returncode == 0, stopped.stderr
            assert json.loads(stopped.stdout)["state"] == "stopped"
        # An A/B test on Ray from the SDK, changed and stopped with --remote.
        with Client(url, token=secret) as client:
            duel = client.abtests.create(
                "sdk-duel", ["A=iris@1", "B=iris@2"], "round-robin", on="ray", replicas=1,
                cpus=0.25,
            )  # fmt: skip
            assert (duel.on, duel.state, duel.workers) == ("ray", "running", 1)
        paused = run_assay("abtests", "pause", "sdk-duel", "--json", "--remote", url,
                           cwd=tmp_path / "laptop", env=laptop)  # fmt: skip
        assert paused.returncode == 0, paused.stderr
        assert json.loads(paused.stdout)["status"] == "paused"
        answers = _predict_keyed(duel.url, ["k"] * 6)
        assert {a["variant"] for a in answers} == {"A"}  # paused: all to the control
        stopped = run_assay("abtests", "stop", "sdk-duel", "--json", "--remote", url,
                            cwd=tmp_path / "laptop", env=laptop)  # fmt: skip
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(stopped.stdout)["state"] == "stopped"
    listed = {s.name: s.state for s in ws.services.services()}
    assert listed["sdk-flowers"] == listed["remote-flowers"] == "stopped"


# ---- A/B tests on Ray Serve -----------------------------------------------------------------


def _predict_keyed(url: str, keys: list[str]) -> list[dict[str, Any]]:
    """One prediction per key (the X-Assay-Key header), in order; every answer a 200."""
    out = []
    with httpclient.client(timeout=30) as client:
        for key in keys:
            r = client.post(
                f"{url}/predict", json={"instances": ROWS[:1]}, headers={"X-Assay-Key": key}
            )
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out


def test_an_ab_test_on_ray_shares_its_routing_state_across_router_replicas(
    cluster: tuple[Workspace, dict[str, str]],
) -> None:
    from assay.abtests.routing import Router
    from assay.abtests.strategies import parse_strategy

    ws, env = cluster
    test = ws.abtests.create(
        "duel", ["A=iris@1", "B=iris@2"], "sticky", on="ray", replicas=2, cpus=0.2
    )
    try:
        assert (test.on, test.state, test.workers) == ("ray", "running", 2)
        assert test.url.endswith("/abtests/duel")
        # Sticky: a key reaches the same variant on whichever router replica takes it,
        # the one the test's hashing names (no replica keeps assignments of its own).
        keys = [f"user-{i}" for i in range(12)] * 3
        answers = _predict_keyed(test.url, keys)
        expected = Router(parse_strategy("sticky", ["A", "B"]), ["A", "B"], salt="duel")
        for key, answer in zip(keys, answers, strict=True):
            assert answer["variant"] == expected.choose(key), key
            assert answer["provenance"]["version"] == (1 if answer["variant"] == "A" else 2)
        assert {a["variant"] for a in answers} == {"A", "B"}

        # Feedback joins on any replica, once; the rewards are counted across replicas.
        with httpclient.client(timeout=30) as client:
            for a in answers:
                r = client.post(
                    f"{test.url}/feedback", json={"request_id": a["request_id"], "label": 0}
                )
                assert r.status_code == 200, r.text
                assert r.json()["variant"] == a["variant"]
                assert r.json()["duplicate"] is False
            again = client.post(
                f"{test.url}/feedback", json={"request_id": answers[0]["request_id"], "reward": 1}
            )
            assert again.json()["duplicate"] is True
            missing = client.post(f"{test.url}/feedback", json={"request_id": "nope", "reward": 1})
            assert missing.status_code == 404
            assert missing.json()["error"]["type"] == "NotFoundError"
            for _ in range(4):  # whichever replica answers knows every reward
                arms = client.get(test.url).json()["arms"]
                assert sum(arm["rewards"] for arm in arms.values()) == len(answers)

        # The event log is in the object store: the report counts every request.
        def reported() -> dict[str, Any]:
            return dict(ws.abtests.report("duel")["variants"])

        assert wait_until(
            lambda: sum(v["requests"] for v in reported().values()) == len(answers), timeout=30
        )

        # Listed beside local tests; concluded from the CLI: the alias moves, the router
        # sends everything to the winner.
        # (The session's workspace holds the other Ray tests' A/B tests too.)
        done = cli(env, "abtests", "list", "--json")
        assert done.returncode == 0, done.stderr
        listed = {(t["name"], t["on"], t["state"]) for t in json.loads(done.stdout)}
        assert ("duel", "ray", "running") in listed, listed
        done = cli(env, "abtests", "conclude", "duel", "--winner", "B", "--json")
        assert done.returncode == 0, done.stderr
        assert ws.registry.resolve("iris@champion").version == 2
        after = _predict_keyed(test.url, keys[:12])
        assert {a["variant"] for a in after} == {"B"}
    finally:
        ws.abtests.stop("duel")
    assert ws.abtests.get("duel").state == "stopped"
    assert not ws.services.ray.exists("abtest-duel")


def test_a_bandit_on_ray_learns_from_every_replica_and_auto_promotes(
    cluster: tuple[Workspace, dict[str, str]],
) -> None:
    ws, _ = cluster
    test = ws.abtests.create(
        "bandit", ["A=iris@1", "B=iris@2"], "thompson", on="ray", replicas=2, cpus=0.2,
        auto_promote=True,
    )  # fmt: skip
    try:
        rewarded = 0
        with httpclient.client(timeout=30) as client:
            for _ in range(3):
                for a in _predict_keyed(test.url, ["x"] * 40):
                    reward = 1.0 if a["variant"] == "B" else 0.0
                    r = client.post(
                        f"{test.url}/feedback",
                        json={"request_id": a["request_id"], "reward": reward},
                    )
                    # Once the sequential test has decided, answers take no feedback.
                    assert r.status_code in (200, 404), r.text
                    rewarded += r.status_code == 200
            # Both replicas route by all of it: B, always rewarded, takes the traffic.
            arms = client.get(test.url).json()["arms"]
            assert sum(arm["rewards"] for arm in arms.values()) == rewarded >= 50
        last = _predict_keyed(test.url, ["x"] * 20)
        assert sum(a["variant"] == "B" for a in last) >= 18
        # The sequential test decided on the router; reading the test records it.
        assert wait_until(lambda: ws.abtests.get("bandit").status == "concluded", timeout=30)
        concluded = ws.abtests.get("bandit")
        assert concluded.winner == "B"
        assert ws.registry.resolve("iris@champion").version == 2
    finally:
        ws.abtests.stop("bandit")
