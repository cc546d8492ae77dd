"""The verdict of an A/B test: which variant wins, or what it would take to know.

Built on `stats`: every variant against the control, Holm-adjusted when there are more
than two, on the always-valid p-values when the report may be read at any time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from assay.abtests.stats import (
    MSPRT_TAU2_FRACTION,
    Comparison,
    Sample,
    _check_unit,
    _fmt_d,
    _fmt_p,
    _fmt_v,
    _ok,
    _round2,
    _z,
    compare,
    holm,
    prob_best,
)
from assay.errors import InvalidArgumentError


@dataclass(frozen=True)
class Verdict:
    """The answer a report leads with.

    `winner` is a label once `decided`; `p_best` follows the order of the samples and
    `comparisons` holds every variant after the control against the control.
    `more_samples_needed` estimates how many more samples per variant it would take to
    decide at the observed effect (None once decided, or when it cannot be estimated).
    """

    winner: str | None
    decided: bool
    message: str
    comparisons: list[Comparison]
    p_best: list[float]
    more_samples_needed: int | None


# ---- the verdict -------------------------------------------------------------------------


def verdict(
    samples: Sequence[Sample],
    alpha: float = 0.05,
    sequential: bool = True,
    power: float = 0.8,
    mde: float | None = None,
    always_valid_p: Sequence[float] | None = None,
) -> Verdict:
    """Which variant wins, or what it would take to know.

    The first sample is the control; higher means are better. The best variant by mean
    wins when its p-value against the control is below `alpha`; when the control is
    best it wins when its p-value against every other variant is. The p-values are the
    always-valid ones when `sequential` (safe to read at every refresh of a report) and
    the fixed-horizon tests' otherwise (valid only when read once, at a sample size
    fixed in advance). Where the history of looks exists, pass `always_valid_p`: the
    last value of `sequential_p_values` for each variant after the control, in order;
    the verdict then uses the running minimum rather than this look's value alone.

    With more than two variants the k - 1 comparisons against the control are Holm-
    adjusted (Holm's step-down procedure: controls the family-wise error rate at
    `alpha` under any dependence, as Bonferroni does, and rejects at least as often).

    Undecided, `more_samples_needed` estimates the samples per variant still needed
    to decide with probability `power` if the observed difference (best variant against
    the control, or the control against its closest rival) and variances are the true
    ones: the fixed-sample formula n = (z_{1-α'/2} + z_{power})² (σ_a² + σ_b²) / δ², α'
    the Bonferroni share of `alpha`; when `sequential`, z_{1-α'/2} is replaced by the
    mSPRT's boundary at n (its z for Λ = 1/α'), since an always-valid test needs more.

    `mde`, when given, is the smallest absolute difference that matters: once the
    difference's confidence interval lies within ±mde the verdict says so.

    Raises:
        InvalidArgumentError: fewer than two samples; alpha or power outside (0, 1);
            `always_valid_p` not one value per variant after the control.
    """
    if len(samples) < 2:
        raise InvalidArgumentError(
            f"A verdict needs a control and at least one other variant, got {len(samples)}."
        )
    _check_unit("alpha", alpha)
    _check_unit("power", power)
    control, others = samples[0], list(samples[1:])
    comparisons = [compare(control, s, confidence=1.0 - alpha) for s in others]
    p_best = prob_best(samples)
    if not all(_ok(control, s) for s in others):
        short = ", ".join(f"{s.label} has {s.n}" for s in samples if s.n < 2)
        return Verdict(
            None, False,
            f"Not enough data yet: every variant needs at least 2 outcomes; {short}.",
            comparisons, p_best, None,
        )  # fmt: skip

    if always_valid_p is not None:
        if len(always_valid_p) != len(comparisons):
            raise InvalidArgumentError(
                f"always_valid_p needs one value per variant after the control "
                f"({len(comparisons)}), got {len(always_valid_p)}."
            )
        comparisons = [
            replace(c, always_valid_p=min(c.always_valid_p, p))
            for c, p in zip(comparisons, always_valid_p, strict=True)
        ]
    raw = [c.always_valid_p if sequential else c.p_value for c in comparisons]
    adjusted = holm(raw)
    m = len(comparisons)
    metric = "accuracy" if all(s.binary for s in samples) else "mean reward"
    p_name = "always-valid p" if sequential else "p"
    note = f" (Holm-adjusted over {m} comparisons)" if m > 1 else ""
    pct = all(s.binary for s in samples)

    best = max(range(len(samples)), key=lambda i: samples[i].mean)
    if best > 0:
        target = comparisons[best - 1]
        rival = samples[best]
        if adjusted[best - 1] < alpha:
            lo, hi = target.diff_ci
            msg = (
                f"{rival.label} beats {control.label}: {metric} {_fmt_v(rival.mean)} vs "
                f"{_fmt_v(control.mean)} ({_fmt_d(target.diff, pct)}, "
                f"{1 - alpha:.0%} CI {_fmt_d(lo, pct)} to {_fmt_d(hi, pct)}), "
                f"{p_name} {_fmt_p(adjusted[best - 1])}{note}."
            )
            return Verdict(rival.label, True, msg, comparisons, p_best, None)
    else:
        # The control wins only if it beats everyone; its closest rival is the hard case.
        j = max(range(m), key=lambda i: comparisons[i].diff)
        target, rival = comparisons[j], others[j]
        if max(adjusted) < alpha:
            lo, hi = (-target.diff_ci[1], -target.diff_ci[0])
            vs = f"{others[0].label}" if m == 1 else f"every other variant (closest: {rival.label})"
            msg = (
                f"{control.label} beats {vs}: {metric} {_fmt_v(control.mean)} vs "
                f"{_fmt_v(rival.mean)} ({_fmt_d(-target.diff, pct)}, "
                f"{1 - alpha:.0%} CI {_fmt_d(lo, pct)} to {_fmt_d(hi, pct)}), "
                f"{p_name} {_fmt_p(max(adjusted))}{note}."
            )
            return Verdict(control.label, True, msg, comparisons, p_best, None)

    diff = rival.mean - control.mean
    lo, hi = target.diff_ci
    if mde is not None and -abs(mde) < lo and hi < abs(mde):
        msg = (
            f"No difference large enough to matter: {rival.label} - {control.label} = "
            f"{_fmt_d(diff, pct)} ({1 - alpha:.0%} CI {_fmt_d(lo, pct)} to {_fmt_d(hi, pct)}) "
            f"lies within ±{_fmt_v(abs(mde))}. Stop the test and keep either variant."
        )
        return Verdict(None, False, msg, comparisons, p_best, None)
    if diff == 0:
        msg = (
            f"No difference so far: {rival.label} and {control.label} both have {metric} "
            f"{_fmt_v(control.mean)}; keep collecting, or stop if that is the answer."
        )
        return Verdict(None, False, msg, comparisons, p_best, None)
    needed = _samples_to_decide(diff, control.var + rival.var, alpha / m, power, sequential)
    more = max(1, needed - min(control.n, rival.n))
    msg = (
        f"Not enough evidence yet: about {_round2(more):,} more samples per variant needed "
        f"to detect the observed difference of {_fmt_d(diff, pct, short=True)} "
        f"({rival.label} vs {control.label})."
    )
    return Verdict(None, False, msg, comparisons, p_best, more)


def _samples_to_decide(
    diff: float, var_sum: float, alpha: float, power: float, sequential: bool
) -> int:
    """Samples per variant at which the test decides with probability `power`, if `diff`
    and the variances are the truth (equal arms)."""
    z_power = _z(power)
    if var_sum == 0:
        return 2
    fixed = math.ceil((_z(1.0 - alpha / 2.0) + z_power) ** 2 * var_sum / (diff * diff))
    if not sequential:
        return fixed

    def enough(n: int) -> bool:
        # z the effect would show at n, against the mSPRT's boundary at n (equal arms,
        # τ² = MSPRT_TAU2_FRACTION σ², so τ²/V = fraction * n / 2).
        r = MSPRT_TAU2_FRACTION * n / 2.0
        z_bound = math.sqrt(2.0 * (1.0 + r) / r * (math.log(1.0 / alpha) + 0.5 * math.log1p(r)))
        return abs(diff) * math.sqrt(n / var_sum) >= z_bound + z_power

    lo, hi = 1, max(fixed, 2)
    while not enough(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi
