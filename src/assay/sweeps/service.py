"""The sweeps' use cases: define a sweep, drive its trials through an executor, read it back.

Each trial is an ordinary run (its own params version, metrics, logs, model),
in an experiment named after the sweep. Optuna proposes the params and decides
on pruning; the executor runs the trials; the sweep's tables record every trial
as it starts and ends, so an interrupted sweep resumes from them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.data.entities import check_name
from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.limits import check_document
from assay.runs.entities import Run, lower_is_better
from assay.runs.executor import Done, Executor, Job
from assay.runs.params import load_params
from assay.runs.service import looks_like_path
from assay.store.db import Database, utcnow
from assay.store.objects import hash_bytes
from assay.sweeps import api
from assay.sweeps import study as studies
from assay.sweeps.entities import FINISHED_STATES, Objective, Sweep, Trial
from assay.sweeps.repository import SweepRepository
from assay.sweeps.space import (
    check_names,
    load_space,
    merge,
    params_read,
    parse_document,
    parse_space,
)

if TYPE_CHECKING:
    from assay.data.service import DataService
    from assay.pipelines.entities import PipelineVersion
    from assay.pipelines.service import PipelineService
    from assay.registry.service import RegistryService
    from assay.runs.service import RunService

# Quantities a run has besides its metrics: its resources.
RESOURCE_OBJECTIVES = {"cost": "cost", "wall_s": "wall_s"}
REGISTER = ("best", "all", "none")
_HOST = socket.gethostname()


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


class SweepService:
    def __init__(
        self,
        db: Database,
        runs: RunService,
        pipelines: PipelineService,
        data: DataService,
        registry: RegistryService,
    ) -> None:
        self.db = db
        self.runs = runs
        self.pipelines = pipelines
        self.data = data
        self.registry = registry

    # ---- defining ----------------------------------------------------------------------------

    def create(
        self,
        pipeline: str,
        *,
        data: str,
        trials: int,
        objectives: Sequence[str],
        space_file: Path | None = None,
        space_text: str | None = None,
        space_name: str = api.SPACE_NAME,
        params_file: Path | None = None,
        params: Mapping[str, Any] | None = None,
        direction: str | None = None,
        parallel: int = api.PARALLEL,
        sampler: str = api.SAMPLER,
        pruner: str = api.PRUNER,
        prune_on: str | None = None,
        seed: int = api.SEED,
        timeout_s: float | None = None,
        budget: float | None = None,
        name: str | None = None,
        executor: str = api.EXECUTOR,
        register: str = api.REGISTER,
    ) -> Sweep:
        """Check everything a sweep needs and record it; nothing runs yet.

        The space comes as a file (`space_file`) or as a file's text (`space_text`, its
        format told by `space_name`: `.json` is JSON, anything else YAML); the base params
        as a file or a mapping. `pipeline` may be a path to register first.

        Raises:
            InvalidArgumentError: a malformed space, objective, option or params file,
                or a space that names a param the pipeline does not know.
            NotFoundError: unknown pipeline or data version.
            ConflictError: a sweep of that name exists.
        """
        goals = check_options(
            trials=trials,
            objectives=objectives,
            direction=direction,
            parallel=parallel,
            sampler=sampler,
            pruner=pruner,
            prune_on=prune_on,
            timeout_s=timeout_s,
            budget=budget,
            register=register,
        )
        if space_text is not None:
            document = parse_document(space_text, space_name)
            space = parse_space(document)
        elif space_file is not None:
            document, space = load_space(space_file)
        else:
            raise InvalidArgumentError("Give the search space with --space FILE.")
        base = dict(params) if params is not None else {}
        if params_file:
            base = load_params(params_file)
        check_document(base, "Params")  # stored with the sweep, and read back by every listing
        if looks_like_path(pipeline):
            pv, _ = self.pipelines.register(Path(pipeline))
        else:
            pv = self.pipelines.resolve(pipeline)
        dv = self.data.resolve(data)
        check_names(space, base, self._params_read(pv), pv.ref)
        if sampler == "grid":
            size = space.grid_size()
            if trials > size:
                trials = size  # the grid has no more points than this
        with self.db.session() as conn:
            repo = SweepRepository(conn)
            if name is None:
                taken = set(repo.names())
                n = 1
                while f"{pv.pipeline}-sweep-{n}" in taken:
                    n += 1
                name = f"{pv.pipeline}-sweep-{n}"
            check_name(name, "Sweep")
            if repo.exists(name):
                raise ConflictError(
                    f"A sweep named {name!r} exists; resume it with `assay sweep resume {name}` "
                    "or pick another --name."
                )
            repo.insert(
                {
                    "name": name,
                    "pipeline": pv.pipeline,
                    "pipeline_version": pv.number,
                    "dataset": dv.dataset,
                    "data_version": dv.number,
                    "base_params": base,
                    "space": document,
                    "objectives": [g.to_dict() for g in goals],
                    "sampler": sampler,
                    "pruner": pruner if len(goals) == 1 else "none",
                    "prune_on": prune_on,
                    "seed": seed,
                    "trials": trials,
                    "parallel": parallel,
                    "executor": executor,
                    "budget": budget,
                    "timeout_s": timeout_s,
                    "register": register,
                    "status": "created",
                }
            )
        return self.get(name)

    # ---- running -----------------------------------------------------------------------------

    def _params_read(self, pv: PipelineVersion) -> set[str] | None:
        """The params a pipeline version reads: a notebook's `parameters` cell, or what a
        Python pipeline's code looks up in `params`."""
        from assay.pipelines import notebook

        if notebook.is_notebook(pv.entry):
            return notebook.parameter_names(self.pipelines.source(pv, pv.entry))
        sources = {
            f.path: self.pipelines.source(pv, f.path)
            for f in self.pipelines.files(pv)
            if f.path.endswith(".py")
        }
        return params_read(sources)

    def run(
        self, name: str, executor: Executor, *, watch: Callable[[Update], None] | None = None
    ) -> Sweep:
        """Drive the sweep's trials until it has `trials` finished ones (or a limit stops it).

        Resumes a sweep that was interrupted: finished trials are kept, the params of
        interrupted ones are tried first. Ctrl-C (KeyboardInterrupt) stops the running
        trials, records them as interrupted, and re-raises.

        Raises:
            ConflictError: the sweep is already running in another live process.
        """
        try:
            sweep = self._claim(name)
        except BaseException:
            executor.close()
            raise
        space = parse_space(sweep.space)
        retry = [t for t in sweep.trial_list if t.state == "interrupted"]
        optuna = studies.optuna_module()
        study = studies.make_study(
            sweep.objectives,
            sampler=sweep.sampler,
            pruner=sweep.pruner,
            seed=sweep.seed + len(sweep.trial_list),
            parallel=sweep.parallel,
            trials=sweep.trial_list,
        )
        finished = [t for t in sweep.trial_list if t.state in FINISHED_STATES]
        next_number = max((t.number for t in sweep.trial_list), default=-1) + 1
        live: dict[str, _Live] = {}
        started = time.monotonic()
        stop_cause: str | None = None
        failure: str | None = None
        prune_key = sweep.prune_on or sweep.objectives[0].metric
        pruning = sweep.pruner != "none" and not sweep.multi
        poll_s = 0.25 if pruning else 1.0

        # What finished trials took and cost: the estimate for the next one.
        costs: dict[int, float] = {}
        if sweep.budget is not None:
            for t in finished:
                cost = _run_cost(self.runs, t.run_id)
                if cost is not None:
                    costs[t.number] = cost

        def estimate(what: str) -> float | None:
            # The dearest of the recent trials, with a margin: a limit is a promise
            # not to overrun, so the estimate errs high.
            recent = finished[-20:]
            seen = [
                v
                for v in (t.seconds if what == "seconds" else costs.get(t.number) for t in recent)
                if v
            ]
            return max(seen) * 1.1 if seen else None

        def may_launch() -> bool:
            nonlocal stop_cause
            if stop_cause or failure:
                return False
            if len(finished) + len(live) >= sweep.trials:
                return False
            if getattr(study.sampler, "exhausted", False):
                stop_cause = "every point of the grid was tried"
                return False
            if sweep.timeout_s is not None:
                took = estimate("seconds") or 0.0
                if time.monotonic() - started + took > sweep.timeout_s:
                    stop_cause = f"the next trial would overrun --timeout {sweep.timeout_s:g} s"
                    return False
            if sweep.budget is not None:
                cost = estimate("cost")
                spent = sum(costs.values())
                if cost is None:
                    if finished or live:
                        return False  # no estimate yet: one trial at a time until there is
                elif spent + (len(live) + 1) * cost > sweep.budget:
                    stop_cause = (
                        f"the next trial would overrun --budget {sweep.budget:g} "
                        f"(spent {spent:.6g}, about {cost:.3g} a trial)"
                    )
                    return False
            return True

        def launch() -> None:
            nonlocal next_number
            if retry:
                old = retry.pop(0)
                study.enqueue_trial(old.params, skip_if_exists=False)
                with self.db.session() as conn:
                    SweepRepository(conn).update_trial(sweep.id, old.number, state="retried")
            trial = study.ask()
            point = space.sample(trial)
            number = next_number
            next_number += 1
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
                    k: optuna.distributions.distribution_to_json(d)
                    for k, d in trial.distributions.items()
                },
                "started_at": utcnow(),
            }
            with self.db.session() as conn:
                SweepRepository(conn).add_trial(sweep.id, row)
            live[run_id] = _Live(trial, number, run_id, row["started_at"])
            executor.submit(Job(run_id, register=sweep.register == "all"))
            if watch is not None:
                watch(Update("started", _row_trial(row), sweep, len(live), _best(study, finished)))

        def end(done: Done) -> None:
            nonlocal failure
            item = live.pop(done.run_id)
            if done.problem:
                self.runs.mark(done.run_id, "failed", done.problem)
            run = self.runs.by_id(done.run_id)
            intermediate = {s: v for s, v in self.runs.steps_of(run.id, prune_key) if v is not None}
            values: list[float] | None = None
            error = None
            if run.status == "succeeded":
                values, missing = objective_values(run, sweep.objectives)
                if missing:
                    state = "fail"
                    error = (
                        f"The run logged no {missing!r}; it logged: "
                        f"{', '.join(sorted(run.metrics)) or 'no metrics'}."
                    )
                    if (
                        not run.metrics
                        and not self.pipelines.resolve(sweep.pipeline_ref).metrics_step
                    ):
                        error += (
                            f" Pipeline {sweep.pipeline_ref} has no metrics step: name the step "
                            "returning the metrics `evaluate`, or pass "
                            '`Pipeline(..., metrics="STEP")`.'
                        )
                    if not any(t.state == "complete" for t in finished):
                        failure = f"Trial {item.number}: {error}"
                        if run.metrics:
                            failure += " Check --objective."
                else:
                    state = "complete"
            elif run.status == "pruned":
                state = "pruned"
            else:
                state = "fail"
                # A run's error says what failed on its first line (runs/failures.py).
                error = (run.error or run.status).strip().splitlines()[0][:500]
            if state == "complete":
                study.tell(item.trial, values)
            elif state == "pruned":
                study.tell(item.trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(item.trial, state=optuna.trial.TrialState.FAIL)
            ended = utcnow()
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
                costs[item.number] = float(cost)
            finished.append(trial)
            if watch is not None:
                watch(Update("ended", trial, sweep, len(live), _best(study, finished)))

        def prune() -> None:
            for item in live.values():
                if item.stop_requested:
                    continue
                for step, value in self.runs.steps_of(item.run_id, prune_key):
                    if step in item.reported or value is None:
                        continue
                    item.trial.report(value, step)
                    item.reported.add(step)
                if item.reported and item.trial.should_prune():
                    self.runs.request_stop(item.run_id, "pruned")
                    item.stop_requested = True

        try:
            while True:
                while len(live) < executor.slots and may_launch():
                    launch()
                if not live:
                    break
                for done in executor.wait(poll_s):
                    end(done)
                if pruning and live:
                    prune()
        except BaseException:
            executor.close(cancel=True)
            self._interrupted(sweep, list(live.values()))
            raise
        executor.close()
        return self._conclude(sweep, study, stop_cause, failure)

    def check_runnable(self, sweep: Sweep) -> None:
        """Raises ConflictError when the sweep is running elsewhere or has nothing left to do."""
        if sweep.status == "running" and sweep.host == _HOST and _alive(sweep.pid):
            raise ConflictError(
                f"Sweep {sweep.name!r} is running (process {sweep.pid}); wait for it, or stop it "
                "with Ctrl-C there."
            )
        if sweep.status in ("finished", "stopped") and sweep.counted() >= sweep.trials:
            raise ConflictError(
                f"Sweep {sweep.name!r} has finished all its {sweep.trials} trials; see it with "
                f"`assay sweeps show {sweep.name}`."
            )

    def queue(self, name: str) -> Sweep:
        """Mark the sweep queued for a driver that is about to start (a server's).

        Raises:
            NotFoundError: no such sweep.
            ConflictError: it is running, or has finished all its trials.
        """
        with self.db.session() as conn:
            repo = SweepRepository(conn)
            sweep = repo.load(name)
            self.check_runnable(sweep)
            repo.update(sweep.id, status="queued", stop_cause=None, ended_at=None)
        return self.get(name)

    def abandoned(self, name: str, pid: int | None, cause: str) -> Sweep:
        """Record that driver process `pid` (of this host) went away, or is going away,
        without recording the sweep's end.

        A sweep it never claimed (still created or queued) failed, for `cause`; one it was
        running is interrupted, its running trials left for `resume` to settle. A sweep
        another driver holds, or one that ended, is left as it is.
        """
        with self.db.session() as conn:
            repo = SweepRepository(conn)
            sweep = repo.load(name)
            if sweep.status in ("created", "queued"):
                repo.update(sweep.id, status="failed", stop_cause=cause, ended_at=utcnow())
            elif sweep.status == "running" and sweep.pid == pid and sweep.host == _HOST:
                repo.update(
                    sweep.id, status="interrupted", stop_cause=cause, pid=None, ended_at=utcnow()
                )
        return self.get(name)

    def _claim(self, name: str) -> Sweep:
        """Mark the sweep running in this process; settle what a dead driver left."""
        with self.db.session() as conn:
            repo = SweepRepository(conn)
            sweep = repo.load(name)
            self.check_runnable(sweep)
            repo.update(
                sweep.id,
                status="running",
                pid=os.getpid(),
                host=_HOST,
                ended_at=None,
                stop_cause=None,
            )
        # Trials a dead driver left "running": their runs may have finished since.
        for trial in sweep.trial_list:
            if trial.state == "running" and trial.run_id:
                run = self.runs.get(trial.run_id)
                if run.status in ("queued", "running"):
                    self.runs.request_stop(run.id, "killed")
                    self.runs.mark(run.id, "killed", "Its sweep's driver went away.")
                    run = self.runs.get(run.id)
                state, values = "interrupted", None
                if run.status == "succeeded":
                    values, missing = objective_values(run, sweep.objectives)
                    state = "fail" if missing else "complete"
                elif run.status == "pruned":
                    state = "pruned"
                with self.db.session() as conn:
                    SweepRepository(conn).update_trial(
                        sweep.id, trial.number, state=state, values=values, ended_at=utcnow()
                    )
        return self.get(name)

    def _interrupted(self, sweep: Sweep, live: list[_Live]) -> None:
        for item in live:
            self.runs.mark(item.run_id, "killed", "The sweep was interrupted.")
        with self.db.session() as conn:
            repo = SweepRepository(conn)
            for item in live:
                repo.update_trial(sweep.id, item.number, state="interrupted", ended_at=utcnow())
            repo.update(sweep.id, status="interrupted", pid=None, ended_at=utcnow())

    def _conclude(
        self, sweep: Sweep, study: Any, stop_cause: str | None, failure: str | None
    ) -> Sweep:
        best_runs: list[str] = []
        trials = {t.number: t for t in self.get(sweep.name).trial_list}
        complete = [t for t in trials.values() if t.state == "complete" and t.values]
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
        status = "failed" if failure else ("stopped" if stop_cause else "finished")
        with self.db.session() as conn:
            SweepRepository(conn).update(
                sweep.id,
                status=status,
                stop_cause=failure or stop_cause,
                best_runs=best_runs,
                best_models=models,
                pid=None,
                ended_at=utcnow(),
            )
        return self.get(sweep.name)

    # ---- reading -----------------------------------------------------------------------------

    def get(self, name: str) -> Sweep:
        with self.db.read() as conn:
            return SweepRepository(conn).load(name)

    def sweeps(self) -> list[Sweep]:
        with self.db.read() as conn:
            return SweepRepository(conn).all()

    def study(self, sweep: Sweep) -> Any:
        return study_of(sweep)

    def importances(self, sweep: Sweep, objective: int = 0) -> dict[str, float]:
        """fANOVA parameter importances, computed once per set of finished trials (a
        forest fit: seconds on a large sweep) and kept in the machine's cache until a
        trial lands."""
        finished = [
            (t.number, t.state, t.values, t.params)
            for t in sweep.trial_list
            if t.state in ("complete", "pruned")
        ]
        key = hash_bytes(json.dumps([sweep.id, objective, finished], default=str).encode())
        path = self.runs.settings.cache_dir / "importances" / f"{key[:32]}.json"
        try:
            cached: dict[str, float] = json.loads(path.read_text())
            return cached
        except (OSError, ValueError):
            pass
        found = studies.importances(study_of(sweep), objective)
        with contextlib.suppress(OSError):  # a cache only
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(found))
            os.replace(tmp, path)
        return found

    def ranked(self, sweep: Sweep) -> list[Trial]:
        return rank(sweep)


