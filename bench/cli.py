"""Commands that should feel instant, side by side: Assay's read-only commands against
`dvc status` and `mlflow runs list`, each a fresh process, as a user types them.

Setup (untimed): an Assay workspace holding 1,000 runs (each with 5 params and 3
metrics, inserted through the run repository), a dataset with 5 versions and a model
with 2; an MLflow SQLite tracking store with the same 1,000 runs in experiment 0; a
DVC repository (`git init`, `dvc init`) tracking one 1 MB file.

Timed, wall clock from `subprocess.run` to exit, the median of `ROUNDS`:

- Assay: `assay data log d`, `assay runs list`, `assay models list`,
  `assay services list`, `assay --help`. `cli_list_ms` is the median over those five
  commands' medians (target < 250), as a user runs them: served by the warm server
  (`assay.cli.warm`) that the first command started, which the bench starts untimed.
  `cli_list_cold_ms` is the same with `ASSAY_WARM=0`: a new interpreter importing
  everything, as the first command after a change of code or a reboot.
- Peers: `dvc status`, and `mlflow runs list --experiment-id 0`.
- `speedup_cli_vs_mlflow`: MLflow's `runs list` time over Assay's `runs list`;
  `speedup_cli_vs_dvc`: `dvc status` over `assay data log d`.

Run it (MLflow and DVC come from `make bench-deps`):

    .venv/bin/python bench/cli.py

`ASSAY_BENCH_SCALE=0.1` makes fewer runs and rounds. The last line on stdout is one JSON
object with every figure.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from harness import (
    ASSAY,
    BIN,
    BenchFailed,
    Figures,
    log,
    main,
    out,
    peer_env,
    speedup,
    timed_run,
    warm_server,
)

RUNS = 1000
ROUNDS = 7
COMMANDS = {
    "data_log": ["data", "log", "d"],
    "runs_list": ["runs", "list"],
    "models_list": ["models", "list"],
    "services_list": ["services", "list"],
    "help": ["--help"],
}


def missing() -> str | None:
    for tool in ("dvc", "mlflow"):
        if not (BIN / tool).exists():
            return f"{tool} is not installed"
    if shutil.which("git") is None:
        return "git is not installed"
    return None


def _assay_workspace(root: Path, runs: int) -> None:
    """A workspace with `runs` runs, a dataset of 5 versions and a model of 2."""
    root.mkdir()
    subprocess.run([ASSAY, "init"], cwd=root, check=True, capture_output=True)
    code = f"""
import os, sys, uuid
from pathlib import Path
from assay.config import Settings
from assay.workspace import Workspace
from assay.runs.repository import RunRepository
from assay.store.db import utcnow
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

ws = Workspace(Settings.load(Path.cwd(), os.environ))
for v in range(5):
    (Path("d.csv")).write_text("x,y\\n" + "\\n".join(f"{{i}},{{i * v}}" for i in range(100)))
    ws.data.commit("d", Path("d.csv"), f"v{{v}}")
with ws.db.session() as conn:
    repo = RunRepository(conn)
    exp = repo.experiment_id("bench")
    for i in range({runs}):
        run_id = uuid.uuid4().hex
        repo.insert_run(
            {{"id": run_id, "experiment_id": exp, "name": f"bench-{{i}}", "status": "succeeded",
              "created_at": utcnow(), "started_at": utcnow(), "ended_at": utcnow()}},
            {{f"p{{k}}": k * i for k in range(5)}},
        )
        repo.add_points(run_id, [(f"m{{k}}", i / (k + 1), None, 0.0) for k in range(3)])
X, y = load_iris(return_X_y=True, as_frame=True)
for depth in (2, 3):
    ws.registry.log_model(DecisionTreeClassifier(max_depth=depth).fit(X, y), "iris")
ws.close()
"""
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, capture_output=True)


def _mlflow_store(root: Path, runs: int) -> None:
    root.mkdir()
    code = f"""
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
mlflow.set_tracking_uri("sqlite:///mlflow.db")
client = MlflowClient()
for i in range({runs}):
    run = client.create_run("0", run_name=f"bench-{{i}}")
    metrics = [Metric(f"m{{k}}", i / (k + 1), 0, 0) for k in range(3)]
    params = [Param(f"p{{k}}", str(k * i)) for k in range(5)]
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    client.set_terminated(run.info.run_id)
"""
    subprocess.run(
        [sys.executable, "-c", code], cwd=root, check=True, capture_output=True, env=peer_env()
    )


def _dvc_repo(root: Path) -> None:
    root.mkdir()
    env = peer_env()
    for args in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(args, cwd=root, check=True, capture_output=True, env=env)
    (root / "data.bin").write_bytes(os.urandom(1024 * 1024))
    subprocess.run([str(BIN / "dvc"), "add", "-q", "data.bin"], cwd=root, check=True,
                   capture_output=True, env=env)  # fmt: skip


def _median(args: list[str], cwd: Path, rounds: int, env: dict[str, str]) -> float:
    timed_run(args, cwd, env)  # warm the page cache and the tool's own caches
    return statistics.median(timed_run(args, cwd, env)[0] for _ in range(rounds)) * 1000


def bench(work: Path, scale: float) -> Figures:
    runs = max(50, round(RUNS * scale))
    rounds = max(3, round(ROUNDS * min(1.0, scale * 3)))
    log.print(f"Setting up: {runs} runs in Assay and MLflow, a DVC repository…")
    assay, mlflow, dvc = work / "assay", work / "mlflow", work / "dvc"
    _assay_workspace(assay, runs)
    _mlflow_store(mlflow, runs)
    _dvc_repo(dvc)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    cold = {**env, "ASSAY_WARM": "0"}
    warm_server(assay, env)
    figures: Figures = {"runs": runs, "rounds": rounds}
    for name, args in COMMANDS.items():
        figures[f"{name}_ms"] = round(_median([ASSAY, *args], assay, rounds, env), 1)
        figures[f"{name}_cold_ms"] = round(_median([ASSAY, *args], assay, rounds, cold), 1)
        log.print(
            f"  assay {' '.join(args)}: {figures[f'{name}_ms']} ms"
            f" (cold {figures[f'{name}_cold_ms']} ms)"
        )
    figures["cli_list_ms"] = round(statistics.median(figures[f"{n}_ms"] for n in COMMANDS), 1)
    figures["cli_list_cold_ms"] = round(
        statistics.median(figures[f"{n}_cold_ms"] for n in COMMANDS), 1
    )
    mlflow_env = {**peer_env(), "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}
    mlflow_list = [str(BIN / "mlflow"), "runs", "list", "--experiment-id", "0"]
    figures["mlflow_runs_list_ms"] = round(_median(mlflow_list, mlflow, rounds, mlflow_env), 1)
    figures["dvc_status_ms"] = round(
        _median([str(BIN / "dvc"), "status"], dvc, rounds, peer_env()), 1
    )
    listed = timed_run([ASSAY, "runs", "list", "--limit", "1000", "--json"], assay, env)[1]
    if len(json.loads(listed)) != runs:
        raise BenchFailed(f"assay runs list returned {len(json.loads(listed))} of {runs} runs")
    return figures


def report(figures: Figures, scale: float) -> None:
    out.print(f"{int(figures['runs'])} runs; median of {int(figures['rounds'])} fresh processes")
    out.print(f"  {'':<28} {'warm':>8}    {'cold':>8}")
    for name, args in COMMANDS.items():
        out.print(
            f"  assay {' '.join(args):<22} {figures[f'{name}_ms']:>8.1f} ms "
            f"{figures[f'{name}_cold_ms']:>8.1f} ms"
        )
    out.print(
        f"  {'median of those':<28} {figures['cli_list_ms']:>8.1f} ms "
        f"{figures['cli_list_cold_ms']:>8.1f} ms (target < 250)"
    )
    out.print(f"  mlflow runs list             {figures['mlflow_runs_list_ms']:>8.1f} ms")
    out.print(f"  dvc status                   {figures['dvc_status_ms']:>8.1f} ms")
    speedups = {
        "speedup_cli_vs_mlflow": speedup(figures["mlflow_runs_list_ms"], figures["runs_list_ms"]),
        "speedup_cli_vs_dvc": speedup(figures["dvc_status_ms"], figures["data_log_ms"]),
    }
    out.print(f"speedups: {speedups}")
    print(json.dumps({"bench": "cli", "figures": figures, "speedups": speedups}))


if __name__ == "__main__":
    sys.exit(main("cli", bench, report, missing))
