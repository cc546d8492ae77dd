"""What Assay's A/B router adds over calling one inference service directly.

Two scikit-learn models, `make_pipeline(StandardScaler(), LogisticRegression(C=...))`
with C=1 and C=0.1, fitted on the breast-cancer data bundled with scikit-learn (569
rows, 30 float columns), saved with skops and registered in a fresh Assay workspace as
cancer@1 and cancer@2. On loopback, in one run:

- direct: `Workspace.services.deploy("direct", "cancer@1")`, one worker, KServe V1
  `POST /v1/models/cancer:predict` with `{"instances": [[30 floats]]}`;
- one A/B test per strategy, `Workspace.abtests.create(name, ["A=cancer@1",
  "B=cancer@2"], strategy)`, one worker, `POST /abtests/NAME/predict` with the same
  body: `weighted:50,50`, `sticky` (an `X-Assay-Key: user-N` header, N counting up per
  request in each wrk thread), `round-robin`, `shadow:A` (A answers, B gets a copy in
  the background), `epsilon-greedy:0.1`, `ucb` and `thompson`. No feedback is sent, so
  the three bandits route as they do before their first rewards (round-robin).

The router serves both models in its own process (no extra network hop), so what it
adds is its own work per request: choosing a variant, logging the answer, the extra
fields. Each test is created, checked, measured and stopped before the next starts. The
direct service is measured before the first test and after the last (the mean is the
baseline; the two show drift). For each target, after a one-second warm-up:

- `p50_ms_T`, `p99_ms_T`, `rps_c1_T`: `wrk --latency`, 1 connection, 1 thread
  (wrk's percentiles, which correct for coordinated omission: a request slower than
  twice the mean interval also counts as those that would have been sent meanwhile, so
  a single pause of the server's event loop weighs in p99 as many requests);
- `rps_c32_T`: requests/s with 32 connections and 2 wrk threads.

From them, per strategy S: `added_p50_ms_S = p50_ms_S - p50_ms_direct`, `added_p99_ms_S`
likewise, and `throughput_vs_direct_S = rps_c32_S / rps_c32_direct`. The headline
`added_p50_ms`, `added_p99_ms` and `throughput_vs_direct` are the worst over the
strategies (the largest additions, the lowest ratio). Targets: < 0.5 ms, < 2 ms and
>= 0.9, for every strategy, shadow included.

Before the load, every target must answer a few requests exactly as the model does
here; every A/B answer must be 200 and carry `variant`, `model`, `version`,
`request_id` and `provenance`, each variant's model and version must be its own, and
the strategy's split must show (both variants for the splitting strategies, only A for
shadow, the same variant for a repeated sticky key). wrk must see no socket error and
no non-2xx answer. After the load, the test's event log says how many requests each
variant answered (and, for shadow, how many copies B ran).

Run it (wrk comes from `make bench-deps`):

    .venv/bin/python bench/abtest.py

`ASSAY_BENCH_SCALE=0.2` shortens every load for a quick trial. The last line on stdout
is one JSON object with every figure.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness  # bench/harness.py: shared by every benchmark
from harness import BenchFailed, Figures, log, no_feature_name_warning, out
from rich import box
from rich.table import Table

MODEL = "cancer"
LABELS = ("A", "B")
VERSIONS = {"A": 1, "B": 2}  # A=cancer@1 (C=1), B=cancer@2 (C=0.1)
C_VALUES = (1.0, 0.1)
# Each strategy, and the suffix of its figures.
STRATEGIES: dict[str, str] = {
    "weighted:50,50": "weighted",
    "sticky": "sticky",
    "round-robin": "round_robin",
    "shadow:A": "shadow",
    "epsilon-greedy:0.1": "epsilon_greedy",
    "ucb": "ucb",
    "thompson": "thompson",
}
LATENCY_S = 6  # wrk, 1 connection
SATURATION_S = 6  # wrk, 32 connections
WARMUP_S = 1
PAIRS = 3  # alternations of direct and router runs for the paired rate
PAIR_S = 3
CONNECTIONS = 32
WRK_THREADS = 2
CHECK_ROWS = 12  # requests per target before the load, each a different row
HTTP_TIMEOUT_S = 30.0

TARGET_ADDED_P50_MS = 0.5  # added_p50_ms below
TARGET_ADDED_P99_MS = 2.0  # added_p99_ms below
TARGET_THROUGHPUT = 0.9  # throughput_vs_direct at least

# Published figures for the extra hop other platforms put on the A/B path (cited in the
# caption; none of these are measured here):
# - Istio 1.9, "Performance and Scalability": "The Envoy proxy adds 2.65 ms to the 90th
#   percentile latency" (per proxy, 1000-service load-test mesh), and KServe's canary
#   and InferenceGraph traffic crosses Istio/Knative proxies.
#   https://istio.io/v1.9/docs/ops/deployment/performance-and-scalability
# - OpenShift Serverless 1.34 (Knative Serving, which KServe's serverless mode and its
#   canary split run on): "Each additional network hop adds 0.5 ms to 1 ms latency to
#   a request."
#   https://docs.openshift.com/serverless/1.34/knative-serving/scalability-and-performance-serving.html
# - Seldon Core: its docs describe the service orchestrator (executor) as an extra
#   component on the request path that a single model may bypass "to minimize the
#   latency", but we found no published figure for what it adds.
#   https://docs.seldon.io/projects/seldon-core/en/latest/graph/svcorch.html
ISTIO_P90_MS = 2.65
KNATIVE_HOP_MS = (0.5, 1.0)


# Row labels short enough for an 80-column table.
SHORT = {"weighted:50,50": "weighted", "epsilon-greedy:0.1": "eps-greedy"}

JSON = {"Content-Type": "application/json"}
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Durations:
    latency_s: int
    saturation_s: int
    pair_s: int

    @classmethod
    def at(cls, scale: float) -> Durations:
        return cls(
            max(1, round(LATENCY_S * scale)),
            max(1, round(SATURATION_S * scale)),
            max(1, round(PAIR_S * scale)),
        )


@dataclass(frozen=True)
class Models:
    """The two skops files, the rows asked, and each variant's expected answer per row."""

    files: tuple[Path, Path]
    rows: list[list[float]]
    expected: dict[str, list[int]]  # label -> the prediction for each row


