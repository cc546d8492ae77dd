"""Shared fixtures: a workspace on each metadata backend, a local S3-compatible server.

Every data-repository test that takes `ws` runs twice: on SQLite in `tmp_path` and
on the real PostgreSQL at 127.0.0.1:5432 (database `test`), each test in a schema
of its own. `--db-url` points the PostgreSQL runs at another server;
`--backends sqlite` skips them (CI never does: there an unreachable server fails).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from typer.testing import CliRunner, Result

from servers import free_port  # type: ignore[import-not-found]  # tests/ is on sys.path

# The CLI's Rich consoles take the terminal's width when they are made, on import: wide
# and fixed for every test, whichever process (or xdist worker) runs it.
os.environ["COLUMNS"] = "200"
# The `assay` processes tests start are served by warm servers, as a user's are
# (`assay.cli.warm`); those the suite starts go away two minutes after it ends.
os.environ.setdefault("ASSAY_WARM_IDLE_S", "120")

from assay.cli import context
from assay.cli.main import app
from assay.config import Settings
from assay.workspace import GITIGNORE, Workspace, init_workspace

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BIN = Path(sys.executable).parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db-url",
        default=os.environ.get("ASSAY_TEST_PG_URL", DEFAULT_PG),
        help="PostgreSQL URL for the second backend run.",
    )
    parser.addoption(
        "--backends",
        default="sqlite,postgresql",
        help="Comma-separated metadata backends to run on.",
    )


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background by a shell without job control (`make test &` in
    # a script, a CI runner) inherits SIGINT ignored, and an ignored signal stays ignored
    # across exec: every CLI and runner the tests start would then ignore the Ctrl-C that
    # the interruption tests send, and run to the end. Python's own handler is inherited
    # as the default instead.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# Tests that share one expensive session fixture run in one xdist worker (`--dist
# loadgroup`): a second Ray head, or a second browser and dashboard, would only compete for
# the same two cores. Grouped by the fixture they use, so new tests join by themselves.
_GROUPS = {"ray_head": "ray", "dashboard": "ui", "pair": "parity"}


# The modules whose tests take longest (each a minute or more of one worker, from the
# suite's junit times), started first: xdist hands out work in collection order (a group's
# before single tests), and the README's tour, collected last, kept one worker busy for
# minutes after the other had run out of work.
_LONG_FIRST = (
    # The Ray group first: its head stops after the group's last test (below), so the
    # earlier the group runs, the less of the suite shares the cores with an idle head.
    "tests/serving/test_ray_serve.py",
    "tests/cli/test_demo.py",
    "tests/test_readme.py",
    "tests/monitoring/test_loop.py",
    "tests/server/test_monitoring_api.py",
    "tests/sdk/test_notebooks.py",
    "tests/server/test_schemathesis.py",
    "tests/sdk/test_remote_notebook.py",
)


# Marks first: xdist's worker reads them in this same hook, to send a group's tests to one
# worker (it appends `@group` to their ids).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):  # `-p no:xdist`: no groups to join
        return
    rank = {path: n for n, path in enumerate(_LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
    for item in items:
        names = getattr(item, "fixturenames", ())
        group = next((g for fixture, g in _GROUPS.items() if fixture in names), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A grouped test that xdist did not group fails before its fixtures start. When a
    pytest upgrade broke the grouping, the groups split without a word: each worker
    started its own Ray head and browser, and the suite took two minutes more."""
    if (
        getattr(item.config.option, "loadgroup", False)  # an xdist worker, --dist loadgroup
        and item.get_closest_marker("xdist_group")
        and "@" not in item.nodeid
    ):
        pytest.fail(
            "xdist did not group this test (its id has no @group): check the pytest and "
            "pytest-xdist pins in constraints-dev.txt.",
            pytrace=False,
        )


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The Ray head stops after the last test of a run of tests that use it, with what
    was deployed on it, rather than at the end of the session. Its processes (the Serve
    controller and proxy, GCS, raylet, log monitor, agents and idle replicas) took 0.19
    of a core while idle: 140 s of CPU in a suite where the Ray tests end half-way. A
    later test that asks for the head again starts another."""
    if "ray_head" not in getattr(item, "fixturenames", ()):
        return
    if nextitem is not None and "ray_head" in getattr(nextitem, "fixturenames", ()):
        return
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    defs = fixtureinfo.name2fixturedefs.get("ray_head") if fixtureinfo else None
    if defs:
        # Finishing a fixture finishes first every fixture that requested it.
        defs[-1].finish(item._request)  # type: ignore[attr-defined]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = metafunc.config.getoption("--backends").split(",")
        if metafunc.definition.get_closest_marker("one_backend"):
            backends = backends[:1]  # what it tests is timing or processes, not the database
        metafunc.parametrize("backend", backends)


@pytest.fixture(scope="session")
def pg_server_url(request: pytest.FixtureRequest) -> str:
    url: str = request.config.getoption("--db-url")
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the message says what to do; a silent skip would hide it
        pytest.fail(
            f"PostgreSQL at {url} is not reachable ({exc}); start it or pass --backends sqlite",
            pytrace=False,
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty metadata database on `backend`."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / '.assay' / 'assay.db'}"
        return
    yield from pg_schema(request.getfixturevalue("pg_server_url"))


@pytest.fixture
def fresh_pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty schema on the test PostgreSQL server, as a database URL."""
    yield from pg_schema(pg_server_url)


