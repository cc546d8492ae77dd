"""Runs know their parent and the code they ran

- `runs.parent_id`: a run made inside another (a search's candidates under the search
  that tried them, as `assay.autolog()` records a GridSearchCV), indexed to list a
  run's children.
- `runs.code`: the content hash of the code version the run executed: a pipeline
  snapshot, or for a notebook or script run the captured file (or executed cells)
  with its git commit and diff.
- A run may register one version of each of several models (a notebook that logs a
  scaler and a classifier, or a run registered again under another name): the unique
  key of `model_versions.run_id` becomes (run_id, model_id).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("code", sa.String(length=64), nullable=True))
    op.create_index("ix_runs_parent_id", "runs", ["parent_id"])
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_constraint("uq_model_versions_run_id", type_="unique")
        batch.create_unique_constraint("uq_model_versions_run_id", ["run_id", "model_id"])


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_constraint("uq_model_versions_run_id", type_="unique")
        batch.create_unique_constraint("uq_model_versions_run_id", ["run_id"])
    op.drop_index("ix_runs_parent_id", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("code")
        batch.drop_column("parent_id")