@dataclass(frozen=True)
class Target:
    """Where to send the one-row request, and what to call it."""

    name: str
    url: str
    keyed: bool = False  # send X-Assay-Key (sticky)


@dataclass(frozen=True)
class Load:
    p50_ms: float
    p99_ms: float
    rps_c1: float
    rps_c32: float


# ---- the models -------------------------------------------------------------------------------


def train(work: Path) -> Models:
    """Fit both models, save them with skops, and note what each predicts for the rows."""
    import numpy as np
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    values = data.data.to_numpy(dtype=float)
    # Spread over the data set, so that the rows checked include both classes.
    picks = np.linspace(0, len(values) - 1, CHECK_ROWS).astype(int)
    rows = values[picks]
    files: list[Path] = []
    expected: dict[str, list[int]] = {}
    for label, c in zip(LABELS, C_VALUES, strict=True):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        model.fit(data.data, data.target)
        path = work / f"{MODEL}-{label}.skops"
        sio.dump(model, path)
        files.append(path)
        with no_feature_name_warning():
            expected[label] = [int(p) for p in model.predict(rows)]
    return Models((files[0], files[1]), rows.tolist(), expected)


def body(row: list[float]) -> bytes:
    return json.dumps({"instances": [row]}).encode()


# ---- checks -----------------------------------------------------------------------------------


def check_direct(url: str, models: Models) -> None:
    """Raises BenchFailed unless the service answers every row as cancer@1 does here."""
    import httpx

    with httpx.Client(timeout=HTTP_TIMEOUT_S, headers=JSON) as client:
        for i, row in enumerate(models.rows):
            response = client.post(url, content=body(row))
            if response.status_code != 200:
                raise BenchFailed(
                    f"the direct service answered {response.status_code}: {response.text[:2000]}"
                )
            got = response.json().get("predictions")
            if got != [models.expected["A"][i]]:
                raise BenchFailed(
                    f"the direct service predicted {got} for row {i}, "
                    f"model.predict {models.expected['A'][i]}."
                )


