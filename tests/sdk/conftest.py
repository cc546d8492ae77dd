"""A notebook's view of Assay: a workspace in the current folder, and the SDK's process
state (autolog patches, open runs, sessions) put back after every test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from assay import httpclient
from assay.config import Settings
from assay.workspace import Workspace


@pytest.fixture
def here(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_workspace: Callable[[Settings], Settings],
) -> Iterator[Workspace]:
    """A workspace in the current folder (as `assay init` makes one), for the SDK to find."""
    monkeypatch.chdir(tmp_path)
    for key in ("ASSAY_DB_URL", "ASSAY_STORE_URL", "ASSAY_REMOTE", "ASSAY_TOKEN", "ASSAY_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ASSAY_AUTHOR", "tester")
    ws = Workspace(make_workspace(Settings.at(tmp_path, {"ASSAY_AUTHOR": "tester"})))
    try:
        yield ws
    finally:
        reset_sdk()
        ws.close()


def reset_sdk() -> None:
    import assay.sdk as sdk
    from assay.runs import tracking
    from assay.sdk import session
    from assay.sdk.autologging import autolog

    autolog(disable=True)
    for active in list(sdk._stack):
        sdk.close_run(active, "killed", "left open by a test")
    sdk._stack.clear()
    sdk._attached = None
    sdk._loaded.clear()
    sdk._warned.clear()
    tracking.activate(None)
    session.close_all()


@pytest.fixture
def cli(here: Workspace) -> Callable[..., Result]:
    """`assay ARGS…` in-process, in the workspace's folder."""
    from assay.cli import context
    from assay.cli.main import app

    def run(*args: str) -> Result:
        try:
            runner = CliRunner()
            return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
        finally:
            context.close()

    return run


# ---- a real `assay server`, which a test may stop and start again on its port ------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assay(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assay", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


class Server:
    """`assay server` over a workspace of its own in `home`, on a fixed port."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "JPY_"))}
        self.proc: subprocess.Popen[bytes] | None = None
        home.mkdir(parents=True, exist_ok=True)
        assert assay("init", cwd=home, env=self.env).returncode == 0
        made = assay("tokens", "create", "nb", "--scope", "write", "--json", cwd=home, env=self.env)
        self.token = json.loads(made.stdout)["secret"]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assay", "server", "--port", str(self.port)],
            cwd=self.home, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpclient.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, "assay server exited"
            assert time.monotonic() < deadline, "assay server did not answer"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def workspace(self) -> Workspace:
        return Workspace(Settings.load(self.home, {}))

    def client_env(self) -> dict[str, str]:
        return {**self.env, "ASSAY_REMOTE": self.url, "ASSAY_TOKEN": self.token}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    found = Server(tmp_path / "server")
    found.start()
    try:
        yield found
    finally:
        found.stop()
