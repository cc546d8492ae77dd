"""Row helpers for "a named thing with numbered versions" (datasets, pipelines, later models).

Each concept owns its two tables (the names, and their versions with a foreign key
and a per-name `number`); the queries over that shape are the same for all.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Column, Connection, Row, Select, Table, bindparam, func, insert, select

from assay.store.db import utcnow

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
    found: int | None = conn.scalar(_latest(versions, fk.key), {"v_owner": owner})
    return found
