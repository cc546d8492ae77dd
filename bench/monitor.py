"""Monitoring, side by side: what prediction logging costs a service, and how fast a drift
check is, against Evidently's `DataDriftPreset` on the same rows.

One scikit-learn model, a logistic regression on 20 float features, fitted on 100,000
training rows (a Parquet file committed as a data version) and registered in a fresh
Assay workspace; the monitor's config names that version as the reference.

- `logging_throughput_ratio`: one-row requests per second at 32 connections (`wrk`, 2
  threads) against the service deployed with prediction logging on (`--log-sample 1`,
  every request) divided by the same with it off (`--log-sample 0`); one worker each, one
  service at a time, alternating off/on for `ROUNDS` rounds, the best round of each.
  Target: at least 0.95.
- `drift_s_100k`: `MonitoringService.check` over the last 100,000 logged requests (one
  row each, 20 features, written by the service's own log writer as Parquet segments in
  the workspace's object store) against the 100,000 training rows, in a fresh workspace
  object (nothing cached): reading the log, the reference table, the model's predictions
  on a sample of it, KS / chi-square / PSI per feature and for the outputs, Holm.
  Target: under 1 s. `cli_s_100k` is `assay monitor NAME --last 100000 --json` as a
  user runs it (Python's start-up and imports included).
- `evidently_s_100k`: Evidently's `Report([DataDriftPreset()]).run(current, reference)`
  on the same 100,000 x 20 live and training rows, already in memory as DataFrames (its
  file reading is not counted; ours is). Evidently pins pandas below 3, so it runs in its
  own virtualenv (`.venv-evidently`, made by `make bench-deps`).
  `speedup_drift_vs_evidently` = evidently_s_100k / drift_s_100k.

Two features drift (f3 shifts by half a standard deviation; f7's spread grows by half);
both tools must flag exactly those two, or the benchmark fails.

    .venv/bin/python bench/monitor.py

`ASSAY_BENCH_SCALE=0.05` cuts the rows to 5,000 and the wrk runs to 2 s for a quick
trial. The last line on stdout is one JSON object with every figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness  # bench/harness.py: shared by every benchmark
import numpy as np
import pandas as pd
from harness import ASSAY, BenchFailed, log, out, speedup, timed_run, wrk_missing, wrk_version
from rich.table import Table

FEATURES = [f"f{i}" for i in range(20)]
DRIFTED = {"f3", "f7"}
ROWS = 100_000
CONNECTIONS = 32
WRK_THREADS = 2
SATURATION_S = 8
ROUNDS = 3
TARGET_RATIO = 0.95
TARGET_DRIFT_S = 1.0
EVIDENTLY = harness.BENCH_DIR.parent / ".venv-evidently" / "bin" / "python"
PEER: dict[str, str] = {}  # the peer's version, as it reported it

_EVIDENTLY_SCRIPT = """\
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

reference = pd.read_parquet(sys.argv[1])
current = pd.read_parquet(sys.argv[2])
started = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
seconds = time.perf_counter() - started
drifted = []
for metric in snapshot.dict()["metrics"]:
    config = metric.get("config") or {}
    column = config.get("column")
    value = metric.get("value")
    threshold = config.get("threshold")
    if column is not None and isinstance(value, (int, float)) and threshold is not None:
        p_value = "p_value" in str(config.get("method") or "")  # else a distance
        if (value < threshold) if p_value else (value >= threshold):
            drifted.append(column)
import evidently
found = {"seconds": seconds, "drifted": sorted(drifted), "version": evidently.__version__}
print(json.dumps(found))
"""


def _data(n: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    if drift:
        frame["f3"] += 0.5
        frame["f7"] *= 1.5
    frame["y"] = (frame["f0"] + frame["f1"] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return frame


def _workspace(work: Path, n: int) -> tuple[Any, pd.DataFrame]:
    """A workspace holding the training data and the model, and the live rows."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from assay.config import Settings
    from assay.workspace import Workspace, init_workspace

    settings, _ = init_workspace(Settings.at(work, {"ASSAY_AUTHOR": "bench"}))
    ws = Workspace(settings)
    train = _data(n, 0, drift=False)
    (work / "data").mkdir()
    train.to_parquet(work / "data" / "train.parquet", index=False)
    ws.data.commit("bench-data", work / "data")
    model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["y"])
    sio.dump(model, work / "model.skops")
    ws.registry.register_file(work / "model.skops", "bench")
    return ws, _data(n, 1, drift=True)


