"""The data repository on a team's setup: metadata in PostgreSQL (or SQLite), objects on S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.config import Settings
from assay.workspace import Workspace, init_workspace


@pytest.fixture
def s3_ws(tmp_path: Path, env: dict[str, str], s3_url: str) -> Iterator[Workspace]:
    settings, _ = init_workspace(Settings.at(tmp_path, {**env, "ASSAY_STORE_URL": s3_url}))
    ws = Workspace(settings)
    yield ws
    ws.close()


def test_commit_checkout_diff_and_verify_on_s3(s3_ws: Workspace, tmp_path: Path) -> None:
    tree = tmp_path / "d"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (tree / "sub" / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    old = tree.stat().st_mtime - 10  # outside the stat cache's racy window
    for path in (tree / "a.csv", tree / "sub" / "big.bin"):
        os.utime(path, (old, old))
    first = s3_ws.data.commit("raw", tree, "first")
    assert first.version.ref == "raw@1"
    assert not s3_ws.data.commit("raw", tree).created
    (tree / "a.csv").write_text("x,y\n1,2\n5,6\n7,8\n")
    second = s3_ws.data.commit("raw", tree, "second")
    assert (second.files_hashed, second.files_cached) == (1, 1)

    td = s3_ws.data.diff("raw@1", "raw@2").tables["a.csv"]
    assert (td.rows_added, td.rows_removed) == (2, 1)
    s3_ws.data.checkout("raw@1", tmp_path / "out")
    assert (tmp_path / "out" / "a.csv").read_text() == "x,y\n1,2\n3,4\n"
    assert (tmp_path / "out" / "sub" / "big.bin").read_bytes() == (
        tree / "sub" / "big.bin"
    ).read_bytes()
    assert s3_ws.data.verify().ok
    assert s3_ws.store.url.startswith("s3://")


def test_cli_works_against_s3_through_the_environment(
    tmp_path: Path, env: dict[str, str], s3_url: str
) -> None:
    script = str(Path(sys.executable).with_name("assay"))
    run_env = {**os.environ, **env, "ASSAY_STORE_URL": s3_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *args],
            cwd=tmp_path,
            env=run_env,
            capture_output=True,
            text=True,
            check=False,
        )

    assert run("init").returncode == 0
    (tmp_path / "iris.csv").write_text("a,b\n1,2\n")
    done = run("data", "commit", "iris", "iris.csv", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"]["ref"] == "iris@1"
    verify = run("data", "verify", "--json")
    assert json.loads(verify.stdout)["ok"] is True
