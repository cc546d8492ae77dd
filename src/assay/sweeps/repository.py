"""The sweeps' tables and row <-> entity mapping."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from assay.errors import NotFoundError
from assay.limits import bounded
from assay.store.db import aware, metadata, utcnow
from assay.sweeps.entities import Objective, Sweep, Trial

sweeps = Table(
    "sweeps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("pipeline", String(255), nullable=False),
    Column("pipeline_version", Integer, nullable=False),
    Column("dataset", String(255), nullable=False),
    Column("data_version", Integer, nullable=False),
    Column("base_params", JSON, nullable=False),
    Column("space", JSON, nullable=False),
    Column("objectives", JSON, nullable=False),
    Column("sampler", String(32), nullable=False),
    Column("pruner", String(32), nullable=False),
    Column("prune_on", String(255), nullable=True),
    Column("seed", Integer, nullable=False),
    Column("trials", Integer, nullable=False),
    Column("parallel", Integer, nullable=False),
    Column("executor", String(16), nullable=False),
    Column("budget", Float, nullable=True),
    Column("timeout_s", Float, nullable=True),
    Column("register", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stop_cause", Text, nullable=True),
    Column("best_runs", JSON, nullable=True),
    Column("best_models", JSON, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("host", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
)

sweep_trials = Table(
    "sweep_trials",
    metadata,
    Column("sweep_id", ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("params", JSON, nullable=False),
    Column("distributions", JSON, nullable=False),
    Column("values", JSON, nullable=True),
    Column("intermediate", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
)


class SweepRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, values: dict[str, Any]) -> int:
        now = utcnow()
        result = self.conn.execute(
            insert(sweeps).values(**values, created_at=now, updated_at=now).returning(sweeps.c.id)
        )
        return int(result.scalar_one())

    def update(self, sweep_id: int, **values: Any) -> None:
        self.conn.execute(
            update(sweeps).where(sweeps.c.id == sweep_id).values(**values, updated_at=utcnow())
        )

    def exists(self, name: str) -> bool:
        return self.conn.scalar(select(sweeps.c.id).where(sweeps.c.name == name)) is not None

    def names(self) -> list[str]:
        return list(self.conn.scalars(select(sweeps.c.name)))

    def load(self, name: str, *, with_trials: bool = True) -> Sweep:
        row = self.conn.execute(select(sweeps).where(sweeps.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"No sweep named {name!r}. List them with `assay sweeps list`.")
        trials = self.trials(row.id) if with_trials else []
        return _to_sweep(row, trials)

    def all(self) -> list[Sweep]:
        rows = self.conn.execute(select(sweeps).order_by(sweeps.c.created_at.desc())).all()
        counts: dict[int, list[Trial]] = {}
        for t in self.conn.execute(select(sweep_trials).order_by(sweep_trials.c.number)):
            counts.setdefault(t.sweep_id, []).append(_to_trial(t))
        return [_to_sweep(r, counts.get(r.id, [])) for r in rows]

    def trials(self, sweep_id: int) -> list[Trial]:
        rows = self.conn.execute(
            select(sweep_trials)
            .where(sweep_trials.c.sweep_id == sweep_id)
            .order_by(sweep_trials.c.number)
        )
        return [_to_trial(r) for r in rows]

    def add_trial(self, sweep_id: int, values: dict[str, Any]) -> None:
        self.conn.execute(insert(sweep_trials).values(sweep_id=sweep_id, **values))

    def update_trial(self, sweep_id: int, number: int, **values: Any) -> None:
        self.conn.execute(
            update(sweep_trials)
            .where(sweep_trials.c.sweep_id == sweep_id, sweep_trials.c.number == number)
            .values(**values)
        )


def _to_trial(row: Any) -> Trial:
    return Trial(
        number=row.number,
        state=row.state,
        run_id=row.run_id,
        params=dict(row.params or {}),
        distributions=dict(row.distributions or {}),
        values=list(row.values) if row.values is not None else None,
        intermediate={int(k): float(v) for k, v in (row.intermediate or {}).items()},
        error=row.error,
        started_at=aware(row.started_at),
        ended_at=aware(row.ended_at) if row.ended_at else None,
    )


def _to_sweep(row: Any, trials: list[Trial]) -> Sweep:
    return Sweep(
        id=row.id,
        name=row.name,
        pipeline=row.pipeline,
        pipeline_version=row.pipeline_version,
        dataset=row.dataset,
        data_version=row.data_version,
        # Stored before `assay.limits` held, either may nest too deep to list.
        base_params=bounded(dict(row.base_params or {})),
        space=bounded(dict(row.space or {})),
        objectives=tuple(Objective(o["metric"], o["direction"]) for o in row.objectives),
        sampler=row.sampler,
        pruner=row.pruner,
        prune_on=row.prune_on,
        seed=row.seed,
        trials=row.trials,
        parallel=row.parallel,
        executor=row.executor,
        budget=row.budget,
        timeout_s=row.timeout_s,
        register=row.register,
        status=row.status,
        stop_cause=row.stop_cause,
        best_runs=tuple(row.best_runs or ()),
        best_models=tuple(row.best_models or ()),
        created_at=aware(row.created_at),
        ended_at=aware(row.ended_at) if row.ended_at else None,
        pid=row.pid,
        host=row.host,
        trial_list=tuple(trials),
    )
