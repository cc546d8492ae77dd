"""The runs page, side by side: Assay's dashboard against MLflow's UI, 10,000 runs each,
measured in a headless Chromium.

Both tools get the same 10,000 runs in one experiment named `bench`, each with 5 params
(`lr` float, `depth` int, `model` str, `batch` int, `optimizer` str) and 3 final metrics
(`loss`, `acc`, `f1`), drawn from a seeded generator. Setting up is not timed:

- Assay: a fresh workspace (`assay init`); every run goes through the service API a
  notebook run takes (`Workspace.runs.begin`, then `runs.end` with its metric points).
  Served by `assay server --no-auth` (one worker).
- MLflow: a `sqlite:///…/mlflow.db` tracking store. The first run is logged through
  `MlflowClient` (`create_run`, `log_batch`, `set_terminated`); the other runs are copies
  of its rows (runs, tags, params, metrics, latest_metrics) with their own ids, names,
  times and values, written in one transaction (MLflow's own client takes ~40 ms a run
  here). The copy is checked: any other table holding rows of that run fails the
  benchmark, and MLflow's client must then count every run and find the expected ones
  first. Served by `mlflow server --workers 1` on that store, with its background job
  runner switched off (`MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`: GenAI jobs, nothing
  the runs page needs; it only takes CPU away).

Two pages of each tool, each opened by URL in a new tab:

- the runs page: Assay's `/runs?experiment=bench`; MLflow's `/#/experiments/<id>/runs`
  with its default search spelled out (`orderByKey=attributes.start_time`, as MLflow
  rewrites the bare URL; else it may restore a tab's last filter): newest first, both
  tools' default order;
- a filtered, sorted page: `params.model = 'cnn' and metrics.loss < 0.5`, sorted by
  `metrics.loss` ascending (a filter both query languages take: MLflow compares params
  as strings only), as `/runs?experiment=bench&filter=…&sort=metrics.loss asc` and as
  MLflow's `searchFilter=…&orderByKey=metrics.`loss`&orderByAsc=true`.

A page counts as rendered in the first animation frame in which its table's first row
holds the run that must come first (found in Python from the generated runs, and checked
against each tool's search in-process): `table.runs tbody tr:first-child a[href="/runs/<id>"]`
for Assay, the ag-grid row `row-index="0"` with `row-id="<id>"` and its run link for
MLflow. A script injected before the page loads looks for it on every frame and records
`performance.now()` (milliseconds since the navigation started): that is the figure.
Also shown: the same span measured from Python (`time.perf_counter` from just before
`page.goto` until Playwright sees the mark, `*_wall_ms_*`; Playwright's check runs on the
page's main thread, so it comes late while the page is still busy running its scripts:
for Assay, typically around the load event), when the HTML document had fully arrived
(`responseEnd` of the navigation entry; for Assay that is the server's whole answer,
`*_html_ms_*`) and when the load event ended. Assay shows 50 rows a page; MLflow's UI
fetches 100.

One browser context per tool (1400x900), so the HTTP cache persists between tabs as it
does for a user; each page is loaded once untimed first (the JavaScript bundle's first
fetch and compile, the servers' first imports and queries are left out). Then 5 rounds,
each loading the four pages in turn; the figures are medians. The two servers run side
by side, idle when not asked.

- `runs_page_ms_10k`, `runs_filtered_ms_10k`: Assay's two pages (target: under 500 ms).
- `mlflow_runs_page_ms_10k`, `mlflow_runs_filtered_ms_10k`: MLflow's.
- `speedup_runs_page`, `speedup_runs_filtered`: MLflow's time over Assay's (target for the
  runs page: at least 3).

Run it (MLflow from `make bench-deps`, Chromium from `make browser`):

    .venv/bin/python bench/ui.py

`ASSAY_BENCH_SCALE=0.1` makes 1,000 runs for a quick trial (the figures keep their
`_10k` names). The last line on stdout is one JSON object with every figure. Everything
under `bench/.work/` is deleted at the end, and both servers are stopped.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import harness  # bench/harness.py: shared by every benchmark
from harness import ASSAY, BIN, BenchFailed, log, out, speedup
from rich.table import Table

FULL_RUNS = 10_000
MIN_RUNS = 200
ROUNDS = 5
EXPERIMENT = "bench"
MODELS = ("mlp", "cnn", "gbm", "rf")
FILTER = "params.model = 'cnn' and metrics.loss < 0.5"
ASSAY_SORT = "metrics.loss asc"
MLFLOW_ORDER = "metrics.`loss`"
FIRST_LOAD_TIMEOUT_S = 180.0  # the untimed first load: MLflow compiles a large bundle
LOAD_TIMEOUT_S = 60.0
TARGET_MS = 500.0
TARGET_SPEEDUP = 3.0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Runs before any of the page's own scripts: on every animation frame, look for the row
# that must come first; record when it is there (ms since the navigation started).
PROBE = """
(() => {
  const selector = %s;
  window.__firstRow = null;
  const tick = () => {
    if (document.querySelector(selector)) {
      window.__firstRow = performance.now();
    } else {
      requestAnimationFrame(tick);
    }
  };
  requestAnimationFrame(tick);
})();
"""
NAVIGATION = """
(() => {
  const n = performance.getEntriesByType("navigation")[0];
  return n ? [n.responseEnd, n.loadEventEnd] : [NaN, NaN];
})()
"""
# What the first row shows instead, when the expected one never comes.
ASSAY_FIRST = (
    "(() => { const r = document.querySelector('table.runs tbody tr');"
    " return r ? r.innerText : document.body ? document.body.innerText.slice(0, 300) : ''; })()"
)
MLFLOW_FIRST = (
    "(() => { const r = document.querySelector('.ag-row[row-index=\"0\"]');"
    " return r ? (r.getAttribute('row-id') + ' ' + r.innerText) :"
    " document.body ? document.body.innerText.slice(0, 300) : ''; })()"
)

PAGES = ("runs_page", "runs_filtered")
FIGURES = (
    "runs_page_ms_10k",
    "runs_filtered_ms_10k",
    "mlflow_runs_page_ms_10k",
    "mlflow_runs_filtered_ms_10k",
    "runs_page_wall_ms_10k",
    "runs_filtered_wall_ms_10k",
    "mlflow_runs_page_wall_ms_10k",
    "mlflow_runs_filtered_wall_ms_10k",
    "runs_page_html_ms_10k",
    "runs_filtered_html_ms_10k",
)


@dataclass(frozen=True)
class RunSpec:
    """One run: the same name, params and final metrics go to both tools."""

    idx: int
    params: dict[str, Any]
    metrics: dict[str, float]

    @property
    def name(self) -> str:
        return f"run-{self.idx:05d}"


def run_count(scale: float) -> int:
    return max(MIN_RUNS, round(FULL_RUNS * scale))


def run_specs(count: int) -> list[RunSpec]:
    specs = []
    for idx in range(count):
        rng = random.Random(idx)
        params: dict[str, Any] = {
            "lr": round(10 ** rng.uniform(-4, -1), 6),
            "depth": rng.randrange(2, 13),
            "model": rng.choice(MODELS),
            "batch": rng.choice((32, 64, 128, 256)),
            "optimizer": rng.choice(("adam", "sgd")),
        }
        loss = rng.random()
        metrics = {"loss": loss, "acc": 1 - loss / 2, "f1": rng.random()}
        specs.append(RunSpec(idx, params, metrics))
    return specs


@dataclass(frozen=True)
class Expected:
    newest: int  # index of the run the runs page must show first
    best: int  # index of the run the filtered, sorted page must show first
    matches: int


def expected(specs: Sequence[RunSpec]) -> Expected:
    hits = [s for s in specs if s.params["model"] == "cnn" and s.metrics["loss"] < 0.5]
    best = min(hits, key=lambda s: s.metrics["loss"])
    return Expected(newest=specs[-1].idx, best=best.idx, matches=len(hits))


def run_cli(args: Sequence[str], cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise BenchFailed(
            f"`{' '.join(args)}` in {cwd} exited {proc.returncode}.\n"
            f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
        )


def progress(tool: str, done: int, total: int, started: float) -> None:
    if done % 1000 == 0 or done == total:
        log.print(f"    {tool}: {done:,}/{total:,} runs ({time.perf_counter() - started:.0f} s)")


# ---- Assay ----------------------------------------------------------------------------------


def assay_workspace(root: Path, specs: Sequence[RunSpec], want: Expected) -> list[str]:
    """A fresh workspace holding `specs` as finished runs; their ids, in order."""
    from assay.config import Settings
    from assay.workspace import Workspace

    root.mkdir()
    run_cli([ASSAY, "init"], root)
    ws = Workspace(Settings.load(root, os.environ))
    ids = []
    started = time.perf_counter()
    try:
        for spec in specs:
            run = ws.runs.begin(EXPERIMENT, params=spec.params, name=spec.name)
            now = time.time()
            points: list[tuple[str, float | None, int | None, float]] = [
                (k, v, None, now) for k, v in spec.metrics.items()
            ]
            ws.runs.finish_here(run.id, "succeeded", None, 0.01, 0.01, points=points)
            ids.append(run.id)
            progress("Assay", len(ids), len(specs), started)
        first = ws.runs.search(experiment=EXPERIMENT, limit=1)
        best = ws.runs.search(experiment=EXPERIMENT, filter=FILTER, sort=ASSAY_SORT, limit=None)
    finally:
        ws.close()
    check_first("Assay", "newest first", [r.id for r in first], ids[want.newest])
    check_first("Assay", "filtered, sorted", [r.id for r in best], ids[want.best], want.matches)
    return ids


def check_first(tool: str, what: str, got: list[str], want: str, count: int | None = None) -> None:
    """Raises BenchFailed unless `got` starts with run `want` (and has `count` runs)."""
    if not got or got[0] != want or (count is not None and len(got) != count):
        raise BenchFailed(
            f"{tool}'s own search ({what}) found {len(got)} runs starting with "
            f"{got[:1]}; expected {count if count is not None else 'some'} starting with {want}."
        )


# ---- MLflow ---------------------------------------------------------------------------------

CLONED = ("runs", "tags", "params", "metrics", "latest_metrics")


def mlflow_store(root: Path, specs: Sequence[RunSpec], want: Expected) -> tuple[str, list[str]]:
    """A fresh SQLite tracking store holding `specs` as finished runs: (experiment id, run
    ids in order). The first run is logged through the client, the rest are copies of it."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    root.mkdir()
    db = root / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    exp_id = client.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    first = specs[0]
    run = client.create_run(exp_id, run_name=first.name)
    template = run.info.run_id
    ts = int(time.time() * 1000)
    client.log_batch(
        template,
        metrics=[Metric(k, v, ts, 0) for k, v in first.metrics.items()],
        params=[Param(k, str(v)) for k, v in first.params.items()],
    )
    client.set_terminated(template, "FINISHED")

    ids = [template]
    con = sqlite3.connect(db)
    try:
        others = [
            t
            for t in tables_holding(con, template)
            if t not in CLONED and t != "experiments"  # the experiment is shared
        ]
        if others:
            raise BenchFailed(f"MLflow's run also has rows in {others}: the copy would miss them.")
        rows = {t: template_rows(con, t, template) for t in CLONED}
        (run_row,) = rows["runs"][1]
        t0, took = run_row["start_time"], run_row["end_time"] - run_row["start_time"]
        started = time.perf_counter()
        with con:
            for spec in specs[1:]:
                run_id = uuid.uuid4().hex
                start = t0 + spec.idx  # a millisecond apart: the order they were "made" in
                end = start + took
                for table in CLONED:
                    cols, template_table = rows[table]
                    fresh = [
                        copied(table, r, template, run_id, spec, start, end) for r in template_table
                    ]
                    con.executemany(
                        f"INSERT INTO {table} ({', '.join(cols)}) "
                        f"VALUES ({', '.join('?' for _ in cols)})",
                        [[r[c] for c in cols] for r in fresh],
                    )
                ids.append(run_id)
                progress("MLflow", len(ids), len(specs), started)
        (count,) = con.execute("SELECT count(*) FROM runs WHERE experiment_id = ?", (exp_id,))
    finally:
        con.close()
    if count[0] != len(specs):
        raise BenchFailed(f"MLflow's store holds {count[0]} runs, expected {len(specs)}.")
    newest = client.search_runs([exp_id], max_results=1)
    best = client.search_runs(
        [exp_id], filter_string=FILTER, order_by=[f"{MLFLOW_ORDER} ASC"], max_results=50_000
    )
    check_first("MLflow", "newest first", [r.info.run_id for r in newest], ids[want.newest])
    check_first(
        "MLflow", "filtered, sorted", [r.info.run_id for r in best], ids[want.best], want.matches
    )
    copy = client.get_run(ids[-1])
    spec = specs[-1]
    if (
        copy.info.run_name != spec.name
        or copy.info.status != "FINISHED"
        or copy.data.params != {k: str(v) for k, v in spec.params.items()}
        or copy.data.metrics != spec.metrics
    ):
        raise BenchFailed(f"MLflow reads a copied run back as {copy}, not as {spec}.")
    return exp_id, ids


