from __future__ import annotations

from alembic import context

from assay.migrations import load_tables
from assay.store.db import metadata

load_tables()

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # A migration may rewrite a big table: ASSAY_DB_TIMEOUT_S bounds a command's
        # statements, not this one-off work.
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
