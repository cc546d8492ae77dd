"""`assay server` on loopback (its app on a thread of this process, or the real process),
and the `assay` CLI as a user runs it."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from assay import httpclient
from threaded import free_port, serve_asgi  # type: ignore[import-not-found]  # tests/ is on sys.path


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
        with _server_process(home, environ) as url:
            yield url, secret
        return
    from assay.config import Settings
    from assay.server.app import create_app
    from assay.server.main import compile_routes
    from assay.workspace import Workspace

    ws = Workspace(Settings.load(home, environ), environ=environ)
    app = create_app(ws)
    compile_routes(app)
    try:
        with serve_asgi(app) as url:
            yield url, secret
    finally:
        ws.close()


@contextmanager
def _server_process(home: Path, environ: dict[str, str]) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay", "server", "--port", str(port)],
        cwd=home, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpclient.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
