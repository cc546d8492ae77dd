"""The workspace a command works on, built once per process at the CLI's edge."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from assay.workspace import Workspace


@cache
def workspace() -> Workspace:
    """The workspace for this process: the server's with --remote (ASSAY_REMOTE), else the
    one found from the current folder upwards."""
    remote = os.environ.get("ASSAY_REMOTE")
    if remote:
        from assay.cli.remote import RemoteWorkspace

        return cast("Workspace", RemoteWorkspace(remote, os.environ.get("ASSAY_TOKEN")))
    from assay.config import Settings
    from assay.workspace import Workspace

    return Workspace(Settings.load(Path.cwd(), os.environ))


def is_remote() -> bool:
    return bool(os.environ.get("ASSAY_REMOTE"))


def close() -> None:
    if workspace.cache_info().currsize:
        workspace().close()
        workspace.cache_clear()
