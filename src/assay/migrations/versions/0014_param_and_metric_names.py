"""The names runs use, kept apart from the values: creating a run writes a few pages

- `param_keys`, `metric_keys`: every param and metric name a run has, one row each (the
  dashboard's column choosers read them).
- The indexes `ix_run_params_key_num` and `ix_run_metrics_key_value` go. They served only
  those choosers (a search looks up each run's values by `(run_id, key)`; measured at
  10,000 runs, filtered and sorted searches took the same time without them), and each
  run's 50 params and 10 metrics touched 60 pages of them, one per name: a third of a
  run's creation time and most of its write-ahead log.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_NAMES = {"param_keys": "run_params", "metric_keys": "run_metrics"}
_INDEXES = {
    "run_params": ("ix_run_params_key_num", ["key", "value_num"]),
    "run_metrics": ("ix_run_metrics_key_value", ["key", "value"]),
}


def upgrade() -> None:
    for names, values in _NAMES.items():
        op.create_table(
            names,
            sa.Column("key", sa.String(length=255), nullable=False),
            sa.PrimaryKeyConstraint("key", name=op.f(f"pk_{names}")),
        )
        op.execute(f"INSERT INTO {names} (key) SELECT DISTINCT key FROM {values}")
    for table, (index, _columns) in _INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)


def downgrade() -> None:
    for table, (index, columns) in _INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(index, columns, unique=False)
    for names in _NAMES:
        op.drop_table(names)
