"""The metadata database: connecting, migrating, and refusing what it cannot use.

Runs on SQLite and on the real PostgreSQL (`backend`); each test gets an empty database.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, make_url, select, text
from sqlalchemy.exc import SQLAlchemyError

import assay.data.repository
import assay.store.packs  # noqa: F401
from assay.errors import AssayError
from assay.store.db import HEAD_REVISION, Database, alembic_config, make_engine, metadata

DATA_TABLES = {"datasets", "data_versions", "data_tags", "table_profiles", "data_validations"}


def open_db(url: str) -> Database:
    if url.startswith("sqlite:///"):
        # The workspace makes `.assay/` before it opens the database; do the same here.
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return Database(url)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_db(db_url)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'assay.db'}")
    yield database
    database.dispose()


def test_head_revision_is_alembics_head(sqlite_db: Database) -> None:
    script = ScriptDirectory.from_config(alembic_config(sqlite_db))
    assert script.get_heads() == [HEAD_REVISION]


def test_fresh_database_has_no_revision(db: Database) -> None:
    assert db.revision() is None


def test_migrate_brings_schema_to_head(db: Database) -> None:
    db.migrate()
    assert db.revision() == HEAD_REVISION


def test_migrate_is_idempotent(db: Database) -> None:
    db.migrate()
    db.migrate()
    assert db.revision() == HEAD_REVISION
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_migrated_schema_has_the_data_tables(db: Database) -> None:
    db.migrate()
    assert set(inspect(db.engine).get_table_names()) >= DATA_TABLES


def test_migrated_schema_matches_the_models(db: Database) -> None:
    from assay.migrations import load_tables

    load_tables()
    db.migrate()
    assert set(metadata.tables) >= DATA_TABLES
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_the_tests_fast_workspaces_have_the_migrated_schema(ws: Any) -> None:
    """The `ws` fixture skips the migrations (tests/conftest.py `new_workspace`): its
    schema must be what they make, on both backends."""
    from assay.migrations import load_tables

    load_tables()
    with ws.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []
    assert ws.db.revision() == HEAD_REVISION


def test_sqlite_database_is_in_wal_mode(sqlite_db: Database, tmp_path: Path) -> None:
    sqlite_db.migrate()
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # WAL is a property of the file, so any other reader sees it too.
    with contextlib.closing(sqlite3.connect(tmp_path / "assay.db")) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_ensure_current_on_empty_database_asks_for_assay_init(db: Database) -> None:
    with pytest.raises(AssayError, match=r"has no Assay schema\. Run `assay init`"):
        db.ensure_current()
    assert db.revision() is None, "ensure_current must not create the schema itself"


def test_ensure_current_accepts_a_migrated_database(db: Database) -> None:
    db.migrate()
    db.ensure_current()
    assert db.revision() == HEAD_REVISION


def test_ensure_current_on_newer_schema_raises_assay_error(db: Database) -> None:
    db.migrate()
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        db.ensure_current()
    except AssayError:
        return
    except Exception as exc:  # what leaks instead is the point of the test
        raise AssertionError(f"{type(exc).__name__} leaked: {exc}") from exc
    raise AssertionError("a schema newer than this Assay was accepted")


UNREACHABLE = "postgresql+psycopg://assay:s3cret@127.0.0.1:1/assay"


def test_unreachable_postgresql_names_the_url() -> None:
    db = Database(UNREACHABLE)
    shown = re.escape("postgresql+psycopg://assay:***@127.0.0.1:1/assay")
    try:
        for attempt in (db.revision, db.migrate, db.ensure_current):
            with pytest.raises(AssayError, match=shown) as info:
                attempt()
            assert not isinstance(info.value, SQLAlchemyError)
            assert "s3cret" not in str(info.value)
        with pytest.raises(AssayError, match=shown), db.session() as session:
            session.execute(text("SELECT 1"))
    finally:
        db.dispose()


def test_missing_postgresql_database_names_the_url(pg_server_url: str) -> None:
    url = make_url(pg_server_url).set(database="assay_no_such_database")
    db = Database(url.render_as_string(hide_password=False))
    try:
        for attempt in (db.revision, db.migrate):
            with pytest.raises(AssayError, match="assay_no_such_database"):
                attempt()
    finally:
        db.dispose()


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_plain_postgresql_urls_use_psycopg(scheme: str) -> None:
    engine = make_engine(f"{scheme}://u:p@127.0.0.1:5432/assay")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()


# ---- a database that does not answer -------------------------------------------------------


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server on loopback that accepts connections and never says a word; its port."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)  # kept open, never read nor answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        for conn in held:
            conn.close()
        thread.join(timeout=5)


def test_a_database_that_accepts_and_never_answers_fails_the_cli_in_one_line(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    with silent_server() as port:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")},
            "ASSAY_DB_URL": f"postgresql+psycopg://assay:s3cret@127.0.0.1:{port}/assay",
            "ASSAY_STORE_URL": str(tmp_path / "objects"),
            "ASSAY_DB_TIMEOUT_S": "1",
        }
        # The timeout here only stops a hang from stalling the suite; failing it is the bug.
        done = subprocess.run(
            [sys.executable, "-m", "assay", "data", "list"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"postgresql+psycopg://assay:***@127.0.0.1:{port}/assay" in lines[0]
    assert "s3cret" not in done.stderr
    assert "ASSAY_DB_TIMEOUT_S" in lines[0]  # what to do: it says how long it waited, and how


def test_a_locked_sqlite_database_fails_a_write_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from assay.cli import context
    from assay.cli.main import app

    monkeypatch.chdir(tmp_path)
    for key in ("ASSAY_DB_URL", "ASSAY_STORE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ASSAY_DB_TIMEOUT_S", "0.5")
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["init"], catch_exceptions=False).exit_code == 0
        (tmp_path / "x.txt").write_text("x")
        # Another process holds the write lock and never lets go.
        holder = sqlite3.connect(tmp_path / ".assay" / "assay.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            result = runner.invoke(app, ["data", "commit", "x", "x.txt"], catch_exceptions=False)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    finally:
        context.close()
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "locked" in lines[0]
    assert "assay.db" in lines[0]
    assert "ASSAY_DB_TIMEOUT_S" in lines[0]


def test_postgresql_connections_carry_the_timeouts_and_keep_the_urls_options(
    pg_server_url: str,
) -> None:
    url = make_url(pg_server_url).update_query_dict({"options": "-csearch_path=public"})
    db = Database(url.render_as_string(hide_password=False), timeout_s=7)
    try:
        with db.read() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "7s"
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "7s"
            assert conn.execute(text("SHOW search_path")).scalar() == "public"
    finally:
        db.dispose()


def test_runs_made_before_0016_get_their_params_document_and_read_the_same(
    db: Database,
) -> None:
    """Migration 0016 writes each run's params document from its params rows: what a
    listing read row by row before, it reads from the document after, value for value
    (a float to the last digit, a string, a list, a run without params)."""
    from alembic import command

    from assay.runs.repository import RunRepository
    from assay.runs.tables import runs

    command.upgrade(alembic_config(db), "0015")
    params: dict[str, dict[str, Any]] = {
        "a": {"C": 0.1234567890123456, "n": 3, "kind": "k1", "ok": True, "layers": [1, 2]},
        "b": {"C": 2.5},
        "c": {},
    }
    with db.session() as conn:
        conn.execute(text("INSERT INTO experiments (id, name, created_at, runs_made) "
                          "VALUES (1, 'e', CURRENT_TIMESTAMP, 3)"))  # fmt: skip
        for run_id, values in params.items():
            conn.execute(
                text("INSERT INTO runs (id, experiment_id, name, status, created_at) "
                     "VALUES (:id, 1, :id, 'succeeded', CURRENT_TIMESTAMP)"),
                {"id": run_id},
            )  # fmt: skip
            if values:
                RunRepository(conn)._insert_params(run_id, values)
    db.migrate()
    with db.read() as conn:
        docs = dict(conn.execute(select(runs.c.id, runs.c.params_doc)).all())
        found = {run.id: run.params for run in RunRepository(conn).search()}
    assert {k: json.loads(v) for k, v in docs.items()} == params
    assert found == params


def test_0015_numbers_the_next_run_after_the_highest_name_and_candidates_count(
    db: Database,
) -> None:
    """An experiment whose runs `e-1`, `e-2` and `e-5` are left (`e-3` and `e-4` were
    deleted before the upgrade) names its next run `e-6`, not `e-4` (the count + 1) nor a
    second `e-5`; a search's candidates count as runs made, as they did when runs were
    counted."""
    from alembic import command

    from assay.runs.repository import RunRepository

    command.upgrade(alembic_config(db), "0014")
    with db.session() as conn:
        conn.execute(text("INSERT INTO experiments (id, name, created_at) "
                          "VALUES (1, 'e', CURRENT_TIMESTAMP)"))  # fmt: skip
        for n in (1, 2, 5):
            conn.execute(
                text("INSERT INTO runs (id, experiment_id, name, status, created_at) "
                     "VALUES (:id, 1, :name, 'succeeded', CURRENT_TIMESTAMP)"),
                {"id": f"r{n}", "name": f"e-{n}"},
            )  # fmt: skip
    db.migrate()
    with db.session() as conn:
        assert RunRepository(conn).next_run_number(1) == 6
        RunRepository(conn).next_run_number(1, 3)  # three candidates
        assert RunRepository(conn).next_run_number(1) == 10


def test_0017_keeps_every_param_and_metric_and_clusters_them_by_key(
    sqlite_db: Database,
) -> None:
    """On SQLite the params and final metrics are rebuilt as tables kept in their key's
    order (one b-tree: a search's lookups and a run's inserts touch one, not two), with
    every row as it was, and back again on a downgrade."""
    from alembic import command

    command.upgrade(alembic_config(sqlite_db), "0016")
    with sqlite_db.session() as conn:
        conn.execute(text("INSERT INTO experiments (id, name, created_at) "
                          "VALUES (1, 'e', CURRENT_TIMESTAMP)"))  # fmt: skip
        conn.execute(text("INSERT INTO runs (id, experiment_id, name, status, created_at) "
                          "VALUES ('r1', 1, 'e-1', 'succeeded', CURRENT_TIMESTAMP)"))  # fmt: skip
        conn.execute(text("INSERT INTO run_params (run_id, key, value, value_num, value_str) "
                          "VALUES ('r1', 'C', '0.5', 0.5, NULL), "
                          "('r1', 'kind', '\"rf\"', NULL, 'rf')"))  # fmt: skip
        conn.execute(text("INSERT INTO run_metrics (run_id, key, value, step) "
                          "VALUES ('r1', 'acc', 0.9, 3)"))  # fmt: skip
    # A run deleted in the sqlite3 shell, whose foreign keys are off: its rows are orphans.
    shell = sqlite3.connect(sqlite_db.url.removeprefix("sqlite:///"))
    with shell:
        shell.execute("INSERT INTO run_params VALUES ('gone', 'C', '1', 1.0, NULL)")
        shell.execute("INSERT INTO run_metrics VALUES ('gone', 'acc', 0.5, 1)")
    shell.close()

    def tables() -> tuple[list[Any], list[Any], dict[str, str]]:
        with sqlite_db.read() as conn:
            params = conn.execute(text("SELECT * FROM run_params ORDER BY key")).all()
            metrics = conn.execute(text("SELECT * FROM run_metrics")).all()
            found = conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE name IN ('run_params', 'run_metrics')"
            )).all()  # fmt: skip
        schema = {str(name): str(sql) for name, sql in found}
        return [tuple(r) for r in params], [tuple(r) for r in metrics], schema

    before_params, before_metrics, schema = tables()
    assert not any("WITHOUT ROWID" in sql for sql in schema.values())
    sqlite_db.migrate()
    params, metrics, schema = tables()
    assert params == [r for r in before_params if r[0] == "r1"]  # the orphans stay behind
    assert metrics == [r for r in before_metrics if r[0] == "r1"]
    assert len(params) == 2
    assert len(metrics) == 1
    assert all(sql.endswith("WITHOUT ROWID") for sql in schema.values()), schema
    with sqlite_db.session() as conn:  # the cascade still holds
        conn.execute(text("DELETE FROM runs WHERE id = 'r1'"))
        assert conn.execute(text("SELECT count(*) FROM run_params")).scalar_one() == 0

    command.downgrade(alembic_config(sqlite_db), "0016")
    _, _, schema = tables()
    assert not any("WITHOUT ROWID" in sql for sql in schema.values())
