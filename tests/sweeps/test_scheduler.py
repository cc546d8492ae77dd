"""The sweep loop's rules with a fake clock and fake runners: trials, parallel, timeout,
budget, failures, pruning, interruption and resume, each in milliseconds.

The sweep, its trials and their runs live in a real workspace (both backends); only the
runners and time are fakes (tests/sweeps/fakes.py). The same loop with real runner
processes is tested end to end in tests/cli/test_sweeps_cli.py.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from assay.sweeps.entities import Trial
from assay.sweeps.scheduler import Update
from assay.workspace import Workspace

from .fakes import FakeClock, FakeRunners, Script, loss, make_sweep


def most_at_once(trials: tuple[Trial, ...]) -> int:
    """The most trials whose recorded [start, end) overlap."""
    spans = [(t.started_at, t.ended_at) for t in trials if t.ended_at is not None]
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_a_sweep_runs_its_number_of_trials_one_after_another(ws: Workspace, tmp_path: Path) -> None:
    sweep = make_sweep(ws, tmp_path, trials=5)
    clock = FakeClock()
    runners = FakeRunners(ws, clock, loss(seconds=2.0))
    updates: list[Update] = []
    ended = ws.sweeps.run(sweep.name, runners, clock=clock, watch=updates.append)
    assert ended.status == "finished"
    assert ended.stop_cause is None
    assert [t.state for t in ended.trial_list] == ["complete"] * 5
    assert len(runners.submitted) == 5
    assert runners.closed is False
    assert clock.t == 10.0
    assert clock.slept == []
    assert all(t.seconds == 2.0 for t in ended.trial_list)
    best = min(ended.trial_list, key=lambda t: (t.values or [0.0])[0])
    assert ended.best_runs == (best.run_id,)
    assert [u.kind for u in updates] == ["started", "ended"] * 5
    assert updates[-1].best is not None
    assert updates[-1].best.number == best.number
    runs = [ws.runs.get(t.run_id or "") for t in ended.trial_list]
    assert {r.status for r in runs} == {"succeeded"}
    assert {r.experiment for r in runs} == {"s"}
    assert ended.pid is None


def test_no_more_trials_run_at_once_than_parallel_allows(ws: Workspace, tmp_path: Path) -> None:
    sweep = make_sweep(ws, tmp_path, trials=7, parallel=3)
    clock = FakeClock()

    def uneven(params: dict[str, Any]) -> Script:
        return Script(seconds=1.0 + params["x"], metrics={"loss": params["x"]})

    runners = FakeRunners(ws, clock, uneven, slots=sweep.parallel)
    ended = ws.sweeps.run(sweep.name, runners, clock=clock)
    assert ended.status == "finished"
    assert ended.counted() == 7
    assert runners.peak == 3  # FakeRunners.submit also fails past its three slots
    assert most_at_once(ended.trial_list) == 3


def test_a_timeout_stops_launching_before_the_next_trial_would_overrun_it(
    ws: Workspace, tmp_path: Path
) -> None:
    sweep = make_sweep(ws, tmp_path, trials=40, parallel=2, timeout_s=10.0)
    clock = FakeClock()
    runners = FakeRunners(ws, clock, loss(seconds=3.0), slots=2)
    ended = ws.sweeps.run(sweep.name, runners, clock=clock)
    # 0-3 s, 3-6 s, 6-9 s two at a time; at 9 s a trial of about 3.3 s would end after 10 s.
    assert ended.status == "stopped"
    assert ended.stop_cause == "the next trial would overrun --timeout 10 s"
    assert [t.state for t in ended.trial_list] == ["complete"] * 6
    # The trials running when the limit was seen ran to their end, within it.
    assert clock.t == 9.0
    assert runners.closed is False


def test_a_budget_stops_before_the_next_trial_would_overrun_it(
    ws: Workspace, tmp_path: Path
) -> None:
    sweep = make_sweep(ws, tmp_path, trials=40, parallel=2, budget=9.0)
    clock = FakeClock()
    runners = FakeRunners(ws, clock, loss(seconds=2.0), slots=2, cost_per_s=1.0)
    ended = ws.sweeps.run(sweep.name, runners, clock=clock)
    assert ended.status == "stopped"
    assert ended.stop_cause == (
        "the next trial would overrun --budget 9 (spent 6, about 2.2 a trial)"
    )
    costs = [ws.runs.get(t.run_id or "").resources["cost"] for t in ended.trial_list]
    assert costs == [2.0] * 4
    assert sum(costs) <= 9.0
    # Before any trial has cost something, the first runs alone: no estimate yet.
    first = ended.trial_list[0]
    assert all(t.started_at >= (first.ended_at or first.started_at) for t in ended.trial_list[1:])


def test_a_failed_trial_is_recorded_counts_toward_the_trials_and_the_sweep_goes_on(
    ws: Workspace, tmp_path: Path
) -> None:
    sweep = make_sweep(ws, tmp_path, trials=5)
    clock = FakeClock()
    calls: list[int] = []

    def second_fails_third_dies(params: dict[str, Any]) -> Script:
        calls.append(1)
        if len(calls) == 2:
            return Script(error="ValueError: x is too large\n\nTraceback (most recent call last):")
        if len(calls) == 3:
            return Script(problem="Its runner died (signal 9).")
        return loss()(params)

    runners = FakeRunners(ws, clock, second_fails_third_dies)
    ended = ws.sweeps.run(sweep.name, runners, clock=clock)
    assert ended.status == "finished"
    assert ended.counted() == 5
    states = [t.state for t in ended.trial_list]
    assert states == ["complete", "fail", "fail", "complete", "complete"]
    failed, died = ended.trial_list[1], ended.trial_list[2]
    assert failed.error == "ValueError: x is too large"  # the first line of the run's error
    assert died.error == "Its runner died (signal 9)."
    run = ws.runs.get(died.run_id or "")
    assert run.status == "failed"
    assert run.error == "Its runner died (signal 9)."
    # A failed trial is not tried again: it counts, like a complete one, toward --trials.
    assert len(runners.submitted) == 5
    assert "retried" not in {t.state for t in ended.trial_list}


def test_a_first_trial_without_the_objective_fails_the_sweep_at_once(
    ws: Workspace, tmp_path: Path
) -> None:
    sweep = make_sweep(ws, tmp_path, trials=5)
    clock = FakeClock()
    runners = FakeRunners(ws, clock, lambda params: Script(metrics={"acc": 0.5}))
    ended = ws.sweeps.run(sweep.name, runners, clock=clock)
    assert ended.status == "failed"
    assert ended.stop_cause == (
        "Trial 0: The run logged no 'loss'; it logged: acc. Check --objective."
    )
    assert len(runners.submitted) == 1  # every other trial would fail alike


def test_pruning_stops_hopeless_trials_early(ws: Workspace, tmp_path: Path) -> None:
    sweep = make_sweep(
        ws, tmp_path, trials=12, objectives=["gain:max"], prune_on="partial", sampler="random",
        seed=5, space_text="x: {float: [0, 10]}\n",
    )  # fmt: skip
    clock = FakeClock()

    def curve(params: dict[str, Any]) -> Script:
        x = params["x"]
        return Script(seconds=10.0, curve=[x * s / 10 for s in range(1, 11)], metrics={"gain": x})

    runners = FakeRunners(ws, clock, curve)
    ended = ws.sweeps.run(sweep.name, runners, clock=clock)
    assert ended.status == "finished"
    assert ended.counted() == 12
    pruned = [t for t in ended.trial_list if t.state == "pruned"]
    complete = [t for t in ended.trial_list if t.state == "complete"]
    assert pruned, [t.state for t in ended.trial_list]
    assert all(t.number >= 5 for t in pruned)  # the median pruner waits for five trials
    for t in pruned:
        assert ws.runs.get(t.run_id or "").status == "pruned"
        assert 1 <= len(t.intermediate) < 10  # stopped before its last step
        before = [c.params["x"] for c in complete if c.number < t.number]
        assert t.params["x"] < statistics.median(before)  # only below-median curves
    assert all(len(t.intermediate) == 10 for t in complete)


def test_a_stop_request_interrupts_the_running_trials(ws: Workspace, tmp_path: Path) -> None:
    sweep = make_sweep(ws, tmp_path, trials=10, parallel=2)
    clock = FakeClock()
    runners = FakeRunners(ws, clock, loss(), slots=2, interrupt_after=1)
    with pytest.raises(KeyboardInterrupt):
        ws.sweeps.run(sweep.name, runners, clock=clock)
    assert runners.closed is True  # closed with cancel: the runners stop their jobs
    stopped = ws.sweeps.get(sweep.name)
    assert stopped.status == "interrupted"
    assert stopped.pid is None
    assert [t.state for t in stopped.trial_list] == ["complete", "interrupted", "interrupted"]
    for t in stopped.trial_list[1:]:
        run = ws.runs.get(t.run_id or "")
        assert run.status == "killed"
        assert run.error == "The sweep was interrupted."


def test_a_resumed_sweep_keeps_its_trials_retries_interrupted_ones_and_keeps_to_its_budget(
    ws: Workspace, tmp_path: Path
) -> None:
    sweep = make_sweep(ws, tmp_path, trials=40, budget=9.0)
    clock = FakeClock()
    first = FakeRunners(ws, clock, loss(), cost_per_s=1.0, interrupt_after=2)
    with pytest.raises(KeyboardInterrupt):
        ws.sweeps.run(sweep.name, first, clock=clock)
    cut = ws.sweeps.get(sweep.name)
    assert [t.state for t in cut.trial_list] == ["complete", "complete", "interrupted"]
    # A new driver (after a restart) picks up from what the store recorded.
    again = FakeRunners(ws, clock, loss(), cost_per_s=1.0)
    ended = ws.sweeps.run(sweep.name, again, clock=clock)
    states = [t.state for t in ended.trial_list]
    assert states == ["complete", "complete", "retried", "complete", "complete"]
    assert not {t.run_id for t in cut.trial_list} & set(again.submitted)  # none run twice
    assert ended.trial_list[3].params == cut.trial_list[2].params  # its params, first
    # The budget counts what the first driver spent: 4 of 9, then two trials more.
    assert ended.status == "stopped"
    assert ended.stop_cause == (
        "the next trial would overrun --budget 9 (spent 8, about 2.2 a trial)"
    )
