"""Runs started through the API execute on the server, each in a runner process."""

from __future__ import annotations

from collections.abc import Callable

from assay.workspace import Workspace


def launch(
    ws: Workspace,
    run_id: str,
    *,
    use_cache: bool = True,
    then: Callable[[], None] | None = None,
) -> None:
    """Start the runner for a queued run and settle its end in the background; `then`
    runs after that (a retrain registers the run's model)."""
    from assay.executors.local import launch_in_background

    # Detached on purpose, as the server's sweeps are: a run started through the API
    # outlives a restart of the server, and records its own end.
    launch_in_background(ws, run_id, use_cache=use_cache, then=then, detached=True)
