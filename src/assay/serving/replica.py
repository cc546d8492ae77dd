"""A replica of a service on a Ray cluster: the local service's inference app, unchanged,
inside a Ray Serve deployment.

`assay services deploy NAME --on ray` runs the Ray Serve application NAME
(`assay.serving.ray_serve` builds it) of two deployments: `http` (`HttpIngress`, its HTTP
entry at `/NAME`) hands each request to a replica of `model` (`ModelReplica`) through a
deployment handle. Each model replica:

- materializes the model version's bundle from the workspace's object store (a replica
  needs the store's URL and credentials, not the database, nor the model's code),
- loads it and answers a warm-up request (`served.prepare`) in its constructor, so Ray
  Serve routes no request to it before it is ready,
- answers with the same Starlette app a local service's worker runs (`app.create_app`),
  called in-process: the same routes, answers, error bodies, provenance headers and
  `/metrics` (the replica's own).

The ingress sends a request again to another replica when the one answering it died
(predictions are safe to repeat), so losing a replica loses no request.

Like the service process, it imports no control-plane code (no SQLAlchemy): a replica
starts fast and holds only what answers requests.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.errors import AssayError, ModelNotReadyError

if TYPE_CHECKING:
    from assay.serving.predlog import PredictionLog

__all__ = ["HttpIngress", "ModelReplica", "ReplicaSpec", "as_call", "call_asgi"]

log = logging.getLogger("assay.serving")

# What the control plane hands every replica (JSON values only, so it pickles anywhere):
# {"service", "store", "bundle" (the manifest's digest), "name", "version",
#  "timeout_s", "max_body_bytes", "log" (the prediction log's config, or None),
#  "variant" (its label, when it is a variant of an A/B test)}
ReplicaSpec = dict[str, Any]


class ModelReplica:
    """One replica: a model version loaded and warmed up, behind the inference app.

    The app is called in-process (`answer`): the ingress deployment hands it each HTTP
    request through a deployment handle and sends back what it answered.
    """

    def __init__(self, spec: ReplicaSpec) -> None:
        from dataclasses import replace

        from assay.registry.bundle import load_bundle, materialize
        from assay.serving.app import ServingState, create_app
        from assay.serving.metrics import Metrics
        from assay.serving.served import prepare
        from assay.store.objects import ObjectStore

        self.spec = spec
        self.dir = Path(tempfile.mkdtemp(prefix=f"assay-{spec['service']}-"))
        self.state = ServingState(Metrics())
        self.predlog = _prediction_log(spec, self.dir)
        self.state.log = self.predlog
        ref = f"{spec['name']}@{spec['version']}"
        log.info("loading %s from %s", ref, spec["store"])
        try:
            bundle = load_bundle(
                materialize(ObjectStore.open(spec["store"]), spec["bundle"], self.dir / "bundle")
            )
            # The control plane's numbering wins: it is what its users asked for.
            bundle = replace(bundle, name=spec["name"], version=int(spec["version"]))
            served = prepare(bundle, self.state.metrics)
            served.variant = spec.get("variant")  # an A/B test's label, in its log
            self.state.install(served)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        if self.predlog is not None:
            self.predlog.start()
        self.app = create_app(
            self.state,
            timeout_s=float(spec["timeout_s"]),
            max_body_bytes=int(spec["max_body_bytes"]),
        )
        log.info("serving %s", ref)

    def infer(
        self, body: bytes, json_length: int | None, request_id: str | None
    ) -> tuple[bytes, int | None] | AssayError:
        """The model's answer to a body of either protocol, for an A/B test's router (a
        deployment composing this one): its error, when it has one for the body, is
        returned to be answered with, not raised."""
        current = self.state.current
        if current is None or self.state.draining:
            return ModelNotReadyError("The model is still loading (or stopping); retry shortly.")
        try:
            return current.answer(body, json_length, request_id)
        except AssayError as exc:
            return exc

    async def answer(self, request: Request) -> Answer:
        """What the inference app answers to `request` (status, headers, body)."""
        return await call_asgi(self.app, request)

    def serving(self) -> dict[str, Any]:
        """The model this replica serves."""
        current = self.state.current
        return {
            "name": current.name if current else None,
            "version": current.version if current else None,
            "ready": self.state.ready,
        }

    def __del__(self) -> None:
        # Ray Serve stopped routing here and requests in flight have finished.
        self.state.draining = True
        if self.predlog is not None:
            self.predlog.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# An HTTP request and answer as plain values, to cross between replicas:
# (method, path, query string, headers) + body; (status, headers, body).
Request = tuple[str, str, bytes, list[tuple[bytes, bytes]], bytes]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


async def call_asgi(app: Any, request: Request) -> Answer:
    """Call the ASGI `app` with `request` in this process; what it answered."""
    method, path, query, headers, body = request
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": None,
        "server": None,
    }
    sent = False
    status = 500
    out_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, out_headers
        if message["type"] == "http.response.start":
            status = int(message["status"])
            out_headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    return status, out_headers, b"".join(chunks)


class HttpIngress:
    """The application's HTTP entry: each request goes, whole, to a replica of the model
    deployment (`answer`), and its answer comes back as it is.

    A model replica that dies with requests in flight (a crash, a lost node) fails
    them in Ray; a prediction is safe to repeat, so those are sent again to another
    replica, and the caller sees no failure.
    """

    RETRIES = 4

    def __init__(self, model: Any) -> None:
        self.model = model

    async def __call__(self, request: Any) -> Any:
        import asyncio

        from ray.exceptions import RayActorError
        from starlette.responses import Response

        path: str = request.scope["path"]
        root: str = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        call = await as_call(request, path)
        for attempt in range(self.RETRIES + 1):
            try:
                status, headers, body = await self.model.answer.remote(call)
                break
            except RayActorError:
                if attempt == self.RETRIES:
                    raise
                log.warning("a model replica died answering %s; sending it again", path)
                await asyncio.sleep(0.05 * 2**attempt)
        response = Response(body, status_code=status)
        response.raw_headers = headers
        return response


async def as_call(request: Any, path: str) -> Request:
    """A Starlette request, read whole, as a plain `Request` for `path`."""
    scope = request.scope
    return (
        scope["method"],
        path,
        scope.get("query_string", b""),
        [(bytes(k), bytes(v)) for k, v in scope["headers"]],
        await request.body(),
    )


def _prediction_log(spec: ReplicaSpec, folder: Path) -> PredictionLog | None:
    from assay.serving.predlog import LogConfig, PredictionLog

    found = LogConfig.from_doc(spec.get("log"))
    return None if found is None else PredictionLog(found, folder)
