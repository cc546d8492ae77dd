"""The tracking API over HTTP, side by side: `assay server` against `mlflow server`.

Both servers run on loopback (127.0.0.1, free ports) for the whole benchmark, each with
one worker process and its own SQLite store in a scratch folder: Assay's in a fresh
workspace (`assay init`, an admin token from `assay tokens create`), MLflow's with
`--backend-store-uri sqlite:///…/mlflow.db` (schema created at start-up, untimed) and
`MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false` (by default it also starts a job runner of 7
huey consumer processes, for GenAI jobs, which tracking never uses and which would
compete with its one worker for the CPUs). The client is this process: one
`httpx.Client` per server, keep-alive, one request at a time (one connection), so each
figure is the server's latency plus the client's JSON work, which is the same on both
sides; a server waiting for its turn is idle. The two take turns of 25 operations
through every phase (Assay's 25, then MLflow's, …), so that a change in the machine's
load weighs on both alike. Both speak their own REST API (Assay's /api/v1 with
`Authorization: Bearer`; MLflow's /api/2.0/mlflow, no auth); no SDK is involved. Before
the timed phases each side does the same work once, untimed, in another experiment.

The same data goes to both, phase after phase, wall-clock time with `time.perf_counter`
(`os.sync` before each phase, untimed):

- create: 500 runs, each with 5 params (idx, lr, batch_size, layers, optimizer). Assay:
  `POST /experiments/bench/runs {"params": …}`, one request. MLflow's `runs/create` takes
  no params, so a run there is `runs/create` followed by `runs/log-batch` with the 5
  params: two requests, both counted (`mlflow_create_only_per_s` times `runs/create`
  alone, for reference).
- log_batch: for 200 of those runs, 10 batches of 100 points each (10 metric names x 10
  steps; batch b holds steps 10b…10b+9): 2,000 requests (`POST /runs/{id}/metrics`;
  `runs/log-batch`).
- finish (reported, not a target): every run gets its final `loss` and `acc` (one batch
  of two points at step 100, after every earlier step) and is closed: two requests a run
  on each side (`/metrics` then `/end`; `runs/log-batch` then `runs/update` FINISHED).
- search: 100 times the same search over the 500 runs: `metrics.loss < 0.5`, best (lowest
  loss) first, top 100 (`GET /runs?experiment=bench&filter=…&sort=metrics.loss asc
  &limit=100`; `runs/search` with `order_by ["metrics.loss ASC"]`, `max_results` 100).
  A metric filter, because MLflow compares params as strings only. Both must return the
  runs that the generator says match, in order, or the benchmark fails.

Figures are operations per second (a run created, a batch logged, a run finished, a
search) and the median latency of one operation; a speedup is MLflow's time for a phase
divided by Assay's (above 1: Assay is faster). Target: each of `speedup_create_runs`,
`speedup_log_batch`, `speedup_search` at least 5.

Run it (MLflow comes from `make bench-deps`):

    .venv/bin/python bench/api.py

`ASSAY_BENCH_SCALE=0.1` scales the run, batch-run and search counts down for a quick
trial. The last line on stdout is one JSON object with every figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import harness  # bench/harness.py: shared by every benchmark
from harness import ASSAY, BIN, BenchFailed, log, out, speedup
from rich.table import Table

FULL_RUNS = 500
FULL_LOGGED_RUNS = 200
FULL_SEARCHES = 100
BATCHES = 10  # per logged run
KEYS = ("loss", "acc", "f1", "precision", "recall", "auc", "lr", "grad_norm", "val_loss", "val_acc")
STEPS_PER_BATCH = 10  # x 10 keys: 100 points a batch
FINAL_STEP = BATCHES * STEPS_PER_BATCH  # after every batched step
TOP = 100
WARMUP_RUNS = 5
CHUNK = 25  # operations a side takes in turn
EXPERIMENT = "bench"
WARMUP_EXPERIMENT = "warmup"
ASSAY_FILTER = "metrics.loss < 0.5"
ASSAY_SORT = "metrics.loss asc"
MLFLOW_FILTER = "metrics.loss < 0.5"
MLFLOW_ORDER = ["metrics.loss ASC"]
OPTIMIZERS = ("adam", "sgd", "adamw", "rmsprop")

HTTP_TIMEOUT_S = 60.0
TIMEOUT_S = 120

PHASES = ("create", "log_batch", "finish", "search")
FIGURES = (
    *(f"{p}_per_s" for p in PHASES),
    *(f"{p}_p50_ms" for p in PHASES),
    *(f"mlflow_{p}_per_s" for p in PHASES),
    *(f"mlflow_{p}_p50_ms" for p in PHASES),
    "mlflow_create_only_per_s",
    "runs",
    "logged_runs",
    "searches",
    "load_before",
)


@dataclass(frozen=True)
class Counts:
    runs: int
    logged_runs: int
    searches: int

    @classmethod
    def at(cls, scale: float) -> Counts:
        return cls(
            runs=max(10, round(FULL_RUNS * scale)),
            logged_runs=max(2, round(FULL_LOGGED_RUNS * scale)),
            searches=max(5, round(FULL_SEARCHES * scale)),
        )


@dataclass(frozen=True)
class RunSpec:
    """One run: the same params, batches and final metrics go to both servers."""

    idx: int
    params: dict[str, Any]
    final: dict[str, float]  # loss and acc at FINAL_STEP


Point = tuple[str, float, int, float]  # key, value, step, unix time (s)


def run_specs(count: int) -> list[RunSpec]:
    rng = random.Random(7)
    specs = []
    for idx in range(count):
        params = {
            "idx": idx,
            "lr": round(10 ** rng.uniform(-4, -1), 6),
            "batch_size": rng.choice((16, 32, 64, 128)),
            "layers": rng.randrange(1, 9),
            "optimizer": rng.choice(OPTIMIZERS),
        }
        final = {"loss": rng.random(), "acc": rng.random()}
        specs.append(RunSpec(idx, params, final))
    return specs


def batches(idx: int, base_ts: float) -> list[list[Point]]:
    """The 10 batches of 100 points logged to run `idx`, in order."""
    rng = random.Random(1000 + idx)
    out_ = []
    for b in range(BATCHES):
        batch = []
        for s in range(b * STEPS_PER_BATCH, (b + 1) * STEPS_PER_BATCH):
            ts = base_ts + s * 0.001
            batch.extend((k, rng.random(), s, ts) for k in KEYS)
        out_.append(batch)
    return out_


def expected_top(specs: Sequence[RunSpec]) -> list[int]:
    """idx of the runs the search must return, best first, computed here."""
    hits = sorted((s for s in specs if s.final["loss"] < 0.5), key=lambda s: s.final["loss"])
    return [s.idx for s in hits[:TOP]]


def check_top(tool: str, got: list[int], want: list[int]) -> None:
    if got == want:
        return
    at = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
    where = (
        f"first difference at rank {at + 1}: run {got[at]}, expected {want[at]}"
        if at is not None
        else "one list is the start of the other"
    )
    raise BenchFailed(f"{tool}'s search returned {len(got)} runs, expected {len(want)}; {where}.")


# ---- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_cli(args: Sequence[str], cwd: Path) -> str:
    """Run one command; return its stdout.

    Raises:
        BenchFailed: the command exited non-zero.
    """
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    if proc.returncode != 0:
        raise BenchFailed(
            f"`{' '.join(args)}` in {cwd} exited {proc.returncode}.\n"
            f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
        )
    return proc.stdout


def call(client: Any, method: str, url: str, want: int, **kwargs: Any) -> Any:
    """One request; its JSON answer (None for an empty one).

    Raises:
        BenchFailed: the status was not `want`.
    """
    resp = client.request(method, url, **kwargs)
    if resp.status_code != want:
        raise BenchFailed(
            f"{method} {url} answered {resp.status_code}, expected {want}: {resp.text[:500]}"
        )
    return resp.json() if resp.content else None


# ---- the two APIs -----------------------------------------------------------------------------


class AssayApi:
    """Assay's /api/v1, through one keep-alive client."""

    tool = "Assay"

    def __init__(self, client: Any) -> None:
        self.c = client

    def create(self, experiment: str, spec: RunSpec) -> str:
        run = call(self.c, "POST", f"/experiments/{experiment}/runs", 201,
                   json={"params": spec.params})  # fmt: skip
        run_id: str = run["id"]
        return run_id

    def log(self, run_id: str, points: Sequence[Point]) -> None:
        body = {"metrics": [{"key": k, "value": v, "step": s, "ts": t} for k, v, s, t in points]}
        call(self.c, "POST", f"/runs/{run_id}/metrics", 204, json=body)

    def finish(self, run_id: str, points: Sequence[Point]) -> None:
        self.log(run_id, points)
        call(self.c, "POST", f"/runs/{run_id}/end", 200, json={"status": "succeeded"})

    def search(self, experiment: str) -> list[int]:
        found = call(self.c, "GET", "/runs", 200, params={
            "experiment": experiment, "filter": ASSAY_FILTER, "sort": ASSAY_SORT, "limit": TOP,
        })  # fmt: skip
        return [int(r["params"]["idx"]) for r in found["items"]]

    def loss_points(self, run_id: str) -> int:
        return len(call(self.c, "GET", f"/runs/{run_id}/metrics", 200, params={"key": "loss"}))


