"""The tokens table and row <-> entity mapping."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from assay.auth.entities import Token
from assay.store.db import aware, metadata

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("scope", String(16), nullable=False),
    Column("prefix", String(16), nullable=False),
    # SHA-256 of the token: tokens are 256 random bits, so a fast hash is enough (a
    # slow one is for passwords people choose), and a lookup is one indexed read.
    Column("hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Every request's token is looked up: built once, the statement's cache key is too.
_BY_HASH = select(tokens).where(tokens.c.hash == bindparam("t_hash"))


class TokenRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, values: dict[str, Any]) -> int:
        return int(
            self.conn.execute(insert(tokens).values(**values).returning(tokens.c.id)).scalar_one()
        )

    def by_hash(self, digest: str) -> Token | None:
        row = self.conn.execute(_BY_HASH, {"t_hash": digest}).first()
        return _to_token(row) if row else None

    def by_name(self, name: str) -> Token | None:
        row = self.conn.execute(select(tokens).where(tokens.c.name == name)).first()
        return _to_token(row) if row else None

    def all(self) -> list[Token]:
        return [_to_token(r) for r in self.conn.execute(select(tokens).order_by(tokens.c.id))]

    def update(self, token_id: int, **values: Any) -> None:
        self.conn.execute(update(tokens).where(tokens.c.id == token_id).values(**values))


def _to_token(row: Any) -> Token:
    return Token(
        id=row.id,
        name=row.name,
        scope=row.scope,
        prefix=row.prefix,
        created_at=aware(row.created_at),
        created_by=row.created_by,
        last_used_at=aware(row.last_used_at) if row.last_used_at else None,
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
    )
