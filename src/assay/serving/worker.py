"""The service process: `python -m assay.serving SERVICE_DIR`.

The control plane (`assay.serving.service`) writes the service folder and starts this
process detached; everything between the two goes through files:

    service.json        written by the control plane: {"name", "host", "port", "workers",
                        "timeout_s" (30), "max_body_bytes" (10 MiB), "drain_s" (1.0),
                        "log" (the prediction log: `assay.serving.predlog.LogConfig`;
                        absent or null: off)}
    monitor.json        written by the control plane after each monitor check; /metrics
                        exports it as gauges
    target.json         the model to serve, replaced atomically (os.replace) to update:
                        {"bundle": "/abs/bundle/folder", "name", "version", "target_id"}
    workers/<pid>.json  written here, atomically, by each worker: {"pid", "port",
                        "target_id", "name", "version", "ready", "error",
                        "failed_target_id", "started_at", "updated_at"}; removed when
                        the worker exits. `error` and `failed_target_id` say why and which
                        target last failed to load (null once a later one loads).
    metrics/            PROMETHEUS_MULTIPROC_DIR, emptied when the service starts
    stdout, stderr      one timestamped line per event (the control plane sends both to
                        service.log); no line per request

With `workers` 1 the process serves by itself. With more, it is a small supervisor
(`assay.serving.supervisor`): it binds the socket (SO_REUSEADDR), starts that many
worker processes (spawned, each a uvicorn server on the shared socket), forwards SIGTERM
and SIGINT to them as SIGTERM, and restarts one that dies unexpectedly (backing off if
it keeps dying).

Each worker loads and warms up the target in a thread while `/health/ready` answers
503, then serves. Every 0.2 s it looks at target.json; when the target changes it loads
and warms up the new bundle beside the old one and swaps the reference: requests in
flight finish on the old model. A bundle that fails to load leaves the old one serving
and the failure in the worker file and the log. On SIGTERM, readiness turns false first,
the worker keeps answering for `drain_s` (so a load balancer stops sending it traffic),
then uvicorn stops accepting and lets requests in flight finish before the exit (0).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from assay.errors import AssayError, InvalidArgumentError, NotFoundError
from assay.serving.supervisor import Supervisor

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from assay.serving.app import ServingState
    from assay.serving.entities import WorkerState
    from assay.serving.predlog import PredictionLog
    from assay.serving.served import ServedModel

__all__ = ["ServiceConfig", "Target", "main", "serve"]

log = logging.getLogger("assay.serving")

POLL_S = 0.2  # how often a worker looks at target.json
LISTEN_BACKLOG = 2048


@dataclass(frozen=True)
class ServiceConfig:
    """service.json: where to listen, how many workers, and the request limits."""

    name: str
    host: str
    port: int
    workers: int = 1
    timeout_s: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    drain_s: float = 1.0
    log: dict[str, Any] | None = None

    @classmethod
    def read(cls, service_dir: Path) -> ServiceConfig:
        """Read SERVICE_DIR/service.json.

        Raises:
            NotFoundError: there is no service.json.
            InvalidArgumentError: it is malformed.
        """
        doc = _read_json(service_dir / "service.json", "service")
        try:
            config = cls(
                name=str(doc["name"]),
                host=str(doc["host"]),
                port=int(doc["port"]),
                workers=int(doc.get("workers", 1)),
                timeout_s=float(doc.get("timeout_s", 30.0)),
                max_body_bytes=int(doc.get("max_body_bytes", 10 * 1024 * 1024)),
                drain_s=float(doc.get("drain_s", 1.0)),
                log=dict(doc["log"]) if doc.get("log") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"{service_dir / 'service.json'} is malformed ({type(exc).__name__}: {exc}); "
                "redeploy the service to rewrite it.",
                path=str(service_dir / "service.json"),
            ) from exc
        if config.workers < 1 or config.timeout_s <= 0 or config.max_body_bytes <= 0:
            raise InvalidArgumentError(
                f"{service_dir / 'service.json'}: workers, timeout_s and max_body_bytes must "
                "be positive; redeploy the service with valid settings.",
                path=str(service_dir / "service.json"),
            )
        return config


@dataclass(frozen=True)
class Target:
    """target.json: the bundle to serve, and the id the control plane waits to see."""

    bundle: Path
    name: str
    version: int
    target_id: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def read(cls, path: Path) -> Target:
        """Read a target.json.

        Raises:
            NotFoundError: there is no such file.
            InvalidArgumentError: it is malformed.
        """
        doc = _read_json(path, "target")
        try:
            # A relative bundle path is relative to the service folder, not to our cwd.
            bundle = path.parent / str(doc["bundle"])
            return cls(bundle, str(doc["name"]), int(doc["version"]), str(doc["target_id"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"{path} is malformed ({type(exc).__name__}: {exc}); update the service "
                "again to rewrite it.",
                path=str(path),
            ) from exc


def _prediction_log(config: ServiceConfig, folder: Path) -> PredictionLog | None:
    """The worker's prediction log, or None when the service logs nothing."""
    from assay.serving.predlog import LogConfig, PredictionLog

    found = LogConfig.from_doc(config.log)
    if found is None:
        return None
    log.info(
        "logging %g%% of predictions to %s/logs/%s", found.sample * 100, found.store, found.prefix
    )
    return PredictionLog(found, folder)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise NotFoundError(
            f"No {path.name} in {path.parent}: it is not a service folder. Deploy the "
            "service with `assay services deploy`.",
            path=str(path),
        ) from None
    except ValueError as exc:
        raise InvalidArgumentError(
            f"{path} is not valid JSON ({exc}); redeploy the service to rewrite it.",
            path=str(path),
        ) from exc
    if not isinstance(doc, dict):
        raise InvalidArgumentError(f"{path} must hold a JSON object (the {what}).")
    return doc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


