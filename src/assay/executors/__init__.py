"""Where runs execute: local runner processes (default) or a Ray cluster.

`open_executor` is the one place an executor is built from a kind and the settings: the
CLI (`assay sweep`, `assay run --executor ray`) and the server's sweep drivers all call
it, so the two kinds start the same way wherever a sweep is driven. The modules load
lazily: importing this package starts nothing and imports neither Ray nor subprocesses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assay.config import Settings
    from assay.runs.executor import Executor


def open_executor(
    kind: str,
    settings: Settings,
    environ: Mapping[str, str],
    *,
    slots: int,
    cwd: Path,
    pipeline_ref: str | None = None,
) -> Executor:
    """An executor of `kind` ("local" or "ray") running `slots` jobs at once.

    Local runners start in `cwd` with `environ`; given `pipeline_ref`, they import the
    pipeline while they wait for their first job. A Ray executor joins the cluster at
    `ASSAY_RAY_ADDRESS` (or starts a local Ray), with at most as many slots as it has CPUs.

    Raises:
        InvalidArgumentError: an unknown kind, or Ray that is missing or unreachable.
    """
    from assay.runs.executor import check_executor

    check_executor(kind)
    if kind == "ray":
        from assay.executors.ray_cluster import RayExecutor

        return RayExecutor(settings, environ, slots=slots)
    from assay.executors.pool import LocalPool

    pool = LocalPool(cwd, environ, slots)
    if pipeline_ref is not None:
        try:
            preload(pool, pipeline_ref)
        except BaseException:
            pool.close()
            raise
    return pool


def preload(executor: Executor, pipeline_ref: str) -> None:
    """Have an executor's idle runners import `pipeline_ref` while they wait for a job
    (local runners do; a Ray task starts fresh, so there is nothing to do)."""
    from assay.executors.pool import LocalPool

    if isinstance(executor, LocalPool):
        executor.preload(pipeline_ref)


__all__ = ["open_executor", "preload"]
