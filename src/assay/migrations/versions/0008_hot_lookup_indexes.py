"""Indexes for two lookups that ran on every tracked run and every read

- "Is this params file a version already, and which is the newest?" filters on
  (dataset_id, manifest) and takes the highest number. With only (dataset_id,
  manifest) indexed, SQLite's planner preferred the unique (dataset_id, number) index,
  to skip the sort, and walked every version of the dataset: one more step for each
  run ever tracked. With number in the index, one seek answers both.
- Every read looks for running runs whose runner went silent: by status, indexed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 12:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_data_versions_dataset_manifest", table_name="data_versions")
    op.create_index(
        "ix_data_versions_dataset_manifest_number",
        "data_versions",
        ["dataset_id", "manifest", "number"],
    )
    op.create_index("ix_runs_status", "runs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_index("ix_data_versions_dataset_manifest_number", table_name="data_versions")
    op.create_index(
        "ix_data_versions_dataset_manifest", "data_versions", ["dataset_id", "manifest"]
    )
