"""The serving control plane: deploy, list, inspect, update and stop inference services.

A service is a process (`python -m assay.serving SERVICE_DIR`) started detached, so it
outlives the command that deployed it. What the process needs lives in its folder:
`service.json` (port, workers, limits), `target.json` (the model bundle to serve, a
copy materialized from the store), and what it writes back: `workers/<pid>.json` (the
version each worker serves, or why a load failed), `service.log`, and Prometheus
metrics. The service's definition is also a row in the metadata store, so
`assay services start --all` brings services back after a reboot.

A service deployed `on="ray"` has no folder and no process here: it is a Ray Serve
application on the cluster at `ASSAY_RAY_ADDRESS` (`assay.serving.ray_serve`), its row
says so (`runs_on`), and its state is read through the cluster's HTTP proxy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.data.entities import check_name
from assay.errors import AssayError, ConflictError, InvalidArgumentError, NotFoundError
from assay.serving import api, processes
from assay.serving.entities import (
    ReplicaState,
    Service,
    ServiceFailedError,
    ServiceState,
    ServiceStatus,
    WorkerState,
)
from assay.serving.repository import ServiceRepository, to_service
from assay.store.db import Database, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Row

    from assay.registry.entities import ModelVersion
    from assay.registry.service import RegistryService
    from assay.serving.on_ray import RayServices
    from assay.serving.ray_serve import RayServe


DEFAULTS: dict[str, Any] = {
    "timeout_s": api.TIMEOUT_S,
    "max_body_bytes": api.MAX_BODY_BYTES,
    "drain_s": 1.0,
}
PLACES = ("local", "ray")


class ServingService:
    """Inference services on this machine or a Ray cluster, defined in the metadata store."""

    def __init__(
        self,
        db: Database,
        registry: RegistryService,
        services_dir: Path,
        *,
        python: str = sys.executable,
        ray: RayServe | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.dir = services_dir
        self.python = python
        self._ray = ray

    @property
    def ray(self) -> RayServe:
        if self._ray is None:
            raise InvalidArgumentError("This workspace was opened without a Ray cluster.")
        return self._ray

    def _on_ray(self) -> RayServices:
        """What a service on Ray does, asked of one place (`assay.serving.on_ray`)."""
        from assay.serving.on_ray import RayServices

        return RayServices(self.ray, self.registry.store.url)

    # ---- deploy / start / update / stop -------------------------------------------------

    def deploy(
        self,
        name: str,
        model_ref: str,
        *,
        port: int | None = None,
        host: str = api.HOST,
        workers: int = api.WORKERS,
        timeout_s: float = api.TIMEOUT_S,
        max_body_bytes: int = api.MAX_BODY_BYTES,
        drain_s: float = DEFAULTS["drain_s"],
        log_sample: float = api.LOG_SAMPLE,
        log_roll: dict[str, float] | None = None,
        ready_timeout_s: float = 120.0,
        progress: api.Progress = api.quiet,
        on: str = api.ON,
        replicas: int | None = None,
        autoscale: tuple[int, int] | None = None,
        target_ongoing_requests: float = api.TARGET_ONGOING_REQUESTS,
        cpus: float | None = None,
        memory_bytes: int | None = None,
    ) -> Service:
        """Start `model_ref` as service `name` and return once it answers as ready.

        `log_sample` is the share of requests whose inputs and outputs go to the
        prediction log (0 turns it off); `log_roll` overrides when its segments roll
        (`max_rows`, `max_bytes`, `max_age_s`).

        `on="ray"` deploys it as a Ray Serve application on the cluster at
        `ASSAY_RAY_ADDRESS` instead: `replicas` of them, or between `autoscale`'s bounds
        at `target_ongoing_requests` per replica, each with `cpus` and `memory_bytes`.
        `port`, `host` and `workers` are the local process's and do not apply there.

        Raises:
            ConflictError: the service is already running, or the port is taken.
            NotFoundError: no such model version.
            InvalidArgumentError: bad settings, or (on Ray) the cluster cannot be reached.
            ServiceFailedError: the process exited or never became ready (the log's tail
                says why); on Ray, a replica failed to load the model (nothing is left
                deployed).
        """
        check_name(name, "Service")
        if on not in PLACES:
            raise InvalidArgumentError(f"--on must be local or ray, not {on!r}.")
        ray_only = {
            "--replicas": replicas,
            "--autoscale": autoscale,
            "--cpus": cpus,
            "--memory": memory_bytes,
        }
        given = [k for k, v in ray_only.items() if v is not None]
        if on == "local" and given:
            raise InvalidArgumentError(
                f"{', '.join(given)} only apply to a service on Ray; add --on ray."
            )
        if workers < 1:
            raise InvalidArgumentError(f"--workers must be at least 1, not {workers}.")
        if port is not None and not 0 < port < 65536:
            raise InvalidArgumentError(f"--port must be between 1 and 65535, not {port}.")
        for key, value in (("timeout_s", timeout_s), ("max_body_bytes", max_body_bytes)):
            if value <= 0:
                raise InvalidArgumentError(f"{key} must be positive, not {value}.")
        existing = self._row(name)
        if existing is not None and self._state(existing) in ("running", "starting"):
            raise ConflictError(
                f"Service {name!r} is already running ({existing.model}@{existing.version} on "
                f"port {existing.port}). Change its model with "
                f"`assay services update {name} --model MODEL@V`, or stop it first.",
                service=name,
            )
        from assay.serving.predlog import check_sample  # numpy: only where it is used

        check_sample(log_sample)
        settings: dict[str, Any] = {
            "timeout_s": float(timeout_s),
            "max_body_bytes": int(max_body_bytes),
            "drain_s": float(drain_s),
            "log_sample": float(log_sample),
            "log_roll": dict(log_roll or {}),
        }
        if on == "ray":
            from assay.serving.on_ray import ray_settings

            settings.update(
                ray_settings(replicas, autoscale, target_ongoing_requests, cpus, memory_bytes)
            )
            return self._deploy_on_ray(name, model_ref, settings, ready_timeout_s, progress)
        mv = self.registry.resolve(model_ref)
        port = processes.free_port(host) if port is None else processes.check_port(host, port)
        folder = self._folder(name)
        if folder.exists():
            # A stopped service's leftovers: its model copies and old worker files.
            shutil.rmtree(folder / "workers", ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        progress(f"copying {mv.ref} into the service")
        bundle = self.bundle_copy(folder, mv)
        processes.write_json(
            folder / "service.json", self._service_doc(name, host, port, workers, settings)
        )
        processes.write_json(folder / "target.json", _target(mv, bundle))
        with self.db.session() as s:
            ServiceRepository(s).upsert(
                name,
                model=mv.name,
                version=mv.version,
                host=host,
                port=port,
                workers=workers,
                desired="running",
                pid=None,
                started_at=None,
                settings=settings,
                last_error=None,
                runs_on="local",
            )
        return self._launch(name, ready_timeout_s, progress)

    # ---- on a Ray cluster ------------------------------------------------------------------

    def _deploy_on_ray(
        self,
        name: str,
        model_ref: str,
        settings: dict[str, Any],
        ready_timeout_s: float,
        progress: api.Progress,
    ) -> Service:
        """Deploy as a Ray Serve application; the row is written only once it runs, so a
        failure leaves nothing behind (no row, no application)."""
        from assay.serving.on_ray import replica_count

        on_ray = self._on_ray()
        host, port = on_ray.place(name)  # an unreachable cluster answers before any lookup
        mv = self.registry.resolve(model_ref)
        progress(f"starting {mv.ref} on Ray Serve; the replicas load it and warm up")
        on_ray.run(name, mv, settings, self._log_doc(name, settings), ready_timeout_s,
                   rollback=None)  # fmt: skip
        with self.db.session() as s:
            ServiceRepository(s).upsert(
                name,
                model=mv.name,
                version=mv.version,
                host=host,
                port=port,
                workers=replica_count(settings),
                desired="running",
                pid=None,
                started_at=utcnow(),
                settings=settings,
                last_error=None,
                runs_on="ray",
            )
        processes.await_route(self.get(name).url, ready_timeout_s)
        return self.get(name)

    def start(
        self, name: str, *, ready_timeout_s: float = 120.0, progress: api.Progress = api.quiet
    ) -> Service:
        """Start a stored service again with the model it last served.

        Raises:
            NotFoundError: no such service.
            ConflictError: it is already running.
        """
        row = self._get_row(name)
        if self._state(row) in ("running", "starting"):
            raise ConflictError(f"Service {name!r} is already running on port {row.port}.")
        mv = self.registry.resolve(f"{row.model}@{row.version}")
        if row.runs_on == "ray":
            settings = {**DEFAULTS, **row.settings}
            progress(f"starting {mv.ref} on Ray Serve")
            on_ray = self._on_ray()
            host, port = on_ray.replace(name)  # what a failed service left: replaced whole
            try:
                on_ray.run(name, mv, settings, self._log_doc(name, settings), ready_timeout_s,
                           rollback=None)  # fmt: skip
            except ServiceFailedError as exc:
                with self.db.session() as s:
                    ServiceRepository(s).upsert(name, desired="stopped", last_error=exc.message)
                raise
            with self.db.session() as s:
                ServiceRepository(s).upsert(
                    name, desired="running", host=host, port=port, started_at=utcnow(),
                    last_error=None,
                )  # fmt: skip
            processes.await_route(self.get(name).url, ready_timeout_s)
            return self.get(name)
        if row.pid:
            processes.wait_gone(row.pid, timeout_s=5.0)  # a process still exiting holds its port
        folder = self._folder(name)
        shutil.rmtree(folder / "workers", ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        bundle = self.bundle_copy(folder, mv)
        processes.write_json(
            folder / "service.json",
            self._service_doc(
                name,
                row.host,
                processes.check_port(row.host, row.port),
                row.workers,
                {**DEFAULTS, **row.settings},
            ),
        )
        processes.write_json(folder / "target.json", _target(mv, bundle))
        with self.db.session() as s:
            ServiceRepository(s).upsert(name, desired="running", last_error=None)
        return self._launch(name, ready_timeout_s, progress)

    def start_all(
        self, progress: api.Progress = api.quiet
    ) -> list[tuple[str, Service | AssayError]]:
        """Start every service whose definition says running but whose process is gone."""
        out: list[tuple[str, Service | AssayError]] = []
        for row in self._rows():
            if row.desired != "running" or self._state(row) in ("running", "starting"):
                continue
            try:
                out.append((row.name, self.start(row.name, progress=progress)))
            except AssayError as exc:
                out.append((row.name, exc))
        return out

    def _launch(self, name: str, ready_timeout_s: float, progress: api.Progress) -> Service:
        folder = self._folder(name)
        config = json.loads((folder / "service.json").read_text())
        progress(f"starting {name} on {config['host']}:{config['port']}")
        pid = processes.spawn(self.python, "assay.serving", folder)
        with self.db.session() as s:
            ServiceRepository(s).upsert(name, pid=pid, started_at=utcnow())
        progress("waiting for the model to load and answer a warm-up request")
        why = processes.wait_ready(
            folder,
            pid,
            config["host"],
            int(config["port"]),
            int(config["workers"]),
            ready_timeout_s,
        )
        if why is not None:
            return self._failed(name, why)
        return self.get(name)

    def _failed(self, name: str, why: str) -> Service:
        tail = self.logs(name, lines=15).strip()
        with self.db.session() as s:
            ServiceRepository(s).upsert(name, desired="stopped", pid=None, last_error=why)
        raise ServiceFailedError(
            f"Service {name!r} did not start: {why}. The end of its log:\n{tail}",
            service=name,
        )

    def update(
        self,
        name: str,
        model_ref: str,
        *,
        ready_timeout_s: float = 120.0,
        progress: api.Progress = api.quiet,
    ) -> Service:
        """Swap the running service's model for `model_ref` without dropping a request.

        Every worker loads and warms up the new version beside the old one, then
        switches. If the new version fails to load anywhere, the service goes on
        serving the old one and the failure is raised.

        Raises:
            NotFoundError: no such service or model version.
            ConflictError: the service is not running.
            ServiceFailedError: the new version did not load (the old one still serves).
        """
        row = self._get_row(name)
        if self._state(row) != "running":
            raise ConflictError(
                f"Service {name!r} is not running; deploy it with "
                f"`assay services deploy {name} --model {model_ref}`.",
                service=name,
            )
        mv = self.registry.resolve(model_ref)
        if row.runs_on == "ray":
            return self._update_on_ray(row, mv, ready_timeout_s, progress)
        folder = self._folder(name)
        old_target = (folder / "target.json").read_bytes()
        progress(f"copying {mv.ref} into the service")
        target = _target(mv, self.bundle_copy(folder, mv))
        processes.write_json(folder / "target.json", target)
        progress(f"waiting for every worker to load {mv.ref}")
        error = processes.await_target(
            folder, target["target_id"], int(row.workers), ready_timeout_s
        )
        if error is None:
            with self.db.session() as s:
                ServiceRepository(s).upsert(
                    name, model=mv.name, version=mv.version, last_error=None
                )
            self._prune_bundles(folder, keep=target["bundle"])
            return self.get(name)
        # Point the service back at what it was serving, so a restart serves it too.
        tmp = folder / "target.json.tmp"
        tmp.write_bytes(old_target)
        os.replace(tmp, folder / "target.json")
        with self.db.session() as s:
            ServiceRepository(s).upsert(name, last_error=f"update to {mv.ref} failed: {error}")
        raise ServiceFailedError(
            f"Service {name!r} could not switch to {mv.ref}: {error}. "
            f"It still serves {row.model}@{row.version}.",
            service=name,
            model=mv.ref,
        )

    def _update_on_ray(
        self, row: Row[Any], mv: ModelVersion, ready_timeout_s: float, progress: api.Progress
    ) -> Service:
        """Ray Serve rolls the replicas: new ones load and warm up before old ones drain."""
        old = self.registry.resolve(f"{row.model}@{row.version}")
        settings = {**DEFAULTS, **row.settings}
        on_ray = self._on_ray()
        on_ray.ray.proxy()
        progress(f"rolling the replicas to {mv.ref}")
        try:
            on_ray.run(row.name, mv, settings, self._log_doc(row.name, settings),
                       ready_timeout_s, rollback=old)  # fmt: skip
        except ServiceFailedError as exc:
            with self.db.session() as s:
                ServiceRepository(s).upsert(
                    row.name, last_error=f"update to {mv.ref} failed: {exc.message}"
                )
            raise
        with self.db.session() as s:
            ServiceRepository(s).upsert(
                row.name, model=mv.name, version=mv.version, last_error=None
            )
        return self.get(row.name)

    def stop(self, name: str, *, timeout_s: float = api.STOP_TIMEOUT_S) -> Service:
        """Stop the service gracefully: readiness turns false, in-flight requests finish,
        then the process exits (killed if it has not after `timeout_s`).

        Raises:
            NotFoundError: no such service.
        """
        row = self._get_row(name)
        if row.runs_on == "ray":
            self._on_ray().stop(name)  # Ray Serve drains each replica before it stops it
        elif row.pid and processes.is_service_process(row.pid, self._folder(name)):
            processes.terminate(row.pid, timeout_s=timeout_s)
        with self.db.session() as s:
            ServiceRepository(s).upsert(name, desired="stopped", pid=None)
        return self.get(name)

    # ---- reading ---------------------------------------------------------------------------

    def services(self) -> list[Service]:
        """Every stored service, with the state its process is in now."""
        return [to_service(r, self._state(r)) for r in self._rows()]

    def get(self, name: str) -> Service:
        """One service and its current state.

        Raises:
            NotFoundError: no such service.
        """
        row = self._get_row(name)
        return to_service(row, self._state(row))

    def status(self, name: str) -> ServiceStatus:
        """The service, its uptime, its workers, and its traffic (requests, errors, latency
        p50/p99) read from the service's own metrics."""
        svc = self.get(name)
        base = {f.name: getattr(svc, f.name) for f in dataclasses.fields(svc)}
        if svc.on == "ray":
            replicas: list[ReplicaState] = []
            if svc.state != "stopped":
                # An unreachable cluster leaves the replicas unknown, not the status.
                replicas = self._on_ray().replicas(name)
            uptime = None
            if svc.state == "running" and svc.started_at:
                uptime = round((utcnow() - svc.started_at).total_seconds(), 1)
            return ServiceStatus(
                **base, uptime_s=uptime, traffic=None, workers_now=[], replicas=replicas
            )
        if svc.state != "running" or not svc.started_at:
            return ServiceStatus(**base, uptime_s=None, traffic=None, workers_now=[], replicas=[])
        from assay.serving.metrics import summarize

        traffic = None
        with contextlib.suppress(OSError, ValueError):
            traffic = summarize(
                processes.get_text(processes.probe_url(svc.host, svc.port) + "/metrics")
            )
        return ServiceStatus(
            **base,
            uptime_s=round((utcnow() - svc.started_at).total_seconds(), 1),
            traffic=traffic,
            workers_now=self._workers(self._folder(name)),
            replicas=[],
        )

    def logs(self, name: str, *, lines: int = api.LOG_LINES) -> str:
        """The last `lines` lines of the service's log.

        Raises:
            NotFoundError: no such service.
        """
        row = self._get_row(name)
        if row.runs_on == "ray":
            if self._state(row) == "stopped":
                return ""
            return self._on_ray().logs(name, lines)
        return processes.tail(self._folder(name) / "service.log", lines)

    # ---- helpers -----------------------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        return self.dir / name

    def folder(self, name: str) -> Path:
        """Where the service's process keeps its state (`monitor.json` goes there too).

        Raises:
            NotFoundError: no such service.
        """
        self._get_row(name)
        return self._folder(name)

    def _service_doc(
        self, name: str, host: str, port: int, workers: int, settings: dict[str, Any]
    ) -> dict[str, Any]:
        """service.json: where to listen, the limits, and the prediction log."""
        doc = {k: v for k, v in settings.items() if not k.startswith("log_")}
        log = self._log_doc(name, settings)
        return {"name": name, "host": host, "port": port, "workers": workers, **doc, "log": log}

    def _log_doc(self, name: str, settings: dict[str, Any]) -> dict[str, Any] | None:
        from assay.serving.predlog import service_log

        return service_log(self.registry.store.url, name, settings)

    def _rows(self) -> list[Row[Any]]:
        with self.db.read() as s:
            return ServiceRepository(s).rows()

    def _row(self, name: str) -> Row[Any] | None:
        with self.db.read() as s:
            return ServiceRepository(s).row(name)

    def _get_row(self, name: str) -> Row[Any]:
        row = self._row(name)
        if row is None:
            raise NotFoundError(
                f"No service named {name!r}. List services with `assay services list`.",
                service=name,
            )
        return row

    def _state(self, row: Row[Any]) -> ServiceState:
        if row.runs_on == "ray":
            from assay.serving.on_ray import RayServices

            return RayServices.state(row.name, row.desired, row.host, row.port)
        alive = bool(row.pid) and processes.is_service_process(row.pid, self._folder(row.name))
        if not alive:
            return "failed" if row.desired == "running" and row.pid else "stopped"
        return "running" if processes.ready(processes.probe_url(row.host, row.port)) else "starting"

    def bundle_copy(self, folder: Path, mv: ModelVersion) -> Path:
        """The version's bundle, materialized once into the service's folder."""
        dest = folder / "bundles" / f"{mv.name.replace('/', '_')}@{mv.version}-{mv.bundle[:12]}"
        if not (dest / "assay.json").exists():
            staging = dest.with_name(dest.name + f".tmp-{uuid.uuid4().hex[:8]}")
            self.registry.materialize(mv, staging)
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(staging, dest)
        return dest

    def _prune_bundles(self, folder: Path, keep: str) -> None:
        for path in (folder / "bundles").iterdir():
            if str(path) != keep:
                shutil.rmtree(path, ignore_errors=True)

    def _workers(self, folder: Path) -> list[WorkerState]:
        # Another process's files: only the fields the status promises, of their types.
        return [
            {
                "pid": int(w["pid"]),
                "port": int(w.get("port") or 0),
                "target_id": w.get("target_id"),
                "name": w.get("name"),
                "version": w.get("version"),
                "ready": bool(w.get("ready")),
                "error": w.get("error"),
                "failed_target_id": w.get("failed_target_id"),
                "started_at": str(w.get("started_at", "")),
                "updated_at": str(w.get("updated_at", "")),
            }
            for w in processes.workers_of(folder)
        ]


def _target(mv: ModelVersion, bundle: Path) -> dict[str, Any]:
    return {
        "bundle": str(bundle),
        "name": mv.name,
        "version": mv.version,
        "target_id": uuid.uuid4().hex,
    }
