"""The pipelines' tables and the mapping between rows and entities."""

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
    insert,
    select,
)

from assay.pipelines.entities import PipelineInfo, PipelineVersion, StepInfo
from assay.serialize import dump
from assay.store import versioned
from assay.store.db import aware, metadata

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pipeline_id", ForeignKey("pipelines.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    # The snapshot: a manifest object listing the source files (as a data version's does).
    Column("manifest", String(64), nullable=False),
    # The module that defines the pipeline, relative to the snapshot's root.
    Column("entry", String(1024), nullable=False),
    # Step names in order, each with its code hash and the names it takes as inputs.
    Column("steps", JSON, nullable=False),
    Column("message", Text, nullable=False),
    Column("author", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("pipeline_id", "number"),
)


class PipelineRepository:
    """Row access within one transaction; returns rows or entities."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def pipeline_row(self, name: str) -> Row[Any] | None:
        return versioned.named_row(self.conn, pipelines, name)

    def get_or_create_pipeline(self, name: str) -> Row[Any]:
        return versioned.get_or_create(self.conn, pipelines, name)

    def pipelines(self) -> list[PipelineInfo]:
        rows = versioned.summaries(
            self.conn, pipelines, pipeline_versions, pipeline_versions.c.pipeline_id
        )
        return [
            PipelineInfo(
                name=r.name,
                versions=r.n or 0,
                latest=r.latest,
                updated_at=aware(r.updated) if r.updated else None,
            )
            for r in rows
        ]

    def names_with_manifest(self, digest: str, entry: str) -> list[str]:
        """Pipelines with a version holding exactly this snapshot and entry file."""
        rows = self.conn.execute(
            select(pipelines.c.name)
            .join(pipeline_versions, pipeline_versions.c.pipeline_id == pipelines.c.id)
            .where(pipeline_versions.c.manifest == digest, pipeline_versions.c.entry == entry)
            .distinct()
        )
        return [r[0] for r in rows]

    def manifests(self) -> list[str]:
        return list(self.conn.scalars(select(pipeline_versions.c.manifest).distinct()))

    def latest_number(self, pipeline_id: int) -> int | None:
        return versioned.latest_number(
            self.conn, pipeline_versions, pipeline_versions.c.pipeline_id, pipeline_id
        )

    def version_row(self, pipeline_id: int, number: int) -> Row[Any] | None:
        v = pipeline_versions.c
        return self.conn.execute(
            select(pipeline_versions).where(v.pipeline_id == pipeline_id, v.number == number)
        ).first()

    def version_rows(self, pipeline_id: int) -> list[Row[Any]]:
        v = pipeline_versions.c
        return list(
            self.conn.execute(
                select(pipeline_versions)
                .where(v.pipeline_id == pipeline_id)
                .order_by(v.number.desc())
            )
        )

    def insert_version(self, **values: Any) -> Row[Any]:
        """Insert a version; the unique (pipeline, number) constraint refuses a taken number."""
        new_id = self.conn.execute(insert(pipeline_versions).values(**values)).inserted_primary_key
        assert new_id is not None
        row = self.conn.execute(
            select(pipeline_versions).where(pipeline_versions.c.id == new_id[0])
        ).first()
        assert row is not None
        return row


def steps_json(
    steps: list[StepInfo] | tuple[StepInfo, ...], model: str | None, metrics: str | None
) -> dict[str, Any]:
    """The `steps` column: the steps in order, and which of them yield the model and metrics."""
    return {
        "steps": dump(steps),
        "model": model,
        "metrics": metrics,
    }


def to_version(name: str, row: Row[Any]) -> PipelineVersion:
    doc = row.steps
    return PipelineVersion(
        pipeline=name,
        number=row.number,
        manifest=row.manifest,
        entry=row.entry,
        steps=tuple(StepInfo(s["name"], tuple(s["inputs"]), s["code_hash"]) for s in doc["steps"]),
        model_step=doc.get("model"),
        metrics_step=doc.get("metrics"),
        message=row.message,
        author=row.author,
        created_at=aware(row.created_at),
    )