def pg_schema(server: str) -> Iterator[str]:
    """A fresh, empty schema on the test PostgreSQL server, as a database URL; dropped after."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in server else "?"
    try:
        yield f"{server}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose workspace is `tmp_path`."""
    out = {"ASSAY_AUTHOR": "tester"}
    if not db_url.startswith("sqlite"):
        out["ASSAY_DB_URL"] = db_url
    return out


@pytest.fixture
def ws(tmp_path: Path, env: dict[str, str]) -> Iterator[Workspace]:
    """An initialised workspace in `tmp_path` on the parametrised backend."""
    workspace = Workspace(new_workspace(Settings.at(tmp_path, env)))
    yield workspace
    workspace.close()


# ---- workspaces without running the migrations each time ------------------------------------
#
# `assay init` runs every Alembic migration: a third of a second on PostgreSQL, a tenth on
# SQLite, for each of hundreds of tests. The schema the migrations make is the models'
# metadata (tests/store/test_db.py proves they agree), so a test workspace gets it as one
# copied SQLite file, or one SQL script on PostgreSQL, stamped with the head revision.
# The migrations themselves are tested where they are the point (test_db.py, `assay init`).

_TEMPLATE: dict[str, Any] = {}


@pytest.fixture
def make_workspace() -> Callable[[Settings], Settings]:
    """`new_workspace`, for conftests below this one."""
    return new_workspace


def new_workspace(settings: Settings) -> Settings:
    """What `init_workspace(settings)` makes, fast: the folders, and the schema."""
    from assay.store.objects import LocalObjectStore, ObjectStore

    assert settings.root is not None
    ws_dir = settings.root / ".assay"
    (ws_dir / "cache").mkdir(parents=True, exist_ok=True)
    (ws_dir / ".gitignore").write_text(GITIGNORE)
    store = ObjectStore.open(settings.store_url)
    if isinstance(store, LocalObjectStore):
        store.root.mkdir(parents=True, exist_ok=True)
    if settings.db_url.startswith("sqlite"):
        target = Path(settings.db_url.removeprefix("sqlite:///"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_sqlite_template(), target)
    else:
        from sqlalchemy import create_engine

        engine = create_engine(settings.db_url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(_postgres_script())
        finally:
            engine.dispose()
    return settings


def _sqlite_template() -> Path:
    if "sqlite" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="assay-template-"))
        init_workspace(Settings.at(folder, {}))
        _TEMPLATE["sqlite"] = folder / ".assay" / "assay.db"
    path: Path = _TEMPLATE["sqlite"]
    return path


def _postgres_script() -> str:
    """The schema as one script (every table, index and constraint), stamped with the
    head revision as `assay init` leaves it."""
    if "postgresql" not in _TEMPLATE:
        from sqlalchemy.dialects import postgresql
        from sqlalchemy.schema import CreateIndex, CreateTable

        from assay.migrations import load_tables
        from assay.store.db import HEAD_REVISION, metadata

        load_tables()  # every concept's tables on `metadata`
        dialect = postgresql.dialect()
        parts = []
        for table in metadata.sorted_tables:
            parts.append(str(CreateTable(table).compile(dialect=dialect)).strip())
            for index in table.indexes:
                parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
        parts.append(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        parts.append(f"INSERT INTO alembic_version (version_num) VALUES ('{HEAD_REVISION}')")
        _TEMPLATE["postgresql"] = ";\n".join(parts) + ";"
    script: str = _TEMPLATE["postgresql"]
    return script


CLI = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[CLI]:
    """Run `assay ARGS…` in-process from `tmp_path`, on the parametrised backend."""
    monkeypatch.chdir(tmp_path)
    for key in ("ASSAY_DB_URL", "ASSAY_STORE_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: str | Path) -> Result:
        try:
            return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        finally:
            context.close()

    yield run
    context.close()


@pytest.fixture
def cli_workspace(cli: CLI, tmp_path: Path) -> Path:
    """What `assay init` makes in `cli`'s folder, from the migrated template rather than
    the migrations (the tests of `assay init` itself run it)."""
    new_workspace(Settings.at(tmp_path, os.environ))
    return tmp_path


# ---- a local S3-compatible server ---------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on loopback; s3fs reaches it through AWS_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
        )
    }
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_url(s3_server: str) -> str:
    """An empty bucket on the local S3 server, as an `s3://bucket/prefix` store URL."""
    import boto3

    bucket = f"assay-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/objects"


