"""An A/B test's analysis, from its event log alone (so it can be re-run at any time).

Per variant: requests, errors, latency p50/p99, cost per 1,000 predictions, and the
mean reward (or accuracy) with its confidence interval; each variant against the
control with the fixed-horizon test and the always-valid (mSPRT) p-value, which stays
valid however often the report is read; the probability that each variant is best; a
sample-ratio-mismatch check of the split; shadows' agreement with the primary; the
reward over time; and the verdict.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from assay.abtests import stats
from assay.abtests.strategies import parse_strategy
from assay.abtests.verdict import verdict
from assay.numeric import quantile

if TYPE_CHECKING:
    from assay.abtests.entities import (
        ABAnalysis,
        ComparisonReport,
        RewardSeries,
        ShadowReport,
        SRMReport,
        VariantReport,
        VerdictReport,
    )

LOOK_EVERY = 100  # outcomes per variant between the looks of the sequential test
SERIES_POINTS = 24


def build_report(
    events: Sequence[dict[str, Any]],
    *,
    labels: Sequence[str],
    strategy: str,
    cost_per_hour: float = 0.10,
    alpha: float = 0.05,
    planned_per_variant: int | None = None,
) -> ABAnalysis:
    """The report of an A/B test whose log holds `events` (see `eventlog`)."""
    answered: dict[str, dict[str, Any]] = {}
    shadows: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for e in events:
        kind = e.get("t")
        if kind == "a":
            answered[str(e["id"])] = e
        elif kind == "s":
            shadows.append(e)
        elif kind == "f":
            feedback.append(e)

    live = [e for e in answered.values() if e.get("live", True)]
    per: dict[str, VariantReport] = {label: _traffic([], cost_per_hour) for label in labels}
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in live:
        by_label[str(e["v"])].append(e)
    for label in labels:
        per[label] = _traffic(by_label.get(label, []), cost_per_hour)

    # Outcomes: feedback joined to its live answer by request id, first feedback wins.
    outcomes: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    seen: set[str] = set()
    for f in sorted(feedback, key=lambda f: float(f.get("ts", 0))):
        rid = str(f.get("id"))
        a = answered.get(rid)
        if rid in seen or a is None or not a.get("live", True) or a.get("v") not in outcomes:
            continue
        reward = f.get("reward")
        if isinstance(reward, int | float) and math.isfinite(reward):
            seen.add(rid)
            outcomes[str(a["v"])].append((float(f.get("ts", 0)), float(reward)))

    binary = all(r in (0.0, 1.0) for rows in outcomes.values() for _, r in rows) and any(
        outcomes.values()
    )
    samples = [
        stats.Sample.from_values(label, [r for _, r in outcomes[label]], binary=binary)
        for label in labels
    ]
    for sample in samples:
        lo, hi = stats.ci(sample) if sample.n else (math.nan, math.nan)
        row = per[sample.label]
        row["outcomes"] = sample.n
        row["mean"] = _num(sample.mean)
        row["ci"] = [_num(lo), _num(hi)]

    comparisons: list[ComparisonReport] = []
    p_best: dict[str, float | None] = {}
    if sum(s.n for s in samples) and all(s.n >= 2 for s in samples):
        sequential = [_sequential_p(outcomes, labels[0], label, binary) for label in labels[1:]]
        v = verdict(
            samples,
            alpha=alpha,
            sequential=True,
            always_valid_p=[1.0 if math.isnan(p) else p for p in sequential],
        )
        comparisons = [
            {
                "label": c.label,
                "control": c.control,
                "diff": _num(c.diff),
                "diff_ci": [_num(c.diff_ci[0]), _num(c.diff_ci[1])],
                "test": c.test,
                "statistic": _num(c.statistic),
                "p_value": _num(c.p_value),
                "always_valid_p": _num(c.always_valid_p),
                "sequential_p": _num(p),
            }
            for c, p in zip(v.comparisons, sequential, strict=True)
        ]
        p_best = dict(zip(labels, (_num(p) for p in v.p_best), strict=True))
        decision: VerdictReport = {
            "winner": v.winner,
            "decided": v.decided,
            "message": v.message,
            "more_samples_needed": v.more_samples_needed,
        }
    else:
        need = "feedback for at least two predictions of every variant"
        decision = {
            "winner": None,
            "decided": False,
            "message": f"Not enough evidence yet: the analysis needs {need}.",
            "more_samples_needed": None,
        }

    parsed = parse_strategy(strategy, labels)
    weights = parsed.weights or [1.0] * len(labels)  # no weights: an even split
    srm: SRMReport | None = None
    if parsed.kind in ("weighted", "sticky") and live:
        check = stats.srm([per[label]["requests"] for label in labels], weights, labels=labels)
        srm = {
            "chi2": _num(check.chi2),
            "p_value": _num(check.p_value),
            "expected": [_num(x) for x in check.expected],
            "mismatch": check.mismatch,
            "message": check.message,
        }
    return {
        "labels": list(labels),
        "strategy": strategy,
        "metric": "accuracy" if binary else "mean reward",
        "binary": binary,
        "variants": per,
        "alpha": alpha,
        "planned_per_variant": planned_per_variant,
        "comparisons": comparisons,
        "p_best": p_best,
        "verdict": decision,
        "srm": srm,
        "shadows": _shadows(shadows, answered),
        "series": _series(outcomes, labels),
    }


def _traffic(rows: list[dict[str, Any]], cost_per_hour: float) -> VariantReport:
    ok = [r for r in rows if r.get("ok")]
    ms = sorted(float(r.get("ms", 0.0)) for r in ok)
    # What the variant's compute cost at the configured hourly price: its busy time per
    # 1,000 predictions (a lower bound: idle capacity is not counted).
    cost = cost_per_hour / 3600 * (sum(ms) / 1000) / len(ms) * 1000 if ms else None
    return {
        "requests": len(rows),
        "errors": len(rows) - len(ok),
        "p50_ms": _num(quantile(ms, 0.5)),
        "p99_ms": _num(quantile(ms, 0.99)),
        "cost_per_1k": _num(cost) if cost is not None else None,
        "outcomes": 0,
        "mean": None,
        "ci": [None, None],
    }


def _sequential_p(
    outcomes: dict[str, list[tuple[float, float]]], control: str, label: str, binary: bool
) -> float:
    """The always-valid p-value over the looks the report could have taken: one after
    every `LOOK_EVERY` outcomes of the smaller arm, in the order feedback arrived."""
    a, b = outcomes[control], outcomes[label]
    looks = []
    for n in range(LOOK_EVERY, min(len(a), len(b)) + 1, LOOK_EVERY):
        looks.append(
            (
                stats.Sample.from_values(control, [r for _, r in a[:n]], binary=binary),
                stats.Sample.from_values(label, [r for _, r in b[:n]], binary=binary),
            )
        )
    looks.append(
        (
            stats.Sample.from_values(control, [r for _, r in a], binary=binary),
            stats.Sample.from_values(label, [r for _, r in b], binary=binary),
        )
    )
    if min(len(a), len(b)) < 2:
        return math.nan
    return stats.sequential_p_values(looks)[-1]


def _shadows(
    shadows: list[dict[str, Any]], answered: dict[str, dict[str, Any]]
) -> dict[str, ShadowReport]:
    out: dict[str, ShadowReport] = {}
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in shadows:
        by_label[str(s["v"])].append(s)
    for label, rows in sorted(by_label.items()):
        ok = [r for r in rows if r.get("ok")]
        agree = sum(
            1
            for r in ok
            if (a := answered.get(str(r["id"]))) is not None and a.get("pred") == r.get("pred")
        )
        ms = sorted(float(r.get("ms", 0.0)) for r in ok)
        out[label] = {
            "copies": len(rows),
            "errors": len(rows) - len(ok),
            "agreement": _num(agree / len(ok)) if ok else None,
            "p50_ms": _num(quantile(ms, 0.5)),
            "p99_ms": _num(quantile(ms, 0.99)),
        }
    return out


def _series(outcomes: dict[str, list[tuple[float, float]]], labels: Sequence[str]) -> RewardSeries:
    """The cumulative mean reward of each variant at evenly spaced times, with its 95%
    interval at each time (normal approximation over the outcomes so far)."""
    stamps = [t for rows in outcomes.values() for t, _ in rows]
    if not stamps:
        empty: dict[str, list[float | None]] = {label: [] for label in labels}
        return {"times": [], "values": empty, "lo": dict(empty), "hi": dict(empty)}
    start, end = min(stamps), max(stamps)
    times = [start + (end - start) * i / (SERIES_POINTS - 1) for i in range(SERIES_POINTS)]
    values: dict[str, list[float | None]] = {}
    lows: dict[str, list[float | None]] = {}
    highs: dict[str, list[float | None]] = {}
    for label in labels:
        rows = sorted(outcomes[label])
        total, squares, n, j = 0.0, 0.0, 0, 0
        series: list[float | None] = []
        lo: list[float | None] = []
        hi: list[float | None] = []
        for t in times:
            while j < len(rows) and rows[j][0] <= t:
                total += rows[j][1]
                squares += rows[j][1] ** 2
                n += 1
                j += 1
            if not n:
                series.append(None)
                lo.append(None)
                hi.append(None)
                continue
            mean = total / n
            var = max(squares / n - mean * mean, 0.0) * (n / (n - 1) if n > 1 else 0.0)
            half = 1.96 * math.sqrt(var / n) if n > 1 else math.nan
            series.append(_num(mean))
            lo.append(_num(mean - half))
            hi.append(_num(mean + half))
        values[label], lows[label], highs[label] = series, lo, hi
    return {"times": times, "values": values, "lo": lows, "hi": highs}


def _num(x: float) -> float | None:
    """JSON has no nan or infinity: those become null."""
    return None if x is None or not math.isfinite(x) else round(float(x), 6)
