"""Services and A/B tests on a Ray cluster: where each one runs

- `services.runs_on`, `abtests.runs_on`: `local` (a process on the machine that deployed
  it) or `ray` (a Ray Serve application on the cluster at `ASSAY_RAY_ADDRESS`), so a list
  shows both side by side. Existing rows run locally.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TABLES = ("services", "abtests")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("runs_on", sa.String(length=16), nullable=False, server_default="local")
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("runs_on")
