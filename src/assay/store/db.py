"""The metadata database: engine, sessions and the migrations runner.

SQLite (the default, in WAL mode) and PostgreSQL share one schema and one set of
Alembic migrations. Each concept declares its own tables on `metadata` in its
`repository.py` (SQLAlchemy Core); this module only knows how to connect and migrate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from assay.errors import AssayError, InvalidArgumentError

# The newest migration. Checking it costs one query, where loading Alembic's
# script directory on every command would cost far more; a test pins it.
HEAD_REVISION = "0010"

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


metadata = MetaData(naming_convention=_NAMING)


def utcnow() -> datetime:
    """Now, in UTC: every timestamp Assay stores is UTC."""
    return datetime.now(UTC)


def aware(ts: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive ones)."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class DatabaseError(AssayError):
    status = 503


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for `url`, tuned for many short writers on SQLite."""
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 60}, **options)
            _tune_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True, **options)
    except (ImportError, ValueError) as exc:
        raise InvalidArgumentError(
            f"Cannot use database URL {url!r}: {exc}. "
            "PostgreSQL needs `pip install assay[postgres]` and a `postgresql+psycopg://` URL."
        ) from exc
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that later writes can fail at once with "database
        # is locked" (SQLite cannot wait to upgrade a read lock); taking the write
        # lock up front makes concurrent writers queue on busy_timeout instead.
        # Readers (WAL) need no lock at all.
        if conn.get_execution_options().get("assay_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine; `session()` is one write transaction, `read()` one read-only."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **options)

    @contextlib.contextmanager
    def session(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._translated(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite it takes no write lock)."""
        with (
            self._translated(),
            self.engine.connect().execution_options(assay_read_only=True) as conn,
            conn.begin(),
        ):
            yield conn

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise DatabaseError(
                f"The metadata database at {self.safe_url} failed: {exc.orig}. "
                "Check that it is reachable and retry."
            ) from exc

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def revision(self) -> str | None:
        """The schema's current migration, or None for an empty database."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
                conn.rollback()
        except (OperationalError, ProgrammingError) as exc:
            if _is_missing_table(exc):
                return None
            raise DatabaseError(
                f"Cannot reach the metadata database at {self.safe_url}: {exc.orig}. "
                "Check the URL (ASSAY_DB_URL or assay.toml) and that the server is up."
            ) from exc
        return None if row is None else str(row[0])

    def migrate(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there)."""
        if self.revision() == HEAD_REVISION:
            return
        from alembic import command

        try:
            command.upgrade(alembic_config(self), "head")
        except OperationalError as exc:
            raise DatabaseError(
                f"Cannot migrate the metadata database at {self.safe_url}: {exc.orig}. "
                "Check the URL and that the database exists."
            ) from exc

    def ensure_current(self) -> None:
        """Bring an older schema up to date; refuse an empty or a newer one.

        Raises:
            DatabaseError: no Assay schema yet, or one written by a newer Assay.
        """
        rev = self.revision()
        if rev == HEAD_REVISION:
            return
        if rev is None:
            raise DatabaseError(
                f"The metadata database at {self.safe_url} has no Assay schema. "
                "Run `assay init` to create it."
            )
        from alembic.util import CommandError

        try:
            self.migrate()
        except CommandError as exc:
            raise DatabaseError(
                f"The metadata database at {self.safe_url} has schema revision {rev!r}, "
                "which this version of Assay does not know: it was written by a newer Assay. "
                "Upgrade Assay (`pip install -U assay`)."
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()


def _is_missing_table(exc: Exception) -> bool:
    # Only the alembic_version table missing means "empty database"; a missing
    # database or role ("database x does not exist") is a connection problem.
    msg = str(exc).lower()
    return "alembic_version" in msg and ("no such table" in msg or "does not exist" in msg)


def alembic_config(db: Database) -> Any:
    from alembic.config import Config

    import assay.migrations as migrations

    here = Path(migrations.__file__).parent
    cfg = Config()
    cfg.set_main_option("script_location", str(here))
    cfg.attributes["engine"] = db.engine
    return cfg