def study_of(sweep: Sweep) -> Any:
    """The sweep's finished trials as an Optuna study (for importances and plots)."""
    return studies.make_study(
        sweep.objectives,
        sampler="random",
        pruner="none",
        seed=sweep.seed,
        parallel=1,
        trials=sweep.trial_list,
    )


def rank(sweep: Sweep) -> list[Trial]:
    """The trials, best first by the first objective; unfinished and failed ones last."""
    goal = sweep.objectives[0]
    sign = -1.0 if goal.direction == "maximize" else 1.0

    def key(t: Trial) -> tuple[int, float, int]:
        if t.state == "complete" and t.values:
            return (0, sign * t.values[0], t.number)
        if t.state == "pruned":
            return (1, 0.0, t.number)
        return (2, 0.0, t.number)

    return sorted(sweep.trial_list, key=key)


# ---- objectives ------------------------------------------------------------------------------


def check_options(
    *,
    trials: int,
    objectives: Sequence[str],
    direction: str | None,
    parallel: int,
    sampler: str,
    pruner: str,
    prune_on: str | None,
    timeout_s: float | None,
    budget: float | None,
    register: str,
) -> list[Objective]:
    """The checks of a sweep's options that need no store; returns the objectives.

    A client (`assay sweep --remote`) runs them before it sends anything, so that a bad
    option is refused before its pipeline is registered on the server.

    Raises:
        InvalidArgumentError: the first option that is wrong, and what it takes.
    """
    if trials < 1:
        raise InvalidArgumentError("--trials must be at least 1.")
    if parallel < 1:
        raise InvalidArgumentError("--parallel must be at least 1.")
    if timeout_s is not None and timeout_s <= 0:
        raise InvalidArgumentError("--timeout must be a number of seconds above 0.")
    if budget is not None and budget <= 0:
        raise InvalidArgumentError("--budget must be a cost above 0.")
    if register not in REGISTER:
        raise InvalidArgumentError(f"--register takes {', '.join(REGISTER)}, not {register!r}.")
    goals = parse_objectives(objectives, direction)
    studies.check_choices(sampler, pruner, goals)
    if len(goals) > 1 and prune_on:
        raise InvalidArgumentError(
            "Pruning works on one objective; drop --prune-on or keep one --objective."
        )
    return goals


