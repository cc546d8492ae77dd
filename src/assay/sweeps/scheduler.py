"""The sweep loop: ask Optuna for trials, run them through an executor, record them.

A `Scheduler` drives one claimed sweep to its end. It launches trials while the rules let
it (the trial count, `--parallel`, `--timeout`, `--budget`, a grid with no point left),
tries the params of trials an earlier driver left interrupted first, tells Optuna each
trial's result, and stops trials the pruner gives up on. Every trial is recorded as it
starts and ends, so a sweep that stops halfway resumes from its tables.

Everything that takes time comes in through two injected things: the `Executor` that runs
the trials' runs, and the `Clock` the limits are measured by. The real ones are runner
processes (or Ray) and the system clock; tests pass a fake of each, and the rules are
checked in milliseconds (tests/sweeps/test_scheduler.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from assay.errors import NotFoundError
from assay.runs.executor import Done, Executor, Job
from assay.store.db import utcnow
from assay.sweeps import study as studies
from assay.sweeps.entities import (
    FINISHED_STATES,
    Objective,
    Sweep,
    SweepStatus,
    Trial,
    TrialState,
)
from assay.sweeps.objectives import best_trial, objective_values, pareto_front
from assay.sweeps.repository import SweepRepository
from assay.sweeps.space import merge, parse_space

if TYPE_CHECKING:
    from assay.runs.service import RunService
    from assay.sweeps.service import SweepService


class Clock(Protocol):
    """What the scheduler (and a server's sweep drivers) tell the time by."""

    def monotonic(self) -> float:
        """Seconds since some fixed point, never going back: what limits are measured in."""
        ...

    def now(self) -> datetime:
        """The wall time in UTC: what a trial's start and end are recorded as."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return utcnow()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()

# How often the loop looks at running trials' learning curves when it may prune one,
# and otherwise how long it waits for a trial to end before looking again.
PRUNE_POLL_S = 0.25
IDLE_POLL_S = 1.0


@dataclass
class Update:
    """What a watcher is told as the sweep goes: a trial started or ended."""

    kind: str  # "started" | "ended"
    trial: Trial
    sweep: Sweep
    running: int
    best: Trial | None


@dataclass
class _Live:
    trial: Any  # optuna.trial.Trial
    number: int
    run_id: str
    started_at: datetime
    reported: set[int] = field(default_factory=set)
    stop_requested: bool = False


class Scheduler:
    """Drives one claimed sweep's trials until it has `trials` finished ones (or a limit,
    a failure or an interruption stops it). Use it once: `run()` returns the ended sweep."""

    def __init__(
        self,
        sweeps: SweepService,
        sweep: Sweep,
        executor: Executor,
        *,
        clock: Clock = SYSTEM_CLOCK,
        watch: Callable[[Update], None] | None = None,
    ) -> None:
        self.db = sweeps.db
        self.runs = sweeps.runs
        self.pipelines = sweeps.pipelines
        self.registry = sweeps.registry
        self.sweep = sweep
        self.executor = executor
        self.clock = clock
        self.watch = watch
        self.space = parse_space(sweep.space)
        self.optuna = studies.optuna_module()
        self.study = studies.make_study(
            sweep.objectives,
            sampler=sweep.sampler,
            pruner=sweep.pruner,
            seed=sweep.seed + len(sweep.trial_list),
            parallel=sweep.parallel,
            trials=sweep.trial_list,
        )
        # Trials an earlier driver left interrupted: their params are tried again first.
        self.retry = [t for t in sweep.trial_list if t.state == "interrupted"]
        self.finished = [t for t in sweep.trial_list if t.state in FINISHED_STATES]
        self.next_number = max((t.number for t in sweep.trial_list), default=-1) + 1
        self.live: dict[str, _Live] = {}
        self.started = clock.monotonic()
        self.stop_cause: str | None = None  # a limit stopped it: the sweep ends "stopped"
        self.failure: str | None = None  # no trial can succeed: the sweep ends "failed"
        self.prune_key = sweep.prune_on or sweep.objectives[0].metric
        self.pruning = sweep.pruner != "none" and not sweep.multi
        self.poll_s = PRUNE_POLL_S if self.pruning else IDLE_POLL_S
        # What finished trials cost: the estimate for the next one.
        self.costs: dict[int, float] = {}
        if sweep.budget is not None:
            for t in self.finished:
                cost = _run_cost(self.runs, t.run_id)
                if cost is not None:
                    self.costs[t.number] = cost

    def run(self) -> Sweep:
        """Launch, wait, record, prune, until nothing is running and nothing may start.

        Any exception (KeyboardInterrupt: Ctrl-C, or a driver's stop signal) stops the
        running trials, records them and the sweep as interrupted, and is re-raised.
        """
        try:
            while True:
                while len(self.live) < self.executor.slots and self.may_launch():
                    self.launch()
                if not self.live:
                    break
                for done in self.executor.wait(self.poll_s):
                    self.end(done)
                if self.pruning and self.live:
                    self.prune()
        except BaseException:
            self.executor.close(cancel=True)
            self._interrupted()
            raise
        self.executor.close()
        return self._conclude()

    # ---- the rules ---------------------------------------------------------------------------

    def estimate(self, what: str) -> float | None:
        """What the next trial will take ("seconds") or cost ("cost"): the dearest of the
        recent trials, with a margin. A limit is a promise not to overrun, so it errs high."""
        recent = self.finished[-20:]
        seen = [
            v
            for v in (t.seconds if what == "seconds" else self.costs.get(t.number) for t in recent)
            if v
        ]
        return max(seen) * 1.1 if seen else None

    def may_launch(self) -> bool:
        """Whether another trial may start now; records why the sweep stops when a limit
        says it must."""
        sweep = self.sweep
        if self.stop_cause or self.failure:
            return False
        if len(self.finished) + len(self.live) >= sweep.trials:
            return False
        if getattr(self.study.sampler, "exhausted", False):
            self.stop_cause = "every point of the grid was tried"
            return False
        if sweep.timeout_s is not None:
            took = self.estimate("seconds") or 0.0
            if self.clock.monotonic() - self.started + took > sweep.timeout_s:
                self.stop_cause = f"the next trial would overrun --timeout {sweep.timeout_s:g} s"
                return False
        if sweep.budget is not None:
            cost = self.estimate("cost")
            spent = sum(self.costs.values())
            if cost is None:
                if self.finished or self.live:
                    return False  # no estimate yet: one trial at a time until there is
            elif spent + (len(self.live) + 1) * cost > sweep.budget:
                self.stop_cause = (
                    f"the next trial would overrun --budget {sweep.budget:g} "
                    f"(spent {spent:.6g}, about {cost:.3g} a trial)"
                )
                return False
        return True

    # ---- the steps ---------------------------------------------------------------------------

    def launch(self) -> None:
        """Ask Optuna for a trial, queue its run, record it, and submit it."""
        sweep = self.sweep
        if self.retry:
            old = self.retry.pop(0)
            self.study.enqueue_trial(old.params, skip_if_exists=False)
            with self.db.session() as conn:
                SweepRepository(conn).update_trial(sweep.id, old.number, state="retried")
        trial = self.study.ask()
        point = self.space.sample(trial)
        number = self.next_number
        self.next_number += 1
        run_id = self.runs.queue(
            sweep.pipeline_ref,
            data=sweep.data_ref,
            params=merge(sweep.base_params, point),
            experiment=sweep.name,
            name=f"{sweep.name}-{number}",
            force=True,
            extra={"sweep": sweep.name, "trial": number},
        )
        row: dict[str, Any] = {
            "number": number,
            "state": "running",
            "run_id": run_id,
            "params": dict(trial.params),
            "distributions": {
                k: self.optuna.distributions.distribution_to_json(d)
                for k, d in trial.distributions.items()
            },
            "started_at": self.clock.now(),
        }
        # Live before it is recorded: Ctrl-C between the two would otherwise leave a
        # trial recorded running that `_interrupted` does not know of (resume then
        # settles it, but the sweep read as interrupted would not say so).
        self.live[run_id] = _Live(trial, number, run_id, row["started_at"])
        with self.db.session() as conn:
            SweepRepository(conn).add_trial(sweep.id, row)
        self.executor.submit(Job(run_id, register=sweep.register == "all"))
        self._tell_watcher("started", _row_trial(row))

    def end(self, done: Done) -> None:
        """Record a trial whose run ended, and tell Optuna how it went."""
        sweep = self.sweep
        item = self.live.pop(done.run_id)
        if done.problem:
            self.runs.abandon(done.run_id, "failed", done.problem)
        run = self.runs.by_id(done.run_id)
        intermediate = {
            s: v for s, v in self.runs.steps_of(run.id, self.prune_key) if v is not None
        }
        values: list[float] | None = None
        error = None
        state: TrialState
        if run.status == "succeeded":
            values, missing = objective_values(run, sweep.objectives)
            if missing:
                state = "fail"
                error = (
                    f"The run logged no {missing!r}; it logged: "
                    f"{', '.join(sorted(run.metrics)) or 'no metrics'}."
                )
                if not run.metrics and not self.pipelines.resolve(sweep.pipeline_ref).metrics_step:
                    error += (
                        f" Pipeline {sweep.pipeline_ref} has no metrics step: name the step "
                        "returning the metrics `evaluate`, or pass "
                        '`Pipeline(..., metrics="STEP")`.'
                    )
                if not any(t.state == "complete" for t in self.finished):
                    # The objective is named wrong: every other trial would fail alike.
                    self.failure = f"Trial {item.number}: {error}"
                    if run.metrics:
                        self.failure += " Check --objective."
            else:
                state = "complete"
        elif run.status == "pruned":
            state = "pruned"
        else:
            state = "fail"
            # A run's error says what failed on its first line (runs/failures.py).
            error = (run.error or run.status).strip().splitlines()[0][:500]
        trial_state = self.optuna.trial.TrialState
        if state == "complete":
            self.study.tell(item.trial, values)
        elif state == "pruned":
            self.study.tell(item.trial, state=trial_state.PRUNED)
        else:
            self.study.tell(item.trial, state=trial_state.FAIL)
        ended = self.clock.now()
        with self.db.session() as conn:
            SweepRepository(conn).update_trial(
                sweep.id,
                item.number,
                state=state,
                values=values,
                intermediate={str(k): v for k, v in intermediate.items()} or None,
                error=error,
                ended_at=ended,
            )
        trial = Trial(
            number=item.number,
            state=state,
            run_id=run.id,
            params=dict(item.trial.params),
            distributions={},
            values=values,
            intermediate=intermediate,
            error=error,
            started_at=item.started_at,
            ended_at=ended,
        )
        cost = (run.resources or {}).get("cost")
        if isinstance(cost, int | float):
            self.costs[item.number] = float(cost)
        self.finished.append(trial)
        self._tell_watcher("ended", trial)

    def prune(self) -> None:
        """Report running trials' new intermediate values to Optuna; ask the runs the
        pruner gives up on to stop (their runner ends them "pruned")."""
        for item in self.live.values():
            if item.stop_requested:
                continue
            for step, value in self.runs.steps_of(item.run_id, self.prune_key):
                if step in item.reported or value is None:
                    continue
                item.trial.report(value, step)
                item.reported.add(step)
            if item.reported and item.trial.should_prune():
                self.runs.request_stop(item.run_id, "pruned")
                item.stop_requested = True

    def _tell_watcher(self, kind: str, trial: Trial) -> None:
        if self.watch is not None:
            best = _best(self.study, self.finished)
            self.watch(Update(kind, trial, self.sweep, len(self.live), best))

    # ---- the end -----------------------------------------------------------------------------

    def _interrupted(self) -> None:
        """The running trials' runs are killed; they and the sweep are interrupted, for
        `resume` to try their params again."""
        sweep, live, ended = self.sweep, list(self.live.values()), self.clock.now()
        for item in live:
            self.runs.abandon(item.run_id, "killed", "The sweep was interrupted.")
        with self.db.session() as conn:
            repo = SweepRepository(conn)
            for item in live:
                repo.update_trial(sweep.id, item.number, state="interrupted", ended_at=ended)
            repo.update(sweep.id, status="interrupted", pid=None, ended_at=ended)

    def _conclude(self) -> Sweep:
        """Record the sweep's end: its best runs (the Pareto front of several objectives),
        their models registered as `--register` says, and why it stopped."""
        sweep = self.sweep
        best_runs: list[str] = []
        with self.db.read() as conn:
            trials = SweepRepository(conn).trials(sweep.id)
        complete = [t for t in trials if t.state == "complete" and t.values]
        if complete:
            if sweep.multi:
                front = pareto_front(complete, sweep.objectives)
                best_runs = [t.run_id for t in front if t.run_id]
            else:
                best = best_trial(complete, sweep.objectives[0])
                if best is not None and best.run_id:
                    best_runs = [best.run_id]
        models: list[str] = []
        if sweep.register != "none":
            from assay.registry.service import NotAModelError

            for run_id in best_runs:
                if not self.runs.get(run_id).model:
                    continue  # the pipeline trains nothing to register
                try:
                    models.append(self.registry.register_run(run_id).ref)
                except NotAModelError:
                    continue
        status: SweepStatus = (
            "failed" if self.failure else ("stopped" if self.stop_cause else "finished")
        )
        with self.db.session() as conn:
            SweepRepository(conn).update(
                sweep.id,
                status=status,
                stop_cause=self.failure or self.stop_cause,
                best_runs=best_runs,
                best_models=models,
                pid=None,
                ended_at=self.clock.now(),
            )
        with self.db.read() as conn:
            return SweepRepository(conn).load(sweep.name)


def _best(study: Any, finished: list[Trial]) -> Trial | None:
    if len(study.directions) != 1:
        return None
    from optuna.study import StudyDirection

    goal = Objective(
        "", "maximize" if study.directions[0] == StudyDirection.MAXIMIZE else "minimize"
    )
    return best_trial(finished, goal)


def _run_cost(runs: RunService, run_id: str | None) -> float | None:
    if not run_id:
        return None
    try:
        run = runs.get(run_id)
    except NotFoundError:
        return None
    value = (run.resources or {}).get("cost")
    return float(value) if isinstance(value, int | float) else None


def _row_trial(row: dict[str, Any]) -> Trial:
    return Trial(
        number=row["number"],
        state=row["state"],
        run_id=row["run_id"],
        params=row["params"],
        distributions=row["distributions"],
        values=None,
        intermediate={},
        error=None,
        started_at=row["started_at"],
        ended_at=None,
    )


__all__ = ["SYSTEM_CLOCK", "Clock", "Scheduler", "SystemClock", "Update"]
