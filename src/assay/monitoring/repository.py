"""Monitoring's tables: monitors, their checks over time, snapshots and retrains."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    or_,
    select,
    update,
)

from assay.monitoring.entities import Monitor, MonitorCheck, Retrain, Snapshot
from assay.store.db import aware, metadata, utcnow

monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("target", String(16), nullable=False),  # service or abtest
    Column("config", Text, nullable=False),  # the YAML as the user wrote it
    Column("state", String(16), nullable=True),
    Column("checked_at", DateTime(timezone=True), nullable=True),
    # When a scheduled check is next due; claimed with a compare-and-set, so that of
    # several watchers (server workers) one runs it.
    Column("next_check_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

monitor_checks = Table(
    "monitor_checks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("monitor_id", ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("model", String(255), nullable=False),
    Column("reference", String(255), nullable=True),
    Column("window_start", Float, nullable=True),
    Column("window_end", Float, nullable=True),
    Column("rows", Integer, nullable=False),
    Column("summary", JSON, nullable=False),
    Index("ix_monitor_checks_monitor_id_at", "monitor_id", "at"),
)

monitor_snapshots = Table(
    "monitor_snapshots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset", String(255), nullable=False),
    Column("number", Integer, nullable=False),
    Column("source", String(255), nullable=False),
    Column("models", JSON, nullable=False),
    Column("window_start", Float, nullable=True),
    Column("window_end", Float, nullable=True),
    Column("rows", Integer, nullable=False),
    Column("labeled", Integer, nullable=False),
    Column("path", String(1024), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("dataset", "number"),
)

monitor_retrains = Table(
    "monitor_retrains",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("model", String(255), nullable=False),
    Column("with_data", String(255), nullable=False),
    Column("data", String(255), nullable=False),
    Column("alone", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("new_model", String(255), nullable=True),
    Column("abtest", String(255), nullable=True),
    Column("challenge", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class MonitorRepository:
    """Row access within one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # ---- monitors ----------------------------------------------------------------------------

    def row(self, name: str) -> Row[Any] | None:
        return self.conn.execute(select(monitors).where(monitors.c.name == name)).first()

    def rows(self) -> list[Row[Any]]:
        return list(self.conn.execute(select(monitors).order_by(monitors.c.name)))

    def upsert(self, name: str, **values: Any) -> Row[Any]:
        now = utcnow()
        if self.row(name) is None:
            self.conn.execute(
                insert(monitors).values(name=name, created_at=now, updated_at=now, **values)
            )
        else:
            self.conn.execute(
                update(monitors).where(monitors.c.name == name).values(updated_at=now, **values)
            )
        found = self.row(name)
        assert found is not None
        return found

    def due(self, now: datetime) -> list[Row[Any]]:
        return list(
            self.conn.execute(
                select(monitors).where(
                    monitors.c.next_check_at.is_not(None), monitors.c.next_check_at <= now
                )
            )
        )

    def claim(self, monitor_id: int, seen: datetime | None, next_at: datetime | None) -> bool:
        """Move the next check from `seen` to `next_at`; False when another watcher did."""
        cond = (
            monitors.c.next_check_at.is_(None) if seen is None else monitors.c.next_check_at == seen
        )
        done = self.conn.execute(
            update(monitors)
            .where(monitors.c.id == monitor_id, or_(cond))
            .values(next_check_at=next_at)
        )
        return bool(done.rowcount)

    # ---- checks -------------------------------------------------------------------------------

    def add_check(self, monitor_id: int, **values: Any) -> int:
        done = self.conn.execute(insert(monitor_checks).values(monitor_id=monitor_id, **values))
        key = done.inserted_primary_key
        return int(key[0]) if key else 0

    def checks(self, monitor_id: int, limit: int) -> list[Row[Any]]:
        rows = self.conn.execute(
            select(monitor_checks)
            .where(monitor_checks.c.monitor_id == monitor_id)
            .order_by(monitor_checks.c.at.desc(), monitor_checks.c.id.desc())
            .limit(limit)
        )
        return list(rows)[::-1]

    def last_check(self, monitor_id: int) -> Row[Any] | None:
        return self.conn.execute(
            select(monitor_checks)
            .where(monitor_checks.c.monitor_id == monitor_id)
            .order_by(monitor_checks.c.at.desc(), monitor_checks.c.id.desc())
            .limit(1)
        ).first()

    # ---- snapshots and retrains ---------------------------------------------------------------

    def add_snapshot(self, **values: Any) -> None:
        self.conn.execute(insert(monitor_snapshots).values(created_at=utcnow(), **values))

    def snapshot(self, dataset: str, number: int) -> Row[Any] | None:
        return self.conn.execute(
            select(monitor_snapshots).where(
                monitor_snapshots.c.dataset == dataset, monitor_snapshots.c.number == number
            )
        ).first()

    def snapshots(self, source: str | None = None) -> list[Row[Any]]:
        query = select(monitor_snapshots).order_by(monitor_snapshots.c.id)
        if source is not None:
            query = query.where(monitor_snapshots.c.source == source)
        return list(self.conn.execute(query))

    def add_retrain(self, **values: Any) -> None:
        now = utcnow()
        self.conn.execute(insert(monitor_retrains).values(created_at=now, updated_at=now, **values))

    def update_retrain(self, run_id: str, **values: Any) -> None:
        self.conn.execute(
            update(monitor_retrains)
            .where(monitor_retrains.c.run_id == run_id)
            .values(updated_at=utcnow(), **values)
        )

    def retrain(self, run_id: str) -> Row[Any] | None:
        return self.conn.execute(
            select(monitor_retrains).where(monitor_retrains.c.run_id == run_id)
        ).first()

    def retrains(self) -> list[Row[Any]]:
        return list(
            self.conn.execute(select(monitor_retrains).order_by(monitor_retrains.c.created_at))
        )


def to_monitor(row: Row[Any]) -> Monitor:
    return Monitor(
        name=row.name,
        target=row.target,
        config_text=row.config,
        state=row.state,
        checked_at=aware(row.checked_at) if row.checked_at else None,
        next_check_at=aware(row.next_check_at) if row.next_check_at else None,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def to_check(row: Row[Any], monitor: str) -> MonitorCheck:
    return MonitorCheck(
        id=row.id,
        monitor=monitor,
        at=aware(row.at),
        state=row.state,
        model=row.model,
        reference=row.reference,
        window_start=row.window_start,
        window_end=row.window_end,
        rows=row.rows,
        summary=dict(row.summary or {}),
    )


def to_snapshot(row: Row[Any]) -> Snapshot:
    return Snapshot(
        dataset=row.dataset,
        version=row.number,
        source=row.source,
        models=tuple(row.models or ()),
        window_start=row.window_start,
        window_end=row.window_end,
        rows=row.rows,
        labeled=row.labeled,
        path=row.path,
        created_at=aware(row.created_at),
    )


def to_retrain(row: Row[Any]) -> Retrain:
    return Retrain(
        run_id=row.run_id,
        model=row.model,
        with_data=row.with_data,
        data=row.data,
        alone=bool(row.alone),
        status=row.status,
        new_model=row.new_model,
        abtest=row.abtest,
        challenge=row.challenge,
        error=row.error,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )
