"""Experiment tracking, side by side: Assay's SDK against MLflow's, both on local SQLite.

Both tools run in this process, on this machine, each against its own store in its own
scratch folder: Assay in a fresh workspace (`assay init`), MLflow with a
`sqlite:///…/mlflow.db` tracking store (schema created untimed). MLflow runs twice, with
its default synchronous logging and with asynchronous logging switched on
(`mlflow.config.enable_async_logging`), each time in a fresh store. Wall-clock time with
`time.perf_counter`:

- `log_metric_s`: 10,000 single `log_metric("loss", value, step=i)` calls inside one run,
  timed from before the loop to after the run's `with` block exits, so that the final
  flush (Assay's buffer; MLflow's async queue) is paid for. Afterwards each tool must
  hold all 10,000 points.
- `log_batch_s`: 10,000 points in the shape of 100 metric names x 100 steps: Assay logs
  them as 100 `log_metrics` calls of 100 names (one per step), MLflow as one
  `MlflowClient.log_batch` of 10,000 `Metric`s (it splits it into requests of 1,000);
  timed and checked as above; the median of 3 runs (asynchronous MLflow's wait at the
  end of a run, up to a second, is most of its time and varies from run to run).
- `create_run_ms`: 1,000 runs, each opened with 50 params (`start_run(params=...)`;
  `start_run` + `log_params`) and given 10 metrics (`log_metrics`), then closed; the
  time per run. Asynchronous MLflow waits up to a second at the end of every run (its
  queue's worker polls with a one-second timeout), so it creates only the first 100 of
  them; its search is checked but not timed.
- `search_ms_1k`: the top 100 runs of those 1,000 by `metrics.m1` descending among those
  with `params.kind = 'k1' and metrics.m2 >= 0.5` (about 1 run in 8 matches: MLflow
  compares params as strings only, hence a string param), through an open client
  (`Workspace.runs.search`; `MlflowClient.search_runs`, `max_results=100`); the median
  of 5. Every tool must return exactly the runs that the generator says match, in order,
  or the benchmark fails.
- `search_ms_10k`: the same search in Assay once 9,000 more runs are in the workspace
  (inserted untimed, straight through the run repository in one transaction).
- `run_overhead_s`: `assay run` end to end in a subprocess (the `assay` script beside
  this interpreter) on a two-step pipeline whose steps do nothing, on a one-line data
  file, with `--force --no-cache`: the fixed cost of a pipeline run; the median of 3,
  served by the warm server (`assay.cli.warm`) the first command starts, as a user's
  runs are. `run_overhead_cold_s` is the same with `ASSAY_WARM=0` (a new interpreter).

The `mlflow_*` and `mlflow_async_*` figures are the same cases for MLflow. A speedup is
MLflow's time divided by Assay's (above 1: Assay is faster); `*_async` speedups compare
with asynchronous MLflow. Before each timed section the script flushes pending writes
(`os.sync`, untimed); everything under `bench/.work/` is deleted at the end.

Run it (MLflow comes from `make bench-deps`):

    .venv/bin/python bench/tracking.py

`ASSAY_BENCH_SCALE=0.1` scales the point and run counts down for a quick trial. The last
line on stdout is one JSON object with every figure.
"""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import harness  # bench/harness.py: shared by every benchmark
from harness import ASSAY, BenchFailed, log, out, speedup
from rich.table import Table

FULL_POINTS = 10_000
BATCH_KEYS = 100
FULL_RUNS = 1_000
BIG_RUNS_FACTOR = 10
PARAM_COUNT = 50
METRIC_COUNT = 10
KINDS = 4
ASYNC_RUNS = 100
TOP = 100
SEARCH_ROUNDS = 5
BATCH_ROUNDS = 3
OVERHEAD_ROUNDS = 3
TIMEOUT_S = 600
EXPERIMENT = "bench"
FILTER = "params.kind = 'k1' and metrics.m2 >= 0.5"
ASSAY_SORT = "metrics.m1 desc"
MLFLOW_ORDER = ["metrics.m1 DESC"]

PIPELINE = """\
import assay


@assay.step
def a(data):
    return 1


@assay.step
def b(a, params):
    return {"m": 1.0}


pipeline = assay.Pipeline("noop", [a, b], metrics="b")
"""

