"""Each run's params as one JSON document beside the rows, for listings to read

A filtered search of 1,000 runs spent half its time reading back the hundred runs' fifty
params rows each (5,000 rows, each decoded). `runs.params_doc` holds the same params as
one JSON object, written with the rows; `run_params` stays, for filters and sorts.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 17:30:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("params_doc", sa.Text(), nullable=True))
    conn = op.get_bind()
    raw = conn.dialect.name == "sqlite"  # JSON text there; psycopg decodes it
    ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM runs ORDER BY id"))]
    for i in range(0, len(ids), _BATCH):
        chunk = ids[i : i + _BATCH]
        docs: dict[str, dict[str, object]] = {run_id: {} for run_id in chunk}
        rows = conn.execute(
            sa.text("SELECT run_id, key, value FROM run_params WHERE run_id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": chunk},
        )
        for run_id, key, value in rows:
            docs[run_id][key] = json.loads(value) if raw and isinstance(value, str) else value
        conn.execute(
            sa.text("UPDATE runs SET params_doc = :doc WHERE id = :id"),
            [{"id": k, "doc": json.dumps(doc, sort_keys=True)} for k, doc in docs.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("params_doc")