def parse_objectives(specs: Sequence[str], direction: str | None) -> list[Objective]:
    """`val_f1`, `val_f1:max`, `cost:min` → objectives; the direction defaults from the name.

    Raises:
        InvalidArgumentError: no objective, a bad direction, or one named twice.
    """
    if direction is not None and direction not in ("max", "min"):
        raise InvalidArgumentError(f"--direction takes max or min, not {direction!r}.")
    if not specs:
        raise InvalidArgumentError("Give the metric to optimise with --objective, e.g. val_f1:max.")
    out: list[Objective] = []
    for spec in specs:
        metric, _, way = spec.strip().rpartition(":") if ":" in spec else (spec.strip(), "", "")
        if not metric:
            raise InvalidArgumentError(f"--objective {spec!r} names no metric.")
        way = way or direction or ""
        if way not in ("", "max", "min"):
            raise InvalidArgumentError(
                f"--objective {spec!r}: the direction after ':' is max or min, not {way!r}."
            )
        if not way:
            way = "min" if metric in RESOURCE_OBJECTIVES or lower_is_better(metric) else "max"
        if any(o.metric == metric for o in out):
            raise InvalidArgumentError(f"--objective {metric!r} is given twice.")
        out.append(Objective(metric, "maximize" if way == "max" else "minimize"))
    return out


