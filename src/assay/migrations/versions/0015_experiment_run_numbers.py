"""Each experiment counts the runs it has made, for the next run's name (`iris-7`)

Naming a run counted the experiment's runs: a scan of its index entries in every run's
creating transaction, a quarter of a millisecond at 3,000 runs and growing with each.
`experiments.runs_made` is one row to bump instead. It only grows, so a name is never
given twice, even after runs are deleted (the count went back down, and named the next
run as one that had been deleted).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("runs_made", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE experiments SET runs_made = "
        "(SELECT count(*) FROM runs WHERE runs.experiment_id = experiments.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("runs_made")