def check_abtest(url: str, spec: str, models: Models) -> Counter[str]:
    """POST every row (twice, under one key, for sticky); raises BenchFailed unless every
    answer is 200 with the A/B fields, each variant answers as its model does here, and
    the split is the strategy's. Returns the variants seen."""
    import httpx

    keyed = spec.startswith("sticky")
    seen: Counter[str] = Counter()
    sticky: dict[str, str] = {}
    with httpx.Client(timeout=HTTP_TIMEOUT_S, headers=JSON) as client:
        for i, row in enumerate(models.rows):
            for _ in range(2 if keyed else 1):
                key = f"user-check-{i}"
                headers = {"X-Assay-Key": key} if keyed else {}
                response = client.post(url, content=body(row), headers=headers)
                doc = answer_fields(spec, response)
                variant = str(doc["variant"])
                want = models.expected[variant][i]
                if doc["predictions"] != [want]:
                    raise BenchFailed(
                        f"{spec}: variant {variant} predicted {doc['predictions']} for row "
                        f"{i}, its model {want}."
                    )
                if keyed and sticky.setdefault(key, variant) != variant:
                    raise BenchFailed(f"{spec}: key {key} reached {sticky[key]}, then {variant}.")
                seen[variant] += 1
    if spec.startswith("shadow"):
        if set(seen) != {"A"}:
            raise BenchFailed(f"{spec}: answers came from {dict(seen)}, not only from A.")
    elif set(seen) != set(LABELS):
        raise BenchFailed(f"{spec}: {len(models.rows)} rows all went to {dict(seen)}.")
    return seen


def answer_fields(spec: str, response: Any) -> dict[str, Any]:
    """The answer's JSON; raises BenchFailed unless it is a 200 with every A/B field."""
    if response.status_code != 200:
        raise BenchFailed(
            f"{spec}: the router answered {response.status_code}: {response.text[:2000]}"
        )
    doc: dict[str, Any] = response.json()
    missing = [
        k
        for k in ("predictions", "variant", "model", "version", "request_id", "provenance")
        if k not in doc
    ]
    if missing:
        raise BenchFailed(f"{spec}: the answer lacks {', '.join(missing)}: {doc}")
    variant = doc["variant"]
    if variant not in VERSIONS:
        raise BenchFailed(f"{spec}: unknown variant {variant!r} in {doc}")
    if (doc["model"], doc["version"]) != (MODEL, VERSIONS[variant]):
        raise BenchFailed(
            f"{spec}: variant {variant} answered as {doc['model']}@{doc['version']}, not "
            f"{MODEL}@{VERSIONS[variant]}."
        )
    if not REQUEST_ID.match(str(doc["request_id"])):
        raise BenchFailed(f"{spec}: request_id {doc['request_id']!r} is not a uuid4 hex.")
    if not isinstance(doc["provenance"], dict):
        raise BenchFailed(f"{spec}: provenance is {doc['provenance']!r}, not an object.")
    if response.headers.get("x-assay-variant") != variant:
        raise BenchFailed(
            f"{spec}: X-Assay-Variant {response.headers.get('x-assay-variant')!r} "
            f"but the body says {variant!r}."
        )
    return doc


def event_counts(folder: Path) -> tuple[Counter[str], Counter[str]]:
    """From the test's event log: answers per variant, and shadow copies run per variant."""
    answered: Counter[str] = Counter()
    shadowed: Counter[str] = Counter()
    for path in folder.glob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("t") == "a" and event.get("ok"):
                answered[str(event.get("v"))] += 1
            elif event.get("t") == "s" and event.get("ok"):
                shadowed[str(event.get("v"))] += 1
    return answered, shadowed


# ---- load -------------------------------------------------------------------------------------


def wrk(
    target: Target, work: Path, *, connections: int, threads: int, seconds: int
) -> tuple[float, float, float]:
    """Load `target` with the one-row request for `seconds`: (p50 ms, p99 ms, req/s)."""
    got = harness.wrk(
        target.url,
        work / "wrk-body.json",
        work,
        name=target.name,
        connections=connections,
        threads=threads,
        seconds=seconds,
        keyed=target.keyed,
    )
    return got.p50_ms, got.p99_ms, got.rps