def copied(
    table: str, row: dict[str, Any], template: str, run_id: str, spec: RunSpec, start: int, end: int
) -> dict[str, Any]:
    """A row of the template run, made a row of run `run_id`, as logged from `spec`."""
    row = {**row, "run_uuid": run_id}
    if table == "runs":
        row["name"] = spec.name
        row["artifact_uri"] = row["artifact_uri"].replace(template, run_id)
        row["start_time"], row["end_time"] = start, end
    elif table == "tags" and row["key"] == "mlflow.runName":
        row["value"] = spec.name
    elif table == "params":
        row["value"] = str(spec.params[row["key"]])
    elif table in ("metrics", "latest_metrics"):
        row["value"], row["timestamp"] = spec.metrics[row["key"]], end
    return row


def tables_holding(con: sqlite3.Connection, run_id: str) -> list[str]:
    """The tables with a row that names `run_id` in a run_uuid or run_id column."""
    found = []
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in names:
        cols = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
        for col in cols & {"run_uuid", "run_id"}:
            if con.execute(
                f'SELECT 1 FROM "{table}" WHERE "{col}" = ? LIMIT 1', (run_id,)
            ).fetchone():
                found.append(table)
    return found


def template_rows(
    con: sqlite3.Connection, table: str, run_id: str
) -> tuple[list[str], list[dict[str, Any]]]:
    cur = con.execute(f"SELECT * FROM {table} WHERE run_uuid = ?", (run_id,))
    cols = [d[0] for d in cur.description]
    return cols, [dict(zip(cols, r, strict=True)) for r in cur]


