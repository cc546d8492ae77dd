"""A notebook's view of Assay: a workspace in the current folder, and the SDK's process
state (autolog patches, open runs, sessions) put back after every test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from assay.config import Settings
from assay.workspace import Workspace, init_workspace


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace in the current folder (as `assay init` makes one), for the SDK to find."""
    monkeypatch.chdir(tmp_path)
    for key in ("ASSAY_DB_URL", "ASSAY_STORE_URL", "ASSAY_REMOTE", "ASSAY_TOKEN", "ASSAY_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ASSAY_AUTHOR", "tester")
    settings, _ = init_workspace(Settings.at(tmp_path, {"ASSAY_AUTHOR": "tester"}))
    ws = Workspace(settings)
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