FIGURES = (
    "log_metric_s",
    "log_batch_s",
    "create_run_ms",
    "search_ms_1k",
    "search_ms_10k",
    "run_overhead_s",
    "run_overhead_cold_s",
    "mlflow_log_metric_s",
    "mlflow_log_batch_s",
    "mlflow_create_run_ms",
    "mlflow_search_ms_1k",
    "mlflow_async_log_metric_s",
    "mlflow_async_log_batch_s",
    "mlflow_async_create_run_ms",
)


@dataclass(frozen=True)
class RunSpec:
    """One run of case (c): the same params and metrics go to every tool."""

    idx: int
    params: dict[str, Any]
    metrics: dict[str, float]


@dataclass(frozen=True)
class Counts:
    points: int
    runs: int
    big_runs: int

    @classmethod
    def at(cls, scale: float) -> Counts:
        points = max(BATCH_KEYS, round(FULL_POINTS * scale / BATCH_KEYS) * BATCH_KEYS)
        runs = max(2 * KINDS, round(FULL_RUNS * scale))
        return cls(points, runs, runs * BIG_RUNS_FACTOR)


def run_specs(count: int, start: int = 0) -> list[RunSpec]:
    """`count` runs of 50 params (ints, floats, one string) and 10 distinct random metrics."""
    specs = []
    for idx in range(start, start + count):
        rng = random.Random(idx)
        params: dict[str, Any] = {"idx": idx, "kind": f"k{idx % KINDS}"}
        for k in range(2, PARAM_COUNT):
            params[f"p{k}"] = rng.randrange(1000) if k % 2 else round(rng.random(), 6)
        metrics = {f"m{k}": rng.random() for k in range(METRIC_COUNT)}
        specs.append(RunSpec(idx, params, metrics))
    return specs


Top = list[tuple[int, float]]  # (idx, m1) of each run found, best first
Search = Callable[[], Top]


class Side(Protocol):
    """One tool's way through cases (a) to (c): the first three return seconds taken;
    `searcher` opens a client and yields one search, to be timed by the caller."""

    def log_metric(self, points: int) -> float: ...
    def log_batch(self, points: int) -> float: ...
    def create_runs(self, specs: Sequence[RunSpec]) -> float: ...
    def searcher(self) -> AbstractContextManager[Search]: ...


def expected_top(specs: Sequence[RunSpec]) -> Top:
    """(idx, m1) of the runs the search must return, in order, computed here."""
    hits = [s for s in specs if s.params["kind"] == "k1" and s.metrics["m2"] >= 0.5]
    hits.sort(key=lambda s: s.metrics["m1"], reverse=True)
    return [(s.idx, s.metrics["m1"]) for s in hits[:TOP]]


def check_top(tool: str, got: Top, want: Top) -> None:
    """Raises BenchFailed unless `got` is `want`, run for run and value for value."""
    if got == want:
        return
    at = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
    where = (
        f"first difference at rank {at + 1}: got {got[at]}, expected {want[at]} (idx, m1)"
        if at is not None
        else "one list is the start of the other"
    )
    raise BenchFailed(f"{tool}'s search returned {len(got)} runs, expected {len(want)}; {where}.")


def timed_median(rounds: int, once: Callable[[], float]) -> float:
    return statistics.median(once() for _ in range(rounds))


@contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Work from `folder` (Assay's SDK finds its workspace from the current folder)."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli(args: Sequence[str], cwd: Path, **env: str) -> tuple[float, str]:
    """Run one command; return its wall-clock seconds and stdout (BenchFailed if it fails)."""
    return harness.timed_run(args, cwd, {**os.environ, **env}, TIMEOUT_S)


# ---- Assay ----------------------------------------------------------------------------------


class AssaySide:
    """Assay's SDK in a fresh workspace under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        run_cli([ASSAY, "init"], root)

    def workspace(self) -> Any:
        from assay.config import Settings
        from assay.workspace import Workspace

        return Workspace(Settings.load(self.root, os.environ))

    def series_length(self, run_id: str) -> int:
        ws = self.workspace()
        try:
            return len(ws.runs.series(run_id))
        finally:
            ws.close()

    def log_metric(self, points: int) -> float:
        import assay

        values = [1.0 / (i + 1) for i in range(points)]
        with inside(self.root):
            with assay.start_run(experiment=EXPERIMENT, name="log-metric") as run:
                os.sync()
                start = time.perf_counter()
                for i, value in enumerate(values):
                    assay.log_metric("loss", value, step=i)
            elapsed = time.perf_counter() - start
        if (n := self.series_length(run.id)) != points:
            raise BenchFailed(f"Assay holds {n} points of the {points} logged one at a time.")
        return elapsed

    def log_batch(self, points: int) -> float:
        import assay

        steps = [
            {f"m{k}": s + k / BATCH_KEYS for k in range(BATCH_KEYS)}
            for s in range(points // BATCH_KEYS)
        ]
        with inside(self.root):
            with assay.start_run(experiment=EXPERIMENT, name="log-batch") as run:
                os.sync()
                start = time.perf_counter()
                for s, metrics in enumerate(steps):
                    assay.log_metrics(metrics, step=s)
            elapsed = time.perf_counter() - start
        if (n := self.series_length(run.id)) != points:
            raise BenchFailed(f"Assay holds {n} points of the {points} logged in batches.")
        return elapsed

    def create_runs(self, specs: Sequence[RunSpec]) -> float:
        import assay

        with inside(self.root):
            os.sync()
            start = time.perf_counter()
            for spec in specs:
                with assay.start_run(experiment=EXPERIMENT, params=spec.params):
                    assay.log_metrics(spec.metrics)
            return time.perf_counter() - start

    def add_runs_untimed(self, specs: Sequence[RunSpec]) -> None:
        """More runs like `create_runs` makes, written in one transaction (fast; untimed)."""
        from assay.runs.repository import RunRepository

        ws = self.workspace()
        created = datetime.now(UTC)
        try:
            with ws.db.session() as conn:
                repo = RunRepository(conn)
                exp_id = repo.experiment_id(EXPERIMENT)
                for n, spec in enumerate(specs):
                    run_id = uuid.uuid4().hex
                    at = created + timedelta(milliseconds=n)
                    repo.insert_run(
                        {
                            "id": run_id,
                            "experiment_id": exp_id,
                            "name": f"{EXPERIMENT}-bulk-{spec.idx}",
                            "status": "succeeded",
                            "created_at": at,
                            "started_at": at,
                            "ended_at": at,
                        },
                        spec.params,
                    )
                    ts = at.timestamp()
                    repo.add_points(run_id, [(k, v, None, ts) for k, v in spec.metrics.items()])
        finally:
            ws.close()

    @contextmanager
    def searcher(self) -> Iterator[Search]:
        ws = self.workspace()
        try:

            def search() -> Top:
                found = ws.runs.search(
                    experiment=EXPERIMENT, filter=FILTER, sort=ASSAY_SORT, limit=TOP
                )
                return [(int(r.params["idx"]), r.metrics["m1"]) for r in found]

            yield search
        finally:
            ws.close()


def run_overhead(folder: Path) -> tuple[float, float]:
    """`assay run` of a do-nothing pipeline, end to end, the median of 3: served by the
    warm server a user's earlier command started (`assay.cli.warm`), and cold."""
    noop = AssaySide(folder)
    (folder / "pipeline.py").write_text(PIPELINE)
    (folder / "tiny.csv").write_text("x\n1\n")
    (folder / "params.json").write_text(json.dumps({"seed": 1}))
    run_cli([ASSAY, "data", "commit", "tiny", "tiny.csv"], folder)
    run_cli([ASSAY, "pipelines", "register", "pipeline.py"], folder)
    args = [ASSAY, "run", "noop", "--data", "tiny@1", "--params", "params.json"]
    harness.warm_server(folder, os.environ)
    args = [*args, "--force", "--no-cache"]
    warm = timed_median(OVERHEAD_ROUNDS, lambda: run_cli(args, folder)[0])
    cold = timed_median(OVERHEAD_ROUNDS, lambda: run_cli(args, folder, ASSAY_WARM="0")[0])
    ws = noop.workspace()
    try:
        done = ws.runs.search(experiment="noop", limit=None)
    finally:
        ws.close()
    if len(done) != 2 * OVERHEAD_ROUNDS or any(
        r.status != "succeeded" or r.metrics.get("m") != 1.0 for r in done
    ):
        raise BenchFailed(
            f"`assay run noop` left {[(r.status, r.metrics) for r in done]}, expected "
            f"{2 * OVERHEAD_ROUNDS} succeeded runs with metric m = 1.0."
        )
    return warm, cold


# ---- MLflow ---------------------------------------------------------------------------------


class MlflowSide:
    """MLflow's fluent API and client on a fresh SQLite tracking store under `root`."""

    def __init__(self, root: Path, asynchronous: bool) -> None:
        import mlflow

        self.root = root
        self.asynchronous = asynchronous
        root.mkdir()
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = mlflow.MlflowClient(self.uri)
        self.experiment_id = self.client.create_experiment(  # creates the schema: untimed
            EXPERIMENT, artifact_location=(root / "artifacts").as_uri()
        )

    @contextmanager
    def active(self) -> Iterator[Any]:
        """This store as MLflow's current one, with this side's logging mode, from `root`."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        mlflow.config.enable_async_logging(self.asynchronous)
        try:
            with inside(self.root):
                yield mlflow
        finally:
            mlflow.config.enable_async_logging(False)

    def log_metric(self, points: int) -> float:
        values = [1.0 / (i + 1) for i in range(points)]
        with self.active() as mlflow:
            with mlflow.start_run(experiment_id=self.experiment_id) as run:
                os.sync()
                start = time.perf_counter()
                for i, value in enumerate(values):
                    mlflow.log_metric("loss", value, step=i)
            elapsed = time.perf_counter() - start
        n = len(self.client.get_metric_history(run.info.run_id, "loss"))
        if n != points:
            raise BenchFailed(f"MLflow holds {n} points of the {points} logged one at a time.")
        return elapsed

    def log_batch(self, points: int) -> float:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        batch = [
            Metric(f"m{k}", s + k / BATCH_KEYS, ts, s)
            for s in range(points // BATCH_KEYS)
            for k in range(BATCH_KEYS)
        ]
        with self.active() as mlflow:
            with mlflow.start_run(experiment_id=self.experiment_id) as run:
                os.sync()
                start = time.perf_counter()
                self.client.log_batch(run.info.run_id, metrics=batch)
            elapsed = time.perf_counter() - start
        n = sum(
            len(self.client.get_metric_history(run.info.run_id, f"m{k}")) for k in range(BATCH_KEYS)
        )
        if n != points:
            raise BenchFailed(f"MLflow holds {n} points of the {points} logged in a batch.")
        return elapsed

    def create_runs(self, specs: Sequence[RunSpec]) -> float:
        with self.active() as mlflow:
            os.sync()
            start = time.perf_counter()
            for spec in specs:
                with mlflow.start_run(experiment_id=self.experiment_id):
                    mlflow.log_params(spec.params)
                    mlflow.log_metrics(spec.metrics)
            return time.perf_counter() - start

    @contextmanager
    def searcher(self) -> Iterator[Search]:
        def search() -> Top:
            found = self.client.search_runs(
                [self.experiment_id], filter_string=FILTER, order_by=MLFLOW_ORDER, max_results=TOP
            )
            return [(int(r.data.params["idx"]), r.data.metrics["m1"]) for r in found]

        yield search


# ---- the benchmark --------------------------------------------------------------------------


def search_ms(tool: str, side: Side, want: Top) -> float:
    """The median of 5 searches through an open client, each checked against `want`."""
    with side.searcher() as search:
        os.sync()

        def once() -> float:
            start = time.perf_counter()
            got = search()
            elapsed = time.perf_counter() - start
            check_top(tool, got, want)
            return elapsed * 1000

        return timed_median(SEARCH_ROUNDS, once)


def quiet_mlflow() -> None:
    """No telemetry thread competing for the CPU, no INFO lines about schema migrations."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    import mlflow  # noqa: F401  (it configures its loggers on import: quieten them after)

    warnings.filterwarnings("ignore", module="mlflow")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def bench(work: Path, scale: float) -> dict[str, float]:
    n = Counts.at(scale)
    os.environ["ASSAY_AUTHOR"] = "bench"
    os.environ.pop("ASSAY_DB_URL", None)
    os.environ.pop("ASSAY_STORE_URL", None)
    quiet_mlflow()

    log.print("Creating the stores (untimed) …")
    assay = AssaySide(work / "assay")
    mlflow = MlflowSide(work / "mlflow", asynchronous=False)
    mlflow_async = MlflowSide(work / "mlflow-async", asynchronous=True)
    sides: tuple[tuple[str, str, Side], ...] = (
        ("", "Assay", assay),
        ("mlflow_", "MLflow", mlflow),
        ("mlflow_async_", "MLflow (async)", mlflow_async),
    )
    fig: dict[str, float] = {}

    log.print(f"(a) {n.points:,} single log_metric calls …")
    for prefix, _, side in sides:
        fig[f"{prefix}log_metric_s"] = side.log_metric(n.points)
    log.print(f"(b) {n.points:,} points as {BATCH_KEYS} metrics x {n.points // BATCH_KEYS} steps …")
    for prefix, _, side in sides:
        fig[f"{prefix}log_batch_s"] = timed_median(BATCH_ROUNDS, partial(side.log_batch, n.points))

    log.print(f"(c) {n.runs:,} runs of {PARAM_COUNT} params and {METRIC_COUNT} metrics …")
    specs = run_specs(n.runs)
    for prefix, _, side in sides:
        made = specs[:ASYNC_RUNS] if side is mlflow_async else specs
        fig[f"{prefix}create_run_ms"] = side.create_runs(made) / len(made) * 1000
    log.print(f"    top-{TOP} search over {n.runs:,} runs, median of {SEARCH_ROUNDS} …")
    for prefix, tool, side in sides[:2]:
        fig[f"{prefix}search_ms_1k"] = search_ms(tool, side, expected_top(specs))
    with mlflow_async.searcher() as search:
        check_top("MLflow (async)", search(), expected_top(specs[:ASYNC_RUNS]))

    log.print(f"    adding {n.big_runs - n.runs:,} runs to Assay's workspace (untimed) …")
    more = run_specs(n.big_runs - n.runs, start=n.runs)
    assay.add_runs_untimed(more)
    fig["search_ms_10k"] = search_ms("Assay", assay, expected_top([*specs, *more]))

    log.print(f"`assay run` of a do-nothing pipeline, median of {OVERHEAD_ROUNDS} …")
    fig["run_overhead_s"], fig["run_overhead_cold_s"] = run_overhead(work / "overhead")
    return fig


def report(fig: dict[str, float], scale: float) -> None:
    n = Counts.at(scale)
    speedups = {
        "speedup_log_metric": speedup(fig["mlflow_log_metric_s"], fig["log_metric_s"]),
        "speedup_log_batch": speedup(fig["mlflow_log_batch_s"], fig["log_batch_s"]),
        "speedup_create_runs": speedup(fig["mlflow_create_run_ms"], fig["create_run_ms"]),
        "speedup_search_1k": speedup(fig["mlflow_search_ms_1k"], fig["search_ms_1k"]),
        "speedup_log_metric_async": speedup(fig["mlflow_async_log_metric_s"], fig["log_metric_s"]),
        "speedup_log_batch_async": speedup(fig["mlflow_async_log_batch_s"], fig["log_batch_s"]),
        "speedup_create_runs_async": speedup(
            fig["mlflow_async_create_run_ms"], fig["create_run_ms"]
        ),
    }
    table = Table(
        title=f"Tracking: Assay vs MLflow, SQLite (scale {scale:g}: {n.points:,} points, "
        f"{n.runs:,} runs)",
        title_justify="left",
    )
    for name in ("case", "Assay", "MLflow", "async", "speedup", "vs async"):
        table.add_column(name, justify="left" if name == "case" else "right")

    def per_s(key: str, count: int) -> str:
        return f"{count / fig[key]:,.0f}"

    def cells(key: str, count: int) -> list[str]:
        return [per_s(f"{p}{key}_s", count) for p in ("", "mlflow_", "mlflow_async_")]

    def ratios(key: str) -> list[str]:
        return [f"{speedups[f'speedup_{key}']:.2f}x", f"{speedups[f'speedup_{key}_async']:.2f}x"]

    table.add_row("(a) log_metric, /s", *cells("log_metric", n.points), *ratios("log_metric"))
    table.add_row("(b) batched points, /s", *cells("log_batch", n.points), *ratios("log_batch"))
    table.add_row(
        "(c) runs created, /s",
        *(f"{1000 / fig[f'{p}create_run_ms']:,.1f}" for p in ("", "mlflow_", "mlflow_async_")),
        *ratios("create_runs"),
    )
    table.add_row(
        f"    search {n.runs:,}, ms",
        f"{fig['search_ms_1k']:.1f}",
        f"{fig['mlflow_search_ms_1k']:.1f}",
        "",
        f"{speedups['speedup_search_1k']:.2f}x",
    )
    table.add_row(f"    search {n.big_runs:,}, ms", f"{fig['search_ms_10k']:.1f}")
    table.add_row("assay run no-op, s", f"{fig['run_overhead_s']:.3f}")
    table.add_row("  cold (ASSAY_WARM=0), s", f"{fig['run_overhead_cold_s']:.3f}")
    out.print(table)
    figures: dict[str, float] = {k: round(fig[k], 4) for k in FIGURES}
    figures["scale"] = scale
    print(json.dumps({"bench": "tracking", "figures": figures, "speedups": speedups}))


def missing() -> str | None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return "MLflow is missing"
    return None


if __name__ == "__main__":
    sys.exit(harness.main("tracking", bench, report, missing))
