"""The workspace a command works on, built once per process at the CLI's edge."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

from assay.errors import InvalidArgumentError

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


def strip_remote(argv: list[str]) -> tuple[list[str], str | None]:
    """Take `--remote URL` (or `--remote=URL`) out of the arguments, wherever it is."""
    out: list[str] = []
    url: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--remote":
            if i + 1 >= len(argv):
                raise InvalidArgumentError("--remote needs a URL, e.g. --remote http://host:8000.")
            url = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--remote="):
            url = arg.split("=", 1)[1]
        else:
            out.append(arg)
        i += 1
    return out, url


def close() -> None:
    if workspace.cache_info().currsize:
        workspace().close()
        workspace.cache_clear()
