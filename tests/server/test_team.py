"""End to end, as a team would run it: metadata in PostgreSQL (and SQLite), objects on S3,
everything through the server: data up, a pipeline registered, a run executed there."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assay import httpclient
from assay.config import Settings
from assay.store.objects import hash_bytes
from assay.workspace import Workspace, init_workspace

from .conftest import assert_error, listing, serve_app
from .test_data_api import put, start_upload, upload_dataset

PIPELINE = """
import assay
from helpers import total

@assay.step
def load(data):
    return [float(x) for x in (data / "n.txt").read_text().split()]

@assay.step
def train(load, params):
    print("training with", params["k"])
    return {"w": total(load) * params["k"]}

@assay.step
def evaluate(train, params):
    return {"score": train["w"] / 10, "loss": 1 / train["w"]}

pipeline = assay.Pipeline("tiny", [load, train, evaluate])
"""

HELPERS = """
def total(xs):
    return sum(xs)
"""


@pytest.fixture
def team(tmp_path: Path, env: dict[str, str], s3_url: str) -> Iterator[httpx.Client]:
    settings, _ = init_workspace(Settings.at(tmp_path, {**env, "ASSAY_STORE_URL": s3_url}))
    ws = Workspace(settings)
    assert ws.store.url.startswith("s3://")
    _, secret = ws.tokens.create("lead", "admin")
    try:
        with (
            serve_app(ws) as url,
            httpclient.client(
                base_url=url, timeout=60, headers={"Authorization": f"Bearer {secret}"}
            ) as client,
        ):
            yield client
    finally:
        ws.close()


def wait_for(api: httpx.Client, run_id: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, object] = api.get(f"/api/v1/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s")
        time.sleep(0.2)


def test_data_pipeline_and_run_through_the_server(team: httpx.Client) -> None:
    api = team
    # A token for the CI robot, made through the API, does the work.
    secret = api.post("/api/v1/tokens", json={"name": "ci", "scope": "write"}).json()["secret"]
    with httpclient.client(
        base_url=api.base_url, timeout=60, headers={"Authorization": f"Bearer {secret}"}
    ) as ci:
        run_the_team_flow(ci)


def run_the_team_flow(ci: httpx.Client) -> None:

    version = upload_dataset(ci, "n", {"n.txt": b"1 2 3"})
    assert version["number"] == 1

    big = os.urandom(3 * 1024 * 1024)  # stored loose on S3, streamed back
    upload = start_upload(ci)
    assert put(ci, upload, "blob.bin", big[: 1 << 20]).status_code == 200
    assert put(ci, upload, "blob.bin", big[1 << 20 :], offset=1 << 20).status_code == 200
    commit = ci.post(
        f"/api/v1/uploads/{upload}/commit",
        json={"dataset": "blobs", "files": {"blob.bin": hash_bytes(big)}},
    )
    assert commit.status_code == 200, commit.text
    got = ci.get("/api/v1/files", params={"ref": "blobs@1", "path": "blob.bin"})
    assert got.content == big
    assert got.headers["x-assay-hash"] == hash_bytes(big)

    registered = ci.post(
        "/api/v1/pipelines",
        json={
            "files": {"pipeline.py": PIPELINE, "helpers.py": HELPERS},
            "entry": "pipeline.py",
            "message": "first",
        },
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["created"] is True
    pv = registered.json()["version"]
    assert (pv["pipeline"], pv["number"], pv["entry"]) == ("tiny", 1, "pipeline.py")
    assert [s["name"] for s in pv["steps"]] == ["load", "train", "evaluate"]
    again = ci.post(
        "/api/v1/pipelines",
        json={"files": {"pipeline.py": PIPELINE, "helpers.py": HELPERS}, "entry": "pipeline.py"},
    )
    assert again.status_code == 201
    assert again.json()["created"] is False
    source = ci.get("/api/v1/pipelines/tiny/versions/1/source", params={"path": "helpers.py"})
    assert source.status_code == 200
    assert "def total" in source.text
    assert len(listing(ci, "/api/v1/pipelines")) == 1

    started = ci.post(
        "/api/v1/runs", json={"pipeline": "tiny@1", "data": "n@1", "params": {"k": 2}}
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued"
    run = wait_for(ci, started.json()["id"])
    assert run["status"] == "succeeded", run.get("error")
    assert run["metrics"] == {"score": 1.2, "loss": pytest.approx(1 / 12)}
    assert (run["pipeline"], run["pipeline_version"]) == ("tiny", 1)
    assert (run["dataset"], run["data_version"]) == ("n", 1)
    assert run["params"] == {"k": 2}
    # The runner stores the log just after the run's end (a short window; see the report).
    deadline = time.monotonic() + 10
    while not (logs := ci.get(f"/api/v1/runs/{run['id']}/logs").text):
        assert time.monotonic() < deadline, "the run's log never arrived"
        time.sleep(0.1)
    assert "training with 2" in logs

    found = listing(ci, "/api/v1/runs", filter="metrics.score > 1 and params.k = 2")
    assert [r["id"] for r in found] == [run["id"]]

    # The same inputs again are refused unless forced; forced, they run (load is cached).
    assert_error(
        ci.post("/api/v1/runs", json={"pipeline": "tiny", "data": "n@1", "params": {"k": 2}}), 409
    )
    forced = ci.post(
        "/api/v1/runs",
        json={"pipeline": "tiny", "data": "n@latest", "params": {"k": 2}, "force": True},
    )
    assert forced.status_code == 202, forced.text
    assert wait_for(ci, forced.json()["id"])["status"] == "succeeded"

    # A step that raises: the run fails, with the error recorded.
    failing = ci.post(
        "/api/v1/pipelines",
        json={
            "files": {
                "pipeline.py": PIPELINE.replace('params["k"])', 'params["nope"])'),
                "helpers.py": HELPERS,
            },
            "entry": "pipeline.py",
            "name": "broken",
        },
    )
    assert failing.status_code == 201, failing.text
    bad = ci.post("/api/v1/runs", json={"pipeline": "broken", "data": "n@1", "params": {"k": 1}})
    run = wait_for(ci, bad.json()["id"])
    assert run["status"] == "failed"
    assert "KeyError" in str(run["error"])
    assert_error(ci.post("/api/v1/runs", json={"pipeline": "nope", "data": "n@1"}), 404)
    assert_error(ci.post("/api/v1/runs", json={"pipeline": "tiny", "data": "n@9"}), 404)


def test_pipeline_sources_cannot_leave_their_folder(team: httpx.Client) -> None:
    for rel in ("../evil.py", "/tmp/evil.py", "a/../../evil.py", "a\\..\\evil.py"):
        answer = team.post(
            "/api/v1/pipelines", json={"files": {rel: "x = 1"}, "entry": "pipeline.py"}
        )
        assert_error(answer, 422)  # the document's relative-path pattern refuses it
    answer = team.post(
        "/api/v1/pipelines", json={"files": {"pipeline.py": PIPELINE}, "entry": "../pipeline.py"}
    )
    assert_error(answer, 422)
    assert not Path("/tmp/evil.py").exists()
