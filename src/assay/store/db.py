"""The metadata database: engine, sessions and the migrations runner.

SQLite (the default, in WAL mode) and PostgreSQL share one schema and one set of
Alembic migrations. Each concept declares its own tables on `metadata` in its
`repository.py` (SQLAlchemy Core); this module only knows how to connect and migrate.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from assay.errors import AssayError, InvalidArgumentError

# The newest migration. Checking it costs one query, where loading Alembic's
# script directory on every command would cost far more; a test pins it.
HEAD_REVISION = "0017"

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


metadata = MetaData(naming_convention=_NAMING)

# The advisory lock key of the store's garbage collection (any constant; "assay gc").
_STORE_LOCK = 0x6173_7361_7967_63


def utcnow() -> datetime:
    """Now, in UTC: every timestamp Assay stores is UTC."""
    return datetime.now(UTC)


def aware(ts: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive ones)."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class DatabaseError(AssayError):
    status = 503


# How long a command may wait on the metadata database by default (ASSAY_DB_TIMEOUT_S).
DEFAULT_TIMEOUT_S = 30.0


def make_engine(url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, **options: Any) -> Engine:
    """An engine for `url`, tuned for many short writers on SQLite.

    Nothing waits on the database longer than `timeout_s`: to connect (PostgreSQL), for
    a lock (both), for one statement (PostgreSQL, which cuts it off on its side).
    """
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": timeout_s}, **options)
            _tune_sqlite(engine, timeout_s)
        else:
            engine = create_engine(
                url, pool_pre_ping=True, connect_args=_pg_timeouts(url, timeout_s), **options
            )
    except (ImportError, ValueError) as exc:
        raise InvalidArgumentError(
            f"Cannot use database URL {url!r}: {exc}. "
            "PostgreSQL needs `pip install assay[postgres]` and a `postgresql+psycopg://` URL."
        ) from exc
    return engine


def _pg_timeouts(url: str, timeout_s: float) -> dict[str, Any]:
    # connect_timeout bounds the whole handshake: a server that accepts the connection
    # and never answers is given up on (libpq counts whole seconds, at least 2). The
    # server-side timeouts go in the startup packet's options, after the URL's own
    # (a search_path, say), which a connect argument of the same name would replace.
    ms = max(1, round(timeout_s * 1000))
    mine = f"-c statement_timeout={ms} -c lock_timeout={ms}"
    theirs = make_url(url).query.get("options")
    if isinstance(theirs, tuple):
        theirs = " ".join(theirs)
    return {
        "connect_timeout": max(2, math.ceil(timeout_s)),
        "options": f"{theirs} {mine}" if theirs else mine,
    }


def _tune_sqlite(engine: Engine, timeout_s: float) -> None:
    busy_ms = max(1, round(timeout_s * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that later writes can fail at once with "database
        # is locked" (SQLite cannot wait to upgrade a read lock); taking the write
        # lock up front makes concurrent writers queue on busy_timeout instead.
        # Readers (WAL) need no lock at all.
        # Straight to the driver: through `exec_driver_sql` it cost as much as the
        # statements of a small transaction (a run opened in a loop has two).
        sql = "BEGIN" if conn.get_execution_options().get("assay_read_only") else "BEGIN IMMEDIATE"
        try:
            conn.connection.dbapi_connection.execute(sql)
        except sqlite3.Error as exc:  # wrapped as SQLAlchemy wraps it ("database is locked")
            raise DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc


class Database:
    """An engine; `session()` is one write transaction, `read()` one read-only."""

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, **options: Any) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.engine = make_engine(url, timeout_s=timeout_s, **options)

    @contextlib.contextmanager
    def session(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._translated(), self.engine.begin() as conn:
            yield conn

    def store_lock(self, conn: Connection, *, exclusive: bool) -> None:
        """Within `conn`'s write transaction, the lock between the garbage collector
        (exclusive) and writers that make objects referenced (shared): while the
        collector reads what is live and removes the rest, no version is made, and a
        version is made only once its objects are known to exist.

        SQLite needs nothing more: a write transaction already excludes every other
        writer. PostgreSQL takes a transaction-scoped advisory lock.
        """
        if conn.dialect.name != "postgresql":
            return
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        conn.execute(text(f"SELECT {fn}(:key)"), {"key": _STORE_LOCK})

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
            raise self._failed(exc, "The metadata database at {url} failed") from exc

    def _failed(self, exc: OperationalError, what: str) -> DatabaseError:
        """One line naming the database (password hidden), what went wrong, what to do."""
        # libpq's messages run over several lines (one per address tried).
        reason = "; ".join(line.strip() for line in str(exc.orig).splitlines() if line.strip())
        lowered = reason.lower()
        wait = f"{self.timeout_s:g} s"
        if "full" in lowered:  # SQLite's "database or disk is full": space, not a network
            advice = "Free some space and retry."
        elif "locked" in lowered or "lock timeout" in lowered:
            advice = (
                f"Another process held it locked for {wait}. Retry when it is done, or wait "
                "longer with ASSAY_DB_TIMEOUT_S."
            )
        elif "timeout" in lowered or "timed out" in lowered or "canceling statement" in lowered:
            advice = (
                f"It did not answer within {wait} (ASSAY_DB_TIMEOUT_S). Check that the "
                "server is up and answering, and the URL (ASSAY_DB_URL or assay.toml)."
            )
        else:
            advice = (
                "Check the URL (ASSAY_DB_URL or assay.toml) and that the server is up; "
                f"Assay waits {wait} for it (ASSAY_DB_TIMEOUT_S)."
            )
        return DatabaseError(f"{what.format(url=self.safe_url)}: {reason}. {advice}")

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def revision(self) -> str | None:
        """The schema's current migration, or None for an empty database."""
        try:
            # Read-only: every command asks this first, and on SQLite a plain
            # transaction would take the write lock for it.
            with self.engine.connect().execution_options(assay_read_only=True) as conn:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
                conn.rollback()
        except (OperationalError, ProgrammingError) as exc:
            if _is_missing_table(exc):
                return None
            if isinstance(exc, OperationalError):
                raise self._failed(exc, "Cannot reach the metadata database at {url}") from exc
            raise DatabaseError(
                f"Cannot read the metadata database at {self.safe_url}: {exc.orig}. "
                "Check the URL (ASSAY_DB_URL or assay.toml)."
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
            raise self._failed(exc, "Cannot migrate the metadata database at {url}") from exc

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
        """Close the pooled connections (the engine stays usable). `Engine.dispose` also
        builds a new pool, which costs a command more than its query did."""
        self.engine.pool.dispose()


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
