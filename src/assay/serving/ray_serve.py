"""Services and A/B routers as Ray Serve applications on the cluster at `ASSAY_RAY_ADDRESS`.

One service is one Ray Serve application, named as the service and mounted at
`/<name>` on the cluster's Serve HTTP proxies (one per node, on the port
`ASSAY_RAY_SERVE_PORT`, 8000 by default; bound to `ASSAY_RAY_SERVE_HOST`, 0.0.0.0 by
default). Its deployment `model` runs `assay.serving.replica.ModelReplica`: the same
inference app a local service runs.

Ray Serve does the rest: it starts the replicas where the cluster has room, routes only
to replicas whose constructor (load and warm-up) finished, replaces a replica that dies,
rolls an update replica by replica (new ones up before old ones go), scales between
bounds on ongoing requests, and drains a replica before it stops it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from assay.cluster import check_shared_store, connect, require_ray, runtime_env_vars
from assay.errors import AssayError, InvalidArgumentError

if TYPE_CHECKING:
    from assay.config import Settings
    from assay.serving.entities import ReplicaState

DEFAULT_PORT = 8000
DEPLOYMENT = "model"
INGRESS = "http"
# The ingress only forwards bytes: a sliver of a CPU each.
INGRESS_CPUS = 0.1


class RayDeployFailedError(AssayError):
    """A Ray Serve application did not come up (a replica's constructor failed)."""

    status = 502


_EXCEPTION_ENDS = ("Error", "Exception", "Exit", "Interrupt")


def _one_line(message: str) -> str:
    """The cause in Ray Serve's failure message: its traceback's last line."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    if not lines:
        return "no reason given"
    last = lines[-1]
    for line in reversed(lines):  # an exception line: `SomeError: why`
        head = line.split(":", 1)[0]
        if head.replace(".", "").isidentifier() and head.endswith(_EXCEPTION_ENDS):
            # Our own errors' messages say it all; another's keeps its name.
            return line.split(": ", 1)[1] if head.startswith("assay.") else line
    return last


class RayServe:
    """The cluster's Serve instance as the control plane sees it. Connects on first use
    (once per process; the server keeps the connection)."""

    _lock = threading.Lock()

    def __init__(self, settings: Settings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.environ = dict(environ)
        self.address = environ.get("ASSAY_RAY_ADDRESS") or None

    # ---- connecting -----------------------------------------------------------------------

    def check(self) -> None:
        """What can be checked without connecting: Ray Serve is installed, a cluster is
        named, and the workspace is one its nodes can reach.

        Raises:
            InvalidArgumentError: one is not the case (the message says what to do).
        """
        require_ray("--on ray")
        try:
            import ray.serve  # noqa: F401
        except ImportError:
            raise InvalidArgumentError(
                "--on ray needs Ray Serve: pip install 'assay[ray]'."
            ) from None
        if not self.address:
            raise InvalidArgumentError(
                "--on ray deploys to the Ray cluster at ASSAY_RAY_ADDRESS, which is not set. "
                "Start a cluster (`ray start --head`) and export ASSAY_RAY_ADDRESS=HOST:6379."
            )
        if not _on_this_machine(self.address):
            # Replicas read the model from the object store, never the database.
            check_shared_store(self.settings)

    def proxy(self) -> tuple[str, int]:
        """Connect (once) and make sure Serve runs; the host and port of its HTTP proxy.

        Raises:
            InvalidArgumentError: the cluster cannot be reached.
        """
        self.check()
        import logging

        import ray
        from ray import serve

        # Serve's progress notes would land on the CLI's stderr, beside its one line.
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
        with self._lock:
            if not ray.is_initialized():
                connect(self.address, runtime_env_vars(self.settings, self.environ), self.environ)
            port = int(self.environ.get("ASSAY_RAY_SERVE_PORT") or DEFAULT_PORT)
            bind = self.environ.get("ASSAY_RAY_SERVE_HOST") or "0.0.0.0"
            # A Serve already running keeps its own options: its port is the one used.
            serve.start(http_options={"host": bind, "port": port})
            http = _client().http_config
        host = self.environ.get("ASSAY_RAY_SERVE_URL_HOST") or _head_host(self.address or "")
        return host, int(http.port)

    # ---- applications -------------------------------------------------------------------

    def run(
        self,
        name: str,
        spec: dict[str, Any],
        options: dict[str, Any],
        *,
        timeout_s: float,
    ) -> None:
        """Deploy (or roll to) `spec` as application `name`, and wait until it runs.

        `options` are the replicas' (`replicas` or `autoscale`, `cpus`, `memory_bytes`,
        `drain_s`, `timeout_s`).

        Raises:
            RayDeployFailedError: it did not come up (Ray Serve's reason, one line).
        """
        import importlib

        from ray import serve
        from ray.serve.api import RunTarget

        # Named, not imported at the top: these classes run in the replicas, and the
        # control plane only hands Ray Serve references to them (the inference app is a
        # transport, which control-plane code does not import).
        replica = importlib.import_module("assay.serving.replica")
        opts = self.deployment_options(options)
        model = serve.deployment(name=DEPLOYMENT, **opts)(replica.ModelReplica)
        ingress = serve.deployment(name=INGRESS, **self.ingress_options(opts))(replica.HttpIngress)
        serve.run_many(
            [RunTarget(target=ingress.bind(model.bind(spec)), name=name, route_prefix=f"/{name}")],
            wait_for_ingress_deployment_creation=False,
            wait_for_applications_running=False,
        )
        self.wait_running(name, timeout_s)

    def run_abtest(
        self,
        name: str,
        router: dict[str, Any],
        variants: dict[str, dict[str, Any]],
        options: dict[str, Any],
        *,
        timeout_s: float,
    ) -> None:
        """Deploy (or roll to) A/B test `name`: its router (`assay.abtests.ray_router`)
        over one deployment per variant (`variants`: label -> replica spec), with the
        shared-state actor the router replicas share (started here if it is not running:
        it rebuilds the test's answers and rewards from the log in the store). A change
        rolls the application (Ray Serve starts new replicas before it stops old ones); what
        the routers learned is in the actor, which a redeploy keeps.

        Raises:
            RayDeployFailedError: it did not come up (Ray Serve's reason, one line).
        """
        import importlib

        import ray
        from ray import serve
        from ray.serve.api import RunTarget

        from assay.cluster import NAMESPACE

        replica = importlib.import_module("assay.serving.replica")
        routing = importlib.import_module("assay.abtests.ray_router")
        opts = self.deployment_options(options)
        env = opts["ray_actor_options"]["runtime_env"]
        ray.remote(num_cpus=0, runtime_env=env)(routing.SharedState).options(
            name=routing.state_actor_name(name),
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,  # a lost node: started again elsewhere, from the log
        ).remote(name, router["store"], router["events"])
        arms = {
            label: serve.deployment(name=f"variant-{label}", **opts)(replica.ModelReplica).bind(
                spec
            )
            for label, spec in variants.items()
        }
        ingress = serve.deployment(name="router", **self.ingress_options(opts))(
            routing.ABRouterReplica
        )
        serve.run_many(
            [
                RunTarget(
                    target=ingress.bind(router, arms),
                    name=abtest_app(name),
                    route_prefix=f"/abtests/{name}",
                )
            ],
            wait_for_ingress_deployment_creation=False,
            wait_for_applications_running=False,
        )
        self.wait_running(abtest_app(name), timeout_s)

    def delete_abtest(self, name: str) -> None:
        """Remove A/B test `name`'s application (replicas drain first) and its shared
        state (its log stays in the store); nothing for what is gone."""
        import importlib

        import ray

        from assay.cluster import NAMESPACE

        self.delete(abtest_app(name))
        routing = importlib.import_module("assay.abtests.ray_router")
        try:
            actor = ray.get_actor(routing.state_actor_name(name), namespace=NAMESPACE)
        except ValueError:
            return
        ray.kill(actor)

    def deployment_options(self, options: dict[str, Any]) -> dict[str, Any]:
        actor: dict[str, Any] = {
            "num_cpus": float(options.get("cpus") or 0.5),
            # Explicit, so a replica started by a later update gets the same workspace.
            "runtime_env": {"env_vars": runtime_env_vars(self.settings, self.environ)},
        }
        if options.get("memory_bytes"):
            actor["memory"] = int(options["memory_bytes"])
        out: dict[str, Any] = {
            "ray_actor_options": actor,
            "graceful_shutdown_wait_loop_s": float(options.get("drain_s", 1.0)),
            "graceful_shutdown_timeout_s": float(options.get("timeout_s", 30.0)) + 2.0,
            "health_check_period_s": 2.0,
            # Loading a version from the store either works or fails the same way again:
            # three tries (Ray Serve's default is 20) tell a transient hiccup from a model
            # that cannot load, and a failed deploy or update says so in seconds.
            "max_constructor_retry_count": 3,
            # Beyond the app's prediction threads, requests wait in the replica rather
            # than in the ingress: a queue Ray Serve's router can see when it balances.
            "max_ongoing_requests": 32,
        }
        scale = options.get("autoscale")
        if scale:
            out["autoscaling_config"] = {
                "min_replicas": int(scale["min"]),
                "max_replicas": int(scale["max"]),
                "target_ongoing_requests": float(scale["target_ongoing_requests"]),
            }
        else:
            out["num_replicas"] = int(options.get("replicas") or 1)
        return out

    def ingress_options(self, model_options: dict[str, Any]) -> dict[str, Any]:
        """The ingress scales with the model: as many replicas, a sliver of a CPU each."""
        out = {k: v for k, v in model_options.items() if k != "ray_actor_options"}
        out["ray_actor_options"] = {
            "num_cpus": INGRESS_CPUS,
            "runtime_env": model_options["ray_actor_options"]["runtime_env"],
        }
        out["max_ongoing_requests"] = 1000
        return out

    def wait_running(self, name: str, timeout_s: float) -> None:
        """Wait until application `name` runs.

        It asks the controller for this one application's status, not `serve.status()`:
        that builds every application's whole configuration on each call (cloudpickling
        each deployment's request router), 6.7 ms of CPU with one application and more
        with each other one, against 0.6 ms. py-spy found the waits of the Ray tests'
        driver spending 8% of their CPU there.

        Raises:
            RayDeployFailedError: Ray Serve gave up on it, or it did not run in time.
        """
        client = _client()
        deadline = time.monotonic() + timeout_s
        while True:
            overview = client.get_serve_status(name)
            app = overview.app_status
            state = str(getattr(app.status, "value", app.status))
            if state == "RUNNING":
                return
            if state in ("DEPLOY_FAILED", "UNHEALTHY"):
                why = app.message or ""
                for dep in overview.deployment_statuses:
                    why = why or dep.message
                    if dep.message and "Traceback" in dep.message:
                        why = dep.message
                raise RayDeployFailedError(_one_line(why), ray_status=state)
            if time.monotonic() > deadline:
                said = "nothing" if state == "NOT_STARTED" else state  # not there (yet)
                raise RayDeployFailedError(
                    f"it was not running after {timeout_s:g} s (Ray Serve says {said})"
                )
            time.sleep(0.25)

    def delete(self, name: str) -> None:
        """Remove application `name` (its replicas drain first); nothing if it is gone."""
        from ray import serve

        serve.delete(name, _blocking=True)

    def exists(self, name: str) -> bool:
        from ray import serve

        return name in serve.status().applications

    def replicas(self, name: str) -> list[ReplicaState]:
        """The replicas of application `name` and their states, as Ray Serve reports them."""
        details = _client().get_serve_details()
        app = (details.get("applications") or {}).get(name) or {}
        out: list[ReplicaState] = []
        for dep_name, dep in (app.get("deployments") or {}).items():
            for r in dep.get("replicas") or []:
                started = r.get("start_time_s")
                out.append(
                    {
                        "deployment": str(dep_name),
                        "replica_id": str(r.get("replica_id")),
                        "state": str(getattr(r.get("state"), "value", r.get("state"))),
                        "pid": int(r["pid"]) if r.get("pid") else None,
                        "node_ip": r.get("node_ip"),
                        "started_at": (
                            datetime.fromtimestamp(float(started), UTC).isoformat()
                            if started
                            else None
                        ),
                        "log_file": r.get("log_file_path"),
                    }
                )
        return out

    def logs(self, name: str, lines: int) -> str:
        """The end of each replica's log that lives on this machine (the others' paths)."""
        import ray

        logs_dir = None
        # This driver's node: the head's when it is on this machine.
        node = getattr(ray._private.worker.global_worker, "node", None)
        if node is not None:
            logs_dir = node.get_logs_dir_path()
        parts: list[str] = []
        from pathlib import Path

        from assay.serving.processes import tail

        for r in self.replicas(name):
            where = f"replica {r['replica_id']} ({r['state']}, pid {r['pid']}, {r['node_ip']})"
            rel = (r["log_file"] or "").lstrip("/")
            path = Path(logs_dir) / rel if logs_dir and rel else None
            if path is not None and path.exists():
                parts.append(f"--- {where}\n{tail(path, lines)}")
            else:
                parts.append(f"--- {where}: its log is {r['log_file']} on its node\n")
        return "".join(parts)


def abtest_app(name: str) -> str:
    """The Ray Serve application of A/B test `name` (services' are named as they are)."""
    return f"abtest-{name}"


def _client() -> Any:
    """Ray Serve's controller client (Serve runs: `RayServe.proxy` started it)."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    if client is None:
        raise AssayError("Ray Serve is not running on the cluster.")
    return client


def _on_this_machine(address: str) -> bool:
    """Whether the cluster's head is on loopback: its replicas then reach this machine's
    folders (a one-machine cluster, as in a trial or a benchmark)."""
    return _head_host(address) in ("127.0.0.1", "localhost", "::1", "[::1]")


def _head_host(address: str) -> str:
    """The host in `ray://host:10001` or `host:6379`: where a proxy of the cluster runs."""
    rest = address.split("://", 1)[-1]
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    return host or "127.0.0.1"
