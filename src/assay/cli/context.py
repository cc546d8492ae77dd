"""The workspace a command works on, built once per process at the CLI's edge.

Commands call `workspace()`, typed with the contracts (`assay.api.Assay`): this machine's
`Workspace`, or with --remote (ASSAY_REMOTE) the server's through `assay.client.Client`.
The few steps that only one side can take ask for it by name: `local()` for executing
runs and sweeps here, `remote()` for waiting on what the server executes.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from assay.errors import InvalidArgumentError

if TYPE_CHECKING:
    from assay.api import Assay
    from assay.client import Client
    from assay.workspace import Workspace


def workspace() -> Assay:
    """The workspace for this process: the server's with --remote (ASSAY_REMOTE), else the
    one found from the current folder upwards."""
    return remote() if is_remote() else local()


@cache
def local() -> Workspace:
    """This machine's workspace (found from the current folder upwards).

    Raises:
        InvalidArgumentError: under --remote, where the workspace is the server's.
    """
    if is_remote():
        raise InvalidArgumentError(
            "This step runs on a workspace on this machine, not with --remote; run it on "
            "the server's machine."
        )
    from assay.config import Settings
    from assay.workspace import Workspace

    return Workspace(Settings.load(Path.cwd(), os.environ))


@cache
def remote() -> Client:
    """The server's workspace, through the SDK (ASSAY_REMOTE, ASSAY_TOKEN)."""
    url = os.environ.get("ASSAY_REMOTE")
    if not url:
        raise InvalidArgumentError("This step needs --remote URL (or ASSAY_REMOTE).")
    from assay.client import Client

    return Client(url, os.environ.get("ASSAY_TOKEN"))


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
    for made in (local, remote):
        if made.cache_info().currsize:
            made().close()
            made.cache_clear()