def load(target: Target, work: Path, n: Durations) -> Load:
    """Warm up, then 1 connection for the latency, then 32 for the rate."""
    wrk(target, work, connections=CONNECTIONS, threads=WRK_THREADS, seconds=WARMUP_S)
    p50, p99, rps_c1 = wrk(target, work, connections=1, threads=1, seconds=n.latency_s)
    _, _, rps_c32 = wrk(
        target, work, connections=CONNECTIONS, threads=WRK_THREADS, seconds=n.saturation_s
    )
    return Load(p50, p99, rps_c1, rps_c32)


def record(fig: Figures, suffix: str, got: Load) -> None:
    fig[f"p50_ms_{suffix}"] = got.p50_ms
    fig[f"p99_ms_{suffix}"] = got.p99_ms
    fig[f"rps_c1_{suffix}"] = got.rps_c1
    fig[f"rps_c32_{suffix}"] = got.rps_c32


# ---- the benchmark ----------------------------------------------------------------------------


def bench(work: Path, scale: float) -> Figures:
    from assay.config import Settings
    from assay.errors import AssayError
    from assay.workspace import Workspace, init_workspace

    n = Durations.at(scale)
    os.environ["ASSAY_AUTHOR"] = "bench"
    os.environ.pop("ASSAY_DB_URL", None)
    os.environ.pop("ASSAY_STORE_URL", None)
    fig: Figures = {"load_before": os.getloadavg()[0]}  # others' work on this machine

    log.print("Training two models and registering them as cancer@1 and cancer@2 …")
    models = train(work)
    (work / "wrk-body.json").write_bytes(body(models.rows[0]))
    root = work / "assay"
    root.mkdir()
    settings, _ = init_workspace(Settings.at(root, {"ASSAY_AUTHOR": "bench"}))
    ws = Workspace(settings)
    try:
        for path in models.files:
            ws.registry.register_file(path, MODEL)
        try:
            svc = ws.services.deploy("direct", f"{MODEL}@1", workers=1)
        except AssayError as exc:
            raise BenchFailed(f"Assay could not deploy {MODEL}@1: {exc}") from exc
        try:
            direct = Target("direct", f"{svc.url}/v1/models/{MODEL}:predict")
            check_direct(direct.url, models)
            log.print("direct, before the A/B tests …")
            record(fig, "direct_before", load(direct, work, n))
            for i, (spec, suffix) in enumerate(STRATEGIES.items()):
                log.print(f"A/B test, {spec} …")
                fig.update(
                    measure_abtest(
                        ws,
                        f"ab{i}-{suffix.replace('_', '-')}",
                        spec,
                        suffix,
                        models,
                        work,
                        n,
                        direct,
                    )
                )
            log.print("direct, after the A/B tests …")
            record(fig, "direct_after", load(direct, work, n))
        finally:
            ws.services.stop("direct")
    finally:
        ws.close()
    for key in ("p50_ms", "p99_ms", "rps_c1", "rps_c32"):
        fig[f"{key}_direct"] = statistics.mean(
            (fig[f"{key}_direct_before"], fig[f"{key}_direct_after"])
        )
    return fig


def measure_abtest(
    ws: Any,
    name: str,
    spec: str,
    suffix: str,
    models: Models,
    work: Path,
    n: Durations,
    direct: Target,
) -> Figures:
    """Create the test, check it, load it, count its events, stop it."""
    import httpx

    from assay.errors import AssayError

    try:
        test = ws.abtests.create(name, [f"A={MODEL}@1", f"B={MODEL}@2"], spec, workers=1)
    except AssayError as exc:
        raise BenchFailed(f"Assay could not start A/B test {spec}: {exc}") from exc
    fig: Figures = {}
    try:
        check_abtest(f"{test.url}/predict", spec, models)
        target = Target(spec, f"{test.url}/predict", keyed=spec.startswith("sticky"))
        record(fig, suffix, load(target, work, n))
        # The rate is paired: the direct service and the router alternate, PAIRS times
        # each, so the ratio compares runs seconds apart instead of minutes apart (on two
        # shared cores the direct rate alone drifts by 5-15% over a run).
        ab_rates, direct_rates = [], []
        for _ in range(PAIRS):
            direct_rates.append(
                wrk(direct, work, connections=CONNECTIONS, threads=WRK_THREADS, seconds=n.pair_s)[2]
            )
            ab_rates.append(
                wrk(target, work, connections=CONNECTIONS, threads=WRK_THREADS, seconds=n.pair_s)[2]
            )
        fig[f"rps_c32_paired_{suffix}"] = statistics.mean(ab_rates)
        fig[f"rps_c32_paired_direct_{suffix}"] = statistics.mean(direct_rates)
        if spec.startswith("shadow"):
            time.sleep(0.2)  # let the last copies finish
            described = httpx.get(test.url, timeout=HTTP_TIMEOUT_S).json()
            fig[f"shadow_dropped_{suffix}"] = float(described["shadow_dropped"])
    finally:
        ws.abtests.stop(name)
    answered, shadowed = event_counts(ws.abtests.dir / name / "events")
    total = sum(answered.values())
    fig[f"answered_{suffix}"] = float(total)
    fig[f"share_b_{suffix}"] = answered["B"] / total if total else 0.0
    if spec.startswith("shadow"):
        fig[f"shadow_run_{suffix}"] = float(shadowed["B"])
    return fig