class MlflowApi:
    """MLflow's /api/2.0/mlflow REST API, through one keep-alive client."""

    tool = "MLflow"

    def __init__(self, client: Any) -> None:
        self.c = client
        self.experiments: dict[str, str] = {}
        self.create_only_s = 0.0

    def experiment(self, name: str) -> str:
        if name not in self.experiments:
            made = call(self.c, "POST", "/experiments/create", 200, json={"name": name})
            self.experiments[name] = made["experiment_id"]
        return self.experiments[name]

    def create(self, experiment: str, spec: RunSpec) -> str:
        exp_id = self.experiment(experiment)
        start = time.perf_counter()
        run = call(self.c, "POST", "/runs/create", 200, json={
            "experiment_id": exp_id, "start_time": int(time.time() * 1000),
        })  # fmt: skip
        self.create_only_s += time.perf_counter() - start
        run_id: str = run["run"]["info"]["run_id"]
        params = [{"key": k, "value": str(v)} for k, v in spec.params.items()]
        call(self.c, "POST", "/runs/log-batch", 200, json={"run_id": run_id, "params": params})
        return run_id

    def log(self, run_id: str, points: Sequence[Point]) -> None:
        metrics = [
            {"key": k, "value": v, "step": s, "timestamp": int(t * 1000)} for k, v, s, t in points
        ]
        call(self.c, "POST", "/runs/log-batch", 200, json={"run_id": run_id, "metrics": metrics})

    def finish(self, run_id: str, points: Sequence[Point]) -> None:
        self.log(run_id, points)
        call(self.c, "POST", "/runs/update", 200, json={
            "run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000),
        })  # fmt: skip

    def search(self, experiment: str) -> list[int]:
        found = call(self.c, "POST", "/runs/search", 200, json={
            "experiment_ids": [self.experiment(experiment)], "filter": MLFLOW_FILTER,
            "order_by": MLFLOW_ORDER, "max_results": TOP,
        })  # fmt: skip
        return [
            int(next(p["value"] for p in r["data"]["params"] if p["key"] == "idx"))
            for r in found.get("runs", [])
        ]

    def loss_points(self, run_id: str) -> int:
        history = call(self.c, "GET", "/metrics/get-history", 200,
                       params={"run_id": run_id, "metric_key": "loss"})  # fmt: skip
        return len(history.get("metrics", []))


