"""The local executor: `assay run`'s runner is a fork of the command where that is safe,
a fresh interpreter otherwise, and both record the same run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from assay.executors.local import LocalExecutor, can_fork
from assay.workspace import Workspace

pytestmark = pytest.mark.one_backend  # processes, not the database, are tested

PIPELINE = """
import os
import sys
import assay

@assay.step
def look(data):
    print("printed by the step")
    print("and to stderr", file=sys.stderr)
    return 1

@assay.step
def report(look, params):
    return {
        "forked": float("assay.cli.main" in sys.modules),  # the command's own modules
        "owner": float(os.getppid()),
    }

pipeline = assay.Pipeline("where", [look, report], metrics="report")
"""


@pytest.fixture
def where(ws: Workspace, tmp_path: Path) -> Path:
    (tmp_path / "where.py").write_text(PIPELINE)
    (tmp_path / "x.txt").write_text("x")
    (tmp_path / "p.json").write_text(json.dumps({"a": 1}))
    ws.data.commit("x", tmp_path / "x.txt")
    ws.pipelines.register(tmp_path / "where.py")
    return tmp_path


def test_assay_run_forks_its_runner_and_records_what_the_steps_print(
    ws: Workspace, where: Path, env: dict[str, str]
) -> None:
    command = subprocess.Popen(
        [sys.executable, "-m", "assay", "run", "where", "--data", "x@1", "--params", "p.json"],
        cwd=where,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = command.communicate(timeout=120)
    assert command.returncode == 0, (out, err)
    run = ws.runs.search(experiment="where", limit=1)[0]
    assert run.status == "succeeded"
    assert run.metrics["forked"] == 1.0, "the runner was a second interpreter, not a fork"
    assert run.metrics["owner"] == float(command.pid)
    logs = ws.runs.logs(run.id)
    assert "printed by the step" in logs
    assert "and to stderr" in logs
    assert "printed by the step" not in out  # the step's output is the run's, not the command's


def test_a_process_with_threads_starts_a_fresh_interpreter_instead(
    ws: Workspace, where: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not can_fork()
        monkeypatch.chdir(where)
        run = ws.runs.prepare("where", data="x@1", params_file=where / "p.json")
        handle = LocalExecutor(where, {**os.environ, **env}, fork=True).launch(run.id)
        assert isinstance(handle.process, subprocess.Popen)
        events = [e["event"] for e in handle.events()]
        assert handle.wait() == 0
    finally:
        stop.set()
        other.join()
    assert "step_done" in events
    done = ws.runs.get(run.id)
    assert done.status == "succeeded"
    assert done.metrics["forked"] == 0.0


def test_a_runner_for_this_workspace_is_never_sent_to_a_server(ws: Workspace) -> None:
    """The server launches its runs (and sweep drivers) with its own environment; a
    remote named there (a shell's ASSAY_REMOTE, an in-process command's) must not take
    the runner elsewhere, and the author acting now is the one it records."""
    from assay.store.acting import acting_as, acting_env

    with acting_as("alice"):
        env = acting_env(
            ws.settings,
            {"PATH": "/bin", "ASSAY_REMOTE": "http://elsewhere:8000", "ASSAY_TOKEN": "secret"},
        )
    assert "ASSAY_REMOTE" not in env
    assert "ASSAY_TOKEN" not in env
    assert env["PATH"] == "/bin"
    assert env["ASSAY_DB_URL"] == ws.settings.db_url
    assert env["ASSAY_STORE_URL"] == ws.settings.store_url
    assert env["ASSAY_AUTHOR"] == "alice"
