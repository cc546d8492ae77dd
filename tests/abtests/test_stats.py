"""The statistics of A/B tests against scipy, published examples and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from assay.abtests.stats import (
    Sample,
    ci,
    compare,
    msprt_p_value,
    prob_best,
    sample_size,
    sequential_p_values,
    srm,
    two_proportion_ztest,
    wald_ztest,
    welch_ttest,
)
from assay.abtests.verdict import verdict
from assay.errors import InvalidArgumentError

# ---- samples -----------------------------------------------------------------------------


def test_from_values_detects_binary_outcomes_and_summarises_them() -> None:
    s = Sample.from_values("A", [1, 0, 1, 1])
    assert s.binary
    assert s.n == 4
    assert s.mean == 0.75
    assert s.successes == 3
    assert s.var == pytest.approx(0.75 * 0.25)


def test_from_values_of_rewards_uses_the_unbiased_variance() -> None:
    values = [0.5, 1.5, 2.0, 4.0, 0.0]
    s = Sample.from_values("A", values)
    assert not s.binary
    assert s.mean == pytest.approx(np.mean(values))
    assert s.var == pytest.approx(np.var(values, ddof=1))


def test_zero_one_values_can_be_declared_numeric() -> None:
    assert not Sample.from_values("A", [0, 1, 1], binary=False).binary


def test_binary_declared_with_other_values_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="declared binary"):
        Sample.from_values("A", [0, 1, 2], binary=True)


def test_successes_out_of_range_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="successes must be between 0 and n=10"):
        Sample.from_counts("A", 11, 10)


# ---- confidence intervals ----------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(874, 1000), (3, 40), (0, 25), (50, 50), (1, 2)])
@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_binary_interval_is_wilsons(k: int, n: int, confidence: float) -> None:
    want = sps.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    got = ci(Sample.from_counts("A", k, n), confidence)
    assert got == pytest.approx((want.low, want.high), abs=1e-12)


@pytest.mark.parametrize("n", [2, 7, 300])
def test_numeric_interval_is_students_t(n: int) -> None:
    values = np.random.default_rng(n).gamma(2.0, 1.5, size=n)
    want = sps.ttest_1samp(values, 0.0).confidence_interval(0.9)
    got = ci(Sample.from_values("A", values.tolist()), 0.9)
    assert got == pytest.approx((want.low, want.high), rel=1e-10)


def test_interval_without_enough_data_is_nan() -> None:
    assert all(math.isnan(x) for x in ci(Sample.from_counts("A", 0, 0)))
    assert all(math.isnan(x) for x in ci(Sample.from_values("A", [3.5])))


# ---- fixed-horizon tests -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ka", "na", "kb", "nb"),
    [(874, 1000, 912, 1000), (120, 1000, 95, 800), (45, 60, 30, 55), (10, 10000, 22, 9000)],
)
def test_ztest_matches_an_independent_computation_and_the_chi_square_test(
    ka: int, na: int, kb: int, nb: int
) -> None:
    z, p = two_proportion_ztest(Sample.from_counts("A", ka, na), Sample.from_counts("B", kb, nb))

    pa, pb, pooled = ka / na, kb / nb, (ka + kb) / (na + nb)
    want_z = (pb - pa) / math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    assert z == pytest.approx(want_z, rel=1e-12)
    assert p == pytest.approx(2 * sps.norm.sf(abs(want_z)), rel=1e-10)
    # Without continuity correction the 2x2 chi-square test is the same test: chi2 = z^2.
    table = [[ka, na - ka], [kb, nb - kb]]
    chi2, chi_p, _, _ = sps.chi2_contingency(table, correction=False)
    assert z * z == pytest.approx(chi2, rel=1e-10)
    assert p == pytest.approx(chi_p, rel=1e-8)


@pytest.mark.parametrize(("na", "nb", "shift"), [(50, 50, 0.3), (40, 400, 0.0), (1000, 37, -1.0)])
def test_welch_matches_scipy(na: int, nb: int, shift: float) -> None:
    rng = np.random.default_rng(na + nb)
    a = rng.normal(10.0, 2.0, size=na)
    b = rng.normal(10.0 + shift, 5.0, size=nb)
    t, df, p = welch_ttest(Sample.from_values("A", a.tolist()), Sample.from_values("B", b.tolist()))
    want = sps.ttest_ind(b, a, equal_var=False)
    assert t == pytest.approx(want.statistic, rel=1e-10)
    assert df == pytest.approx(want.df, rel=1e-10)
    assert p == pytest.approx(want.pvalue, rel=1e-8)


def test_welch_of_constant_arms() -> None:
    same = Sample.from_values("A", [2.0, 2.0, 2.0])
    assert welch_ttest(same, same)[::2] == (0.0, 1.0)
    t, _, p = welch_ttest(same, Sample.from_values("B", [3.0, 3.0]))
    assert t == math.inf
    assert p == 0.0


@pytest.mark.parametrize("binary", [True, False])
def test_the_interval_excludes_zero_exactly_when_the_test_rejects(binary: bool) -> None:
    # The report once showed "95% CI -0.0377 - -0.0006" beside "p 0.0547": a pooled test
    # beside an unpooled interval. One standard error for both cannot disagree.
    rng = np.random.default_rng(5)
    disagreements, near = 0, 0
    for _ in range(2000):
        n_a, n_b = rng.integers(20, 400, size=2)
        if binary:
            a = Sample.from_counts("A", int(rng.binomial(n_a, 0.6)), int(n_a))
            b = Sample.from_counts("B", int(rng.binomial(n_b, 0.66)), int(n_b))
        else:
            a = Sample.from_values("A", rng.normal(1.0, 1.0, n_a).tolist())
            b = Sample.from_values("B", rng.normal(1.2, 1.5, n_b).tolist())
        c = compare(a, b)
        excludes = c.diff_ci[0] > 0 or c.diff_ci[1] < 0
        disagreements += excludes != (c.p_value < 0.05)
        near += 0.03 < c.p_value < 0.07
    assert disagreements == 0
    assert near > 50


def test_the_reported_case_is_consistent_now() -> None:
    a, b = Sample.from_counts("A", 194, 200), Sample.from_counts("B", 188, 200)
    c = compare(a, b)
    assert (c.diff_ci[1] < 0) == (c.p_value < 0.05)


def test_compare_picks_the_test_and_reports_the_difference() -> None:
    a, b = Sample.from_counts("A", 874, 1000), Sample.from_counts("B", 912, 1000)
    c = compare(a, b)
    assert (c.label, c.control, c.test) == ("B", "A", "two-proportion z")
    assert c.diff == pytest.approx(0.038)
    se = math.sqrt(0.874 * 0.126 / 1000 + 0.912 * 0.088 / 1000)
    assert c.diff_ci == pytest.approx((0.038 - 1.959964 * se, 0.038 + 1.959964 * se), rel=1e-6)
    assert (c.statistic, c.p_value) == wald_ztest(a, b)[:2]
    assert c.always_valid_p == msprt_p_value(a, b)
    # An always-valid p-value pays for the freedom to peek: here 0.006 fixed, ~0.1 always.
    assert c.p_value < 0.01 < c.always_valid_p

    rewards = Sample.from_values("C", [1.0, 2.5, 3.0, 0.5])
    assert compare(a, rewards).test == "Welch t"


# ---- sample ratio mismatch ---------------------------------------------------------------


def test_even_split_with_even_counts_passes() -> None:
    check = srm([5000, 5000], [0.5, 0.5])
    assert not check.mismatch
    assert check.p_value == 1.0
    assert check.expected == (5000.0, 5000.0)


def test_skewed_counts_flag_a_mismatch_naming_the_variant() -> None:
    check = srm([5300, 4700], [0.5, 0.5], labels=["A", "B"])
    want = sps.chisquare([5300, 4700], f_exp=[5000, 5000])
    assert check.chi2 == pytest.approx(want.statistic) == 36.0
    assert check.p_value == pytest.approx(want.pvalue, rel=1e-8)
    assert check.mismatch
    assert "A is over-served, 53.0% of 10,000 assignments against 50.0%" in check.message


def test_configured_weights_are_honoured() -> None:
    assert not srm([7040, 2960], [70, 30]).mismatch
    check = srm([5000, 5000], [70, 30], labels=["A", "B"])
    assert check.mismatch
    assert "B is over-served" in check.message
    want = sps.chisquare([690, 290, 20], f_exp=[700, 280, 20])
    got = srm([690, 290, 20], [0.7, 0.28, 0.02])
    assert (got.chi2, got.p_value) == pytest.approx((want.statistic, want.pvalue), rel=1e-8)


def test_zero_weight_is_fine_until_it_gets_traffic() -> None:
    assert not srm([700, 300, 0], [7, 3, 0]).mismatch
    check = srm([700, 300, 2], [7, 3, 0], labels=["A", "B", "C"])
    assert check.mismatch
    assert check.p_value == 0.0
    assert "C got 2 assignments but is configured for none" in check.message


def test_srm_with_mismatched_lengths_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="one weight per variant"):
        srm([1, 2, 3], [1, 1])


# ---- planning ----------------------------------------------------------------------------


def test_sample_size_matches_r_power_prop_test_example() -> None:
    # ?power.prop.test: power.prop.test(p1 = .50, p2 = .75, power = .90)  =>  n = 76.7
    assert sample_size(0.50, 0.25, power=0.9) == 77


@pytest.mark.parametrize(
    ("baseline", "mde", "want"),
    # 0.20 -> 0.22 is the same test as 0.80 -> 0.78; going towards 0.5 costs more.
    [(0.80, 0.02, 6039), (0.80, -0.02, 6510), (0.20, 0.02, 6510), (0.05, 0.01, 8158)],
)
def test_sample_size_is_the_smallest_n_reaching_the_power(
    baseline: float, mde: float, want: int
) -> None:
    assert sample_size(baseline, mde) == want

    def power(n: int) -> float:
        p1, p2 = baseline, baseline + mde
        p_bar = (p1 + p2) / 2
        se0 = math.sqrt(2 * p_bar * (1 - p_bar) / n)
        se1 = math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)
        return float(sps.norm.cdf((abs(mde) - sps.norm.isf(0.025) * se0) / se1))

    assert power(want) >= 0.8 > power(want - 1)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"baseline": 0.0, "mde": 0.1}, "baseline"),
        ({"baseline": 1.2, "mde": 0.1}, "baseline"),
        ({"baseline": 0.95, "mde": 0.06}, "baseline \\+ mde"),
        ({"baseline": 0.5, "mde": 0.0}, "mde"),
        ({"baseline": 0.5, "mde": 0.1, "alpha": 1.0}, "alpha"),
        ({"baseline": 0.5, "mde": 0.1, "power": 0.0}, "power"),
    ],
)
def test_sample_size_refuses_bad_inputs_naming_them(kwargs: dict[str, float], named: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^{named} must"):
        sample_size(**kwargs)


# ---- probability of being best -----------------------------------------------------------


def test_prob_best_favours_the_clearly_better_variant() -> None:
    p = prob_best([Sample.from_counts("A", 500, 1000), Sample.from_counts("B", 600, 1000)])
    assert sum(p) == pytest.approx(1.0)
    assert p[1] > 0.99


def test_prob_best_of_identical_variants_is_even() -> None:
    same = [Sample.from_counts(x, 300, 1000) for x in "AB"]
    p = prob_best(same)
    assert sum(p) == pytest.approx(1.0)
    assert p == pytest.approx([0.5, 0.5], abs=0.02)
    rewards = [Sample.from_values(x, [1.0, 2.0, 3.0]) for x in "ABC"]
    assert prob_best(rewards) == pytest.approx([1 / 3] * 3, abs=0.02)


def test_prob_best_gives_a_variant_without_data_an_even_share() -> None:
    p = prob_best(
        [
            Sample.from_counts("A", 10, 100),
            Sample.from_counts("B", 90, 100),
            Sample.from_counts("C", 0, 0),
        ]
    )
    assert p[2] == pytest.approx(1 / 3)
    assert sum(p) == pytest.approx(1.0)
    assert p[1] > 0.66


def test_prob_best_is_reproducible_and_splits_ties() -> None:
    s = [Sample.from_counts("A", 48, 100), Sample.from_counts("B", 52, 100)]
    assert prob_best(s, seed=7) == prob_best(s, seed=7)
    constant = [Sample.from_values(x, [4.0, 4.0]) for x in "AB"]
    assert prob_best(constant) == [0.5, 0.5]


# ---- sequential testing ------------------------------------------------------------------


def test_msprt_matches_johari_et_al_for_equal_arms() -> None:
    # Their Λ_n for n per arm, known variance σ²:
    #   sqrt(2σ²/(2σ² + nτ²)) exp(n²τ²(ȳ - x̄)² / (4σ²(2σ² + nτ²)))
    n, sigma2, tau2, d = 400, 2.5, 0.04, 0.31
    a = Sample("A", n, 10.0, sigma2, binary=False)
    b = Sample("B", n, 10.0 + d, sigma2, binary=False)
    lam = math.sqrt(2 * sigma2 / (2 * sigma2 + n * tau2)) * math.exp(
        n * n * tau2 * d * d / (4 * sigma2 * (2 * sigma2 + n * tau2))
    )
    assert msprt_p_value(a, b, tau2=tau2) == pytest.approx(min(1.0, 1 / lam), rel=1e-12)


def test_sequential_p_values_are_the_running_minimum() -> None:
    looks = [
        (Sample.from_counts("A", 50, 100), Sample.from_counts("B", 70, 100)),
        (Sample.from_counts("A", 100, 200), Sample.from_counts("B", 125, 200)),
        (Sample.from_counts("A", 150, 300), Sample.from_counts("B", 160, 300)),
    ]
    single = [msprt_p_value(a, b) for a, b in looks]
    assert single[2] > single[1]
    assert sequential_p_values(looks) == [single[0], min(single[:2]), min(single)]


def _simulate(
    p_a: float, p_b: float, experiments: int = 500, step: int = 100, horizon: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Binary A/B tests read after every `step` samples per variant: per experiment,
    whether the always-valid p and whether the naive z-test p ever fell below 0.05."""
    rng = np.random.default_rng(20240601)
    looks = horizon // step
    wins_a = rng.binomial(step, p_a, size=(experiments, looks)).cumsum(axis=1)
    wins_b = rng.binomial(step, p_b, size=(experiments, looks)).cumsum(axis=1)
    seq = np.zeros(experiments, dtype=bool)
    naive = np.zeros(experiments, dtype=bool)
    for e in range(experiments):
        pairs = [
            (
                Sample.from_counts("A", int(wins_a[e, j]), step * (j + 1)),
                Sample.from_counts("B", int(wins_b[e, j]), step * (j + 1)),
            )
            for j in range(looks)
        ]
        seq[e] = sequential_p_values(pairs)[-1] < 0.05
        naive[e] = any(two_proportion_ztest(a, b)[1] < 0.05 for a, b in pairs)
    return seq, naive