# ---- the benchmark ----------------------------------------------------------------------------


Api = AssayApi | MlflowApi
Ops = Sequence[Callable[[], object]]


def alternate(phase: str, ours: Ops, theirs: Ops) -> dict[str, float]:
    """Run both sides' operations in turns of CHUNK (Assay's first, then MLflow's), so
    that a change in the machine's load while they run weighs on both alike; each side's
    total seconds and median milliseconds per operation, as figures."""
    os.sync()
    each: tuple[list[float], list[float]] = ([], [])
    for at in range(0, max(len(ours), len(theirs)), CHUNK):
        for ops, times in ((ours, each[0]), (theirs, each[1])):
            for op in ops[at : at + CHUNK]:
                t = time.perf_counter()
                op()
                times.append(time.perf_counter() - t)
    fig = {}
    for prefix, times in zip(("", "mlflow_"), each, strict=True):
        fig[f"{prefix}{phase}_s"] = sum(times)
        fig[f"{prefix}{phase}_p50_ms"] = statistics.median(times) * 1000
    return fig


def final_points(spec: RunSpec, base_ts: float) -> list[Point]:
    ts = base_ts + FINAL_STEP * 0.001
    return [(k, v, FINAL_STEP, ts) for k, v in spec.final.items()]


def warm_up(api: Api, specs: Sequence[RunSpec], base_ts: float) -> None:
    """The same work once, untimed, elsewhere: imports, caches and the connection."""
    warm = specs[:WARMUP_RUNS]
    for spec in warm:
        run_id = api.create(WARMUP_EXPERIMENT, spec)
        api.log(run_id, batches(spec.idx, base_ts)[0])
        api.finish(run_id, final_points(spec, base_ts))
    check_top(api.tool, api.search(WARMUP_EXPERIMENT), expected_top(warm))


