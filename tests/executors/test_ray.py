"""`--executor ray` on a real Ray cluster, against PostgreSQL and the local S3-compatible server.

No mocks: the module starts a Ray head (`ray start --head --block`, in a session of
its own, two CPUs) and the CLI runs as a subprocess, as a user would run it, with
`ASSAY_RAY_ADDRESS` pointing at that head. Each test on the cluster gets its own
PostgreSQL schema and S3 bucket. The head uses Ray's token authentication, with a
token made for this module and given to the head and the CLI in `RAY_AUTH_TOKEN`
(with `RAY_AUTH_MODE=token`), so `~/.ray/auth_token` is neither read nor written:
`ray start` turns token authentication on whenever that file exists, and a driver
without `RAY_AUTH_MODE=token` is then refused.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import assay
from assay.cli.demo import _write_data
from assay.config import Settings
from assay.workspace import Workspace
from servers import free_port  # type: ignore[import-not-found]  # tests/ is on sys.path

if TYPE_CHECKING:
    from tests.conftest import RayHead

pytestmark = pytest.mark.timeout(240)

BIN = Path(sys.executable).parent
EXAMPLE = Path(assay.__file__).parent / "examples" / "cancer"

# A conditional space: the model first, then that model's own params.
SPACE = """\
model:
  choice:
    logreg:
      C: {log-float: [0.01, 10]}
    random_forest:
      n_estimators: {int: [5, 20]}
"""


# ---- a team's workspace: PostgreSQL + S3 --------------------------------------------------


@pytest.fixture
def pg_db_url(fresh_pg_url: str) -> str:
    return fresh_pg_url


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "RAY_"))}
    env.update(ASSAY_AUTHOR="tester", COLUMNS="200", RAY_USAGE_STATS_ENABLED="0")
    env.update(extra)
    return env


@dataclass
class Project:
    """A user's folder: the example pipeline, its params, a space; `run` calls the CLI."""

    folder: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "assay"), *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str) -> object:
        done = self.run(*args, "--json")
        assert done.returncode == 0, f"assay {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout)


def _project(folder: Path, env: dict[str, str], *, data: bool = True) -> Project:
    """Init the workspace, commit the breast-cancer data as `cancer`, lay out the inputs."""
    project = Project(folder, env)
    (folder / "pipeline").mkdir()
    for name in ("pipeline.py", "params.json"):
        shutil.copyfile(EXAMPLE / name, folder / "pipeline" / name)
    (folder / "space.yaml").write_text(SPACE)
    done = project.run("init")
    assert done.returncode == 0, done.stderr
    if data:
        v1, _ = _write_data(folder / "raw")
        project.json("data", "commit", "cancer", str(v1.relative_to(folder)))
    return project


@pytest.fixture
def team(tmp_path: Path, pg_db_url: str, s3_url: str, ray_head: RayHead) -> Project:
    """A workspace on PostgreSQL + S3 whose CLI sends work to `ray_head` (ready by then)."""
    env = _cli_env(
        ASSAY_DB_URL=pg_db_url,
        ASSAY_STORE_URL=s3_url,
        ASSAY_RAY_ADDRESS=ray_head.address,
        **ray_head.env,
    )
    project = _project(tmp_path, env)
    ray_head.wait_ready()
    return project


def _open(project: Project) -> Workspace:
    env = project.env
    return Workspace(Settings.at(None, {k: env[k] for k in ("ASSAY_DB_URL", "ASSAY_STORE_URL")}))


def _where_ran(ws: Workspace, run_ids: list[str]) -> dict[str, tuple[str, int]]:
    from sqlalchemy import select

    from assay.runs.tables import runs

    with ws.db.read() as conn:
        rows = conn.execute(
            select(runs.c.id, runs.c.host, runs.c.pid).where(runs.c.id.in_(run_ids))
        ).all()
    return {run_id: (host, pid) for run_id, host, pid in rows}


# ---- the tests ----------------------------------------------------------------------------


