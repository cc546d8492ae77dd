"""Runs on a Ray cluster: each job is a Ray task executing one run.

The cluster is the one at `ASSAY_RAY_ADDRESS` (`ray://host:10001` or
`host:6379`), or, without it, a Ray started here on demand and stopped after.
A task only needs the workspace's URLs: it opens the same metadata database and
object store as the driver, reads the pipeline snapshot, data and params from
them, and writes everything back there. Hence a cluster needs a shared
workspace (PostgreSQL + an S3-compatible store); the nodes need Assay installed
(`pip install 'assay[ray,postgres,s3]'`), not the pipeline's code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from assay.cluster import check_shared, connect, require_ray, runtime_env_vars
from assay.config import Settings
from assay.runs.executor import Done, Job


def check_ready(settings: Settings, environ: Mapping[str, str]) -> None:
    """What can be checked before starting anything: Ray is installed, and a remote
    cluster's workspace is shared.

    Raises:
        InvalidArgumentError: either is not the case (the message says what to do).
    """
    require_ray("--executor ray")
    if environ.get("ASSAY_RAY_ADDRESS"):
        check_shared(settings)


class RayExecutor:
    name = "ray"

    def __init__(
        self, settings: Settings, environ: Mapping[str, str], *, slots: int | None = None
    ) -> None:
        check_ready(settings, environ)
        import ray

        self._ray = ray
        address = environ.get("ASSAY_RAY_ADDRESS") or None
        self._started = not ray.is_initialized()
        if self._started:
            connect(address, runtime_env_vars(settings, environ), environ)
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        self.slots = max(1, min(slots or cpus, cpus))
        self._task = ray.remote(num_cpus=1, max_retries=0)(_execute)
        self._refs: dict[Any, str] = {}

    def submit(self, job: Job) -> None:
        ref = self._task.remote(job.run_id, job.use_cache, job.register)
        self._refs[ref] = job.run_id

    def wait(self, timeout: float) -> list[Done]:
        if not self._refs:
            import time

            time.sleep(timeout)
            return []
        ready, _ = self._ray.wait(
            list(self._refs), num_returns=len(self._refs), timeout=timeout, fetch_local=True
        )
        if not ready:
            return []
        done: list[Done] = []
        for ref in ready:
            run_id = self._refs.pop(ref)
            try:
                problem = self._ray.get(ref)
            except Exception as exc:  # the task died: a worker crash, a lost node
                problem = f"The Ray task failed: {type(exc).__name__}: {str(exc)[:500]}"
            done.append(Done(run_id, problem))
        return done

    def close(self, *, cancel: bool = False) -> None:
        if cancel:
            for ref in list(self._refs):
                self._ray.cancel(ref)  # a KeyboardInterrupt in the task: the run is killed
            if self._refs:
                self._ray.wait(list(self._refs), num_returns=len(self._refs), timeout=15)
        self._refs.clear()
        if self._started:
            self._ray.shutdown()


# ---- the task, on a Ray worker ---------------------------------------------------------------

_workspace: Any = None


def _execute(run_id: str, use_cache: bool, register: bool) -> str | None:
    """Execute one run on this Ray worker; returns a problem, or None when it was recorded.

    The workspace is opened once per worker process and kept, like a local
    runner's, so a worker's second trial pays for no connection or import.
    """
    global _workspace
    from pathlib import Path

    from assay.executors.worker import run_one
    from assay.workspace import Workspace

    if _workspace is None:
        root = os.environ.get("ASSAY_ROOT")
        where = Path(root) if root and Path(root).is_dir() else None
        _workspace = Workspace(Settings.at(where, os.environ))
    try:
        run_one(_workspace, run_id, use_cache=use_cache, register=register, emit=_quiet)
    except KeyboardInterrupt:
        return "Cancelled."
    return None


def _quiet(event: dict[str, Any]) -> None:
    return None