@pytest.mark.parametrize("rate", [0.5, 0.2])
def test_peeking_at_the_always_valid_p_keeps_false_positives_under_alpha(rate: float) -> None:
    # Two identical variants, read after every 100 samples per variant up to 2,000.
    seq, naive = _simulate(rate, rate)
    assert seq.mean() <= 0.05
    # The contrast: a fixed-horizon z-test read at the same 20 looks "finds" a winner
    # far more often than 5% of the time, which is why the report uses the mSPRT.
    assert naive.mean() > 0.10


def test_sequential_test_detects_a_real_difference_within_the_horizon() -> None:
    seq, _ = _simulate(0.50, 0.56)
    assert seq.mean() > 0.7


def test_peeking_at_numeric_rewards_keeps_false_positives_under_alpha() -> None:
    rng = np.random.default_rng(11)
    experiments, step, looks = 300, 100, 20
    x = rng.exponential(3.0, size=(2, experiments, looks, step))
    n = step * np.arange(1, looks + 1)
    sums = x.sum(axis=3).cumsum(axis=2)
    squares = (x * x).sum(axis=3).cumsum(axis=2)
    means = sums / n
    variances = (squares - n * means**2) / (n - 1)
    rejected = 0
    for e in range(experiments):
        pairs = [
            (
                Sample("A", int(n[j]), float(means[0, e, j]), float(variances[0, e, j]), False),
                Sample("B", int(n[j]), float(means[1, e, j]), float(variances[1, e, j]), False),
            )
            for j in range(looks)
        ]
        rejected += sequential_p_values(pairs)[-1] < 0.05
    assert rejected / experiments <= 0.05


