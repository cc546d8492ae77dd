"""`assay server` on loopback (its app on a thread of this process, or the real process),
and the `assay` CLI as a user runs it."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from servers import ServerProcess, serve_workspace  # type: ignore[import-not-found]  # tests/ is on sys.path


def run_assay(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m assay ARGS…` in `cwd` with exactly the environment `env`."""
    return subprocess.run(
        [sys.executable, "-m", "assay", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


# What the CLI reads from the environment; anything else of this process's stays as it is.
_CLI_ENV = ("COLUMNS", "NO_COLOR", "HOME")


def invoke_assay(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`assay ARGS…` as `run_assay` runs it, in this process: the console script's own
    `main` (its `--remote` handling included), with `cwd` as the working folder, exactly
    `env`'s `ASSAY_*` variables, and its output captured. The same code, minus a fresh
    interpreter's start-up and imports: most of what a CLI step cost a test."""
    from typer.testing import CliRunner

    from assay.cli.main import main

    overlay: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ASSAY_")}
    overlay["ASSAY_REMOTE"] = None  # `main` sets it for `--remote`; restored after
    overlay.update({k: v for k, v in env.items() if k.startswith("ASSAY_") or k in _CLI_ENV})
    argv, here = sys.argv, Path.cwd()
    code: int = 0
    with CliRunner().isolation(env=overlay) as (out, err, _):
        os.chdir(cwd)
        sys.argv = ["assay", *args]
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = argv
            os.chdir(here)
            gc.unfreeze()  # `main` freezes what exists, for a process that ends after it
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return subprocess.CompletedProcess(["assay", *args], code, stdout, stderr)


@contextmanager
def assay_server(
    home: Path, environ: dict[str, str], *, process: bool = False
) -> Iterator[tuple[str, str]]:
    """`assay init` in `home`, an admin token, and the server there until the block
    ends; yields the server's URL and the token's secret.

    The server's app runs in this process, as `assay server` builds it
    (`assay.server.main`), served by uvicorn on a thread: the same routes, minus a fresh
    interpreter's start and imports. With `process=True` it is `assay server` itself,
    for the tests that need a real server process (its children, its restarts).
    """
    done = invoke_assay("init", cwd=home, env=environ)
    assert done.returncode == 0, done.stderr
    made = invoke_assay("tokens", "create", "admin", "--scope", "admin", "--json", cwd=home,
                        env=environ)  # fmt: skip
    secret = json.loads(made.stdout)["secret"]
    if process:
        with ServerProcess(home, environ) as server:
            yield server.url, secret
    else:
        with serve_workspace(home, environ) as url:
            yield url, secret
