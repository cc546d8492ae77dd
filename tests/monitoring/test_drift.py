"""The drift statistics on seeded simulations: they find a real shift (power) and stay
quiet without one (false alarms at most alpha), and the config that tunes them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assay.errors import InvalidArgumentError
from assay.monitoring.config import load_config
from assay.monitoring.drift import Reference, assess, compare, psi
from assay.monitoring.entities import MonitorConfig, Window

TRAINING_ROWS = 5_000
LIVE_ROWS = 1_000
SIMULATIONS = 100
CONFIG = MonitorConfig(alpha=0.05)


def _flagged(refs: list[Reference], live: list[np.ndarray]) -> list[str]:
    """Each feature's state after one check of `live` against `refs`."""
    found = [compare(r, v, histogram=False) for r, v in zip(refs, live, strict=True)]
    return [f["state"] for f in assess(found, CONFIG)]


def test_a_half_sd_shift_of_one_numeric_feature_is_flagged_in_95_of_100_simulations() -> None:
    rng = np.random.default_rng(11)
    training = rng.normal(size=(TRAINING_ROWS, 5))
    refs = [Reference.of(f"x{j}", training[:, j], "numeric") for j in range(5)]
    hits = 0
    for _ in range(SIMULATIONS):
        live = rng.normal(size=(LIVE_ROWS, 5))
        live[:, 2] += 0.5  # half a standard deviation
        hits += _flagged(refs, list(live.T))[2] == "drift"
    assert hits >= 95, hits


def test_a_ten_point_change_in_a_categorys_share_is_flagged_in_95_of_100_simulations() -> None:
    rng = np.random.default_rng(12)
    plans = np.array(["basic", "pro", "team"])
    training = rng.choice(plans, size=TRAINING_ROWS, p=[0.5, 0.3, 0.2])
    numbers = rng.normal(size=(TRAINING_ROWS, 4))
    refs = [Reference.of("plan", training, "categorical")] + [
        Reference.of(f"x{j}", numbers[:, j], "numeric") for j in range(4)
    ]
    hits = 0
    for _ in range(SIMULATIONS):
        live_plans = rng.choice(plans, size=LIVE_ROWS, p=[0.4, 0.4, 0.2])  # pro +10 points
        live = [live_plans, *rng.normal(size=(LIVE_ROWS, 4)).T]
        hits += _flagged(refs, live)[0] == "drift"
    assert hits >= 95, hits


def test_without_drift_the_share_of_checks_flagging_any_of_20_features_is_at_most_alpha() -> None:
    rng = np.random.default_rng(13)
    training = rng.normal(size=(TRAINING_ROWS, 16))
    cats = rng.choice(list("abcde"), size=(TRAINING_ROWS, 4), p=[0.4, 0.3, 0.15, 0.1, 0.05])
    refs = [Reference.of(f"x{j}", training[:, j], "numeric") for j in range(16)] + [
        Reference.of(f"c{j}", cats[:, j], "categorical") for j in range(4)
    ]
    alarms = 0
    for _ in range(SIMULATIONS):
        numbers = rng.normal(size=(LIVE_ROWS, 16))
        letters = rng.choice(list("abcde"), size=(LIVE_ROWS, 4), p=[0.4, 0.3, 0.15, 0.1, 0.05])
        states = _flagged(refs, [*numbers.T, *letters.T])
        alarms += any(s != "ok" for s in states)
    # Holm keeps the family-wise error rate at alpha; KS and chi-square are, if anything,
    # conservative, and the PSI and range rules stay quiet at these sample sizes.
    assert alarms / SIMULATIONS <= CONFIG.alpha, alarms


def test_psi_is_the_population_stability_index() -> None:
    expected = np.array([0.5, 0.3, 0.2])
    actual = np.array([0.4, 0.4, 0.2])
    by_hand = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.4 - 0.3) * math.log(0.4 / 0.3)
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(expected, expected) == 0.0
    # An empty bin is floored, so a category training never saw keeps the index finite.
    assert math.isfinite(psi(np.array([1.0, 0.0]), np.array([0.5, 0.5])))


def test_new_categories_are_named_and_values_outside_training_range_counted() -> None:
    rng = np.random.default_rng(14)
    plans = Reference.of("plan", rng.choice(["basic", "pro"], size=2000), "categorical")
    live = np.array(["basic"] * 900 + ["pro"] * 60 + ["enterprise"] * 40, dtype=object)
    [found] = assess([compare(plans, live)], CONFIG)
    assert found["new_categories"] == ["enterprise"]
    assert found["out_of_range"] == pytest.approx(0.04)
    assert found["state"] == "drift"
    assert any("enterprise" in r for r in found["reasons"])
    ages = Reference.of("age", rng.uniform(18, 80, size=2000), "numeric")
    values = np.clip(rng.uniform(18, 80, size=1000), ages.low, ages.high)
    values[:30] = 95.0  # 3% of live rows older than anyone in training
    [age] = assess([compare(ages, values)], MonitorConfig(alpha=1e-12))
    assert age["out_of_range"] == pytest.approx(0.03)
    assert age["state"] == "warning"
    assert "3.0% out of range" in age["reasons"]


