"""A run dies with the command that owns it: `assay run` killed, its run is not left behind.

Real processes throughout: the `assay run` command, its runner, and signals sent to the
command alone (not its process group), as `kill PID` from another terminal sends them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay.runs.entities import Run
from assay.store.liveness import alive
from assay.workspace import Workspace

pytestmark = pytest.mark.one_backend  # processes and signals, not the database, are tested

SLOW = """
import time
import assay

@assay.step
def load(data):
    return 1

@assay.step
def wait(load, params):
    for i in range(params["seconds"] * 10):
        assay.log_metric("tick", i, step=i)
        time.sleep(0.1)
    return {"done": 1.0}

pipeline = assay.Pipeline("slow", [load, wait], metrics="wait")
"""


@pytest.fixture
def slow(ws: Workspace, tmp_path: Path) -> Path:
    (tmp_path / "slow.py").write_text(SLOW)
    (tmp_path / "x.txt").write_text("x")
    (tmp_path / "p.json").write_text(json.dumps({"seconds": 60}))
    ws.data.commit("x", tmp_path / "x.txt")
    ws.pipelines.register(tmp_path / "slow.py")
    return tmp_path


def wait_until(check, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def assay_run(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "assay", "run", "slow", "--data", "x@1", "--params", "p.json"],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def the_run(ws: Workspace) -> Run | None:
    found = ws.runs.search(experiment="slow", limit=1) if ws.runs.experiments() else []
    return found[0] if found else None


def runner_pid(ws: Workspace, run_id: str) -> int | None:
    """The pid recorded with a run: its runner's once running (its owner's while queued)."""
    from sqlalchemy import select

    from assay.runs.tables import runs

    with ws.db.read() as conn:
        pid = conn.scalar(select(runs.c.pid).where(runs.c.id == run_id))
    return None if pid is None else int(pid)


def test_a_queued_run_whose_command_died_is_marked_at_the_next_read(
    ws: Workspace, slow: Path, env: dict[str, str]
) -> None:
    # A command that queues a run and dies before starting it (here: it just exits).
    queue = (
        "import os, pathlib; from assay.config import Settings; "
        "from assay.workspace import Workspace; "
        "ws = Workspace(Settings.load(pathlib.Path.cwd(), os.environ)); "
        "print(ws.runs.prepare('slow', data='x@1', params_file=pathlib.Path('p.json')).id)"
    )
    out = subprocess.run(
        [sys.executable, "-c", queue],
        cwd=slow,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    run = ws.runs.get(out.stdout.strip())
    assert run.status == "killed"
    assert run.error is not None
    assert "before the run started" in run.error


def test_a_queued_run_of_a_live_command_stays_queued(ws: Workspace, slow: Path) -> None:
    run = ws.runs.prepare("slow", data="x@1", params_file=slow / "p.json")
    assert ws.runs.get(run.id).status == "queued"  # its owner (this process) is alive


def test_a_reused_pid_is_not_taken_for_the_command_that_queued_the_run(
    ws: Workspace, slow: Path
) -> None:
    from assay.runs.repository import RunRepository

    run = ws.runs.prepare("slow", data="x@1", params_file=slow / "p.json")
    with ws.db.session() as conn:  # as if the owner died and this process took its pid
        RunRepository(conn).update(run.id, pid_started=1)
    assert ws.runs.get(run.id).status == "killed"


def test_kill_9_of_assay_run_in_its_first_second_leaves_no_run_queued(
    ws: Workspace, slow: Path, env: dict[str, str]
) -> None:
    command = assay_run(slow, env)
    assert wait_until(lambda: the_run(ws) is not None)
    command.send_signal(signal.SIGKILL)
    command.communicate(timeout=30)  # its runner, if started, held its output open too
    assert wait_until(lambda: ws.runs.get(the_run(ws).id).status not in ("queued", "running"))  # type: ignore[union-attr]
    run = ws.runs.get(the_run(ws).id)  # type: ignore[union-attr]
    assert run.status == "killed", run.error
    # The runner, if it had started, is gone too (while queued, the pid is the command's).
    assert wait_until(lambda: not alive(runner_pid(ws, run.id)), timeout=10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_assay_run_takes_its_runner_down_and_the_run_is_killed(
    ws: Workspace, slow: Path, env: dict[str, str], sig: signal.Signals
) -> None:
    command = assay_run(slow, env)
    assert wait_until(lambda: (r := the_run(ws)) is not None and "tick" in r.metrics, timeout=60)
    run = the_run(ws)
    assert run is not None
    assert run.status == "running"
    pid = runner_pid(ws, run.id)
    assert pid is not None
    assert pid != command.pid
    command.send_signal(sig)
    _, stderr = command.communicate(timeout=30)
    assert wait_until(lambda: not alive(pid), timeout=10), "the runner outlived its command"
    assert wait_until(lambda: ws.runs.get(run.id).status != "running", timeout=10)
    ended = ws.runs.get(run.id)
    assert ended.status == "killed", (ended.status, ended.error)
    if sig == signal.SIGTERM:
        assert command.returncode == 128 + sig
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert lines == [f"Run {run.short_id} killed (SIGTERM)."], stderr
        assert ended.error is not None
        assert "SIGTERM" in ended.error
    else:
        assert ended.error is not None
        assert "command" in ended.error