def drive(apis: tuple[Api, Api], specs: Sequence[RunSpec], n: Counts) -> dict[str, float]:
    """The four phases through both APIs, in turns; seconds and p50 milliseconds of each
    phase on each side, every side's results checked."""
    base_ts = time.time()
    for api in apis:
        warm_up(api, specs, base_ts)
    ids: tuple[list[str], list[str]] = ([], [])

    def creates(api: Api, made: list[str]) -> Ops:
        return [lambda s=spec: made.append(api.create(EXPERIMENT, s)) for spec in specs]

    def logs(api: Api, made: list[str]) -> Ops:
        return [
            lambda r=made[i], b=batch: api.log(r, b)
            for i in range(n.logged_runs)
            for batch in batches(specs[i].idx, base_ts)
        ]

    def finishes(api: Api, made: list[str]) -> Ops:
        return [
            lambda r=run_id, p=final_points(spec, base_ts): api.finish(r, p)
            for run_id, spec in zip(made, specs, strict=True)
        ]

    fig: dict[str, float] = {}
    for phase, ops in (("create", creates), ("log_batch", logs), ("finish", finishes)):
        fig.update(alternate(phase, *(ops(api, made) for api, made in zip(apis, ids, strict=True))))

    want = expected_top(specs)
    for api in apis:
        check_top(api.tool, api.search(EXPERIMENT), want)
    searches = [[lambda a=api: a.search(EXPERIMENT)] * n.searches for api in apis]
    fig.update(alternate("search", *searches))

    expected = BATCHES * STEPS_PER_BATCH + 1
    for api, made in zip(apis, ids, strict=True):
        check_top(api.tool, api.search(EXPERIMENT), want)
        if (held := api.loss_points(made[0])) != expected:
            raise BenchFailed(f"{api.tool} holds {held} loss points of run 0, expected {expected}.")
    return fig


@contextlib.contextmanager
def assay_server(work: Path) -> Iterator[AssayApi]:
    import httpx

    root = work / "assay"
    root.mkdir()
    run_cli([ASSAY, "init"], root)
    secret = json.loads(run_cli([ASSAY, "tokens", "create", "bench", "--scope", "admin",
                                 "--json"], root))["secret"]  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1"
    args = [ASSAY, "server", "--port", str(port), "--workers", "1"]
    with (
        harness.server_process("Assay", args, f"{url}/health", work / "assay-server.log", cwd=root),
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=HTTP_TIMEOUT_S
        ) as client,
    ):
        yield AssayApi(client)


@contextlib.contextmanager
def mlflow_server(work: Path) -> Iterator[MlflowApi]:
    import httpx

    root = work / "mlflow"
    root.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        str(BIN / "mlflow"),
        "server",
        *("--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"),
        *("--default-artifact-root", (root / "artifacts").as_uri()),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    with (
        harness.server_process(
            "MLflow", args, f"{url}/health", work / "mlflow-server.log", cwd=root
        ),
        httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=HTTP_TIMEOUT_S) as client,
    ):
        yield MlflowApi(client)


