"""The start time of the process recorded with a run

A run records a pid and a host: the command that queued it while it is queued, the
runner executing it once it runs. A pid alone can be reused after that process died,
by anything; with the process's start time beside it, a reader tells the owner from
a stranger and marks the run of a dead owner instead of waiting for it forever.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("pid_started", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("pid_started")
