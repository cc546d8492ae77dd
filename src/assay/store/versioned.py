"""Row helpers for "a named thing with numbered versions" (datasets, pipelines, later models).

Each concept owns its two tables (the names, and their versions with a foreign key
and a per-name `number`); the queries over that shape are the same for all.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    Row,
    Select,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
)

from assay.store.db import metadata, utcnow

# The numbers of deleted versions (kind "data" or "model", of the dataset or model
# `owner_id`): never given out again, and a read of one says it was deleted.
retired_versions = Table(
    "retired_versions",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("owner_id", Integer, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("deleted_at", DateTime(timezone=True), nullable=False),
    Column("deleted_by", String(255), nullable=False),
)

# The lookups below run on every commit, run and registration. Built once per table,
# a statement's cache key is computed once too: most of what SQLAlchemy costs a call.


@functools.cache
def _by_name(names: Table) -> Select[Any]:
    return select(names).where(names.c.name == bindparam("v_name"))


@functools.cache
def _latest(versions: Table, fk: str) -> Select[Any]:
    return select(func.max(versions.c.number)).where(versions.c[fk] == bindparam("v_owner"))


def named_row(conn: Connection, names: Table, name: str) -> Row[Any] | None:
    return conn.execute(_by_name(names), {"v_name": name}).first()


def get_or_create(conn: Connection, names: Table, name: str) -> Row[Any]:
    row = named_row(conn, names, name)
    if row is None:
        conn.execute(insert(names).values(name=name, created_at=utcnow()))
        row = named_row(conn, names, name)
        assert row is not None
    return row


def summaries(conn: Connection, names: Table, versions: Table, fk: Column[Any]) -> list[Row[Any]]:
    """Every name with `created_at`, its version count `n`, `latest` number and `updated` time."""
    v = versions.c
    stats = (
        select(
            fk.label("owner"),
            func.count().label("n"),
            func.max(v.number).label("latest"),
            func.max(v.created_at).label("updated"),
        )
        .group_by(fk)
        .subquery()
    )
    return list(
        conn.execute(
            select(names.c.name, names.c.created_at, stats.c.n, stats.c.latest, stats.c.updated)
            .outerjoin(stats, stats.c.owner == names.c.id)
            .order_by(names.c.name)
        )
    )


def latest_number(conn: Connection, versions: Table, fk: Column[Any], owner: int) -> int | None:
    """The newest version's number (a deleted one is not a version)."""
    found: int | None = conn.scalar(_latest(versions, fk.key), {"v_owner": owner})
    return found


def next_number(conn: Connection, versions: Table, fk: Column[Any], owner: int, kind: str) -> int:
    """The number the next version gets: after every version, deleted ones included."""
    return newest_and_next(conn, versions, fk, owner, kind)[1]


def newest_and_next(
    conn: Connection, versions: Table, fk: Column[Any], owner: int, kind: str
) -> tuple[int | None, int]:
    """The newest version's number (None: there is none) and the number the next gets:
    after every version, deleted ones included.

    The owner's row is locked first (PostgreSQL; SQLite's write transaction already
    excludes other writers, and ignores FOR UPDATE), so concurrent writers take numbers
    in turn instead of racing for one and retrying: under load a writer could lose every
    retry. The newest and the newest deleted number come in one statement: this runs
    once per run (its params version), where each statement counts.
    """
    if conn.dialect.name != "sqlite":
        (ref,) = fk.foreign_keys
        owner_id = ref.column
        conn.execute(select(owner_id).where(owner_id == owner).with_for_update())
    newest, deleted = conn.execute(
        _next(versions, fk.key), {"v_owner": owner, "v_kind": kind}
    ).one()
    return newest, max(newest or 0, deleted or 0) + 1


@functools.cache
def _next(versions: Table, fk: str) -> Select[Any]:
    gone = (
        select(func.max(retired_versions.c.number))
        .where(
            retired_versions.c.kind == bindparam("v_kind"),
            retired_versions.c.owner_id == bindparam("v_owner"),
        )
        .scalar_subquery()
    )
    return select(func.max(versions.c.number), gone).where(versions.c[fk] == bindparam("v_owner"))


def retire(conn: Connection, kind: str, owner: int, number: int, by: str) -> None:
    """Record that version `number` of `owner` was deleted (its row goes separately)."""
    conn.execute(
        insert(retired_versions).values(
            kind=kind, owner_id=owner, number=number, deleted_at=utcnow(), deleted_by=by
        )
    )


def retired(conn: Connection, kind: str, owner: int, number: int) -> tuple[datetime, str] | None:
    """When and by whom version `number` was deleted, if it was."""
    row = conn.execute(
        select(retired_versions.c.deleted_at, retired_versions.c.deleted_by).where(
            retired_versions.c.kind == kind,
            retired_versions.c.owner_id == owner,
            retired_versions.c.number == number,
        )
    ).first()
    return (row[0], row[1]) if row is not None else None
