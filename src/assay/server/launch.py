"""Runs started through the API execute on the server, each in a runner process."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from assay.store.acting import author_or
from assay.workspace import Workspace


def launch(ws: Workspace, run_id: str, *, use_cache: bool = True) -> None:
    """Start the runner for a queued run and settle its end in the background."""
    from assay.executors.local import LocalExecutor

    root = ws.settings.root or Path.cwd()
    env = dict(os.environ)
    env.update(
        ASSAY_DB_URL=ws.settings.db_url,
        ASSAY_STORE_URL=ws.settings.store_url,
        ASSAY_AUTHOR=author_or(ws.settings.author),  # the caller, on what the run records
    )
    # Detached on purpose, as the server's sweeps are: a run started through the API
    # outlives a restart of the server, and records its own end.
    handle = LocalExecutor(root, env, detached=True).launch(run_id, use_cache=use_cache)

    def watch() -> None:
        for _ in handle.events():
            pass
        handle.settle(ws.runs, run_id, handle.wait())

    threading.Thread(target=watch, name=f"assay-run-{run_id[:8]}", daemon=True).start()
