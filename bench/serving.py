"""Model serving, side by side: Assay's inference service against `mlflow models serve`.

One scikit-learn model, `make_pipeline(StandardScaler(), LogisticRegression())` fitted on
the breast-cancer data bundled with scikit-learn (569 rows, 30 float columns, as a
DataFrame), saved with skops and registered in a fresh Assay workspace. Three servers
answer it on loopback, one at a time, each after a one-second warm-up:

- Assay: `Workspace.services.deploy` (uvicorn with uvloop and httptools), KServe V1
  `POST /v1/models/cancer:predict` with `{"instances": [[30 floats], ...]}`.
- MLflow: Assay's own export of the same version (`registry.export`, an `MLmodel`
  folder) served by `mlflow models serve --env-manager local` with MLflow's defaults,
  `POST /invocations` with `{"dataframe_split": {"columns": [...], "data": [...]}}`.
  That MLflow loads and serves the export is checked on the way.
- Assay on Ray: the same version deployed with `services.deploy(..., on="ray",
  replicas=2)` on a Ray head started here on loopback (`ray start --head`, 2 CPUs):
  Ray Serve's HTTP proxy, then the service's ingress deployment, then one of the two
  model replicas, each hop a Ray call. `ray_rps_1row` (32 connections) and `ray_p50_ms`
  (1 connection); `speedup_ray_vs_mlflow` is its rate over MLflow's best, `ray_vs_local`
  over the local service's best. On one machine this measures what the Ray hops cost;
  what Ray buys, replicas on other machines, one machine cannot show.
- The floor: a bare Starlette endpoint (`await request.json()`, `np.asarray`,
  `model.predict`, `JSONResponse`) on the model loaded from the same skops file, in
  uvicorn with Assay's settings (uvloop, httptools, no access log, one worker); and
  `model.predict` in this process on a numpy row (`predict_us_*`).

Every server must first answer one row and 1,000 rows exactly as `model.predict` does
here. Then, with the same rows for every server:

- `p50_ms_1row`, `p99_ms_1row`, `rps_1row_c1`: one row per request from `wrk --latency`
  with 1 connection and 1 thread (the latency percentiles are wrk's).
- `rps_1row_c32`: requests/s with 32 connections and 2 wrk threads, for 1 and for 2
  workers (`*_c32_w1`, `*_c32_w2`); the figure is the better of the two, for each tool.
  wrk, the server and its workers share this machine's CPUs, alike for every tool.
- `p50_ms_1000rows`: the median of sequential 1,000-row requests (the data set's rows,
  repeated) through one keep-alive httpx client, 1-worker servers.

The `mlflow_*` and `floor_*` figures are the same cases for the other two servers. A
speedup is MLflow's time divided by Assay's (above 1: Assay is faster); for requests/s
that is Assay's rate over MLflow's. wrk must see no errors and no non-2xx answer.

Run it (MLflow and wrk come from `make bench-deps`):

    .venv/bin/python bench/serving.py

`ASSAY_BENCH_SCALE=0.2` shortens every load and cuts the 1,000-row requests for a quick
trial. The last line on stdout is one JSON object with every figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import harness  # bench/harness.py: shared by every benchmark
from harness import (
    BIN,
    BenchFailed,
    WrkResult,
    log,
    no_feature_name_warning,
    out,
    speedup,
    wrk_missing,
    wrk_version,
)
from harness import wrk as harness_wrk
from rich.table import Table

MODEL = "cancer"
LATENCY_S = 10  # wrk, 1 connection
SATURATION_S = 8  # wrk, 32 connections, per worker count
WARMUP_S = 1
CONNECTIONS = 32
WRK_THREADS = 2
WORKER_COUNTS = (1, 2)
BATCH_ROWS = 1_000
BATCH_REQUESTS = 40
BATCH_WARMUP = 3
PREDICT_CALLS = 2_000
HTTP_TIMEOUT_S = 60.0

TARGET_RPS = 15.0  # speedup_rps_1row at least
TARGET_1000ROWS = 2.5  # speedup_1000rows at least
TARGET_FLOOR = 1.5  # p50_ms_1row at most this times floor_p50_ms_1row

# The floor: the least a Python server can do with this model. Run as
# `python floor_app.py MODEL.skops PORT`.
FLOOR_APP = """\
import sys
import warnings

