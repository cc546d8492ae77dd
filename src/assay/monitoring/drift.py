"""Drift statistics: live values of one feature against the training data's, no I/O.

- numeric features: the two-sample Kolmogorov–Smirnov test (scipy) and the population
  stability index over ten quantile bins of the training values;
- categorical features: Pearson's chi-square test of the 2 x k table of category counts
  (scipy) and the PSI over the categories, with the categories training never saw;
- both: the share of missing values, and of values outside what training saw.

`Reference` holds what a feature's training values reduce to (sorted values, bin edges,
category counts), computed once and reused for every check. `assess` turns the per-feature
tests into states: the p-values are Holm-adjusted across every feature of the check
(`assay.abtests.stats.holm`), so the chance that a check with no drift flags any feature
stays at most alpha. A rejected test is drift only when the shift is also worth acting on:
its PSI must exceed what sampling alone gives two samples of these sizes (`noise`) by
`Thresholds.psi_min`. With tens of thousands of live rows the tests detect shifts far too
small to matter, and an alarm that fires every day is soon ignored.

PSI = sum over bins of (live share - training share) * ln(live share / training share),
with empty bins' shares floored at `PSI_FLOOR` so the logarithm stays finite.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.abtests.stats import holm
from assay.monitoring.entities import DriftHistogram, FeatureDrift, MonitorConfig, Thresholds

BINS = 10
PSI_FLOOR = 1e-4
MAX_NEW_CATEGORIES = 10
# An integer column with at most this many distinct training values is compared as
# categories (a count, a code, a rating) rather than as a continuous number.
MAX_INT_CATEGORIES = 20
EXACT_KS_MAX = 1_000_000  # n * m up to which the KS p-value is exact

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Reference:
    """One feature's training values, reduced to what every check needs."""

    name: str
    kind: str  # numeric or categorical
    rows: int
    missing: float
    sorted: Floats | None = None  # numeric: the non-missing values, sorted
    edges: Floats | None = None  # numeric: the inner bin edges (quantiles)
    shares: Floats | None = None  # numeric: each bin's share of training values
    low: float | None = None
    high: float | None = None
    categories: dict[str, int] | None = None  # categorical: count per category

    @classmethod
    def of(cls, name: str, values: Any, kind: str | None = None) -> Reference:
        """Reduce training values; `kind` is guessed from them when not given."""
        arr = np.asarray(values)
        if kind is None:
            kind = guess_kind(arr)
        rows = len(arr)
        if kind == "numeric":
            x = _floats(arr)
            present = x[~np.isnan(x)]
            ordered = np.sort(present)
            missing = float(1 - len(present) / rows) if rows else 0.0
            if not len(ordered):
                return cls(name, kind, rows, missing, ordered, np.empty(0), np.ones(1))
            qs = np.quantile(ordered, np.linspace(0, 1, BINS + 1)[1:-1])
            edges = np.unique(qs)
            counts = np.bincount(
                np.searchsorted(edges, ordered, side="right"), minlength=len(edges) + 1
            )
            return cls(
                name,
                kind,
                rows,
                missing,
                ordered,
                edges,
                counts / len(ordered),
                float(ordered[0]),
                float(ordered[-1]),
            )
        labels, missing_n = _labels(arr)
        categories: dict[str, int] = {}
        if len(labels):
            cats, counts = np.unique(labels, return_counts=True)
            categories = {str(c): int(n) for c, n in zip(cats, counts, strict=True)}
        return cls(
            name,
            kind,
            rows,
            missing_n / rows if rows else 0.0,
            categories=categories,
        )


def guess_kind(values: Any, declared: str | None = None) -> str:
    """numeric or categorical: text and booleans are categories; an integer column with
    few distinct values is too; other numbers are numeric."""
    if declared in ("str", "bool"):
        return "categorical"
    arr = np.asarray(values)
    if arr.dtype.kind in "fc":
        return "numeric"
    if arr.dtype.kind in "iu":
        return "categorical" if len(np.unique(arr)) <= MAX_INT_CATEGORIES else "numeric"
    if arr.dtype.kind == "b":
        return "categorical"
    try:
        x = _floats(arr)
    except (TypeError, ValueError):
        return "categorical"
    present = x[~np.isnan(x)]
    integral = bool(len(present)) and bool(np.all(present == np.round(present)))
    if declared == "int" or integral:
        return "categorical" if len(np.unique(present)) <= MAX_INT_CATEGORIES else "numeric"
    return "numeric"


def _floats(arr: npt.NDArray[Any]) -> Floats:
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64, copy=False)
    out = np.empty(len(arr), dtype=np.float64)
    for i, v in enumerate(arr):
        out[i] = np.nan if v is None else float(v)
    return out


