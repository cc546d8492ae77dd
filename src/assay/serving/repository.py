"""The services' table and the mapping between rows and entities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Integer,
    Row,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from assay.serving.entities import Service, ServiceState
from assay.store.db import aware, metadata, utcnow

services = Table(
    "services",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("model", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("workers", Integer, nullable=False),
    # What the user last asked for: running or stopped (brought back by `start --all`).
    Column("desired", String(16), nullable=False),
    Column("pid", Integer, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("settings", JSON, nullable=False),
    Column("last_error", Text, nullable=True),
    # Where it runs: `local` (a process here) or `ray` (a Ray Serve application).
    Column("runs_on", String(16), nullable=False, server_default="local"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class ServiceRepository:
    """Row access within one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def row(self, name: str) -> Row[Any] | None:
        return self.conn.execute(select(services).where(services.c.name == name)).first()

    def rows(self) -> list[Row[Any]]:
        return list(self.conn.execute(select(services).order_by(services.c.name)))

    def upsert(self, name: str, **values: Any) -> None:
        now = utcnow()
        if self.row(name) is None:
            self.conn.execute(
                insert(services).values(name=name, created_at=now, updated_at=now, **values)
            )
        else:
            self.conn.execute(
                update(services).where(services.c.name == name).values(updated_at=now, **values)
            )


def to_service(row: Row[Any], state: ServiceState) -> Service:
    return Service(
        name=row.name,
        model=row.model,
        version=row.version,
        host=row.host,
        port=row.port,
        workers=row.workers,
        desired=row.desired,
        state=state,
        pid=row.pid,
        started_at=aware(row.started_at) if row.started_at else None,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        settings=dict(row.settings or {}),
        last_error=row.last_error,
        on=row.runs_on,
    )
