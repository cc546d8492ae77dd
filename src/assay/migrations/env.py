from __future__ import annotations

from alembic import context

from assay.migrations import load_tables
from assay.store.db import metadata

load_tables()

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
