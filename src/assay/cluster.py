"""The Ray cluster Assay uses: how a driver connects, and what its tasks and replicas need.

The cluster is the one at `ASSAY_RAY_ADDRESS` (`ray://host:10001` or `host:6379`). Runs
(`--executor ray`) and services and A/B tests (`--on ray`) all go there. What executes on
it only needs the workspace's URLs: it opens the same metadata database and object store
as the driver. Hence a remote cluster needs a shared workspace (PostgreSQL + an
S3-compatible store); the nodes need Assay installed, not the pipeline's or model's code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from assay.config import Settings
from assay.errors import InvalidArgumentError

# What a task or replica needs from the driver's environment: the workspace's settings
# and the object store's credentials and endpoint.
PASSED = ("ASSAY_", "AWS_", "FSSPEC_", "GOOGLE_", "AZURE_")
NAMESPACE = "assay"


def require_ray(what: str) -> None:
    """Raises InvalidArgumentError when Ray (with `extra`) is not installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise InvalidArgumentError(f"{what} needs Ray: pip install 'assay[ray]'.") from None


def runtime_env_vars(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a task or replica gets: the driver's workspace settings and the
    object store's credentials (never the cluster's own address)."""
    env = {k: v for k, v in environ.items() if k.startswith(PASSED)}
    env.update(
        ASSAY_DB_URL=settings.db_url,
        ASSAY_STORE_URL=absolute(settings.store_url),
        ASSAY_AUTHOR=settings.author,
        ASSAY_COST_PER_HOUR=str(settings.cost_per_hour),
    )
    if settings.root is not None:
        env["ASSAY_ROOT"] = str(settings.root)
    env.pop("ASSAY_RAY_ADDRESS", None)
    return env


# How a driver proves itself to a cluster with token authentication. Ray reads these from
# the process's environment only, so a workspace opened with an environment of its own
# (the server's, an SDK caller's) hands them over before connecting.
AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def connect(address: str | None, env_vars: Mapping[str, str], environ: Mapping[str, str]) -> None:
    """`ray.init` to the cluster at `address` (a local Ray started here when None), with
    the cluster token `environ` holds, if any.

    Raises:
        InvalidArgumentError: it cannot be reached (the message says why, and what to do
            when the cluster wants a token).
    """
    import ray

    if address and address != "auto":
        check_reachable(address)
    for key in AUTH:
        if environ.get(key):
            os.environ[key] = environ[key]
    if environ.get("RAY_AUTH_MODE"):
        _reload_auth()
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": dict(env_vars)},
            namespace=NAMESPACE,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        cause = exc.__cause__ or exc.__context__
        why = f"{exc} ({type(cause).__name__}: {cause})" if cause else str(exc)
        why = " ".join(why.split())  # one line
        hint = ""
        if "auth" in why.lower() or "token" in why.lower():
            hint = (
                " The cluster wants a token: set RAY_AUTH_MODE=token and "
                "RAY_AUTH_TOKEN to the cluster's token."
            )
        raise InvalidArgumentError(f"Cannot start or reach {where}: {why}.{hint}") from None


def _reload_auth() -> None:
    """Make Ray read its authentication settings again: it reads them once per process
    (a driver that used a local Ray before would otherwise stay without a token)."""
    try:
        from ray._raylet import (  # type: ignore[attr-defined]  # not in its stubs
            AuthenticationTokenLoader,
            Config,
        )

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):  # another Ray: it reads them when it connects
        pass


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Whether anything listens at the cluster's address: asked with one TCP connection,
    since `ray.init` retries an address nobody answers at for minutes.

    Raises:
        InvalidArgumentError: nothing answers there.
    """
    import socket

    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidArgumentError(
            f"ASSAY_RAY_ADDRESS {address!r} is not HOST:PORT (such as 10.0.0.5:6379) or "
            "ray://HOST:10001."
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise InvalidArgumentError(
            f"Cannot reach the Ray cluster at {address} ({why}); start it there with "
            "`ray start --head`, or point ASSAY_RAY_ADDRESS at a running cluster."
        ) from None


def absolute(url: str) -> str:
    if "://" in url:
        return url
    return os.path.abspath(url)


def check_shared_store(settings: Settings) -> None:
    """A remote cluster's replicas can only read models from an object store on servers.

    Raises:
        InvalidArgumentError: the objects are in a folder on this machine.
    """
    if "://" not in settings.store_url or settings.store_url.startswith("file://"):
        raise InvalidArgumentError(
            "The workspace keeps its objects in a folder on this machine, which a Ray "
            "cluster's nodes cannot reach. Point ASSAY_STORE_URL at an S3-compatible bucket "
            "(see the README's 'For teams')."
        )


def check_shared(settings: Settings) -> None:
    """A remote cluster can only reach a workspace that lives on servers.

    Raises:
        InvalidArgumentError: the metadata or the objects are on this machine.
    """
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