# ---- a Ray head on this machine -----------------------------------------------------------


@dataclass(frozen=True)
class RayHead:
    address: str
    env: dict[str, str]  # what a driver needs to be let in
    temp_dir: Path
    proc: subprocess.Popen[bytes]
    # Where Ray Serve's HTTP proxy listens once a test deploys on the cluster: every test
    # gives it as ASSAY_RAY_SERVE_PORT (the first deploy starts Serve on it).
    serve_port: int

    def wait_ready(self, timeout: float = 90) -> None:
        """Wait for `ray start` to say the head is up (it is started in the background)."""
        log = self.temp_dir / "ray-start.log"
        deadline = time.monotonic() + timeout
        while b"Ray runtime started" not in log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    def worker_pids(self) -> set[int]:
        """The pids of every Ray worker process this head has started so far."""
        logs = self.temp_dir / "session_latest" / "logs"
        return {int(p.stem.rsplit("_", 1)[1]) for p in logs.glob("python-core-worker-*_*.log")}


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A Ray head with two CPUs, started without the S3 endpoint and credentials, shared by
    every test on Ray (runs, and services and A/B tests on Ray Serve).

    It starts in the background (`wait_ready` before use), so a test prepares its
    workspace meanwhile. `ray start --block` stays in the foreground in a session of its
    own, holding the head's processes; teardown ends that session's processes, and so
    touches no other Ray on the machine (as `ray stop` would).
    """
    port = free_port()
    # Short: Ray's unix sockets live under it, and their paths must fit in 107 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="assay-ray-"))
    auth = {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    # Not the S3 endpoint and credentials (in os.environ, from `s3_server`): as on a
    # real cluster, the workers get them from the driver, through the job's runtime_env.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ASSAY_", "RAY_"))}
    env.update(auth)
    log = temp_dir / "ray-start.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "ray"),
                "start",
                "--head",
                "--block",
                f"--port={port}",
                f"--dashboard-agent-listen-port={free_port()}",
                "--num-cpus=2",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield RayHead(f"127.0.0.1:{port}", auth, temp_dir, proc, free_port())
    finally:
        _stop(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # At the end of the session nothing on the head needs to drain (a SIGTERM makes Ray
    # Serve drain for up to 30 s): every process the head started is in its session, and
    # they all end at once, by pid, so teardown touches no other Ray on the machine.
    proc.kill()
    proc.wait()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == proc.pid:  # the session id
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stat.parent.name), signal.SIGKILL)


# ---- a disk that fills up --------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs: writes past it fail with ENOSPC from the kernel."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE test covers this path")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip()}); "
            "the RLIMIT_FSIZE test covers this path"
        )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# ---- damaging stored bytes, as a failing disk would ----------------------------------------


@pytest.fixture
def damage() -> Callable[[Workspace, str], None]:
    """Flip one byte of a stored blob, wherever it lives (loose, or inside a pack)."""

    def flip(ws: Workspace, digest: str) -> None:
        from assay.store.objects import LocalObjectStore

        store = ws.store
        assert isinstance(store, LocalObjectStore)
        loc = ws.data.blobs.locate([digest]).get(digest)
        path, offset = (store.path(loc[0]), loc[1]) if loc else (store.path(digest), 0)
        data = bytearray(path.read_bytes())
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))

    return flip


@pytest.fixture
def remove() -> Callable[[Workspace, str], None]:
    """Delete the object that holds a blob (its pack, if it is packed)."""

    def rm(ws: Workspace, digest: str) -> None:
        from assay.store.objects import LocalObjectStore

        store = ws.store
        assert isinstance(store, LocalObjectStore)
        loc = ws.data.blobs.locate([digest]).get(digest)
        store.path(loc[0] if loc else digest).unlink()

    return rm


# ---- documents the API answers -----------------------------------------------------------


@pytest.fixture
def as_served() -> Callable[[Any, Any], Any]:
    """`as_served(Kind, doc)`: the JSON a route declared with `response_model=Kind` answers
    for `doc`, validated and serialised as FastAPI does: equal to `doc` as JSON when the
    model describes every field of it (none dropped, none coerced)."""

    def served(kind: Any, doc: Any) -> Any:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(kind)
        return json.loads(adapter.dump_json(adapter.validate_python(doc)))

    return served