import numpy as np
import skops.io as sio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

# Fitted on a DataFrame, given numpy: scikit-learn would warn on every call.
warnings.filterwarnings("ignore", message="X does not have valid feature names")
path, port = sys.argv[1], int(sys.argv[2])
model = sio.load(path, trusted=sio.get_untrusted_types(file=path))


async def predict(request: Request) -> JSONResponse:
    body = await request.json()
    X = np.asarray(body["instances"], dtype=float)
    return JSONResponse({"predictions": model.predict(X).tolist()})


async def ready(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ready")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/ready", ready)])
uvicorn.run(
    app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", access_log=False,
    log_level="warning",
)
"""

# wrk sends the same request again and again: this one, read from a file once.


FIGURES = (
    "p50_ms_1row",
    "p99_ms_1row",
    "rps_1row_c1",
    "rps_1row_c32",
    "rps_1row_c32_w1",
    "rps_1row_c32_w2",
    "p50_ms_1000rows",
    "mlflow_p50_ms_1row",
    "mlflow_p99_ms_1row",
    "mlflow_rps_1row_c1",
    "mlflow_rps_1row_c32",
    "mlflow_rps_1row_c32_w1",
    "mlflow_rps_1row_c32_w2",
    "mlflow_p50_ms_1000rows",
    "floor_p50_ms_1row",
    "floor_p99_ms_1row",
    "floor_rps_1row_c1",
    "floor_rps_1row_c32",
    "floor_p50_ms_1000rows",
    "predict_us_1row",
    "predict_us_1000rows",
    "ray_rps_1row",
    "ray_p50_ms",
    "ray_p99_ms",
    "load_before",
)
RAY_REPLICAS = 2


@dataclass(frozen=True)
class Durations:
    latency_s: int
    saturation_s: int
    batch_requests: int

    @classmethod
    def at(cls, scale: float) -> Durations:
        return cls(
            max(1, round(LATENCY_S * scale)),
            max(1, round(SATURATION_S * scale)),
            max(5, round(BATCH_REQUESTS * scale)),
        )


@dataclass(frozen=True)
class Rows:
    """What every server is asked: one row and 1,000 rows, with the answers expected."""

    columns: list[str]
    one: list[list[float]]
    batch: list[list[float]]
    one_expected: list[int]
    batch_expected: list[int]


@dataclass(frozen=True)
class Endpoint:
    """One server's predict URL and its two request bodies, in its own protocol."""

    tool: str
    url: str
    one_body: bytes
    batch_body: bytes

    def predictions(self, body: bytes) -> list[int]:
        """POST `body` once and return the predictions.

        Raises:
            BenchFailed: an error status, or an answer without predictions.
        """
        import httpx

        response = httpx.post(self.url, content=body, headers=JSON, timeout=HTTP_TIMEOUT_S)
        if response.status_code != 200:
            raise BenchFailed(
                f"{self.tool} answered {response.status_code} to POST {self.url}: "
                f"{response.text[:2000]}"
            )
        found: list[int] = response.json()["predictions"]
        return found

    def check(self, rows: Rows) -> None:
        """Raises BenchFailed unless the server predicts what the model does here."""
        for what, body, want in (
            ("1 row", self.one_body, rows.one_expected),
            (f"{BATCH_ROWS:,} rows", self.batch_body, rows.batch_expected),
        ):
            got = self.predictions(body)
            if got != want:
                wrong = sum(g != w for g, w in zip(got, want, strict=False))
                raise BenchFailed(
                    f"{self.tool} predicted {what} differently from model.predict: "
                    f"{len(got)} answers for {len(want)} rows, {wrong} of them different."
                )


JSON = {"Content-Type": "application/json"}


def kserve_bodies(rows: Rows) -> tuple[bytes, bytes]:
    """Assay's and the floor's bodies: KServe V1 rows as arrays in column order."""
    return (
        json.dumps({"instances": rows.one}).encode(),
        json.dumps({"instances": rows.batch}).encode(),
    )


def mlflow_bodies(rows: Rows) -> tuple[bytes, bytes]:
    """MLflow's bodies: the same rows as a pandas `split` frame."""

    def frame(data: list[list[float]]) -> bytes:
        return json.dumps({"dataframe_split": {"columns": rows.columns, "data": data}}).encode()

    return frame(rows.one), frame(rows.batch)


