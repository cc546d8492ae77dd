"""A notebook's view of Assay: a workspace in the current folder, and the SDK's process
state (autolog patches, open runs, sessions) put back after every test."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from assay.config import Settings
from assay.workspace import Workspace
from servers import free_port, serve_workspace  # type: ignore[import-not-found]  # tests/ is on sys.path


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


# ---- `assay server`, which a test may stop and start again on its port ---------------------


class Server:
    """`assay server`'s app over a workspace of its own in `home`, on a fixed port,
    served by uvicorn on a thread of this process (tests/servers.py)."""

    def __init__(self, home: Path) -> None:
        from assay.workspace import init_workspace

        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "JPY_"))}
        self._serving: contextlib.ExitStack | None = None
        home.mkdir(parents=True, exist_ok=True)
        init_workspace(Settings.at(home, self.env))
        ws = self.workspace()
        try:
            self.token = ws.tokens.create("nb", "write")[1]
        finally:
            ws.close()

    def start(self) -> None:
        with contextlib.ExitStack() as serving:
            serving.enter_context(serve_workspace(self.home, self.env, self.port))
            self._serving = serving.pop_all()

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.close()
            self._serving = None

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
