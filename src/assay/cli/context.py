"""The workspace a command works on, built once per process at the CLI's edge."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assay.workspace import Workspace


@cache
def workspace() -> Workspace:
    """The workspace for this process, found from the current folder upwards."""
    from assay.config import Settings
    from assay.workspace import Workspace

    return Workspace(Settings.load(Path.cwd(), os.environ))


def close() -> None:
    if workspace.cache_info().currsize:
        workspace().close()
        workspace.cache_clear()
