"""Reading and writing runs: their rows, steps, artifacts, liveness and the step cache; their
params and metrics are `assay.runs.values` (the tables are `assay.runs.tables`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.limits import bounded
from assay.runs.entities import Run, RunStatus, StepRun
from assay.runs.tables import (
    experiments,
    metric_keys,
    metric_points,
    param_keys,
    run_artifacts,
    run_metrics,
    run_params,
    run_steps,
    runs,
    step_cache,
)
from assay.runs.values import RunValues, params_doc
from assay.store.db import aware, utcnow
from assay.store.liveness import alive

# ---- row access ------------------------------------------------------------------------------


# Statements on the hot paths of a tracked run (every metric batch), built once: their
# cache keys are computed once too, which is most of what SQLAlchemy costs per call.
_BEAT = (
    update(runs)
    .where(runs.c.id == bindparam("b_id"), runs.c.status == "running")
    .values(heartbeat_at=bindparam("b_at"))
)
# A run closed by the process that tracked it (`finish_here`: once per run opened in a loop),
# with the code it captured, if any (a run without keeps what `record_code` stored mid-run):
# built once, where an `update(...)` built per run cost a tenth of the run (py-spy).
_CLOSE = (
    update(runs)
    .where(runs.c.id == bindparam("f_id"))
    .values(
        status=bindparam("f_status"),
        error=bindparam("f_error"),
        ended_at=bindparam("f_ended", type_=runs.c.ended_at.type),
        resources=bindparam("f_resources", type_=runs.c.resources.type),
        environment=bindparam("f_environment", type_=runs.c.environment.type),
        code=func.coalesce(bindparam("f_code", type_=runs.c.code.type), runs.c.code),
    )
)


def _silent_since(cutoff: str) -> Any:
    """No heartbeat since the bound `cutoff` (nor a start, for a run that never beat)."""
    cut = bindparam(cutoff, type_=runs.c.heartbeat_at.type)
    return or_(
        runs.c.heartbeat_at < cut,
        and_(runs.c.heartbeat_at.is_(None), runs.c.created_at < cut),
    )


# Every read looks for dead runners (`stale_runs`, `orphaned_queued`): statements built
# once, where building them per search cost a twentieth of a 1,000-run search (py-spy).
_RUNNING = (runs.c.id, runs.c.host, runs.c.pid, runs.c.pid_started)
_STALE = select(*_RUNNING).where(runs.c.status == "running", _silent_since("s_cut"))
_STALE_OR_REMOTE = select(*_RUNNING).where(
    runs.c.status == "running",
    or_(
        and_(
            or_(runs.c.host.is_(None), runs.c.host != bindparam("s_remote")),
            _silent_since("s_cut"),
        ),
        and_(runs.c.host == bindparam("s_remote"), _silent_since("s_rcut")),
    ),
)
_QUEUED = select(runs.c.id, runs.c.pid, runs.c.pid_started).where(
    runs.c.status == "queued", runs.c.host == bindparam("q_host"), runs.c.pid.is_not(None)
)
_COUNT = select(func.count()).select_from(runs).where(runs.c.experiment_id == bindparam("c_exp"))
_NEXT = (
    update(experiments)
    .where(experiments.c.id == bindparam("n_exp"))
    .values(runs_made=experiments.c.runs_made + bindparam("n_made"))
    .returning(experiments.c.runs_made)
)


def _aware(ts: datetime | None) -> datetime | None:
    return None if ts is None else aware(ts)


class RunRepository(RunValues):
    """Row access for runs within one transaction (their params and metrics: `RunValues`)."""

    def experiment_id(self, name: str, create: bool = True) -> int | None:
        found: int | None = self.conn.scalar(
            select(experiments.c.id).where(experiments.c.name == name)
        )
        if found is None and create:
            self.conn.execute(insert(experiments).values(name=name, created_at=utcnow()))
            found = self.conn.scalar(select(experiments.c.id).where(experiments.c.name == name))
        return found

    def experiment_names(self) -> list[tuple[str, int]]:
        rows = self.conn.execute(
            select(experiments.c.name, func.count(runs.c.id))
            .outerjoin(runs, runs.c.experiment_id == experiments.c.id)
            .group_by(experiments.c.name)
            .order_by(experiments.c.name)
        )
        return [(name, n) for name, n in rows]

    def insert_run(self, values: dict[str, Any], params: dict[str, Any]) -> None:
        # The params twice: rows for filters and sorts, one document for listings.
        values = {**values, "params_doc": params_doc(params)}
        self.conn.execute(insert(runs), values)  # one cached statement per set of keys
        if params:
            self._insert_params(values["id"], params)

    def run_count(self, experiment_id: int) -> int:
        return int(self.conn.scalar(_COUNT, {"c_exp": experiment_id}) or 0)

    def next_run_number(self, experiment_id: int, made: int = 1) -> int:
        """Count `made` more runs made in the experiment (a search's candidates count, as
        every run did when the runs were counted); the number of the last. One row, where
        counting the runs scanned all of the experiment's."""
        bump = {"n_exp": experiment_id, "n_made": made}
        return int(self.conn.execute(_NEXT, bump).scalar_one())

    def close(
        self,
        run_id: str,
        status: RunStatus,
        error: str | None,
        resources: dict[str, Any],
        environment: dict[str, Any],
        code: str | None = None,
    ) -> None:
        """`update` of what closing a run sets (and the run's `code`, when given), through
        a statement built once."""
        self.conn.execute(
            _CLOSE,
            {
                "f_id": run_id,
                "f_status": status,
                "f_error": error,
                "f_ended": utcnow(),
                "f_resources": resources,
                "f_environment": environment,
                "f_code": code,
            },
        )

    def update(self, run_id: str, **values: Any) -> None:
        self.conn.execute(update(runs).where(runs.c.id == run_id).values(**values))

    def stop_reason(self, run_id: str) -> str | None:
        found: str | None = self.conn.scalar(select(runs.c.stop_reason).where(runs.c.id == run_id))
        return found

    def resolve_id(self, ref: str) -> str:
        """A full run id from an id or a unique prefix of one."""
        ref = ref.strip().lower()
        if not ref or not all(c in "0123456789abcdef" for c in ref):
            raise InvalidArgumentError(
                f"{ref!r} is not a run id. Run ids are hexadecimal; list them with "
                "`assay runs list`."
            )
        if len(ref) == 32:  # a full id: one index seek (LIKE may scan the table)
            exact = self.conn.scalar(select(runs.c.id).where(runs.c.id == ref))
            if exact is None:
                raise NotFoundError(f"No run {ref!r}. List runs with `assay runs list`.", run=ref)
            return str(exact)
        found = list(self.conn.scalars(select(runs.c.id).where(runs.c.id.like(f"{ref}%")).limit(2)))
        if not found:
            raise NotFoundError(f"No run {ref!r}. List runs with `assay runs list`.", run=ref)
        if len(found) > 1:
            # More than one run answers to it: what is stored, not the request, is the clash.
            raise ConflictError(f"Run id {ref!r} is ambiguous; give more characters.")
        return str(found[0])

    def load_row(self, run_id: str) -> Any:
        """The run's own row (no params, metrics or steps).

        Raises:
            NotFoundError: no such run.
        """
        row = self.conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"No run {run_id!r}. List runs with `assay runs list`.")
        return row

    def load(self, run_id: str) -> Run:
        row = self.conn.execute(
            select(runs, experiments.c.name.label("experiment_name"))
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .where(runs.c.id == run_id)
        ).first()
        if row is None:
            raise NotFoundError(f"No run {run_id!r}. List runs with `assay runs list`.")
        params = self.params_from([row]).get(run_id, {})
        metrics = self.metrics_of([run_id]).get(run_id, {})
        steps = tuple(
            StepRun(s.position, s.name, s.status, s.cached, s.seconds, s.output, s.output_format)
            for s in self.conn.execute(
                select(run_steps).where(run_steps.c.run_id == run_id).order_by(run_steps.c.position)
            )
        )
        return to_run(row, params, metrics, steps)

    def search(
        self,
        where: Any = None,
        order_by: list[Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        query = select(runs, experiments.c.name.label("experiment_name")).join(
            experiments, experiments.c.id == runs.c.experiment_id
        )
        if where is not None:
            query = query.where(where)
        query = query.order_by(*(order_by or [runs.c.created_at.desc(), runs.c.id]))
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        rows = self.conn.execute(query).all()
        params, metrics = self.params_from(rows), self.metrics_of([r.id for r in rows])
        return [to_run(r, params.get(r.id, {}), metrics.get(r.id, {}), ()) for r in rows]

    def succeeded_with_inputs(self, inputs_key: str) -> str | None:
        found: str | None = self.conn.scalar(
            select(runs.c.id)
            .where(runs.c.inputs_key == inputs_key, runs.c.status == "succeeded")
            .order_by(runs.c.created_at.desc())
            .limit(1)
        )
        return found

    def stale_runs(
        self,
        stale_after: timedelta,
        host: str,
        remote: tuple[str, timedelta] | None = None,
    ) -> list[str]:
        """Running runs whose runner stopped sending heartbeats and is not alive here.

        A silent runner on this host whose process still exists is only slow (a
        machine under load, a long lock wait), not dead, and is left out. Runs of
        `remote[0]` (reported from elsewhere) are stale only after `remote[1]` of silence.
        """
        # In SQL, so that a server holding many tracked runs (each reporting now and
        # then) does not read them all on every request.
        now = utcnow()
        if remote is None:
            stale = self.conn.execute(_STALE, {"s_cut": now - stale_after}).all()
        else:
            bound = {"s_cut": now - stale_after, "s_remote": remote[0], "s_rcut": now - remote[1]}
            stale = self.conn.execute(_STALE_OR_REMOTE, bound).all()
        return [
            run_id
            for run_id, where, pid, started in stale
            if (remote is not None and where == remote[0])
            or where != host
            or not alive(pid, started)
        ]

    def orphaned_queued(self, host: str) -> list[tuple[str, int]]:
        """Queued runs of this host whose command (the process that queued them) is gone:
        (run id, that command's pid). Queued runs of other hosts cannot be checked here."""
        queued = self.conn.execute(_QUEUED, {"q_host": host}).all()
        return [(run_id, pid) for run_id, pid, started in queued if not alive(pid, started)]

    def status(self, run_id: str) -> RunStatus:
        found = str(self.conn.scalar(select(runs.c.status).where(runs.c.id == run_id)))
        return cast("RunStatus", found)

    def status_and_start(self, run_id: str) -> tuple[str, datetime | None]:
        row = self.conn.execute(
            select(runs.c.status, runs.c.started_at).where(runs.c.id == run_id)
        ).one()
        return str(row[0]), row[1]

    def mark_dead(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self.conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(
                    status="killed",
                    ended_at=utcnow(),
                    error="The runner stopped sending heartbeats (killed or crashed); "
                    "the run did not finish.",
                )
            )

    def mark_orphaned(self, orphans: list[tuple[str, int]], host: str) -> None:
        for run_id, pid in orphans:
            self.conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "queued")
                .values(
                    status="killed",
                    ended_at=utcnow(),
                    error=f"The command that queued it (pid {pid} on {host}) died before the "
                    "run started. Start it again with `assay runs rerun`.",
                )
            )

    # ---- steps, metrics, artifacts, cache ------------------------------------------------

    def set_step(self, run_id: str, position: int, **values: Any) -> None:
        exists = self.conn.scalar(
            select(func.count()).where(
                run_steps.c.run_id == run_id, run_steps.c.position == position
            )
        )
        if exists:
            self.conn.execute(
                update(run_steps)
                .where(run_steps.c.run_id == run_id, run_steps.c.position == position)
                .values(**values)
            )
        else:
            self.conn.execute(insert(run_steps).values(run_id=run_id, position=position, **values))

    def beat_if_running(self, run_id: str, at: datetime) -> bool:
        """Record a sign of life if the run is running; False if it is not (or absent)."""
        done = self.conn.execute(_BEAT, {"b_id": run_id, "b_at": at})
        return bool(done.rowcount)

    def descendants(self, ids: list[str]) -> list[str]:
        """The runs made inside `ids`, and inside those, and so on."""
        found: list[str] = []
        frontier = list(ids)
        while frontier:
            children = list(
                self.conn.scalars(select(runs.c.id).where(runs.c.parent_id.in_(frontier)))
            )
            children = [c for c in children if c not in found and c not in ids]
            found.extend(children)
            frontier = children
        return found

    def delete_runs(self, ids: list[str]) -> None:
        """Remove runs and what they recorded (the foreign keys cascade)."""
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for table in (run_params, metric_points, run_metrics, run_steps, run_artifacts):
                self.conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
            self.conn.execute(delete(runs).where(runs.c.id.in_(chunk)))
        if ids:  # the names no run has any more (one pass over each table)
            for names, values in ((param_keys, run_params), (metric_keys, run_metrics)):
                used = select(values.c.key).distinct()
                self.conn.execute(delete(names).where(names.c.key.not_in(used)))

    def using_data(self, dataset: str, number: int) -> list[str]:
        data = and_(runs.c.dataset == dataset, runs.c.data_version == number)
        params = and_(runs.c.params_dataset == dataset, runs.c.params_version == number)
        return list(self.conn.scalars(select(runs.c.id).where(or_(data, params))))

    def set_archived(self, ids: list[str], when: datetime | None) -> None:
        self.conn.execute(update(runs).where(runs.c.id.in_(ids)).values(archived_at=when))

    def set_experiment_archived(self, experiment_id: int, when: datetime | None) -> None:
        self.conn.execute(
            update(experiments).where(experiments.c.id == experiment_id).values(archived_at=when)
        )

    def referenced_objects(self) -> Iterator[str]:
        """Every object hash the runs' rows name (not the code versions' contents)."""
        for column in (runs.c.logs, runs.c.model):
            yield from self.conn.scalars(select(column).where(column.is_not(None)).distinct())
        yield from self.conn.scalars(
            select(run_steps.c.output).where(run_steps.c.output.is_not(None)).distinct()
        )
        yield from self.conn.scalars(select(run_artifacts.c.hash).distinct())
        yield from self.conn.scalars(select(step_cache.c.output).distinct())
        environments = select(runs.c.environment).where(runs.c.environment.is_not(None))
        for env in self.conn.scalars(environments):
            found = (env if isinstance(env, dict) else json.loads(env)).get("packages_object")
            if found:
                yield str(found)

    def code_versions(self) -> list[str]:
        """The code versions tracked runs captured (a pipeline run's is its snapshot)."""
        return list(
            self.conn.scalars(
                select(runs.c.code)
                .where(runs.c.code.is_not(None), runs.c.pipeline.is_(None))
                .distinct()
            )
        )

    def add_artifact(self, run_id: str, path: str, digest: str, size: int) -> None:
        self.conn.execute(
            insert(run_artifacts).values(run_id=run_id, path=path, hash=digest, size=size)
        )

    def artifacts(self, run_id: str) -> list[tuple[str, str, int]]:
        return [
            (p, h, n)
            for p, h, n in self.conn.execute(
                select(run_artifacts.c.path, run_artifacts.c.hash, run_artifacts.c.size).where(
                    run_artifacts.c.run_id == run_id
                )
            )
        ]

    def cached_key_sets(self, key: str) -> list[str]:
        """The distinct sets of param names (JSON) that cached outputs of `key` read."""
        return list(
            self.conn.scalars(
                select(step_cache.c.params_keys)
                .where(step_cache.c.key == key, step_cache.c.params_keys.is_not(None))
                .distinct()
            )
        )

    def cached_output(self, key: str, params_digest: str) -> Any:
        return self.conn.execute(
            select(step_cache.c.output, step_cache.c.output_format, step_cache.c.logged)
            .where(step_cache.c.key == key, step_cache.c.params_digest == params_digest)
            .order_by(step_cache.c.id.desc())
            .limit(1)
        ).first()

    def legacy_cached_outputs(self, key: str) -> list[Any]:
        """Rows written before `params_keys` existed (checked one by one)."""
        return list(
            self.conn.execute(
                select(step_cache)
                .where(step_cache.c.key == key, step_cache.c.params_keys.is_(None))
                .order_by(step_cache.c.id.desc())
            )
        )

    def add_cached(self, **values: Any) -> None:
        self.conn.execute(insert(step_cache).values(created_at=utcnow(), **values))


def to_run(
    row: Any,
    params: dict[str, Any],
    metrics: dict[str, float | None],
    steps: tuple[StepRun, ...],
) -> Run:
    created = _aware(row.created_at)
    assert created is not None
    return Run(
        id=row.id,
        name=row.name,
        experiment=row.experiment_name,
        status=row.status,
        created_at=created,
        pipeline=row.pipeline,
        pipeline_version=row.pipeline_version,
        dataset=row.dataset,
        data_version=row.data_version,
        params_dataset=row.params_dataset,
        params_version=row.params_version,
        started_at=_aware(row.started_at),
        ended_at=_aware(row.ended_at),
        error=row.error,
        model=row.model,
        model_flavor=row.model_flavor,
        logs=row.logs,
        rerun_of=row.rerun_of,
        parent_id=row.parent_id,
        code=row.code,
        resources=row.resources or {},
        environment=row.environment or {},
        extra=bounded(row.extra or {}),  # stored before `assay.limits` held, it may be deep
        params=params,
        metrics=metrics,
        steps=steps,
    )
