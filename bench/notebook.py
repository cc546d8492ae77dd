"""Autologging from a notebook, side by side: `assay.autolog()` against
`mlflow.sklearn.autolog()`, both on a local SQLite store.

Each tool runs in a process of its own (a fresh Python, as a notebook's kernel is), in
its own scratch folder: Assay in a fresh workspace (`assay init`), MLflow with a
`sqlite:///…/mlflow.db` tracking store. In that process the script fits a
`LogisticRegression(max_iter=1000)` on scikit-learn's wine data (178 rows, 13 columns)
`FITS` times with nothing switched on (the bare fit), then switches autologging on,
fits once untimed (each tool's first fit pays for its imports), and fits `FITS` times
more, each fit opening its own run and logging its params, metrics and model (MLflow's
default `log_models=True`; Assay registers a model version). Wall-clock time with
`time.perf_counter`, the median fit of each series:

- `autolog_overhead_ms`: Assay's median fit with autolog minus the bare median fit;
  `mlflow_autolog_overhead_ms` the same for MLflow.
- `speedup_autolog`: MLflow's overhead divided by Assay's (target >= 10).
- `notebook_first_log_ms`: a fresh Jupyter kernel (ipykernel, started through
  jupyter_client) runs `import assay`, `start_run` and the first `log_metric`, timed
  inside the kernel from before the import to after the call; the median of 5 kernels
  (target < 300). `mlflow_first_log_ms` is `import mlflow`, `start_run`, `log_metric`
  the same way.

Afterwards each tool's store must hold every run, and its models (MLflow one per run;
Assay one version, since every fit made the same bytes), or the benchmark fails. Run it
(MLflow comes from `make bench-deps`):

    .venv/bin/python bench/notebook.py

`ASSAY_BENCH_SCALE=0.2` fits fewer times for a quick trial. The last line on stdout is
one JSON object with every figure.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from harness import ASSAY, BenchFailed, Figures, log, main, out, speedup

FITS = 50
KERNELS = 5

CHILD = """
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression

tool, fits = sys.argv[1], int(sys.argv[2])
X, y = load_wine(return_X_y=True, as_frame=True)

