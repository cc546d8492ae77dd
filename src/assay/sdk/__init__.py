"""Tracking from your own code: `with assay.start_run(...)` and `assay.log_metric(...)`.

Inside a pipeline step the runner has already opened the run; in a notebook or a
script, `start_run` opens one in the workspace found from the current folder.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.runs import tracking

if TYPE_CHECKING:
    from assay.config import Settings
    from assay.workspace import Workspace


@dataclass(frozen=True)
class ActiveRun:
    """The run a `with assay.start_run(...)` block records into."""

    id: str
    name: str
    experiment: str

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        tracking.active().log_metric(key, value, step)


@contextlib.contextmanager
def start_run(
    experiment: str = "default",
    *,
    data: str | None = None,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Iterator[ActiveRun]:
    """Open a run, record into it, and close it as succeeded, failed or killed.

    `data` links a data version (`churn@3`); `params` are versioned as dataset
    `params/<experiment>`, as a pipeline's params file is.
    """
    from assay.config import Settings

    ws = _workspace(Settings.load(Path.cwd(), os.environ))
    run = ws.runs.begin(experiment, data=data, params=dict(params or {}), name=name)
    recorder = tracking.RunRecorder(run.id, ws.db, ws.store)
    recorder.start()
    tracking.activate(recorder)
    cpu0, _ = tracking.usage()
    wall0 = time.perf_counter()
    status, error = "failed", None
    try:
        yield ActiveRun(run.id, run.name, run.experiment)
        status = "succeeded"
    except KeyboardInterrupt:
        status, error = "killed", "Interrupted (Ctrl-C)."
        raise
    except BaseException as exc:
        error = "".join(traceback.format_exception(exc))
        raise
    finally:
        tracking.activate(None)
        left = recorder.stop()
        cpu1, _ = tracking.usage()
        ws.runs.end(run.id, status, error, time.perf_counter() - wall0, cpu1 - cpu0, left)


_workspaces: dict[Settings, Workspace] = {}


def _workspace(settings: Settings) -> Workspace:
    """One workspace (one engine, warm statement caches) per settings, for the process.

    A notebook opens run after run; connecting and compiling statements afresh for
    each would cost more than the run's own writes.
    """
    from assay.workspace import Workspace

    ws = _workspaces.get(settings)
    if ws is None:
        if not _workspaces:
            atexit.register(_close_all)
        ws = _workspaces[settings] = Workspace(settings)
    return ws


def _close_all() -> None:
    for ws in _workspaces.values():
        ws.close()
    _workspaces.clear()


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record a metric on the active run (buffered: returns in microseconds)."""
    tracking.active().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    tracking.active().log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    tracking.active().log_params({key: value})


def log_params(params: Mapping[str, Any]) -> None:
    tracking.active().log_params(params)


def log_artifact(path: str | Path, name: str | None = None) -> str:
    """Store a file or folder with the active run; returns its content hash."""
    return tracking.active().log_artifact(path, name)