def test_a_rise_in_missing_values_is_a_warning() -> None:
    rng = np.random.default_rng(15)
    ref = Reference.of("income", rng.normal(50, 10, size=3000), "numeric")
    live = rng.normal(50, 10, size=1000)
    live[:80] = np.nan
    [found] = assess([compare(ref, live)], CONFIG)
    assert found["missing_live"] == pytest.approx(0.08)
    assert found["missing_reference"] == 0.0
    assert found["state"] == "warning"
    assert found["reasons"] == ["missing 8.0% (training 0.0%)"]


def test_per_feature_thresholds_and_ignored_features_come_from_the_config() -> None:
    config = load_config(
        """
alpha: 0.01
min_rows: 50
window: {last: 1h}
schedule: 15m
thresholds: {psi: {warning: 0.2, drift: 0.5}}
features:
  tenure: {psi: {warning: 0.05, drift: 0.1}}
  customer_id: {ignore: true}
performance: {min: 0.9}
webhook: {url: "https://hooks.example.com/x", timeout_s: 2}
on_drift: {snapshot: churn-live, challenge: true}
""",
        "monitor.yaml",
    )
    assert (config.alpha, config.min_rows, config.schedule_s) == (0.01, 50, 900.0)
    assert config.window == Window(seconds=3600.0)
    assert config.for_feature("tenure").psi_drift == 0.1
    assert config.for_feature("plan").psi_drift == 0.5
    assert config.for_feature("customer_id").ignore
    assert config.min_performance == 0.9
    assert config.webhook is not None
    assert config.webhook.timeout_s == 2
    assert config.on_drift is not None
    assert config.on_drift.challenge == "weighted:50,50"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("alpah: 0.05", "unknown key 'alpah'. Did you mean 'alpha'?"),
        ("alpha: 1.5", "alpha must be between 0 and 1"),
        ("thresholds: {psi: {warning: 0.3, drift: 0.2}}", "needs 0 <= min <= warning <= drift"),
        ("window: {last: soon}", "is not a duration"),
        ("schedule: often", "is not a duration"),
        ("webhook: {url: ftp://x}", "must be an http:// or https:// URL"),
        ("on_drift: {retrain: true}", "needs `snapshot: DATASET`"),
        (
            "on_drift: {snapshot: live, challenge: shadow:champ}",
            "on_drift.challenge is not a challenge (Shadow primary 'champ' is not one of the "
            "variants (champion, challenger)",
        ),
        ("on_drift: {snapshot: live, challenge: coin-toss}", "or `shadow` for shadow:champion"),
        ("features: [a, b]", "must map feature names"),
        ("alpha: [", "is not valid YAML"),
    ],
)
def test_a_bad_config_names_the_key_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"monitor\.yaml") as caught:
        load_config(text, "monitor.yaml")
    assert problem in caught.value.message


@pytest.mark.parametrize(
    ("challenge", "strategy"),
    [
        ("false", None),
        ("true", "weighted:50,50"),
        ("shadow", "shadow:champion"),
        ("shadow:challenger", "shadow:challenger"),
        ("weighted:80,20", "weighted:80,20"),
    ],
)
def test_on_drift_challenges_with_a_strategy_or_a_shadow(
    challenge: str, strategy: str | None
) -> None:
    config = load_config(f"on_drift:\n  snapshot: live\n  challenge: {challenge}\n")
    assert config.on_drift is not None
    assert config.on_drift.challenge == strategy


def test_windows_are_requests_durations_or_time_ranges() -> None:
    assert Window.parse("500") == Window(requests=500)
    assert Window.parse("90m").seconds == 5400.0
    ranged = Window.parse(None, "2026-05-01T10:00", "2026-05-01T11:00Z")
    assert ranged.start is not None
    assert ranged.start.tzinfo is not None
    assert ranged.describe() == "from 2026-05-01T10:00:00+00:00 to 2026-05-01T11:00:00+00:00"
    for args, problem in (
        (("0",), "at least 1 request"),
        (("1h", "2026-05-01"), "either --last or --from"),
        ((None, "2026-05-02", "2026-05-01"), "end must be after its start"),
        ((None, "yesterday"), "is not a time"),
    ):
        with pytest.raises(InvalidArgumentError, match=problem):
            Window.parse(*args)


def test_a_significant_but_negligible_shift_in_a_large_window_is_not_drift() -> None:
    rng = np.random.default_rng(16)
    ref = Reference.of("x", rng.normal(size=20_000), "numeric")
    [found] = assess([compare(ref, rng.normal(size=100_000) + 0.05)], CONFIG)
    assert found["p_adjusted"] is not None
    assert found["p_adjusted"] < CONFIG.alpha
    assert found["state"] == "ok"
    assert "negligible" in found["reasons"][0]


def test_a_p_value_that_underflows_to_zero_is_the_strongest_evidence_not_none() -> None:
    rng = np.random.default_rng(17)
    ref = Reference.of("x", rng.normal(size=100_000), "numeric")
    [found] = assess([compare(ref, rng.normal(size=100_000) + 0.5, histogram=False)], CONFIG)
    assert found["p_value"] == 0.0  # KS at this size: below the smallest float
    assert found["p_adjusted"] == 0.0
    assert found["state"] == "drift"