# ---- one worker -------------------------------------------------------------------------------


class Worker:
    """One serving process: loads the target, follows target.json, reports its state."""

    def __init__(
        self, service_dir: Path, config: ServiceConfig, port: int, *, supervised: bool
    ) -> None:
        from assay.serving.app import ServingState
        from assay.serving.metrics import Metrics

        self.dir = service_dir
        self.config = config
        self.port = port
        self.supervised = supervised
        self.parent_pid = os.getppid()
        self.pid = os.getpid()
        # `serve` pointed PROMETHEUS_MULTIPROC_DIR here before prometheus_client loaded.
        self.state: ServingState = ServingState(Metrics(service_dir / "metrics"))
        self.target: Target | None = None
        self.error: str | None = None
        self.failed_target_id: str | None = None
        self.started_at = _now()
        self._seen: tuple[int, int, int] | None = None
        self._missing_logged = False
        self.file = service_dir / "workers" / f"{self.pid}.json"
        self.predlog = _prediction_log(config, service_dir)
        self.state.log = self.predlog
        self.state.monitor_file = service_dir / "monitor.json"

    def read_target(self, path: Path) -> Any:
        """Read target.json; a worker serving something else (an A/B test) reads its own."""
        return Target.read(path)

    def app(self) -> Starlette:
        """The inference app of this worker, with its target-following lifespan."""
        from assay.serving.app import create_app

        return create_app(
            self.state,
            timeout_s=self.config.timeout_s,
            max_body_bytes=self.config.max_body_bytes,
            lifespan=self.lifespan,
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.write_file()
        if self.predlog is not None:
            self.predlog.start()
        follower = asyncio.create_task(self._follow_target(), name="follow target.json")
        try:
            yield
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            if self.predlog is not None:
                # Requests in flight have finished: what they logged is written now.
                await asyncio.to_thread(self.predlog.close)
            self.file.unlink(missing_ok=True)
            log.info("worker stopped")

    def write_file(self) -> None:
        """Report this worker's state in workers/<pid>.json (atomically)."""
        served = self.target
        doc: WorkerState = {
            "pid": self.pid,
            "port": self.port,
            "target_id": served.target_id if served else None,
            "name": served.name if served else None,
            "version": served.version if served else None,
            "ready": self.state.ready,
            "error": self.error,
            "failed_target_id": self.failed_target_id,
            "started_at": self.started_at,
            "updated_at": _now(),
        }
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            _write_json(self.file, doc)
        except OSError as exc:  # a full disk must not stop the serving
            log.error("could not write %s: %s", self.file, exc)

    def start_drain(self) -> None:
        """Readiness turns false; requests are still answered until the drain ends."""
        self.state.draining = True
        log.info("draining for %g s before shutting down", self.config.drain_s)
        self.write_file()

    async def _follow_target(self) -> None:
        while True:
            try:
                await self._check_target()
            except Exception:  # the follower must outlive any one bad look at the file
                log.exception("could not follow target.json")
            await asyncio.sleep(POLL_S)

    async def _check_target(self) -> None:
        path = self.dir / "target.json"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if not self._missing_logged:
                log.error("no target.json in %s: nothing to serve yet", self.dir)
                self._missing_logged = True
            return
        # os.replace gives the file a new inode, so even a same-second rewrite is seen.
        seen = (st.st_mtime_ns, st.st_ino, st.st_size)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            target = self.read_target(path)
        except AssayError as exc:
            self._failed(None, exc.message)
            return
        if self.target is not None and target.target_id == self.target.target_id:
            return
        await self._load(target)

    async def _load(self, target: Target) -> None:
        log.info("loading %s (target %s) from %s", target.ref, target.target_id, target.bundle)
        started = time.monotonic()
        try:
            served = await asyncio.to_thread(self._prepare, target)
        except Exception as exc:  # any failure to load leaves the old model serving
            self._failed(target, f"{type(exc).__name__}: {exc}", exc)
            return
        old = self.state.install(served)
        # What loading allocated lives as long as the model: out of the collector's scans,
        # whose full passes over it would otherwise pause the serving.
        gc.freeze()
        self.target, self.error, self.failed_target_id = target, None, None
        log.info(
            "serving %s (target %s): loaded and warmed up in %.2f s, takes %s%s",
            target.ref,
            target.target_id,
            time.monotonic() - started,
            "DataFrames" if served.schema.frame else "numpy arrays",
            f", replacing {old.ref}" if old is not None else "",
        )
        self.write_file()

    def _prepare(self, target: Target) -> ServedModel:
        from assay.registry.bundle import load_bundle
        from assay.serving.served import prepare

        bundle = load_bundle(target.bundle)
        if (bundle.name, bundle.version) != (target.name, target.version):
            # The control plane's numbering wins: it is what its users asked for.
            log.warning(
                "bundle %s says it is %s; serving it as %s", target.bundle, bundle.ref, target.ref
            )
            bundle = replace(bundle, name=target.name, version=target.version)
        return prepare(bundle, self.state.metrics)

    def _failed(self, target: Target | None, why: str, exc: BaseException | None = None) -> None:
        self.error = why
        self.failed_target_id = target.target_id if target else None
        serving = f"still serving {self.target.ref}" if self.target else "nothing is served"
        what = f"{target.ref} (target {target.target_id})" if target else "target.json"
        log.error("could not load %s: %s; %s", what, why, serving, exc_info=exc)
        self.write_file()

    def orphaned(self) -> bool:
        """Whether this worker's supervisor is gone (killed): then the worker stops too."""
        return self.supervised and os.getppid() != self.parent_pid


class _Server(uvicorn.Server):
    """uvicorn's server with a drain before the graceful shutdown.

    The first SIGTERM (or SIGINT) turns readiness false and keeps serving for `drain_s`;
    then uvicorn's own shutdown stops accepting and waits for requests in flight. A
    second signal skips what is left of the drain; a third SIGINT forces the exit.
    """

    def __init__(self, config: uvicorn.Config, worker: Worker) -> None:
        super().__init__(config)
        self.worker = worker
        self._drain_requested = False
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in `_captured_signals`, so uvicorn does not re-raise it after the
        # shutdown: the process exits 0 after a graceful stop.
        if self.worker.supervised and sig == signal.SIGINT:
            return  # a terminal's Ctrl-C: the supervisor sends SIGTERM itself
        if not self._drain_requested:
            self._drain_requested = True  # on_tick starts the drain outside the handler
        elif self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if not self._drain_requested and self.worker.orphaned():
            log.error("the supervisor is gone; stopping")
            self._drain_requested = True
        if self._drain_requested and self._drain_until is None:
            self._drain_until = time.monotonic() + self.worker.config.drain_s
            self.worker.start_drain()
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


def run_worker(
    service_dir: Path,
    sock: socket.socket,
    *,
    supervised: bool,
    worker_cls: type[Worker] = Worker,
) -> None:
    """Serve on `sock` until told to stop: the body of every worker."""
    config = ServiceConfig.read(service_dir)
    worker = worker_cls(service_dir, config, sock.getsockname()[1], supervised=supervised)
    uv_config = uvicorn.Config(
        worker.app(),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        log_config=None,  # our handler (timestamps, pid) formats uvicorn's lines too
        # Long enough for a prediction that started just before the drain ended.
        timeout_graceful_shutdown=math.ceil(config.timeout_s) + 2,
    )
    log.info("worker started")
    _Server(uv_config, worker).run(sockets=[sock])
    _exit_past_stuck_predictions()


def _exit_past_stuck_predictions() -> None:
    """Exit now if a prediction thread still runs (a model stuck past its timeout):
    the interpreter would otherwise wait for it at exit, however long it takes."""
    from assay.serving.app import PREDICT_THREAD_PREFIX

    threads = [t for t in threading.enumerate() if t.name.startswith(PREDICT_THREAD_PREFIX)]
    for thread in threads:  # idle ones end as soon as they see the pool shut down
        thread.join(timeout=0.5)
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        log.warning("exiting with %d prediction(s) still running past their timeout", stuck)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _spawned(
    service_dir: str, sock: socket.socket | None, port: int, worker_cls: type[Worker]
) -> None:
    """A supervised worker process's entry point. Without a socket from the supervisor,
    the worker listens on a socket of its own (SO_REUSEPORT, see `serve`)."""
    _configure_logging()
    if sock is None:
        config = ServiceConfig.read(Path(service_dir))
        sock = _bind(config.host, port, reuse_port=True)
    # SIGINT is ignored by supervised workers; should one slip through, exit quietly.
    with contextlib.suppress(KeyboardInterrupt):
        run_worker(Path(service_dir), sock, supervised=True, worker_cls=worker_cls)


# ---- the process ----------------------------------------------------------------------------


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d %(levelname)s [%(process)d] %(name)s: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def _bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AssayError(
            f"Cannot listen on {host}:{port} ({exc.strerror}); stop whatever uses the port "
            "or deploy the service on another one.",
            host=host,
            port=port,
        ) from exc
    if listen:
        # Listening now, before the workers start, queues early connections instead of
        # refusing them.
        sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def serve(service_dir: Path, worker_cls: type[Worker] = Worker) -> int:
    """Run the service in SERVICE_DIR until SIGTERM or SIGINT; returns the exit code.

    Raises:
        AssayError: service.json is missing or malformed, or the port cannot be bound.
    """
    config = ServiceConfig.read(service_dir)
    metrics_dir = service_dir / "metrics"
    _fresh_dir(metrics_dir)
    _fresh_dir(service_dir / "workers")
    # prometheus_client picks its multiprocess mode from this variable when first
    # imported, so it is set before anything imports it (the app is imported later).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    # Several workers accepting on one shared socket balance badly: under a burst one
    # worker can take every connection while the others idle. Where the kernel offers
    # SO_REUSEPORT, each worker listens on a socket of its own and the kernel spreads
    # connections across them; the supervisor's socket only holds the port (bound, never
    # listening, so no connection is queued on it).
    reuse_port = config.workers > 1 and hasattr(socket, "SO_REUSEPORT")
    sock = _bind(config.host, config.port, reuse_port=reuse_port, listen=not reuse_port)
    port = sock.getsockname()[1]
    log.info(
        "service %s listening on %s:%d with %d worker(s)",
        config.name,
        config.host,
        port,
        config.workers,
    )
    if config.workers == 1:
        run_worker(service_dir, sock, supervised=False, worker_cls=worker_cls)
        return 0
    supervisor = Supervisor(
        service_dir, config, sock, _spawned, shared=not reuse_port, worker_cls=worker_cls
    )
    return supervisor.run()


def main(
    argv: list[str] | None = None,
    worker_cls: type[Worker] = Worker,
    usage: str = (
        "usage: python -m assay.serving SERVICE_DIR\n\n"
        "Serve the model that SERVICE_DIR/target.json names, as SERVICE_DIR/service.json "
        "says. `assay services deploy` writes the folder and starts this."
    ),
) -> int:
    """`python -m assay.serving SERVICE_DIR`; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print(usage, file=sys.stderr)
        return 2
    _configure_logging()
    try:
        return serve(Path(args[0]).resolve(), worker_cls)
    except AssayError as exc:
        log.error("%s", exc.message)
        return 1