def objective_values(run: Run, objectives: Sequence[Objective]) -> tuple[list[float], str | None]:
    """The run's value of each objective, and the first one it lacks (or None)."""
    values: list[float] = []
    for goal in objectives:
        value = run.metrics.get(goal.metric)
        if value is None and goal.metric in RESOURCE_OBJECTIVES:
            value = (run.resources or {}).get(RESOURCE_OBJECTIVES[goal.metric])
        if value is None or not math.isfinite(float(value)):
            return [], goal.metric
        values.append(float(value))
    return values, None


def best_trial(trials: Sequence[Trial], goal: Objective) -> Trial | None:
    scored = [t for t in trials if t.state == "complete" and t.values]
    if not scored:
        return None
    pick = max if goal.direction == "maximize" else min
    return pick(scored, key=lambda t: (t.values or [0.0])[0])


def pareto_front(trials: Sequence[Trial], objectives: Sequence[Objective]) -> list[Trial]:
    """The trials no other trial beats on every objective (at least as good, better on one)."""
    signs = [1.0 if o.direction == "maximize" else -1.0 for o in objectives]

    def score(t: Trial) -> list[float]:
        return [s * v for s, v in zip(signs, t.values or [], strict=True)]

    scored = [(t, score(t)) for t in trials if t.values]
    front = []
    for t, a in scored:
        dominated = any(
            all(x >= y for x, y in zip(b, a, strict=True))
            and any(x > y for x, y in zip(b, a, strict=True))
            for _, b in scored
        )
        if not dominated:
            front.append(t)
    return sorted(front, key=lambda t: t.number)


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


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = [
    "SweepService",
    "Update",
    "best_trial",
    "check_options",
    "objective_values",
    "pareto_front",
    "parse_objectives",
]