def report(fig: Figures, scale: float) -> None:
    n = Durations.at(scale)
    per: dict[str, dict[str, float]] = {}
    for spec, s in STRATEGIES.items():
        per[spec] = {
            "added_p50_ms": fig[f"p50_ms_{s}"] - fig["p50_ms_direct"],
            "added_p99_ms": fig[f"p99_ms_{s}"] - fig["p99_ms_direct"],
            "throughput_vs_direct": fig[f"rps_c32_paired_{s}"] / fig[f"rps_c32_paired_direct_{s}"],
        }
    worst_p50 = max(per, key=lambda k: per[k]["added_p50_ms"])
    worst_p99 = max(per, key=lambda k: per[k]["added_p99_ms"])
    worst_rps = min(per, key=lambda k: per[k]["throughput_vs_direct"])
    headline = {
        "added_p50_ms": per[worst_p50]["added_p50_ms"],
        "added_p99_ms": per[worst_p99]["added_p99_ms"],
        "throughput_vs_direct": per[worst_rps]["throughput_vs_direct"],
    }

    def ok(value: float, key: str) -> bool:
        if key == "throughput_vs_direct":
            return value >= TARGET_THROUGHPUT
        return value < (TARGET_ADDED_P50_MS if key == "added_p50_ms" else TARGET_ADDED_P99_MS)

    def mark(value: float, key: str, fmt: str) -> str:
        text = format(value, fmt)
        return text if ok(value, key) else f"[red]{text}[/]"

    table = Table(
        title=f"A/B router against the service alone, one row (scale {scale:g})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for col in ("target", "p50 ms", "p99 ms", "rps c1", "rps c32", "+p50 ms", "+p99 ms", "÷direct"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for label, s in (
        ("direct before", "direct_before"),
        ("direct after", "direct_after"),
        ("direct mean", "direct"),
    ):
        table.add_row(
            label,
            f"{fig[f'p50_ms_{s}']:.3f}",
            f"{fig[f'p99_ms_{s}']:.3f}",
            f"{fig[f'rps_c1_{s}']:,.0f}",
            f"{fig[f'rps_c32_{s}']:,.0f}",
            *([""] * 3),
            end_section=s == "direct",
        )
    for spec, s in STRATEGIES.items():
        p = per[spec]
        table.add_row(
            SHORT.get(spec, spec),
            f"{fig[f'p50_ms_{s}']:.3f}",
            f"{fig[f'p99_ms_{s}']:.3f}",
            f"{fig[f'rps_c1_{s}']:,.0f}",
            f"{fig[f'rps_c32_{s}']:,.0f}",
            mark(p["added_p50_ms"], "added_p50_ms", "+.3f"),
            mark(p["added_p99_ms"], "added_p99_ms", "+.3f"),
            mark(p["throughput_vs_direct"], "throughput_vs_direct", ".2f"),
            end_section=spec == list(STRATEGIES)[-1],
        )

    table.add_row(
        "worst",
        *([""] * 4),
        *(
            mark(headline[k], k, f)
            for k, f in (
                ("added_p50_ms", "+.3f"),
                ("added_p99_ms", "+.3f"),
                ("throughput_vs_direct", ".2f"),
            )
        ),
    )
    table.add_row(
        "target",
        *([""] * 4),
        f"<{TARGET_ADDED_P50_MS:g}",
        f"<{TARGET_ADDED_P99_MS:g}",
        f">={TARGET_THROUGHPUT:g}",
    )
    table.add_row(
        "met",
        *([""] * 4),
        *("[green]yes[/]" if ok(headline[k], k) else "[red]NO[/]" for k in headline),
    )
    out.print(table)
    drift = fig["p50_ms_direct_after"] - fig["p50_ms_direct_before"]
    rps_drift = fig["rps_c32_direct_after"] / fig["rps_c32_direct_before"] - 1
    worst = {worst_p50, worst_p99, worst_rps}
    splits = []
    for spec, s in STRATEGIES.items():
        if spec.startswith("shadow"):
            copies = fig[f"shadow_run_{s}"] / max(fig[f"answered_{s}"], 1)
            splits.append(
                f"{spec} A 100% + B copies for {copies:.0%} "
                f"({fig[f'shadow_dropped_{s}']:,.0f} dropped)"
            )
        else:
            splits.append(f"{spec} B {fig[f'share_b_{s}']:.0%}")
    out.print(
        f"+p50/+p99: the strategy's wrk percentile minus the direct mean's; ÷direct: its "
        f"req/s at c{CONNECTIONS} over the direct service's, paired: {PAIRS} alternating "
        f"runs of each, seconds apart (throughput_vs_direct). The "
        f"headline row is the worst strategy for each figure (here {', '.join(sorted(worst))}"
        "); per strategy the figures are `added_p50_ms_<strategy>` and the like. Direct "
        f"drifted {drift:+.3f} ms at p50 and {rps_drift:+.1%} in req/s (c{CONNECTIONS}) from "
        "before to after. Traffic each test served, from its event log (wrk and checks): "
        f"{'; '.join(splits)}."
    )
    out.print(
        f"Loopback, {os.cpu_count()} CPUs shared by wrk, the direct service and the router "
        f"(1-minute load average {fig['load_before']:.1f} before the run). The service and "
        "every router run 1 worker (uvicorn, uvloop, httptools); one is loaded at a time. "
        f"wrk --latency: 1 connection/1 thread for {n.latency_s} s (c1), {CONNECTIONS} "
        f"connections/{WRK_THREADS} threads for {n.saturation_s} s (c{CONNECTIONS}), after "
        f"a {WARMUP_S} s warm-up; one Lua `request()` builds every request, for every "
        "target; sticky's carries `X-Assay-Key: user-N`, N counting up. wrk's percentiles "
        "correct for coordinated omission: a request slower than twice the mean interval "
        "also counts as the requests that would have been sent meanwhile, so one 100 ms "
        "pause at c1 weighs as ~200 samples, over 1% of a 6 s run. A=cancer@1 (C=1), "
        "B=cancer@2 (C=0.1): the same pipeline, so either costs the same. No feedback is "
        "sent: epsilon-greedy, ucb and thompson route round-robin, as before their first "
        "rewards."
    )
    out.print(
        "Elsewhere, the A/B split is a separate hop: Seldon Core v1 routes through its "
        "service orchestrator (executor) and ingress; KServe through an InferenceGraph "
        "router pod or a Knative/Istio traffic split. Published figures for such a hop: "
        f"Istio 1.9's Envoy proxy adds {ISTIO_P90_MS} ms at p90 (istio.io, Performance and "
        f"Scalability); each Knative hop {KNATIVE_HOP_MS[0]:g}-{KNATIVE_HOP_MS[1]:g} ms "
        "(OpenShift Serverless 1.34 docs). We found no published figure for Seldon's "
        "executor. Those are cited, not measured here, so `speedups` is empty: "
        "throughput_vs_direct compares Assay with itself, not with a peer."
    )
    figures: dict[str, float] = {k: round(v, 4) for k, v in headline.items()}
    for spec, s in STRATEGIES.items():
        figures.update({f"{k}_{s}": round(v, 4) for k, v in per[spec].items()})
    figures.update({k: round(v, 4) for k, v in fig.items()})
    figures["scale"] = scale
    print(json.dumps({"bench": "abtest", "figures": figures, "speedups": {}}))


def missing() -> str | None:
    return harness.wrk_missing()


if __name__ == "__main__":
    sys.exit(harness.main("abtest", bench, report, missing))
