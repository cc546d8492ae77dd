"""The model repository's tables and the mapping between rows and entities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Integer,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    insert,
    select,
)

from assay.registry.entities import Lineage, Model, ModelVersion, Signature
from assay.serialize import load
from assay.store import versioned
from assay.store.db import aware, metadata, utcnow

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    # The bundle: the content hash of its manifest, which lists every file by hash.
    Column("bundle", String(64), nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("signature", JSON, nullable=True),
    Column("metrics", JSON, nullable=False),
    Column("frameworks", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    # The run the version came from; a run registers at most one version of a model.
    Column("run_id", String(36), nullable=True),
    Column("description", Text, nullable=False),
    Column("author", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("extra", JSON, nullable=False),
    UniqueConstraint("model_id", "number"),
    UniqueConstraint("run_id", "model_id"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("alias", String(255), nullable=False),
    Column("number", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_id", "alias"),
)


class RegistryRepository:
    """Row access within one transaction; returns rows or entities."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def model_row(self, name: str) -> Row[Any] | None:
        return versioned.named_row(self.conn, models, name)

    def get_or_create_model(self, name: str) -> Row[Any]:
        return versioned.get_or_create(self.conn, models, name)

    def latest_number(self, model_id: int) -> int | None:
        return versioned.latest_number(
            self.conn, model_versions, model_versions.c.model_id, model_id
        )

    def next_number(self, model_id: int) -> int:
        """The next version's number: deleted versions' numbers are never reused."""
        return versioned.next_number(
            self.conn, model_versions, model_versions.c.model_id, model_id, "model"
        )

    def models(self) -> list[Model]:
        rows = versioned.summaries(self.conn, models, model_versions, model_versions.c.model_id)
        aliases: dict[str, dict[str, int]] = {}
        for r in self.conn.execute(
            select(models.c.name, model_aliases.c.alias, model_aliases.c.number).join(
                models, models.c.id == model_aliases.c.model_id
            )
        ):
            aliases.setdefault(r.name, {})[r.alias] = r.number
        return [
            Model(
                name=r.name,
                versions=r.n or 0,
                latest=r.latest,
                aliases=dict(sorted(aliases.get(r.name, {}).items())),
                created_at=aware(r.created_at),
            )
            for r in rows
        ]

    def aliases(self, model_id: int) -> dict[str, int]:
        a = model_aliases.c
        return {
            r.alias: r.number
            for r in self.conn.execute(
                select(a.alias, a.number).where(a.model_id == model_id).order_by(a.alias)
            )
        }

    def set_alias(self, model_id: int, alias: str, number: int) -> None:
        a = model_aliases.c
        self.conn.execute(delete(model_aliases).where(a.model_id == model_id, a.alias == alias))
        self.conn.execute(
            insert(model_aliases).values(
                model_id=model_id, alias=alias, number=number, updated_at=utcnow()
            )
        )

    def remove_alias(self, model_id: int, alias: str) -> bool:
        a = model_aliases.c
        done = self.conn.execute(
            delete(model_aliases).where(a.model_id == model_id, a.alias == alias)
        )
        return bool(done.rowcount)

    def version_row(self, model_id: int, number: int) -> Row[Any] | None:
        v = model_versions.c
        return self.conn.execute(
            select(model_versions).where(v.model_id == model_id, v.number == number)
        ).first()

    def version_rows(self, model_id: int) -> list[Row[Any]]:
        v = model_versions.c
        return list(
            self.conn.execute(
                select(model_versions).where(v.model_id == model_id).order_by(v.number.desc())
            )
        )

    def version_for_run(self, run_id: str, name: str | None = None) -> tuple[str, Row[Any]] | None:
        """The version run `run_id` registered (of model `name`, or its first one)."""
        query = (
            select(models.c.name, model_versions)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(model_versions.c.run_id == run_id)
            .order_by(model_versions.c.id)
        )
        if name is not None:
            query = query.where(models.c.name == name)
        row = self.conn.execute(query).first()
        return (row.name, row) if row is not None else None

    def version_with_content(self, name: str, content: str) -> Row[Any] | None:
        """The version of model `name` holding the same model (`bundle.content_key`)."""
        model = self.model_row(name)
        if model is None:
            return None
        for row in self.version_rows(model.id):
            if (row.extra or {}).get("content") == content:
                return row
        return None

    def delete_version(self, model_id: int, number: int, by: str) -> list[str]:
        """Remove a version's row and the aliases on it, and retire its number; returns
        the aliases removed."""
        a = model_aliases.c
        aliases = list(
            self.conn.scalars(select(a.alias).where(a.model_id == model_id, a.number == number))
        )
        self.conn.execute(delete(model_aliases).where(a.model_id == model_id, a.number == number))
        v = model_versions.c
        self.conn.execute(delete(model_versions).where(v.model_id == model_id, v.number == number))
        versioned.retire(self.conn, "model", model_id, number, by)
        return aliases

    def bundles(self) -> list[str]:
        """Every version's bundle (its manifest's hash)."""
        return list(self.conn.scalars(select(model_versions.c.bundle).distinct()))

    def lineages(self) -> list[tuple[str, int, dict[str, Any]]]:
        """Every version's (model, number, lineage), to find what names a data version."""
        rows = self.conn.execute(
            select(models.c.name, model_versions.c.number, model_versions.c.lineage).join(
                models, models.c.id == model_versions.c.model_id
            )
        )
        return [(name, number, lineage or {}) for name, number, lineage in rows]

    def versions_of_run(self, run_id: str) -> list[tuple[str, Row[Any]]]:
        rows = self.conn.execute(
            select(models.c.name, model_versions)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(model_versions.c.run_id == run_id)
            .order_by(model_versions.c.id)
        )
        return [(row.name, row) for row in rows]

    def insert_version(self, **values: Any) -> Row[Any]:
        """Insert a version; the unique (model, number) constraint refuses a taken number."""
        new_id = self.conn.execute(insert(model_versions).values(**values)).inserted_primary_key
        assert new_id is not None
        row = self.conn.execute(
            select(model_versions).where(model_versions.c.id == new_id[0])
        ).first()
        assert row is not None
        return row


def to_version(name: str, row: Row[Any], aliases: dict[str, int]) -> ModelVersion:
    return ModelVersion(
        name=name,
        version=row.number,
        bundle=row.bundle,
        flavor=row.flavor,
        signature=load(Signature, row.signature) if row.signature else None,
        metrics=dict(row.metrics or {}),
        frameworks=dict(row.frameworks or {}),
        lineage=load(Lineage, row.lineage or {}),
        aliases=tuple(a for a, n in aliases.items() if n == row.number),
        description=row.description,
        author=row.author,
        created_at=aware(row.created_at),
        extra=dict(row.extra or {}),
    )