# ---- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---- the browser ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page to load: the figure's name, its URL, and how to tell it has rendered."""

    key: str
    url: str
    selector: str  # present once the expected first row is
    first_row: str  # JavaScript: what the first row shows instead (for the error message)


@dataclass(frozen=True)
class Load:
    first_row_ms: float  # in the browser: navigation start to the frame with the row
    wall_ms: float  # from Python: just before goto to Playwright seeing the mark
    html_ms: float  # in the browser: navigation start to the HTML's last byte
    loaded_ms: float  # in the browser: navigation start to the end of the load event


def load(context: Any, page: Page, timeout_s: float) -> Load:
    """Open `page` in a new tab and wait for its first row; the tab is closed after."""
    tab = context.new_page()
    try:
        tab.add_init_script(PROBE % json.dumps(page.selector))
        start = time.perf_counter()
        try:
            tab.goto(page.url, wait_until="commit", timeout=timeout_s * 1000)
            tab.wait_for_function("window.__firstRow !== null", timeout=timeout_s * 1000)
        except Exception as exc:  # Playwright's TimeoutError and friends
            try:
                shown = tab.evaluate(page.first_row)
            except Exception:  # the page may be gone
                shown = "(unreadable)"
            raise BenchFailed(
                f"{page.key}: {page.url} did not show the expected first row "
                f"({page.selector}) within {timeout_s:g} s ({type(exc).__name__}); "
                f"its first row shows: {shown!r}"
            ) from exc
        wall = (time.perf_counter() - start) * 1000
        first = float(tab.evaluate("window.__firstRow"))
        html, loaded = tab.evaluate(NAVIGATION)
        return Load(first, wall, float(html), float(loaded))
    finally:
        tab.close()