def bench(work: Path, scale: float) -> dict[str, float]:
    n = Counts.at(scale)
    os.environ["ASSAY_AUTHOR"] = "bench"
    os.environ.pop("ASSAY_DB_URL", None)
    os.environ.pop("ASSAY_STORE_URL", None)
    specs = run_specs(n.runs)
    log.print("Starting both servers (untimed) …")
    with assay_server(work) as ours, mlflow_server(work) as theirs:
        fig: dict[str, float] = {"load_before": os.getloadavg()[0]}
        log.print(
            f"{n.runs} runs, {n.logged_runs * BATCHES} batches, {n.runs} runs finished, "
            f"{n.searches} searches, on each, in turns of {CHUNK} …"
        )
        fig.update(drive((ours, theirs), specs, n))
        fig["mlflow_create_only_s"] = theirs.create_only_s
    fig.update(runs=n.runs, logged_runs=n.logged_runs, searches=n.searches)
    return fig


def report(fig: dict[str, float], scale: float) -> None:
    n = Counts.at(scale)
    ops = {
        "create": n.runs,
        "log_batch": n.logged_runs * BATCHES,
        "finish": n.runs,
        "search": n.searches,
    }
    for p in ("", "mlflow_"):
        for phase, count in ops.items():
            fig[f"{p}{phase}_per_s"] = count / fig[f"{p}{phase}_s"]
    fig["mlflow_create_only_per_s"] = n.runs / fig["mlflow_create_only_s"]
    ratio = {phase: speedup(fig[f"mlflow_{phase}_s"], fig[f"{phase}_s"]) for phase in PHASES}
    speedups = {
        "speedup_create_runs": ratio["create"],
        "speedup_log_batch": ratio["log_batch"],
        "speedup_search": ratio["search"],
    }
    table = Table(
        title=f"Tracking API over HTTP: assay server vs mlflow server, SQLite, 1 worker, 1 "
        f"connection (scale {scale:g})",
        title_justify="left",
    )
    for name in ("phase", "ops", "Assay /s", "MLflow /s", "speedup", "Assay p50", "MLflow p50"):
        table.add_column(name, justify="left" if name == "phase" else "right")
    labels = {
        "create": "runs created (5 params)",
        "log_batch": "batches of 100 points",
        "finish": "runs finished (final metrics, end)",
        "search": f"searches, top {TOP} of {n.runs}",
    }
    for phase, label in labels.items():
        table.add_row(
            label,
            f"{ops[phase]:,}",
            f"{fig[f'{phase}_per_s']:,.1f}",
            f"{fig[f'mlflow_{phase}_per_s']:,.1f}",
            f"{ratio[phase]:.2f}x",
            f"{fig[f'{phase}_p50_ms']:.2f} ms",
            f"{fig[f'mlflow_{phase}_p50_ms']:.2f} ms",
        )
    out.print(table)
    out.print(
        f"Loopback, both servers up, taking turns of {CHUNK} operations; {os.cpu_count()} "
        f"CPUs shared with the client (1-minute load average {fig['load_before']:.1f} at the "
        "start). One keep-alive httpx client per server, sequential requests. Assay: `assay "
        "server --workers 1` (uvicorn), a bearer token on every request. MLflow "
        f"{version('mlflow')}: `mlflow server --workers 1` (its default is 4), SQLite store, "
        "no auth, job execution off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no huey "
        "consumers). An MLflow run created is two requests (runs/create, then log-batch of "
        f"its params); runs/create alone: {fig['mlflow_create_only_per_s']:,.1f}/s. "
        "Finishing a run is two requests on both."
    )
    figures: dict[str, float] = {k: round(fig[k], 4) for k in FIGURES}
    figures["scale"] = scale
    print(json.dumps({"bench": "api", "figures": figures, "speedups": speedups}))


def missing() -> str | None:
    if not (BIN / "mlflow").exists():
        return "MLflow is missing"
    return None


if __name__ == "__main__":
    sys.exit(harness.main("api", bench, report, missing))