def test_a_sweep_runs_its_trials_on_the_ray_cluster(team: Project, ray_head: RayHead) -> None:
    sweep_args = [
        "sweep", "pipeline/pipeline.py",
        "--data", "cancer",
        "--params", "pipeline/params.json",
        "--space", "space.yaml",
        "--trials", "4",
        "--parallel", "2",
        "--objective", "val_f1:max",
        "--executor", "ray",
        "--sampler", "random",
        "--pruner", "none",
        "--name", "raysweep",
        "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [str(BIN / "assay"), *sweep_args],
        cwd=team.folder,
        env=team.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, errors = proc.communicate(timeout=150)
    assert proc.returncode == 0, errors
    sweep = json.loads(out)
    assert sweep["status"] == "finished", sweep["stop_cause"]
    assert sweep["executor"] == "ray"
    trials = sweep["trial_list"]
    assert [t["state"] for t in trials] == ["complete"] * 4, [t["error"] for t in trials]
    assert {t["params"]["model"] for t in trials} <= {"logreg", "random_forest"}
    assert len(sweep["best_runs"]) == 1
    assert len(sweep["best_models"]) == 1
    best_model = sweep["best_models"][0]
    assert best_model.startswith("cancer@")

    # Every trial is a succeeded run of the sweep's experiment, its metrics in PostgreSQL.
    listed = team.json("runs", "list", "--experiment", "raysweep")
    assert isinstance(listed, list)
    run_ids = [t["run_id"] for t in trials]
    assert sorted(r["id"] for r in listed) == sorted(run_ids)
    for r in listed:
        assert r["status"] == "succeeded", r["error"]
        assert 0 < r["metrics"]["val_f1"] <= 1
        assert r["model"]

    ws = _open(team)
    try:
        # ... executed by Ray's workers: not the CLI, nor a runner it started itself.
        where = _where_ran(ws, run_ids)
        workers = ray_head.worker_pids()
        for run_id, (host, pid) in where.items():
            assert host == socket.gethostname()
            assert pid in workers, (run_id, pid, workers)
            assert pid != proc.pid
        # ... and what they wrote is in the bucket: outputs, logs, the registered model.
        assert ws.store.url.startswith("s3://")
        for run_id in run_ids:
            run = ws.runs.get(run_id)
            assert run.model is not None
            assert ws.store.has(run.model)
            assert all(ws.store.has(s.output) for s in run.steps if s.output)
            assert run.logs is None or ws.store.has(run.logs)  # None: nothing was printed
        mv = ws.registry.resolve(best_model)
        assert mv.lineage.run_id == sweep["best_runs"][0]
        files = ws.registry.manifest(mv)["files"]
        assert files
        assert all(ws.store.has(d) for d in files.values())
    finally:
        ws.close()

    shown = team.json("sweeps", "show", "raysweep")
    assert isinstance(shown, dict)
    assert shown["name"] == "raysweep"
    assert shown["status"] == "finished"
    assert shown["best_runs"] == sweep["best_runs"]
    assert isinstance(shown["importances"], dict)


def test_a_run_executes_on_the_ray_cluster(team: Project, ray_head: RayHead) -> None:
    done = team.run(
        "run", "pipeline/pipeline.py",
        "--data", "cancer",
        "--params", "pipeline/params.json",
        "--executor", "ray",
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "succeeded", run["error"]
    assert 0 < run["metrics"]["val_f1"] <= 1
    assert {s["name"] for s in run["steps"]} >= {"load", "train", "evaluate"}
    assert all(s["status"] == "succeeded" for s in run["steps"])
    ws = _open(team)
    try:
        host, pid = _where_ran(ws, [run["id"]])[run["id"]]
        assert host == socket.gethostname()
        assert pid in ray_head.worker_pids()
        assert run["model"]
        assert ws.store.has(run["model"])
    finally:
        ws.close()


def test_a_cluster_refuses_a_workspace_on_this_machine(tmp_path: Path) -> None:
    """SQLite and a folder cannot be reached from a cluster's nodes: one line, nothing recorded.

    No Ray is needed: the workspace is checked before anything connects (the address
    is a port nothing listens on), and before the inputs are even looked up, so the
    data set `cancer` need not exist (were it looked up first, the error would differ).
    """
    env = _cli_env(ASSAY_RAY_ADDRESS=f"127.0.0.1:{free_port()}")
    project = _project(tmp_path, env, data=False)
    sweep = project.run(
        "sweep", "pipeline/pipeline.py",
        "--data", "cancer",
        "--params", "pipeline/params.json",
        "--space", "space.yaml",
        "--trials", "2",
        "--objective", "val_f1:max",
        "--executor", "ray",
        "--name", "raysweep",
    )  # fmt: skip
    run = project.run(
        "run", "pipeline/pipeline.py",
        "--data", "cancer",
        "--params", "pipeline/params.json",
        "--executor", "ray",
    )  # fmt: skip
    for done in (sweep, run):
        assert done.returncode == 1, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error: The workspace keeps its metadata (SQLite)")
        assert "PostgreSQL" in lines[0]
        assert "S3-compatible" in lines[0]
        assert "ASSAY_RAY_ADDRESS" in lines[0]
    assert project.json("sweeps", "list") == []
    assert project.json("runs", "list") == []