def measure(pages: dict[str, list[Page]]) -> dict[str, list[Load]]:
    """Load every page once untimed, then ROUNDS rounds of all of them in turn."""
    from playwright.sync_api import sync_playwright

    loads: dict[str, list[Load]] = {p.key: [] for ps in pages.values() for p in ps}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            # Playwright's wait_for_function evaluates its predicate from a string, which
            # Assay's Content-Security-Policy (no eval) refuses: the bench times rendering,
            # so its tabs bypass the policy.
            contexts = {
                tool: browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
                for tool in pages
            }
            log.print("    first loads (untimed) …")
            for tool, ps in pages.items():
                for p in ps:
                    load(contexts[tool], p, FIRST_LOAD_TIMEOUT_S)
            for n in range(ROUNDS):
                log.print(f"    round {n + 1}/{ROUNDS} …")
                for tool, ps in pages.items():
                    for p in ps:
                        loads[p.key].append(load(contexts[tool], p, LOAD_TIMEOUT_S))
        finally:
            browser.close()
    return loads


# ---- the benchmark --------------------------------------------------------------------------


def bench(work: Path, scale: float) -> dict[str, float]:
    count = run_count(scale)
    os.environ["ASSAY_AUTHOR"] = "bench"
    os.environ.pop("ASSAY_DB_URL", None)
    os.environ.pop("ASSAY_STORE_URL", None)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    quiet_mlflow()
    load_before = os.getloadavg()[0]

    specs = run_specs(count)
    want = expected(specs)
    log.print(f"Logging {count:,} runs into each tool (untimed) …")
    mlflow_exp, mlflow_ids = mlflow_store(work / "mlflow", specs, want)
    assay_ids = assay_workspace(work / "assay", specs, want)

    assay_port, mlflow_port = free_port(), free_port()
    assay_url = f"http://127.0.0.1:{assay_port}"
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    assay_args = [ASSAY, "server", "--port", str(assay_port), "--no-auth"]
    mlflow_args = [
        str(BIN / "mlflow"),
        *("server", "--backend-store-uri", f"sqlite:///{work / 'mlflow' / 'mlflow.db'}"),
        *("--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"),
    ]

    def assay_page(key: str, query: dict[str, str], run_id: str) -> Page:
        return Page(
            key,
            f"{assay_url}/runs?{urlencode(query, quote_via=quote)}",
            f'table.runs tbody tr:first-child a[href="/runs/{run_id}"]',
            ASSAY_FIRST,
        )

    def mlflow_page(key: str, query: dict[str, str], run_id: str) -> Page:
        return Page(
            f"mlflow_{key}",
            f"{mlflow_url}/#/experiments/{mlflow_exp}/runs?{urlencode(query, quote_via=quote)}",
            f'.ag-row[row-index="0"][row-id="{run_id}"] a[href$="/runs/{run_id}"]',
            MLFLOW_FIRST,
        )

    plain = {"searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": "false"}
    sorted_ = {"searchFilter": FILTER, "orderByKey": MLFLOW_ORDER, "orderByAsc": "true"}
    pages = {
        "Assay": [
            assay_page("runs_page", {"experiment": EXPERIMENT}, assay_ids[want.newest]),
            assay_page(
                "runs_filtered",
                {"experiment": EXPERIMENT, "filter": FILTER, "sort": ASSAY_SORT},
                assay_ids[want.best],
            ),
        ],
        "MLflow": [
            mlflow_page("runs_page", plain, mlflow_ids[want.newest]),
            mlflow_page("runs_filtered", sorted_, mlflow_ids[want.best]),
        ],
    }
    log.print(f"Loading the pages in Chromium: {ROUNDS} rounds …")
    with (
        harness.server_process(
            "Assay",
            assay_args,
            f"{assay_url}/api/v1/health",
            work / "assay" / "assay-server.log",
            cwd=work / "assay",
        ),
        harness.server_process(
            "MLflow",
            mlflow_args,
            f"{mlflow_url}/health",
            work / "mlflow" / "mlflow-server.log",
            cwd=work / "mlflow",
        ),
    ):
        loads = measure(pages)

    fig: dict[str, float] = {}
    for key, ls in loads.items():
        fig[f"{key}_ms_10k"] = statistics.median(x.first_row_ms for x in ls)
        fig[f"{key}_wall_ms_10k"] = statistics.median(x.wall_ms for x in ls)
        fig[f"{key}_html_ms_10k"] = statistics.median(x.html_ms for x in ls)
        fig[f"{key}_loaded_ms_10k"] = statistics.median(x.loaded_ms for x in ls)
        fig[f"{key}_spread_ms"] = max(x.first_row_ms for x in ls) - min(x.first_row_ms for x in ls)
    fig["runs"] = count
    fig["matches"] = want.matches
    fig["load_before"] = load_before
    fig["load_after"] = os.getloadavg()[0]
    return fig


