"""A real `assay server` process on loopback, and the `assay` CLI as a user runs it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_assay(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m assay ARGS…` in `cwd` with exactly the environment `env`."""
    return subprocess.run(
        [sys.executable, "-m", "assay", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@contextmanager
def assay_server(home: Path, environ: dict[str, str]) -> Iterator[tuple[str, str]]:
    """`assay init` in `home`, an admin token, and `assay server` there until the block
    ends; yields the server's URL and the token's secret."""
    assert run_assay("init", cwd=home, env=environ).returncode == 0
    made = run_assay("tokens", "create", "admin", "--scope", "admin", "--json", cwd=home,
                     env=environ)  # fmt: skip
    secret = json.loads(made.stdout)["secret"]
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
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield url, secret
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
