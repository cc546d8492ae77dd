"""The A/B tests' table and the mapping between rows and entities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    Row,
    String,
    Table,
    insert,
    select,
    update,
)

from assay.abtests.entities import ABTest, RouterState, VariantSpec
from assay.store.db import aware, metadata, utcnow

abtests = Table(
    "abtests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    # [{label, model, version, service}], the control first.
    Column("variants", JSON, nullable=False),
    Column("strategy", String(255), nullable=False),
    Column("key", String(255), nullable=True),
    Column("status", String(16), nullable=False),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("workers", Integer, nullable=False),
    Column("pid", Integer, nullable=True),
    Column("alias", String(255), nullable=False),
    Column("auto_promote", Boolean, nullable=False),
    Column("plan", JSON, nullable=True),
    Column("winner", String(255), nullable=True),
    Column("verdict", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("concluded_at", DateTime(timezone=True), nullable=True),
    # Where its router runs: `local` (a process here) or `ray` (a Ray Serve application).
    Column("runs_on", String(16), nullable=False, server_default="local"),
)


class ABTestRepository:
    """Row access within one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def row(self, name: str) -> Row[Any] | None:
        return self.conn.execute(select(abtests).where(abtests.c.name == name)).first()

    def rows(self) -> list[Row[Any]]:
        return list(self.conn.execute(select(abtests).order_by(abtests.c.name)))

    def insert(self, name: str, **values: Any) -> None:
        now = utcnow()
        self.conn.execute(
            insert(abtests).values(name=name, created_at=now, updated_at=now, **values)
        )

    def delete(self, name: str) -> None:
        self.conn.execute(abtests.delete().where(abtests.c.name == name))

    def update(self, name: str, **values: Any) -> None:
        self.conn.execute(
            update(abtests).where(abtests.c.name == name).values(updated_at=utcnow(), **values)
        )


def to_abtest(row: Row[Any], state: RouterState) -> ABTest:
    return ABTest(
        name=row.name,
        variants=tuple(
            VariantSpec(v["label"], v["model"], int(v["version"]), v.get("service"))
            for v in row.variants
        ),
        strategy=row.strategy,
        key=row.key,
        status=row.status,
        state=state,
        host=row.host,
        port=row.port,
        workers=row.workers,
        pid=row.pid,
        alias=row.alias,
        auto_promote=bool(row.auto_promote),
        plan=row.plan,
        winner=row.winner,
        verdict=row.verdict,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        concluded_at=aware(row.concluded_at) if row.concluded_at else None,
        on=row.runs_on,
    )
