"""`assay services …` end to end through the CLI: deploy, status, update, logs, stop."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from assay import httpclient

# processes and HTTP, not the database: one metadata backend is enough.
pytestmark = pytest.mark.one_backend

CLI = Callable[..., Result]
ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture
def models(cli: CLI, cli_workspace: Path, tmp_path: Path) -> Iterator[CLI]:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    sio.dump(DecisionTreeClassifier(random_state=0).fit(X, y), tmp_path / "tree.skops")
    sio.dump(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "logreg.skops")
    assert cli("models", "register", "tree.skops", "--name", "iris").exit_code == 0
    assert cli("models", "register", "logreg.skops", "--name", "iris").exit_code == 0
    yield cli
    cli("services", "stop", "flowers")


def test_deploy_status_update_logs_stop(models: CLI) -> None:
    deployed = models("services", "deploy", "flowers", "--model", "iris@1", "--json")
    assert deployed.exit_code == 0, deployed.output
    url = json.loads(deployed.stdout)["url"]
    r = httpclient.post(f"{url}/v1/models/iris:predict", json={"instances": [ROW]})
    assert r.status_code == 200
    assert r.json()["version"] == 1

    status = models("services", "status", "flowers").output
    for text in ("running", "iris@1", url, "requests", "latency p50"):
        assert text in status, status
    assert "flowers" in models("services", "list").output

    updated = models("services", "update", "flowers", "--model", "iris@2")
    assert updated.exit_code == 0
    assert "now serves iris@2" in updated.output
    answer = httpclient.post(f"{url}/v1/models/iris:predict", json={"instances": [ROW]})
    assert answer.json()["version"] == 2
    assert "serving iris@2" in models("services", "logs", "flowers").output

    stopped = models("services", "stop", "flowers")
    assert stopped.exit_code == 0
    assert "Stopped flowers" in stopped.output
    assert "stopped" in models("services", "list").output
    again = models("services", "start", "flowers")
    assert again.exit_code == 0
    assert "Started flowers (iris@2)" in again.output


def test_bad_service_commands_are_one_line_errors(models: CLI) -> None:
    for args, text in (
        (("services", "status", "nope"), "No service named 'nope'"),
        (("services", "deploy", "flowers", "--model", "iris@9"), "no version 9"),
        (("services", "deploy", "flowers", "--model", "iris@1", "--workers", "0"), "--workers"),
        (("services", "update", "nope", "--model", "iris@1"), "No service named 'nope'"),
        (("services", "start"), "NAME or --all"),
        # Ray's options without --on ray, or malformed, or without a cluster to go to.
        (("services", "deploy", "f", "--model", "iris@1", "--replicas", "2"), "add --on ray"),
        (("services", "deploy", "f", "--model", "iris@1", "--on", "mars"), "local or ray"),
        (("services", "deploy", "f", "--model", "iris@1", "--on", "ray", "--autoscale", "4"),
         "MIN..MAX"),
        (("services", "deploy", "f", "--model", "iris@1", "--on", "ray", "--autoscale", "3..1"),
         "MIN <= MAX"),
        (("services", "deploy", "f", "--model", "iris@1", "--on", "ray", "--memory", "lots"),
         "512M or 2G"),
        (("services", "deploy", "f", "--model", "iris@1", "--on", "ray", "--replicas", "2",
          "--autoscale", "1..2"), "not both"),
        (("services", "deploy", "f", "--model", "iris@1", "--on", "ray"), "ASSAY_RAY_ADDRESS"),
    ):  # fmt: skip
        result = models(*args)
        assert result.exit_code == 1, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.output
        assert text in errors[0], result.output
