"""Alembic migrations: one set for SQLite and PostgreSQL."""

from __future__ import annotations

import importlib

# Each concept declares its tables in its repository module (the runs concept, with the
# most, in runs/tables.py); importing them all puts every table on
# `assay.store.db.metadata`, which migrations are compared against.
TABLE_MODULES = (
    "assay.store.packs",
    "assay.data.repository",
    "assay.pipelines.repository",
    "assay.runs.tables",
    "assay.registry.repository",
    "assay.serving.repository",
    "assay.abtests.repository",
    "assay.sweeps.repository",
    "assay.auth.repository",
    "assay.monitoring.repository",
)


def load_tables() -> None:
    for module in TABLE_MODULES:
        importlib.import_module(module)