def _labels(arr: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], int]:
    """Values as category names (text), and how many were missing."""
    if arr.dtype.kind == "f":
        present = arr[~np.isnan(arr)]
        whole = np.all(present == np.round(present)) if len(present) else False
        shown = present.astype(np.int64) if whole else present
        return shown.astype(str), len(arr) - len(present)
    if arr.dtype.kind in "iub":
        return arr.astype(str), 0
    keep = [v for v in arr if not _is_missing(v)]
    texts = np.array([_text(v) for v in keep], dtype=object).astype(str)
    return texts, len(arr) - len(keep)


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _text(v: Any) -> str:
    if isinstance(v, float) and v == round(v):
        return str(int(v))
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    return str(v)


def noise(bins: int, n: int, m: int) -> float:
    """The PSI two samples of `n` and `m` rows show over `bins` bins with no shift at all:
    about (bins - 1)(1/n + 1/m), as PSI is a symmetrised Kullback–Leibler divergence and
    twice that is chi-square distributed under no shift."""
    if n <= 0 or m <= 0:
        return 0.0
    return max(bins - 1, 0) * (1.0 / n + 1.0 / m)


def psi(expected: Floats, actual: Floats) -> float:
    """The population stability index of `actual` shares against `expected` shares."""
    e = np.maximum(expected, PSI_FLOOR)
    a = np.maximum(actual, PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


# ---- one feature --------------------------------------------------------------------------


def compare(ref: Reference, values: Any, *, histogram: bool = True) -> FeatureDrift:
    """One feature's live values against its reference: the test, PSI, missing and
    out-of-range shares (its state is set later, by `assess`)."""
    arr = np.asarray(values)
    doc: FeatureDrift = {
        "name": ref.name,
        "kind": ref.kind,
        "test": None,
        "statistic": None,
        "p_value": None,
        "p_adjusted": None,
        "psi": None,
        "psi_noise": None,
        "live_rows": len(arr),
        "reference_rows": ref.rows,
        "missing_live": None,
        "missing_reference": ref.missing,
        "out_of_range": None,
        "out_of_range_noise": None,
        "new_categories": [],
        "state": "ok",
        "reasons": [],
        "histogram": None,
    }
    if ref.kind == "numeric":
        _numeric(ref, arr, doc, histogram)
    else:
        _categorical(ref, arr, doc, histogram)
    return doc


def _numeric(ref: Reference, arr: npt.NDArray[Any], doc: FeatureDrift, histogram: bool) -> None:
    from scipy import stats

    try:
        x = _floats(arr)
    except (TypeError, ValueError):
        doc["reasons"].append("live values are not numbers")
        return
    live = x[~np.isnan(x)]
    doc["missing_live"] = float(1 - len(live) / len(x)) if len(x) else None
    assert ref.sorted is not None
    assert ref.edges is not None
    assert ref.shares is not None
    if not len(live) or not len(ref.sorted):
        return
    # The exact distribution where it matters (small samples) and is affordable; the
    # asymptotic one beyond, where the two agree to the third decimal.
    method = "exact" if len(live) * len(ref.sorted) <= EXACT_KS_MAX else "asymp"
    result = stats.ks_2samp(live, ref.sorted, method=method)
    doc["test"], doc["statistic"], doc["p_value"] = (
        "ks",
        float(result.statistic),
        float(result.pvalue),
    )
    counts = np.bincount(
        np.searchsorted(ref.edges, live, side="right"), minlength=len(ref.edges) + 1
    )
    shares = counts / len(live)
    doc["psi"] = psi(ref.shares, shares)
    doc["psi_noise"] = noise(len(shares), len(live), len(ref.sorted))
    assert ref.low is not None
    assert ref.high is not None
    doc["out_of_range"] = float(np.count_nonzero((live < ref.low) | (live > ref.high)) / len(live))
    # With no shift at all, a new value falls outside m training values' range with
    # probability 2 / (m + 1).
    doc["out_of_range_noise"] = 2.0 / (len(ref.sorted) + 1)
    if histogram:
        bounds = [ref.low, *ref.edges.tolist(), ref.high]
        doc["histogram"] = _hist(
            [f"[{_fmt(a)}, {_fmt(b)})" for a, b in itertools.pairwise(bounds)],
            ref.shares,
            shares,
        )


def _categorical(ref: Reference, arr: npt.NDArray[Any], doc: FeatureDrift, histogram: bool) -> None:
    from scipy import stats

    labels, missing = _labels(arr)
    doc["missing_live"] = missing / len(arr) if len(arr) else None
    if not len(labels) or not ref.categories:
        return
    cats, counts = np.unique(labels, return_counts=True)
    live = {str(c): int(n) for c, n in zip(cats, counts, strict=True)}
    seen = ref.categories
    names = sorted(set(seen) | set(live), key=lambda c: (-seen.get(c, 0), c))
    r = np.array([seen.get(c, 0) for c in names], dtype=np.float64)
    lv = np.array([live.get(c, 0) for c in names], dtype=np.float64)
    unseen = [c for c in names if c not in ref.categories]
    unseen.sort(key=lambda c: -live[c])
    doc["new_categories"] = unseen[:MAX_NEW_CATEGORIES]
    doc["out_of_range"] = float(sum(live[c] for c in unseen) / lv.sum())
    # Good–Turing: the share of traffic in categories training never saw, with no shift at
    # all, is about the share of training rows in categories it saw once.
    doc["out_of_range_noise"] = sum(1 for n in seen.values() if n == 1) / max(r.sum(), 1.0)
    r_share, l_share = r / r.sum(), lv / lv.sum()
    doc["psi"] = psi(r_share, l_share)
    doc["psi_noise"] = noise(len(names), int(lv.sum()), int(r.sum()))
    if len(names) >= 2:
        chi2, p, _dof, _expected = stats.chi2_contingency(np.vstack([r, lv]), correction=False)
        doc["test"], doc["statistic"], doc["p_value"] = "chi2", float(chi2), float(p)
    else:  # one category on both sides: nothing can differ
        doc["test"], doc["statistic"], doc["p_value"] = "chi2", 0.0, 1.0
    if histogram:
        shown = names[:30]
        doc["histogram"] = _hist(shown, r_share[: len(shown)], l_share[: len(shown)])


def _hist(bins: list[str], reference: Floats, live: Floats) -> DriftHistogram:
    return {
        "bins": bins,
        "reference": [round(float(v), 5) for v in reference],
        "live": [round(float(v), 5) for v in live],
    }


def _fmt(x: float) -> str:
    return f"{x:.4g}"


# ---- a whole check -----------------------------------------------------------------------------


def assess(features: list[FeatureDrift], config: MonitorConfig) -> list[FeatureDrift]:
    """Set each feature's `p_adjusted`, `state` and `reasons` (Holm across all of them)."""
    tested = [f for f in features if f["p_value"] is not None]
    # A p-value of exactly 0 (below the smallest float: a huge window) is evidence too.
    raw = [1.0 if f["p_value"] is None else float(f["p_value"]) for f in tested]
    for f, adjusted in zip(tested, holm(raw), strict=True):
        f["p_adjusted"] = adjusted
    for f in features:
        _state(f, config.for_feature(f["name"]), config)
    return features


def _state(f: FeatureDrift, t: Thresholds, config: MonitorConfig) -> None:
    reasons: list[str] = []
    drift = warning = False
    enough = f["live_rows"] >= config.min_rows
    # The customary PSI thresholds assume samples large enough for sampling noise to
    # vanish; on top of that noise, they hold at any size.
    noise = f["psi_noise"] or 0.0
    if f["p_adjusted"] is not None and f["p_adjusted"] < config.alpha:
        said = f"{'KS' if f['test'] == 'ks' else 'chi-square'} p{_p(f['p_adjusted'])}"
        if f["psi"] is None or f["psi"] >= t.psi_min + noise:
            drift = True
            reasons.append(said)
        else:  # real, but too small to act on (a large window detects the tiniest shift)
            reasons.append(
                f"{said} but PSI {f['psi']:.3f} < {t.psi_min:g}{_noise(noise)}: negligible"
            )
    if f["psi"] is not None and enough:
        for level, limit in (("drift", t.psi_drift), ("warning", t.psi_warning)):
            if f["psi"] >= limit + noise:
                drift, warning = drift or level == "drift", warning or level == "warning"
                reasons.append(f"PSI {f['psi']:.3f} >= {limit:g}{_noise(noise)}")
                break
    if enough and f["missing_live"] is not None:
        rise = f["missing_live"] - (f["missing_reference"] or 0.0)
        if rise >= t.missing:
            warning = True
            reasons.append(
                f"missing {f['missing_live']:.1%} (training {f['missing_reference'] or 0.0:.1%})"
            )
    allowed = t.out_of_range + (f["out_of_range_noise"] or 0.0)
    if enough and f["out_of_range"] is not None and f["out_of_range"] >= allowed:
        warning = True
        if f["new_categories"]:
            shown = ", ".join(f["new_categories"][:3])
            reasons.append(f"{f['out_of_range']:.1%} new categories: {shown}")
        else:
            reasons.append(f"{f['out_of_range']:.1%} out of range")
    f["state"] = "drift" if drift else "warning" if warning else "ok"
    f["reasons"] = reasons


def _noise(noise: float) -> str:
    return f" + {noise:.2g} noise" if noise >= 0.005 else ""


def _p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"={p:.4f}"
