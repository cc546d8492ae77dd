"""One JSON shape per entity: what `assay … --json` prints for a run, a data version (with
its files, its profile), a model version, a service and an A/B test is, key for key, what
the REST API answers for the same entity (both are `assay.serialize.dump` of it)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import Result

from assay import httpclient
from assay.workspace import Workspace

# the shape, not the database: one metadata backend is enough.
pytestmark = pytest.mark.one_backend

CLI = Callable[..., Result]


@pytest.fixture
def api(base_url: str, secrets: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {secrets['read']}"}
    with httpclient.client(base_url=f"{base_url}/api/v1", headers=headers, timeout=60) as c:
        yield c


def printed(cli: CLI, *args: str) -> Any:
    done = cli(*args, "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def answered(api: httpx.Client, path: str) -> Any:
    response = api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def test_cli_json_and_rest_agree_on_runs_data_and_model_versions(
    ws: Workspace, cli: CLI, api: httpx.Client, tmp_path: Path
) -> None:
    (tmp_path / "n.csv").write_text("x,y\n1,2\n3,4\n")
    ws.data.commit("n", tmp_path / "n.csv", message="first")
    run = ws.runs.begin("exp", data="n@1", params={"k": 2, "nested": {"a": [1, 2]}})
    ws.runs.log_points(run.id, [("score", 0.5, 1, None), ("score", 0.75, 2, None)])
    ws.runs.finish(run.id, "succeeded", reported={"cpu_s": 1.5})

    cli_run = printed(cli, "runs", "show", run.id)
    assert cli_run == answered(api, f"/runs/{run.id}")
    # The one shape names a run's inputs by name and number (not "params/exp@1").
    assert (cli_run["dataset"], cli_run["data_version"]) == ("n", 1)
    assert isinstance(cli_run["params_version"], int)
    assert cli_run["params_dataset"]
    assert cli_run["created_at"].endswith("Z")
    assert cli_run["duration_s"] is not None

    cli_versions = printed(cli, "data", "log", "n")
    assert cli_versions == answered(api, "/datasets/n/versions")["items"]
    assert cli_versions[0]["ref"] == "n@1"
    assert cli_versions[0]["file_count"] == 1
    assert printed(cli, "data", "show", "n@1") == answered(api, "/versions/n@1")
    cli_profile = printed(cli, "data", "profile", "n@1")
    assert cli_profile == answered(api, "/profiles/n@1")
    assert cli_profile["tables"]["n.csv"]["rows"] == 2

    _register_models(ws, tmp_path)
    cli_model = printed(cli, "models", "show", "iris@1")
    assert cli_model == answered(api, "/models/iris/versions/1")
    assert cli_model["ref"] == "iris@1"
    assert cli_model["signature"]["inputs"]
    assert printed(cli, "models", "show", "iris") == answered(api, "/models/iris/versions")["items"]


def test_cli_json_and_rest_agree_on_services_and_ab_tests(
    ws: Workspace, cli: CLI, api: httpx.Client, tmp_path: Path
) -> None:
    _register_models(ws, tmp_path)
    deployed = cli("services", "deploy", "iris-api", "--model", "iris@1")
    assert deployed.exit_code == 0, deployed.output
    try:
        made = cli(
            "abtests", "create", "flowers", "--variant", "A=iris@1", "--variant", "B=iris@2",
            "--strategy", "weighted:50,50",
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        try:
            # Stopped, each stays as it is between the two reads (no process to find).
            assert cli("abtests", "stop", "flowers").exit_code == 0
            cli_tests = printed(cli, "abtests", "list")
            assert cli_tests == answered(api, "/abtests")["items"]
            assert cli_tests[0]["url"].endswith("/abtests/flowers")
            assert [v["model_ref"] for v in cli_tests[0]["variants"]] == ["iris@1", "iris@2"]
        finally:
            cli("abtests", "stop", "flowers")
    finally:
        assert cli("services", "stop", "iris-api").exit_code == 0
    cli_services = printed(cli, "services", "list")
    assert cli_services == answered(api, "/services")["items"]
    assert cli_services[0]["model_ref"] == "iris@1"
    assert cli_services[0]["state"] == "stopped"
    assert printed(cli, "services", "status", "iris-api") == answered(
        api, "/services/iris-api/status"
    )


def _register_models(ws: Workspace, tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    for depth in (1, 2):
        path = tmp_path / f"t{depth}.skops"
        sio.dump(DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y), path)
        ws.registry.register_file(path, name="iris")
