"""A check's report: live rows against the training reference, and performance from feedback.

Pure functions over frames and references (`drift`, `reference`); the service reads the
log and the reference and records what comes out.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from assay.abtests.stats import Sample, ci
from assay.monitoring.drift import assess, compare
from assay.monitoring.entities import (
    FeatureDrift,
    MonitorConfig,
    MonitorReport,
    Performance,
    PerformancePoint,
    Window,
    worst,
)
from assay.monitoring.live import LiveData
from assay.monitoring.reference import Training
from assay.serving.predlog import INPUT_PREFIX

SERIES_BUCKETS = 20


def build_report(
    *,
    monitor: str,
    target: str,
    model: str,
    model_version: tuple[str, int],
    live: LiveData,
    training: Training,
    config: MonitorConfig,
    window: Window,
    now: datetime | None = None,
) -> MonitorReport:
    """Compare `live` with `training` feature by feature, and the model's outputs and
    performance; the monitor's state is the worst of all of them."""
    now = now or datetime.now(UTC)
    rows = live.rows
    notes = list(training.notes)
    if live.skipped:
        notes.append(
            f"{len(live.skipped)} log segment(s) could not be read: {', '.join(live.skipped[:3])}"
        )
    features: list[FeatureDrift] = []
    for name, ref in training.features.items():
        if config.for_feature(name).ignore:
            continue
        column = INPUT_PREFIX + name
        if column not in rows.columns:
            if len(rows):
                notes.append(f"{name!r} is not in the logged rows: not compared.")
            continue
        features.append(compare(ref, rows[column].to_numpy()))
    prediction = None
    mine = rows[(rows["model"] == model_version[0]) & (rows["version"] == model_version[1])]
    if training.prediction is not None and "prediction" in rows.columns and len(mine):
        prediction = compare(training.prediction, mine["prediction"].to_numpy())
    assess(features + ([prediction] if prediction is not None else []), config)
    performance = _performance(rows, training, config)
    if not len(rows):
        notes.append(f"No logged traffic in the window ({window.describe()}).")
    elif len(rows) < config.min_rows:
        notes.append(
            f"Only {len(rows)} rows (min_rows {config.min_rows}): the PSI, missing "
            "and range rules wait for more; the tests still apply."
        )
    states = [f["state"] for f in features] + [performance["state"]]
    if prediction is not None:
        states.append(prediction["state"])
    start, end = live.span()
    return {
        "monitor": monitor,
        "target": target,
        "model": model,
        "reference": training.ref,
        "reference_file": training.path,
        "window": window,
        "window_text": window.describe(),
        "start": start,
        "end": end,
        "requests": live.requests,
        "rows": len(rows),
        "segments": live.segments,
        "skipped_segments": len(live.skipped),
        "alpha": config.alpha,
        "state": worst(states),
        "features": features,
        "prediction": prediction,
        "performance": performance,
        "notes": notes,
        "at": now.isoformat(),
        "actions": [],
    }


# ---- performance ----------------------------------------------------------------------------


def same(truth: Any, predicted: Any) -> bool:
    """Whether a label matches a prediction (numbers by value, anything else as text)."""
    if isinstance(truth, int | float) and isinstance(predicted, int | float | np.number):
        return float(truth) == float(predicted)
    return str(truth) == str(predicted)


def outcomes(rows: pd.DataFrame, regression: bool) -> tuple[str | None, pd.DataFrame]:
    """Each row with feedback as one outcome: (metric, frame of ts, model, version, y)."""
    labeled = rows[rows["label"].notna()] if "label" in rows.columns else rows.iloc[:0]
    if len(labeled) and "prediction" in rows.columns:
        truth, pred = labeled["label"].to_numpy(), labeled["prediction"].to_numpy()
        if regression:
            y = [abs(float(t) - float(p)) for t, p in zip(truth, pred, strict=True)]
            metric = "mean_abs_error"
        else:
            y = [1.0 if same(t, p) else 0.0 for t, p in zip(truth, pred, strict=True)]
            metric = "accuracy"
        return metric, labeled[["ts", "model", "version"]].assign(y=y)
    rewarded = rows[rows["reward"].notna()] if "reward" in rows.columns else rows.iloc[:0]
    if len(rewarded):
        first = rewarded.drop_duplicates("request_id")  # one reward per request
        return "reward", first[["ts", "model", "version"]].assign(y=first["reward"].to_numpy())
    return None, rows.iloc[:0]


def _performance(rows: pd.DataFrame, training: Training, config: MonitorConfig) -> Performance:
    regression = training.prediction is not None and training.prediction.kind == "numeric"
    metric, out = outcomes(rows, regression) if len(rows) else (None, rows)
    doc: Performance = {
        "metric": metric,
        "higher_is_better": metric != "mean_abs_error",
        "n": len(out),
        "value": None,
        "ci": (None, None),
        "state": "ok",
        "series": {},
    }
    if metric is None or not len(out):
        return doc
    binary = metric == "accuracy"
    sample = Sample.from_values("all", out["y"].tolist(), binary=binary)
    doc["value"] = _finite(sample.mean)
    lo, hi = ci(sample)
    doc["ci"] = (_finite(lo), _finite(hi))
    t0, t1 = float(out["ts"].min()), float(out["ts"].max())
    width = max((t1 - t0) / SERIES_BUCKETS, 1e-9)
    ts = out["ts"].to_numpy(dtype=np.float64)
    ys = out["y"].to_numpy(dtype=np.float64)
    bucket = np.minimum(((ts - t0) / width).astype(np.int64), SERIES_BUCKETS - 1)
    versions = [f"{m}@{int(v)}" for m, v in zip(out["model"], out["version"], strict=True)]
    for ref in sorted(set(versions)):
        mine = np.array([v == ref for v in versions])
        points: list[PerformancePoint] = []
        for k in np.unique(bucket[mine]):
            s = Sample.from_values("b", ys[mine & (bucket == k)].tolist(), binary=binary)
            blo, bhi = ci(s)
            points.append(
                {
                    "start": t0 + int(k) * width,
                    "end": t0 + (int(k) + 1) * width,
                    "n": s.n,
                    "value": _finite(s.mean),
                    "lo": _finite(blo),
                    "hi": _finite(bhi),
                }
            )
        doc["series"][ref] = points
    if config.min_performance is not None and doc["value"] is not None:
        floor = config.min_performance
        if doc["higher_is_better"]:
            bad_surely = doc["ci"][1] is not None and doc["ci"][1] < floor
            bad = doc["value"] < floor
        else:
            bad_surely = doc["ci"][0] is not None and doc["ci"][0] > floor
            bad = doc["value"] > floor
        doc["state"] = "drift" if bad_surely else "warning" if bad else "ok"
    return doc


def _finite(x: float) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def summary(report: MonitorReport) -> dict[str, Any]:
    """What a recorded check keeps of its report (the history's charts read it)."""

    def brief(f: FeatureDrift) -> dict[str, Any]:
        return {
            "state": f["state"],
            "psi": f["psi"],
            "p_adjusted": f["p_adjusted"],
            "statistic": f["statistic"],
        }

    perf = report["performance"]
    return {
        "features": {f["name"]: brief(f) for f in report["features"]},
        "prediction": brief(report["prediction"]) if report["prediction"] else None,
        "performance": {
            "metric": perf["metric"],
            "value": perf["value"],
            "n": perf["n"],
            "ci": list(perf["ci"]),
            "state": perf["state"],
        },
        "requests": report["requests"],
        "notes": report["notes"][:5],
    }
