"""The pipelines' tables and the mapping between rows and entities."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from assay.store.db import metadata

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
