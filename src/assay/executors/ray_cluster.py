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

from assay.config import Settings
from assay.errors import InvalidArgumentError
from assay.runs.executor import Done, Job

# What a task needs from the driver's environment: the workspace's settings and
# the object store's credentials and endpoint.
_PASSED = ("ASSAY_", "AWS_", "FSSPEC_", "GOOGLE_", "AZURE_")


def check_ready(settings: Settings, environ: Mapping[str, str]) -> None:
    """What can be checked before starting anything: Ray is installed, and a remote
    cluster's workspace is shared.

    Raises:
        InvalidArgumentError: either is not the case (the message says what to do).
    """
    try:
        import ray  # noqa: F401
    except ImportError:
        raise InvalidArgumentError("--executor ray needs Ray: pip install 'assay[ray]'.") from None
    if environ.get("ASSAY_RAY_ADDRESS"):
        _check_shared(settings)


class RayExecutor:
    name = "ray"

    def __init__(
        self, settings: Settings, environ: Mapping[str, str], *, slots: int | None = None
    ) -> None:
        check_ready(settings, environ)
        import ray

        self._ray = ray
        address = environ.get("ASSAY_RAY_ADDRESS") or None
        env = {k: v for k, v in environ.items() if k.startswith(_PASSED)}
        env.update(
            ASSAY_DB_URL=settings.db_url,
            ASSAY_STORE_URL=_absolute(settings.store_url),
            ASSAY_AUTHOR=settings.author,
            ASSAY_COST_PER_HOUR=str(settings.cost_per_hour),
        )
        if settings.root is not None:
            env["ASSAY_ROOT"] = str(settings.root)
        env.pop("ASSAY_RAY_ADDRESS", None)
        self._started = not ray.is_initialized()
        if self._started:
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    runtime_env={"env_vars": env},
                    namespace="assay",
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                cause = exc.__cause__ or exc.__context__
                why = f"{exc} ({type(cause).__name__}: {cause})" if cause else str(exc)
                hint = ""
                if "auth" in why.lower() or "token" in why.lower():
                    hint = (
                        " The cluster wants a token: set RAY_AUTH_MODE=token and "
                        "RAY_AUTH_TOKEN to the cluster's token."
                    )
                raise InvalidArgumentError(f"Cannot start or reach {where}: {why}.{hint}") from None
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


def _absolute(url: str) -> str:
    if "://" in url:
        return url
    return os.path.abspath(url)


def _check_shared(settings: Settings) -> None:
    """A remote cluster can only reach a workspace that lives on servers."""
    local_db = settings.db_url.startswith("sqlite")
    local_store = "://" not in settings.store_url or settings.store_url.startswith("file://")
    if local_db or local_store:
        what = " and ".join(
            w
            for w, local in (("metadata (SQLite)", local_db), ("objects (a folder)", local_store))
            if local
        )
        raise InvalidArgumentError(
            f"The workspace keeps its {what} on this machine, which a Ray cluster's nodes "
            "cannot reach. Point ASSAY_DB_URL at PostgreSQL and ASSAY_STORE_URL at an "
            "S3-compatible bucket (see the README's 'For teams'), or unset ASSAY_RAY_ADDRESS "
            "to run Ray here."
        )