# ---- verdict -----------------------------------------------------------------------------


def test_verdict_declares_a_clear_winner() -> None:
    v = verdict([Sample.from_counts("A", 500, 1000), Sample.from_counts("B", 600, 1000)])
    assert v.decided
    assert v.winner == "B"
    assert v.more_samples_needed is None
    assert v.message.startswith("B beats A: accuracy 0.600 vs 0.500 (+0.100, 95% CI +0.057")
    assert "always-valid p < 0.001" in v.message
    assert [c.label for c in v.comparisons] == ["B"]
    assert v.p_best[1] > 0.99


def test_verdict_without_enough_evidence_estimates_the_samples_still_needed() -> None:
    samples = [Sample.from_counts("A", 500, 1000), Sample.from_counts("B", 520, 1000)]
    v = verdict(samples)
    assert not v.decided
    assert v.winner is None
    assert v.more_samples_needed is not None
    assert v.more_samples_needed > 0
    assert v.message.startswith("Not enough evidence yet: about ")
    assert "more samples per variant needed to detect the observed difference of +2.0%" in (
        v.message
    )
    # The fixed-horizon estimate: (z_.975 + z_.8)^2 (0.25 + 0.2496) / 0.02^2 - 1000.
    fixed = verdict(samples, sequential=False)
    assert fixed.more_samples_needed == math.ceil(7.848879 * 0.4996 / 0.0004) - 1000
    # Reading early and often costs samples.
    assert v.more_samples_needed > fixed.more_samples_needed