def series(n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        LogisticRegression(max_iter=1000).fit(X, y)
        times.append(time.perf_counter() - t)
    return times

series(3)  # warm the library
bare = series(fits)
if tool == "assay":
    import assay
    assay.autolog(experiment="bench")
else:
    import mlflow
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    mlflow.set_experiment("bench")
    mlflow.sklearn.autolog(log_models=True, silent=True)
series(1)  # the first logged fit pays for imports
logged = series(fits)
print(json.dumps({"bare_ms": statistics.median(bare) * 1000,
                  "logged_ms": statistics.median(logged) * 1000}))
"""

CHECK_ASSAY = """
import json, sys
import assay
from assay.config import Settings
from assay.workspace import Workspace
from pathlib import Path
ws = Workspace(Settings.load(Path.cwd(), {}))
print(json.dumps({"runs": len(ws.runs.search(experiment="bench", limit=None)),
                  "models": len(ws.registry.versions("bench"))}))
"""

CHECK_MLFLOW = """
import json, mlflow
mlflow.set_tracking_uri("sqlite:///mlflow.db")
exp = mlflow.get_experiment_by_name("bench")
runs = mlflow.search_runs(experiment_ids=[exp.experiment_id], output_format="list")
models = mlflow.search_logged_models(experiment_ids=[exp.experiment_id], output_format="list")
print(json.dumps({"runs": len(runs), "models": len(models)}))
"""

FIRST_LOG = {
    "assay": (
        "import time\nt0 = time.perf_counter()\nimport assay\n"
        "with assay.start_run(experiment='first') as r:\n"
        "    assay.log_metric('m', 1.0)\n"
        "    t1 = time.perf_counter()\n"
        "print((t1 - t0) * 1000)\n"
    ),
    "mlflow": (
        "import time\nt0 = time.perf_counter()\nimport mlflow\n"
        "mlflow.set_tracking_uri('sqlite:///mlflow.db')\n"
        "with mlflow.start_run() as r:\n"
        "    mlflow.log_metric('m', 1.0)\n"
        "    t1 = time.perf_counter()\n"
        "print((t1 - t0) * 1000)\n"
    ),
}


def missing() -> str | None:
    try:
        import jupyter_client  # noqa: F401
        import mlflow  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed"
    return None


def _python(code: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchFailed(f"{args[:1] or 'check'} failed in {cwd}: {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def _fresh(folder: Path, tool: str) -> Path:
    folder.mkdir(parents=True)
    if tool == "assay":
        subprocess.run([ASSAY, "init"], cwd=folder, check=True, capture_output=True)
    return folder


def _first_log(tool: str, folder: Path) -> float:
    """The median over fresh kernels of the import-to-first-metric time, in ms."""
    from jupyter_client.manager import start_new_kernel

    times = []
    for _ in range(KERNELS):
        km, kc = start_new_kernel(kernel_name="python3", cwd=str(folder))
        try:
            said: list[str] = []

            def hook(msg: dict[str, Any], said: list[str] = said) -> None:
                said.append(msg["content"].get("text", ""))

            reply = kc.execute_interactive(FIRST_LOG[tool], timeout=120, output_hook=hook)
            if reply["content"]["status"] != "ok":
                raise BenchFailed(f"{tool}'s first log failed in a kernel: {reply['content']}")
            times.append(float("".join(said).strip().splitlines()[-1]))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return statistics.median(times)


def bench(work: Path, scale: float) -> Figures:
    fits = max(5, round(FITS * scale))
    figures: Figures = {"fits": fits}
    for tool in ("assay", "mlflow"):
        folder = _fresh(work / tool, tool)
        log.print(f"{tool}: {fits} bare fits, then {fits} autologged fits…")
        got = json.loads(_python(CHILD, tool, str(fits), cwd=folder))
        check = json.loads(_python(CHECK_ASSAY if tool == "assay" else CHECK_MLFLOW, cwd=folder))
        # Every fit here trains the same model on the same data: MLflow logs a model per
        # run; Assay saves and hashes each one too, and finds the bytes it already holds
        # (one model version, as `models register` of the same bundle is).
        models = 1 if tool == "assay" else fits + 1
        if check["runs"] != fits + 1 or check["models"] != models:
            raise BenchFailed(f"{tool} holds {check} after {fits + 1} autologged fits")
        prefix = "" if tool == "assay" else "mlflow_"
        figures[f"{prefix}bare_fit_ms"] = round(got["bare_ms"], 2)
        figures[f"{prefix}autolog_fit_ms"] = round(got["logged_ms"], 2)
        figures[f"{prefix}autolog_overhead_ms"] = round(got["logged_ms"] - got["bare_ms"], 2)
        log.print(f"{tool}: first log in {KERNELS} fresh kernels…")
        first = _first_log(tool, _fresh(work / f"{tool}-kernel", tool))
        figures["notebook_first_log_ms" if tool == "assay" else "mlflow_first_log_ms"] = round(
            first, 1
        )
    return figures


def report(figures: Figures, scale: float) -> None:
    fits = int(figures["fits"])
    out.print(f"{fits} fits of LogisticRegression on wine, each its own run with its model")
    out.print(f"{'':28}{'Assay':>12}{'MLflow':>12}")
    for label, key in (
        ("bare fit (ms)", "bare_fit_ms"),
        ("fit with autolog (ms)", "autolog_fit_ms"),
        ("autolog overhead (ms)", "autolog_overhead_ms"),
        ("import to first metric (ms)", "first_log_ms"),
    ):
        ours = figures["notebook_first_log_ms"] if key == "first_log_ms" else figures[key]
        peer = figures[f"mlflow_{key}"]
        out.print(f"{label:28}{ours:>12.1f}{peer:>12.1f}")
    speedups = {
        "speedup_autolog": speedup(
            figures["mlflow_autolog_overhead_ms"], figures["autolog_overhead_ms"]
        ),
        "speedup_first_log": speedup(
            figures["mlflow_first_log_ms"], figures["notebook_first_log_ms"]
        ),
    }
    out.print(f"speedups: {speedups}")
    print(json.dumps({"bench": "notebook", "figures": figures, "speedups": speedups}))


if __name__ == "__main__":
    sys.exit(main("notebook", bench, report, missing))
