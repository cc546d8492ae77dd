"""Each experiment counts the runs it has made, for the next run's name (`iris-7`)

Naming a run counted the experiment's runs: a scan of its index entries in every run's
creating transaction, a quarter of a millisecond at 3,000 runs and growing with each.
`experiments.runs_made` is one row to bump instead (a search's candidates bump it too, as
they were counted). It only grows, so a name is not given again after runs are deleted
(the count went back down, and named the next run as one that had been deleted); it starts
at the count, or at the highest number a run's name already has, if that is higher.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 17:30:00
"""

from __future__ import annotations

import re

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
    # The count the names were made from, or the highest number a name already has, if
    # runs were deleted before: the next name must be new.
    conn = op.get_bind()
    for exp_id, name in conn.execute(sa.text("SELECT id, name FROM experiments")).all():
        numbered = re.compile(re.escape(name) + r"-([0-9]+)")
        made = top = 0
        for (run_name,) in conn.execute(
            sa.text("SELECT name FROM runs WHERE experiment_id = :e"), {"e": exp_id}
        ):
            made += 1
            found = numbered.fullmatch(run_name or "")
            if found:
                top = max(top, int(found.group(1)))
        conn.execute(
            sa.text("UPDATE experiments SET runs_made = :n WHERE id = :e"),
            {"n": max(made, top), "e": exp_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("runs_made")
