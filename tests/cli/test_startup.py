"""A read-only command starts lean: it builds only the command it runs, and imports no
heavy library (those are imported where the work needs them).

What a command imports is checked, not how long it takes (timing is `bench/cli.py`'s):
one stray module-level `import pandas` adds a quarter of a second to every `list`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.workspace import Workspace

pytestmark = pytest.mark.one_backend  # imports, not the database, are tested

HEAVY = (
    "numpy", "pandas", "pyarrow", "sklearn", "scipy", "fastapi", "starlette", "uvicorn",
    "httpx", "jinja2", "yaml", "alembic", "fsspec", "ray", "papermill",
)  # fmt: skip

READ_ONLY = [
    ("runs", "list"),
    ("runs", "list", "--json"),
    ("data", "log", "iris"),
    ("data", "list"),
    ("data", "profile", "iris"),  # profiled once before: the stored profile is read
    ("models", "list"),
    ("services", "list"),
    ("abtests", "list"),
    ("sweeps", "list"),
    ("pipelines", "list"),
    ("monitor", "list"),
    ("tokens", "list"),
]

PROBE = """
import json, sys
args, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["assay", *args]
from assay.cli.main import app, main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = [m for m in heavy if m in sys.modules]
modules = sorted(m for m in sys.modules if m.startswith("assay.cli."))
print(json.dumps({"code": code, "heavy": heavy, "cli": modules}), file=sys.stderr)
"""


def probe(args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([*args]), json.dumps(HEAVY)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    report: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    return report


@pytest.fixture
def workspace_with_data(ws: Workspace, tmp_path: Path) -> Path:
    (tmp_path / "iris.csv").write_text("a,b,species\n1,2.5,x\n3,4.5,y\n")
    ws.data.commit("iris", tmp_path / "iris.csv")
    ws.data.profile("iris")
    return tmp_path


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_imports_no_heavy_library(
    args: tuple[str, ...], workspace_with_data: Path, env: dict[str, str]
) -> None:
    report = probe(args, workspace_with_data, env)
    assert report["code"] == 0, report
    assert report["heavy"] == [], f"`assay {' '.join(args)}` imported {report['heavy']}"


# pydantic (with the adapters `assay.serialize` builds) is for printing JSON and reading
# stored JSON documents; a table of what the database holds needs neither.
WITHOUT_PYDANTIC = [args for args in READ_ONLY if "--json" not in args and "profile" not in args]


@pytest.mark.parametrize("args", WITHOUT_PYDANTIC, ids=" ".join)
def test_a_read_only_command_that_prints_a_table_builds_no_serializer(
    args: tuple[str, ...], workspace_with_data: Path, env: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([*args]), json.dumps(["pydantic"])],
        cwd=workspace_with_data,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, report
    assert report["heavy"] == [], f"`assay {' '.join(args)}` imported pydantic"


def test_a_command_builds_only_its_own_group(
    workspace_with_data: Path, env: dict[str, str]
) -> None:
    report = probe(("runs", "list"), workspace_with_data, env)
    assert report["code"] == 0, report
    assert isinstance(report["cli"], list)
    loaded = set(report["cli"])
    assert "assay.cli.runs" in loaded
    assert not loaded & {"assay.cli.abtests", "assay.cli.services", "assay.cli.monitor"}, loaded


def test_help_lists_every_command_and_a_typo_is_named(
    workspace_with_data: Path, env: dict[str, str]
) -> None:
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "assay", *a],
        cwd=workspace_with_data,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    listed = run("--help")
    assert listed.returncode == 0
    for name in ("init", "data", "run", "runs", "sweeps", "models", "services", "abtests",
                 "monitor", "retrain", "gc", "demo", "server", "tokens"):  # fmt: skip
        assert f"  {name} " in listed.stdout, name
    typo = run("rnus", "list")
    assert typo.returncode == 2
    assert "No such command 'rnus'. Did you mean 'runs'?" in typo.stderr


def test_a_process_builds_each_group_once_and_runs_it_again_unchanged(tmp_path: Path) -> None:
    """In-process commands (the warm server's children inherit its groups) reuse a built
    group; `data`'s extra `delete` is registered once, not once per invocation."""
    from typer.testing import CliRunner

    from assay.cli import context
    from assay.cli import data as data_cli
    from assay.cli.main import app, lazy_command

    runner = CliRunner()
    outputs = []
    for _ in range(3):
        done = runner.invoke(app, ["data", "--help"], env={"COLUMNS": "200"})
        context.close()
        assert done.exit_code == 0, done.output
        outputs.append(done.output)
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].count(" delete ") == 1
    assert lazy_command("data") is lazy_command("data")
    assert [c.name for c in data_cli.app.registered_commands].count("delete") == 1
