"""The sweeps' use cases: define a sweep, drive its trials through an executor, read it back.

Each trial is an ordinary run (its own params version, metrics, logs, model),
in an experiment named after the sweep. Optuna proposes the params and decides
on pruning; the executor runs the trials; the sweep's tables record every trial
as it starts and ends, so an interrupted sweep resumes from them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.data.entities import check_name
from assay.errors import ConflictError, InvalidArgumentError
from assay.limits import check_document
from assay.runs.executor import Executor
from assay.runs.params import load_params
from assay.runs.service import looks_like_path
from assay.serialize import dump
from assay.store import liveness
from assay.store.db import Database, utcnow
from assay.store.objects import hash_bytes
from assay.sweeps import api
from assay.sweeps import study as studies
from assay.sweeps.entities import Sweep, Trial, TrialState
from assay.sweeps.objectives import (
    REGISTER,
    RESOURCE_OBJECTIVES,
    best_trial,
    check_options,
    objective_values,
    pareto_front,
    parse_objectives,
    rank,
)
from assay.sweeps.repository import SweepRepository
from assay.sweeps.scheduler import SYSTEM_CLOCK, Clock, Scheduler, Update
from assay.sweeps.space import (
    check_names,
    load_space,
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

_HOST = socket.gethostname()


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
                    "objectives": dump(goals),
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
        self,
        name: str,
        executor: Executor,
        *,
        watch: Callable[[Update], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Sweep:
        """Drive the sweep's trials until it has `trials` finished ones (or a limit stops it).

        Resumes a sweep that was interrupted: finished trials are kept, the params of
        interrupted ones are tried first. Ctrl-C (KeyboardInterrupt) stops the running
        trials, records them as interrupted, and re-raises. The loop and its rules are the
        `Scheduler`'s (sweeps/scheduler.py).

        Raises:
            ConflictError: the sweep is already running in another live process.
        """
        try:
            sweep = self._claim(name)
        except BaseException:
            executor.close()
            raise
        return Scheduler(self, sweep, executor, clock=clock, watch=watch).run()

    def check_runnable(self, sweep: Sweep) -> None:
        """Raises ConflictError when the sweep is running elsewhere or has nothing left to do."""
        if sweep.status == "running" and sweep.host == _HOST and liveness.alive(sweep.pid):
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
                    self.runs.abandon(run.id, "killed", "Its sweep's driver went away.")
                    run = self.runs.get(run.id)
                state: TrialState = "interrupted"
                values: list[float] | None = None
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


__all__ = [
    "REGISTER",
    "RESOURCE_OBJECTIVES",
    "SweepService",
    "Update",
    "best_trial",
    "check_options",
    "objective_values",
    "pareto_front",
    "parse_objectives",
    "rank",
    "study_of",
]