def _log_traffic(ws: Any, live: pd.DataFrame) -> None:
    """The live rows as the service's log writer records them: one request per row."""
    from dataclasses import replace

    from assay.registry.bundle import load_bundle
    from assay.serving.metrics import Metrics
    from assay.serving.predlog import LogConfig, PredictionLog, log_prefix
    from assay.serving.served import prepare

    mv = ws.registry.resolve("bench@1")
    folder = ws.settings.cache_dir / "bundle"
    bundle = replace(load_bundle(ws.registry.materialize(mv, folder)), name="bench")
    served = prepare(bundle, Metrics())
    writer = PredictionLog(
        LogConfig(ws.settings.store_url, log_prefix("services", "bench-api"), max_rows=50_000)
    )
    X = live[FEATURES].to_numpy(dtype=np.float64)
    out_all = served._predict(X)  # the model's own answers, as the service logs them
    names = tuple(served.schema.names)
    for i in range(len(X)):
        writer.record(f"r{i:07d}", "bench", 1, None, names, X[i : i + 1], out_all[i : i + 1])
        if i % 20_000 == 19_999:
            writer._take()  # as the writer thread would, between requests
    writer.close()


def _throughput(ws: Any, work: Path, seconds: int) -> dict[str, float]:
    """Requests/s at 32 connections with logging off and on, alternating; best of each."""
    body = work / "one-row.json"
    body.write_text(json.dumps({"instances": [[0.1] * len(FEATURES)]}))
    best = {"off": 0.0, "on": 0.0}
    for _ in range(ROUNDS):
        for mode, sample in (("off", 0.0), ("on", 1.0)):
            svc = ws.services.deploy(f"bench-{mode}", "bench@1", log_sample=sample, drain_s=0.1)
            try:
                url = f"{svc.url}/v1/models/bench:predict"
                harness.wrk(url, body, work, name=f"{mode}-warm", connections=CONNECTIONS,
                            threads=WRK_THREADS, seconds=1)  # fmt: skip
                result = harness.wrk(url, body, work, name=f"logging {mode}",
                                     connections=CONNECTIONS, threads=WRK_THREADS,
                                     seconds=seconds)  # fmt: skip
                best[mode] = max(best[mode], result.rps)
            finally:
                ws.services.stop(f"bench-{mode}", timeout_s=30)
    return best


def _service_row(ws: Any) -> None:
    """`bench-api`, the monitored service, as a stored definition (its traffic was logged
    above; no process is needed to read it)."""
    from assay.serving.repository import ServiceRepository

    with ws.db.session() as s:
        ServiceRepository(s).upsert(
            "bench-api", model="bench", version=1, host="127.0.0.1", port=1, workers=1,
            desired="stopped", pid=None, started_at=None, settings={}, last_error=None,
        )  # fmt: skip


def _ours(work: Path, n: int) -> tuple[float, set[str]]:
    from assay.config import Settings
    from assay.monitoring.entities import Window
    from assay.workspace import Workspace

    ws = Workspace(Settings.load(work, {"ASSAY_AUTHOR": "bench"}))  # nothing cached
    try:
        started = time.perf_counter()
        report = ws.monitoring.check("bench-api", window=Window(requests=n), record=False)
        seconds = time.perf_counter() - started
    finally:
        ws.close()
    if report["rows"] != n:
        raise BenchFailed(f"the check read {report['rows']} rows, not {n}")
    return seconds, {f["name"] for f in report["features"] if f["state"] == "drift"}