def test_verdict_for_three_variants_corrects_for_multiple_comparisons() -> None:
    a = Sample.from_counts("A", 500, 1000)
    b = Sample.from_counts("B", 573, 1000)  # always-valid p ~ 0.028 against A
    c = Sample.from_counts("C", 570, 1000)  # always-valid p ~ 0.040 against A
    assert verdict([a, b]).winner == "B"
    v = verdict([a, b, c])
    assert not v.decided
    assert len(v.comparisons) == 2
    assert "B vs A" in v.message

    strong = verdict([a, Sample.from_counts("B", 600, 1000), c])
    assert strong.winner == "B"
    assert "(Holm-adjusted over 2 comparisons)" in strong.message


def test_verdict_names_the_control_when_it_beats_every_variant() -> None:
    v = verdict(
        [Sample.from_counts("A", 600, 1000), Sample.from_counts("B", 500, 1000),
         Sample.from_counts("C", 510, 1000)]
    )  # fmt: skip
    assert v.winner == "A"
    assert v.message.startswith("A beats every other variant (closest: C): accuracy 0.600 vs 0.510")


def test_verdict_with_fixed_horizon_uses_the_fixed_test() -> None:
    samples = [Sample.from_counts("A", 874, 1000), Sample.from_counts("B", 912, 1000)]
    assert not verdict(samples).decided
    v = verdict(samples, sequential=False)
    assert v.winner == "B"
    assert "p = 0.006" in v.message
    assert "always-valid" not in v.message