def quiet_mlflow() -> None:
    import logging
    import warnings

    import mlflow  # noqa: F401  (it configures its loggers on import: quieten them after)

    warnings.filterwarnings("ignore", module="mlflow")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def report(fig: dict[str, float], scale: float) -> None:
    speedups = {
        f"speedup_{p}": speedup(fig[f"mlflow_{p}_ms_10k"], fig[f"{p}_ms_10k"]) for p in PAGES
    }
    table = Table(
        title=f"Runs page in Chromium: Assay vs MLflow {version('mlflow')}, SQLite "
        f"(scale {scale:g}: {int(fig['runs']):,} runs), median of {ROUNDS} warm loads, ms",
        title_justify="left",
        caption="first row: navigation start to the frame that shows the expected first run "
        "(measured in the page); wall: from before goto until Playwright sees it; HTML: the "
        "document's last byte; loaded: the load event's end; spread: max - min of first row. "
        f"The filter matches {int(fig['matches']):,} runs. Load average (1 min) "
        f"{fig['load_before']:.2f} before, {fig['load_after']:.2f} after. Targets: Assay "
        f"under {TARGET_MS:g} ms, runs-page speedup at least {TARGET_SPEEDUP:g}x.",
        caption_justify="left",
    )
    for name in ("page", "tool", "first row", "wall", "HTML", "loaded", "spread", "speedup"):
        table.add_column(name, justify="left" if name in ("page", "tool") else "right")
    labels = {"runs_page": "runs", "runs_filtered": "filtered"}
    for p in PAGES:
        for prefix, tool in (("", "Assay"), ("mlflow_", "MLflow")):
            key = f"{prefix}{p}"
            slow = not prefix and fig[f"{key}_ms_10k"] >= TARGET_MS
            table.add_row(
                labels[p] if not prefix else "",
                tool,
                f"{fig[f'{key}_ms_10k']:.0f}{' SLOW' if slow else ''}",
                *(f"{fig[f'{key}_{x}_ms_10k']:.0f}" for x in ("wall", "html", "loaded")),
                f"{fig[f'{key}_spread_ms']:.0f}",
                f"{speedups[f'speedup_{p}']:.2f}x" if prefix else "",
            )
    out.print(table)
    figures: dict[str, float] = {k: round(fig[k], 1) for k in FIGURES}
    figures["load_avg_1m"] = round(fig["load_after"], 2)
    figures["scale"] = scale
    print(json.dumps({"bench": "ui", "figures": figures, "speedups": speedups}))


def missing() -> str | None:
    if not (BIN / "mlflow").exists():
        return "MLflow is missing"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing"
    if CHROMIUM is None:
        return "Chromium is missing (`make browser` installs Debian's)"
    return None


if __name__ == "__main__":
    sys.exit(harness.main("ui", bench, report, missing))