# ---- the model and the floor in this process ------------------------------------------------


def train(work: Path) -> tuple[Any, Path, Rows]:
    """Fit the model, save it with skops, and pick the rows every server is asked."""
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(data.data, data.target)
    path = work / f"{MODEL}.skops"
    sio.dump(model, path)
    values = data.data.to_numpy(dtype=float)
    batch = [values[i % len(values)] for i in range(BATCH_ROWS)]
    with no_feature_name_warning():
        one_expected = model.predict(values[:1]).tolist()
        batch_expected = model.predict(batch).tolist()
    rows = Rows(
        columns=[str(c) for c in data.data.columns],
        one=[values[0].tolist()],
        batch=[row.tolist() for row in batch],
        one_expected=one_expected,
        batch_expected=batch_expected,
    )
    return model, path, rows


def predict_us(model: Any, rows: list[list[float]]) -> float:
    """The median time of `model.predict` on `rows` as a numpy array, in µs."""
    import numpy as np

    x = np.asarray(rows, dtype=float)
    calls = max(20, PREDICT_CALLS // len(rows))
    times = []
    with no_feature_name_warning():
        for _ in range(calls):
            start = time.perf_counter()
            model.predict(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


# ---- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def floor_server(work: Path, model_file: Path, rows: Rows) -> Iterator[Endpoint]:
    app = work / "floor_app.py"
    app.write_text(FLOOR_APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, str(app), str(model_file), str(port)]
    with harness.server_process("the floor", args, f"{url}/ready", work / "floor.log"):
        yield Endpoint("the floor", f"{url}/predict", *kserve_bodies(rows))


@contextlib.contextmanager
def mlflow_server(work: Path, export: Path, rows: Rows, workers: int) -> Iterator[Endpoint]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        str(BIN / "mlflow"),
        *("models", "serve", "-m", str(export), "--env-manager", "local"),
        *("-h", "127.0.0.1", "-p", str(port), "--workers", str(workers)),
    ]
    with harness.server_process("MLflow", args, f"{url}/ping", work / f"mlflow-w{workers}.log"):
        yield Endpoint("MLflow", f"{url}/invocations", *mlflow_bodies(rows))


class AssaySide:
    """A fresh workspace with the model registered as cancer@1, and its MLflow export."""

    def __init__(self, root: Path, model_file: Path) -> None:
        from assay.config import Settings
        from assay.workspace import Workspace, init_workspace

        root.mkdir()
        settings, _ = init_workspace(Settings.at(root, {"ASSAY_AUTHOR": "bench"}))
        self.ws = Workspace(settings)
        mv = self.ws.registry.register_file(model_file, MODEL)
        self.ref = f"{mv.name}@{mv.version}"
        self.export = root / "export"
        self.ws.registry.export(self.ref, self.export)

    @contextlib.contextmanager
    def server(self, rows: Rows, workers: int) -> Iterator[Endpoint]:
        from assay.errors import AssayError

        name = f"{MODEL}-w{workers}"
        try:
            svc = self.ws.services.deploy(name, self.ref, workers=workers)
        except AssayError as exc:
            raise BenchFailed(f"Assay could not deploy {self.ref}: {exc}") from exc
        try:
            yield Endpoint("Assay", f"{svc.url}/v1/models/{MODEL}:predict", *kserve_bodies(rows))
        finally:
            self.ws.services.stop(name)

    def close(self) -> None:
        self.ws.close()


@contextlib.contextmanager
def ray_server(work: Path, model_file: Path, rows: Rows) -> Iterator[Endpoint]:
    """The model as a service on a Ray head started here: `RAY_REPLICAS` replicas."""
    import subprocess

    from assay.config import Settings
    from assay.errors import AssayError
    from assay.workspace import Workspace, init_workspace

    root = work / "ray"
    root.mkdir()
    temp = Path(tempfile.mkdtemp(prefix="assay-ray-"))  # short: Ray's socket paths
    port = free_port()
    # No token file in the user's home: a throwaway head on loopback.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    ws = None
    try:
        ws_env = {
            "ASSAY_AUTHOR": "bench",
            "ASSAY_RAY_ADDRESS": f"127.0.0.1:{port}",
            "ASSAY_RAY_SERVE_PORT": str(free_port()),
            "ASSAY_RAY_SERVE_HOST": "127.0.0.1",
        }
        settings, _ = init_workspace(Settings.at(root, ws_env))
        ws = Workspace(settings, environ=ws_env)
        mv = ws.registry.register_file(model_file, MODEL)
        deadline = time.monotonic() + 90
        while True:  # the head comes up in the background
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    raise BenchFailed("the Ray head did not start") from None
                time.sleep(0.5)
        try:
            svc = ws.services.deploy(
                MODEL, mv.ref, on="ray", replicas=RAY_REPLICAS, cpus=0.5, log_sample=1.0
            )
        except AssayError as exc:
            raise BenchFailed(f"Assay could not deploy {mv.ref} on Ray: {exc}") from exc
        yield Endpoint("Assay on Ray", f"{svc.url}/v1/models/{MODEL}:predict", *kserve_bodies(rows))
        ws.services.stop(MODEL)
    finally:
        if ws is not None:
            ws.close()
        import ray

        ray.shutdown()
        harness.stop_group(head)
        shutil.rmtree(temp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---- load -------------------------------------------------------------------------------------


def wrk(
    endpoint: Endpoint, work: Path, *, connections: int, threads: int, seconds: int
) -> WrkResult:
    """Load `endpoint` with its one-row request for `seconds`."""
    body = work / "wrk-body.json"
    body.write_bytes(endpoint.one_body)
    return harness_wrk(
        endpoint.url,
        body,
        work,
        name=endpoint.tool,
        connections=connections,
        threads=threads,
        seconds=seconds,
    )


def batch_p50_ms(endpoint: Endpoint, requests: int) -> float:
    """The median of `requests` sequential 1,000-row requests on one keep-alive client."""
    import httpx

    times = []
    with httpx.Client(timeout=HTTP_TIMEOUT_S, headers=JSON) as client:
        for i in range(BATCH_WARMUP + requests):
            start = time.perf_counter()
            response = client.post(endpoint.url, content=endpoint.batch_body)
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                raise BenchFailed(
                    f"{endpoint.tool} answered {response.status_code} to {BATCH_ROWS:,} rows: "
                    f"{response.text[:2000]}"
                )
            if i >= BATCH_WARMUP:
                times.append(elapsed)
    return statistics.median(times) * 1000


def measure(
    endpoint: Endpoint, rows: Rows, work: Path, n: Durations, *, full: bool
) -> dict[str, float]:
    """Check the answers, warm up, then the requests/s at 32 connections; with `full`,
    the one-connection latency and the 1,000-row median too."""
    endpoint.check(rows)
    fig: dict[str, float] = {}
    wrk(endpoint, work, connections=CONNECTIONS, threads=WRK_THREADS, seconds=WARMUP_S)
    if full:
        one = wrk(endpoint, work, connections=1, threads=1, seconds=n.latency_s)
        fig.update(p50_ms_1row=one.p50_ms, p99_ms_1row=one.p99_ms, rps_1row_c1=one.rps)
    many = wrk(endpoint, work, connections=CONNECTIONS, threads=WRK_THREADS, seconds=n.saturation_s)
    fig["rps_1row_c32"] = many.rps
    if full:
        fig["p50_ms_1000rows"] = batch_p50_ms(endpoint, n.batch_requests)
    return fig


Server = Callable[[int], contextlib.AbstractContextManager[Endpoint]]


def measure_tool(
    tool: str, server: Server, rows: Rows, work: Path, n: Durations
) -> dict[str, float]:
    """Every case with 1 worker, then requests/s with each other worker count; the
    `rps_1row_c32` figure is the best, `rps_1row_c32_w{N}` each."""
    fig: dict[str, float] = {}
    for workers in WORKER_COUNTS:
        log.print(f"{tool}, {workers} worker{'s' if workers > 1 else ''} …")
        with server(workers) as endpoint:
            got = measure(endpoint, rows, work, n, full=workers == 1)
        fig[f"rps_1row_c32_w{workers}"] = got.pop("rps_1row_c32")
        fig.update(got)
    fig["rps_1row_c32"] = max(fig[f"rps_1row_c32_w{w}"] for w in WORKER_COUNTS)
    return fig


def best_workers(fig: dict[str, float], prefix: str) -> int:
    return max(WORKER_COUNTS, key=lambda w: fig[f"{prefix}rps_1row_c32_w{w}"])


# ---- the benchmark ----------------------------------------------------------------------------


def bench(work: Path, scale: float) -> dict[str, float]:
    n = Durations.at(scale)
    os.environ["ASSAY_AUTHOR"] = "bench"
    os.environ.pop("ASSAY_DB_URL", None)
    os.environ.pop("ASSAY_STORE_URL", None)
    fig: dict[str, float] = {"load_before": os.getloadavg()[0]}  # others' work on this machine

    log.print("Training the model; model.predict in this process …")
    model, model_file, rows = train(work)
    fig["predict_us_1row"] = predict_us(model, rows.one)
    fig["predict_us_1000rows"] = predict_us(model, rows.batch)

    log.print("The floor: a bare Starlette endpoint …")
    with floor_server(work, model_file, rows) as endpoint:
        floor = measure(endpoint, rows, work, n, full=True)
    fig.update({f"floor_{k}": v for k, v in floor.items()})

    log.print("Registering the model in a fresh workspace and exporting it for MLflow …")
    assay = AssaySide(work / "assay", model_file)
    try:
        fig.update(measure_tool("Assay", partial(assay.server, rows), rows, work, n))
    finally:
        assay.close()

    mlflow = partial(mlflow_server, work, assay.export, rows)
    theirs = measure_tool("MLflow", mlflow, rows, work, n)
    fig.update({f"mlflow_{k}": v for k, v in theirs.items()})

    log.print(f"Assay on a Ray head here, {RAY_REPLICAS} replicas …")
    with ray_server(work, model_file, rows) as endpoint:
        on_ray = measure(endpoint, rows, work, n, full=True)
    fig["ray_rps_1row"] = on_ray["rps_1row_c32"]
    fig["ray_p50_ms"] = on_ray["p50_ms_1row"]
    fig["ray_p99_ms"] = on_ray["p99_ms_1row"]
    return fig


def per_request(rps: float) -> float:
    """Seconds per request at a rate: what `speedup` compares for requests/s."""
    return 1 / rps if rps > 0 else float("inf")


def report(fig: dict[str, float], scale: float) -> None:
    n = Durations.at(scale)
    speedups = {
        "speedup_rps_1row": speedup(
            per_request(fig["mlflow_rps_1row_c32"]), per_request(fig["rps_1row_c32"])
        ),
        "speedup_1000rows": speedup(fig["mlflow_p50_ms_1000rows"], fig["p50_ms_1000rows"]),
        "speedup_p50_1row": speedup(fig["mlflow_p50_ms_1row"], fig["p50_ms_1row"]),
        "speedup_rps_1row_c1": speedup(
            per_request(fig["mlflow_rps_1row_c1"]), per_request(fig["rps_1row_c1"])
        ),
        # Assay on Ray against MLflow's best, and against the local service's best.
        "speedup_ray_vs_mlflow": speedup(
            per_request(fig["mlflow_rps_1row_c32"]), per_request(fig["ray_rps_1row"])
        ),
        "ray_vs_local": speedup(per_request(fig["rps_1row_c32"]), per_request(fig["ray_rps_1row"])),
    }
    over_floor = fig["p50_ms_1row"] / fig["floor_p50_ms_1row"]
    ours_w, theirs_w = best_workers(fig, ""), best_workers(fig, "mlflow_")

    table = Table(title=f"Serving one sklearn model (scale {scale:g})", title_justify="left")
    for name in ("case", "Assay", "MLflow", "floor", "speedup", "target"):
        table.add_column(name, justify="left" if name == "case" else "right")

    def target(ok: bool, text: str) -> str:
        return f"{text} [green]yes[/]" if ok else f"{text} [red]NO[/]"

    def row(case: str, key: str, fmt: str, ratio: str = "", goal: str = "") -> None:
        cells = [format(fig[f"{p}{key}"], fmt) if f"{p}{key}" in fig else "" for p in PREFIXES]
        table.add_row(case, *cells, ratio, goal)

    rps, batch = speedups["speedup_rps_1row"], speedups["speedup_1000rows"]
    row("1 row p50 ms (c1)", "p50_ms_1row", ".2f", f"{speedups['speedup_p50_1row']:.2f}x")
    row("1 row p99 ms (c1)", "p99_ms_1row", ".2f")
    row("1 row req/s (c1)", "rps_1row_c1", ",.0f", f"{speedups['speedup_rps_1row_c1']:.2f}x")
    row("1 row req/s (c32, 1w)", "rps_1row_c32_w1", ",.0f")
    row("1 row req/s (c32, 2w)", "rps_1row_c32_w2", ",.0f")
    row(
        "1 row req/s (c32, best)",
        "rps_1row_c32",
        ",.0f",
        f"{rps:.2f}x",
        target(rps >= TARGET_RPS, f">={TARGET_RPS:g}x"),
    )
    row(
        f"{BATCH_ROWS:,} rows p50 ms",
        "p50_ms_1000rows",
        ".1f",
        f"{batch:.2f}x",
        target(batch >= TARGET_1000ROWS, f">={TARGET_1000ROWS:g}x"),
    )
    table.add_row(
        "1 row p50 / floor's",
        f"{over_floor:.2f}",
        "",
        "1.00",
        "",
        target(over_floor <= TARGET_FLOOR, f"<={TARGET_FLOOR:g}"),
    )
    table.add_row(
        f"on Ray ({RAY_REPLICAS} replicas) req/s (c32)",
        f"{fig['ray_rps_1row']:,.0f}",
        "",
        "",
        f"{speedups['speedup_ray_vs_mlflow']:.2f}x",
        f"{speedups['ray_vs_local']:.2f}x of local",
    )
    table.add_row("on Ray 1 row p50 ms (c1)", f"{fig['ray_p50_ms']:.2f}")
    table.add_row("predict() µs, 1 row", "", "", f"{fig['predict_us_1row']:.0f}")
    table.add_row(f"predict() µs, {BATCH_ROWS:,} rows", "", "", f"{fig['predict_us_1000rows']:.0f}")
    out.print(table)
    out.print(
        f"Best at c32: Assay with {ours_w} worker(s), MLflow with {theirs_w}; the floor has "
        "1. predict(): the model in this process on a numpy array (floor column)."
    )
    out.print(
        f"Loopback, one server at a time, {os.cpu_count()} CPUs shared with the load "
        f"generator (1-minute load average {fig['load_before']:.1f} before the run). "
        f"wrk {wrk_version()} --latency: 1 connection/1 thread for {n.latency_s} s (c1; "
        f"p50 and p99 are wrk's), {CONNECTIONS} connections/{WRK_THREADS} threads for "
        f"{n.saturation_s} s (c32) per worker count, after a {WARMUP_S} s warm-up; "
        f"{BATCH_ROWS:,} rows: median of {n.batch_requests} sequential requests on one "
        "keep-alive httpx client, 1 worker."
    )
    out.print(
        "Assay: `services.deploy(..., workers=N)`, its defaults otherwise (uvicorn, uvloop, "
        f"httptools), KServe V1 rows as arrays. MLflow {version('mlflow')}: `mlflow models "
        "serve --env-manager local --workers N` on Assay's export, its defaults otherwise "
        "(uvicorn, access log on, timeout 60 s), `dataframe_split`. Floor: a bare Starlette "
        "`async def` endpoint in uvicorn (uvloop, httptools, no access log), 1 worker. "
        f"On Ray: `services.deploy(..., on='ray', replicas={RAY_REPLICAS}, cpus=0.5)` on a "
        "Ray head on this machine (2 CPUs): proxy -> ingress -> model replica."
    )
    figures: dict[str, float] = {k: round(fig[k], 4) for k in FIGURES}
    figures["rps_1row_c32_workers"] = ours_w
    figures["mlflow_rps_1row_c32_workers"] = theirs_w
    figures["p50_over_floor_1row"] = round(over_floor, 4)
    figures["scale"] = scale
    print(json.dumps({"bench": "serving", "figures": figures, "speedups": speedups}))


PREFIXES = ("", "mlflow_", "floor_")


def missing() -> str | None:
    if problem := wrk_missing():
        return problem
    if not (BIN / "mlflow").exists():
        return "MLflow is missing"
    if not (BIN / "ray").exists():
        return "Ray is missing (pip install 'assay[ray]')"
    return None


if __name__ == "__main__":
    sys.exit(harness.main("serving", bench, report, missing))
