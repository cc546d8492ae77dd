"""Deleting versions and runs, archiving runs and experiments

- `retired_versions`: the numbers of deleted data and model versions. A number is
  never given out again (a reference like `churn@3` written down somewhere must not
  come to mean other content), and a read of it can say it was deleted.
- `runs.archived_at`, `experiments.archived_at`: archived runs are kept, with all they
  recorded, but left out of listings until restored.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_versions",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("kind", "owner_id", "number", name=op.f("pk_retired_versions")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("archived_at")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("archived_at")
    op.drop_table("retired_versions")