def _evidently(work: Path, reference: pd.DataFrame, live: pd.DataFrame) -> dict[str, Any]:
    ref, cur = work / "reference.parquet", work / "current.parquet"
    reference[FEATURES].to_parquet(ref, index=False)
    live[FEATURES].to_parquet(cur, index=False)
    script = work / "evidently_run.py"
    script.write_text(_EVIDENTLY_SCRIPT)
    proc = subprocess.run(
        [str(EVIDENTLY), str(script), str(ref), str(cur)],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise BenchFailed(f"Evidently failed:\n{proc.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def bench(work: Path, scale: float) -> dict[str, float]:
    n = max(2_000, int(ROWS * scale))
    seconds = max(2, round(SATURATION_S * scale))
    log.print(f"{n:,} rows x {len(FEATURES)} features; wrk {seconds} s a run")
    ws, live = _workspace(work, n)
    try:
        _log_traffic(ws, live)
        _service_row(ws)
        ws.monitoring.configure("bench-api", f"reference: bench-data@1\nwindow: {{last: {n}}}\n")
        rps = _throughput(ws, work, seconds)
        train = pd.read_parquet(work / "data" / "train.parquet")
    finally:
        ws.close()
    ours_s, ours_drifted = min((_ours(work, n) for _ in range(3)), key=lambda r: r[0])
    env = {**os.environ, "COLUMNS": "200"}
    cli_s, _ = timed_run(
        [ASSAY, "monitor", "bench-api", "--last", str(n), "--json", "--no-record"], work, env
    )
    theirs = _evidently(work, train, live)
    if ours_drifted != DRIFTED or set(theirs["drifted"]) != DRIFTED:
        raise BenchFailed(
            f"the tools disagree on what drifted (expected {sorted(DRIFTED)}): Assay "
            f"{sorted(ours_drifted)}, Evidently {theirs['drifted']}"
        )
    PEER["evidently"] = str(theirs["version"])
    return {
        "rows": float(n),
        "rps_logging_off": rps["off"],
        "rps_logging_on": rps["on"],
        "logging_throughput_ratio": rps["on"] / rps["off"] if rps["off"] else 0.0,
        "drift_s_100k": ours_s,
        "cli_s_100k": cli_s,
        "evidently_s_100k": float(theirs["seconds"]),
        "wrk_seconds": float(seconds),
    }


def report(fig: dict[str, float], scale: float) -> None:
    ratio, ours, theirs = (
        fig["logging_throughput_ratio"],
        fig["drift_s_100k"],
        fig["evidently_s_100k"],
    )
    table = Table("what", "Assay", "Evidently", "", "target", box=None, header_style="bold")
    table.add_row(
        "one-row requests/s at c32, logging off / on",
        f"{fig['rps_logging_off']:,.0f} / {fig['rps_logging_on']:,.0f}", "", "",
    )  # fmt: skip
    table.add_row(
        "logging throughput ratio", f"{ratio:.3f}", "", "",
        f"{'✓' if ratio >= TARGET_RATIO else '✗'} >= {TARGET_RATIO:g}",
    )  # fmt: skip
    table.add_row(
        f"drift check, {int(fig['rows']):,} rows x {len(FEATURES)} features (s)",
        f"{ours:.3f}", f"{theirs:.3f}", f"{speedup(theirs, ours):.1f}x",
        f"{'✓' if ours < TARGET_DRIFT_S else '✗'} < {TARGET_DRIFT_S:g} s",
    )  # fmt: skip
    table.add_row("`assay monitor` as a command (s)", f"{fig['cli_s_100k']:.2f}", "", "", "")
    out.print(table)
    out.print(
        f"Loopback, {os.cpu_count()} CPUs shared with wrk {wrk_version()} ({CONNECTIONS} "
        f"connections, {WRK_THREADS} threads, {int(fig['wrk_seconds'])} s, best of "
        f"{ROUNDS} alternating rounds, 1 worker). Evidently "
        f"{PEER.get('evidently', '?')} `DataDriftPreset` on in-memory "
        "DataFrames; Assay's check reads the log segments and the training table from the "
        "store. Both flag exactly f3 and f7."
    )
    figures = {k: round(v, 4) for k, v in fig.items()}
    figures["scale"] = scale
    speedups = {"speedup_drift_vs_evidently": speedup(theirs, ours)}
    print(json.dumps({"bench": "monitor", "figures": figures, "speedups": speedups}))


def missing() -> str | None:
    if problem := wrk_missing():
        return problem
    if not EVIDENTLY.exists():
        return "Evidently's virtualenv (.venv-evidently) is missing"
    return None


if __name__ == "__main__":
    sys.exit(harness.main("monitor", bench, report, missing))