def test_verdict_on_rewards_says_mean_reward() -> None:
    rng = np.random.default_rng(3)
    a = Sample.from_values("A", rng.normal(1.0, 1.0, 2000).tolist())
    b = Sample.from_values("B", rng.normal(1.3, 1.0, 2000).tolist())
    v = verdict([a, b])
    assert v.winner == "B"
    assert "mean reward" in v.message
    assert v.comparisons[0].test == "Welch t"


def test_verdict_says_when_no_difference_matters() -> None:
    samples = [Sample.from_counts("A", 5000, 10000), Sample.from_counts("B", 5010, 10000)]
    v = verdict(samples, mde=0.03)
    assert not v.decided
    assert v.more_samples_needed is None
    assert v.message.startswith("No difference large enough to matter: B - A = +0.001")


def test_verdict_needs_data_in_every_variant() -> None:
    v = verdict([Sample.from_counts("A", 1, 1), Sample.from_counts("B", 30, 50)])
    assert not v.decided
    assert v.message == "Not enough data yet: every variant needs at least 2 outcomes; A has 1."
    with pytest.raises(InvalidArgumentError, match="at least one other variant"):
        verdict([Sample.from_counts("A", 1, 2)])


def test_verdict_acts_on_the_running_minimum_of_earlier_looks() -> None:
    early = (Sample.from_counts("A", 500, 1000), Sample.from_counts("B", 600, 1000))
    now = [Sample.from_counts("A", 1000, 2000), Sample.from_counts("B", 1090, 2000)]
    history = sequential_p_values([early, (now[0], now[1])])
    assert not verdict(now).decided
    v = verdict(now, always_valid_p=[history[-1]])
    assert v.winner == "B"
    assert v.comparisons[0].always_valid_p == history[-1] < 0.05


def test_an_mde_too_small_to_plan_for_is_refused_not_a_crash() -> None:
    # 5e-324 squared underflows to 0: the plan once divided by it (a fuzzer found it).
    for mde in (5e-324, 1e-9):
        with pytest.raises(InvalidArgumentError, match="too small to plan for"):
            sample_size(0.5, mde)
