"""A second machine's view: the SDK and `assay … --remote` against a real `assay server`,
from a folder with no workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import assay
from assay.client import Client
from assay.data.entities import DataVersion
from assay.runs.entities import Run

from .conftest import assay_server, run_assay

PIPELINE = """
import assay

@assay.step
def load(data):
    return [float(x) for x in (data / "n.txt").read_text().split()]

@assay.step
def train(load, params):
    return {"w": sum(load) * params["k"]}

@assay.step
def evaluate(train):
    return {"score": train["w"] / 10}

pipeline = assay.Pipeline("tiny", [load, train, evaluate])
"""


@pytest.fixture
def server(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[str, dict[str, str], str]]:
    """`assay server` on a workspace in tmp_path/server; yields its URL, env, admin token."""
    home = tmp_path / "server"
    home.mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    environ.update(env)
    with assay_server(home, environ) as (url, secret):
        yield url, environ, secret


@pytest.mark.one_backend  # the server on PostgreSQL and S3: tests/server/test_team.py
def test_a_laptop_without_a_workspace_works_through_the_server(
    server: tuple[str, dict[str, str], str], tmp_path: Path
) -> None:
    url, environ, secret = server
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    (laptop / "pipeline.py").write_text(PIPELINE)
    (laptop / "params.json").write_text('{"k": 2}')
    (laptop / "d").mkdir()
    (laptop / "d" / "n.txt").write_text("1 2 3")
    env = {k: v for k, v in environ.items() if not k.startswith("ASSAY_")}
    env.update(ASSAY_TOKEN=secret, COLUMNS="200")

    def remote(*args: str) -> subprocess.CompletedProcess[str]:
        return run_assay(*args, "--remote", url, cwd=laptop, env=env)

    done = remote("data", "commit", "n", "d", "-m", "from the laptop")
    assert done.returncode == 0, done.stderr
    assert "Committed n@1" in done.stdout
    ran = remote("run", "pipeline.py", "--data", "n@1", "--params", "params.json", "--json")
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded"
    assert run["metrics"]["score"] == pytest.approx(1.2)
    # The run's inputs were recorded on the server: data, pipeline and params versions.
    inputs = ("dataset", "data_version", "pipeline", "pipeline_version", "params_dataset")
    assert [run[k] for k in inputs] == ["n", 1, "tiny", 1, "params/tiny"]
    assert run["params_version"] == 1
    listed = remote("runs", "list", "--filter", "metrics.score > 1", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [run["id"]]
    shown = remote("runs", "show", run["id"][:8])
    assert shown.returncode == 0
    assert "tiny@1" in shown.stdout
    assert "from the laptop" in remote("data", "log", "n").stdout
    # The same through ASSAY_REMOTE, and the SDK.
    env_remote = {**env, "ASSAY_REMOTE": url}
    assert "tiny" in run_assay("pipelines", "list", cwd=laptop, env=env_remote).stdout
    with Client(url, token=secret) as client:
        found = client.runs.search(filter="metrics.score > 1")
        assert [r.id for r in found] == [run["id"]]
        assert isinstance(found[0], Run)
        version, files = client.data.version("n@1")
        assert isinstance(version, DataVersion)
        assert [f.path for f in files] == ["n.txt"]
        target = client.data.download("n@1", "n.txt", tmp_path / "copy.txt")
        assert target.read_text() == "1 2 3"
        with pytest.raises(assay.NotFoundError, match="no version 9"):
            client.data.version("n@9")
        tracked = client.runs.begin("notebook", params={"lr": 0.1})
        client.runs.log_metrics(tracked.id, [("loss", 0.5, 1), ("loss", 0.25, 2)])
        ended = client.runs.finish(tracked.id)
        assert ended.status == "succeeded"
        assert ended.metrics == {"loss": 0.25}
    # Nothing works without a token, and the CLI says so in one line.
    anonymous = {k: v for k, v in env.items() if k != "ASSAY_TOKEN"}
    refused = run_assay("runs", "list", "--remote", url, cwd=laptop, env=anonymous)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: This route needs a token: send `Authorization: Bearer TOKEN`."
    ]
    with Client(url) as client, pytest.raises(assay.UnauthorizedError):
        client.data.datasets()
    # Reading a pipeline's versions, files, source and changes.
    logged = remote("pipelines", "log", "tiny", "--json")
    assert [v["ref"] for v in json.loads(logged.stdout)] == ["tiny@1"]
    shown = json.loads(remote("pipelines", "show", "tiny@1", "--json").stdout)
    assert [f["path"] for f in shown["files"]] == ["pipeline.py"]
    assert "def train(load, params)" in shown["source"]
    same = json.loads(remote("pipelines", "diff", "tiny@1", "tiny@latest", "--json").stdout)
    assert same == {"old": "tiny@1", "new": "tiny@1", "identical": True, "diff": ""}
    missing = remote("pipelines", "log", "nope")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ")


@pytest.mark.one_backend
def test_scopes_reach_only_what_they_allow(
    server: tuple[str, dict[str, str], str], tmp_path: Path
) -> None:
    url, _, secret = server
    with Client(url, token=secret) as admin:
        made = admin.tokens.create("viewer", "read")
        reader = made[1]
        assert reader.startswith("assay_")
    with Client(url, token=reader) as client:
        assert client.data.datasets() == []
        with pytest.raises(assay.ForbiddenError, match="has scope 'read'; this needs 'write'"):
            client.runs.begin("e")
    with Client(url, token=secret) as admin:
        admin.tokens.revoke("viewer")
    with (
        Client(url, token=reader) as client,
        pytest.raises(assay.UnauthorizedError, match="revoked"),
    ):
        client.data.datasets()


@pytest.mark.one_backend
def test_more_commands_work_remotely(
    server: tuple[str, dict[str, str], str], tmp_path: Path
) -> None:
    url, environ, secret = server
    laptop = tmp_path / "laptop2"
    laptop.mkdir()
    (laptop / "pipeline.py").write_text(PIPELINE)
    (laptop / "params.json").write_text('{"k": 3}')
    (laptop / "d").mkdir()
    (laptop / "d" / "n.txt").write_text("4 5 6")
    env = {k: v for k, v in environ.items() if not k.startswith("ASSAY_")}
    env.update(ASSAY_TOKEN=secret, ASSAY_REMOTE=url, COLUMNS="200")

    def remote(*args: str) -> subprocess.CompletedProcess[str]:
        done = run_assay(*args, cwd=laptop, env=env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    remote("data", "commit", "n", "d")
    assert "n@best" in remote("data", "tag", "n@1", "best").stdout
    remote("data", "checkout", "n@best", "copy")
    assert (laptop / "copy" / "n.txt").read_text() == "4 5 6"
    assert remote("data", "verify").returncode == 0
    first = json.loads(remote("run", "pipeline.py", "--data", "n@1", "--params", "params.json",
                              "--json").stdout)  # fmt: skip
    again = json.loads(remote("runs", "rerun", first["id"], "--json").stdout)
    assert again["reproduced"] is True
    assert again["run"]["rerun_of"] == first["id"]
    made = json.loads(remote("tokens", "create", "ci", "--scope", "read", "--json").stdout)
    assert made["secret"].startswith("assay_")
    assert "ci" in remote("tokens", "list").stdout
    remote("tokens", "revoke", "ci")
    with Client(url, token=made["secret"]) as client, pytest.raises(assay.UnauthorizedError):
        client.data.datasets()


@pytest.mark.one_backend
def test_init_and_server_are_local_by_nature_and_say_so(tmp_path: Path) -> None:
    """With ASSAY_REMOTE set every other command goes to the server, so a local `init`
    would make a workspace nothing uses, and `server` would serve the wrong one."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    environ["ASSAY_REMOTE"] = "http://127.0.0.1:9"  # never reached
    for args, says in (
        (("init",), "nothing to init here"),
        (("server", "--port", "9"), "serves the workspace of this machine"),
        (("init", "--remote", "http://127.0.0.1:9"), "nothing to init here"),
    ):
        env = (
            environ
            if "--remote" not in args
            else {k: v for k, v in environ.items() if k != "ASSAY_REMOTE"}
        )
        done = run_assay(*args, cwd=tmp_path, env=env)
        assert done.returncode == 1, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert says in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.one_backend
def test_a_local_command_does_not_load_the_sdk(tmp_path: Path) -> None:
    """Start-up time is every command's: the HTTP client loads only with --remote."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    assert run_assay("init", cwd=tmp_path, env=environ).returncode == 0
    probe = (
        "import sys\n"
        "sys.argv = ['assay', 'data', 'list']\n"
        "from assay.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "assert 'httpx' not in sys.modules and 'assay.client' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
