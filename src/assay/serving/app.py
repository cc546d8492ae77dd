"""The inference app: one model version behind KServe V1 and the Open Inference Protocol V2.

Routes (never a traceback; an error is `{"error": {"type", "message", "details"}}`, but
on /v2 routes `{"error": "<message>", "type", "details"}` as the protocol says):

    POST /v1/models/{name}:predict           {"instances": [...]} or {"inputs": ...} ->
                                             {"predictions", "model", "version"}
    POST /v1/models/{name}:predict_proba     the same with class probabilities (and "classes")
    GET  /v1/models  /v1/models/{name}       what is served; {"name", "ready"}
    POST /v2/models/{name}[/versions/{v}]/infer   JSON, or with the binary tensor extension
    GET  /v2  /v2/health/live  /v2/health/ready  /v2/models/{name}[/versions/{v}][/ready]
    POST /feedback                           {"request_id", "label"} or {"request_id",
                                             "reward"}: logged, joined to the prediction later
    GET  /  ({"status": "alive"}, KServe's V1 liveness)  /health/live  /health/ready  /metrics

Every prediction answer carries `X-Assay-Request-Id` (the caller's own `X-Request-Id`
when it sent a sensible one); with prediction logging on (`assay.serving.predlog`) the
request's rows and answer are recorded under that id, off the request path.

It is small on purpose and imports no control-plane code (no SQLAlchemy, Typer, Rich,
pandas), so a service process starts fast. The hot path does no per-request logging,
no validation layer beyond the signature check, O(1) metric updates, and reuses
response headers built once per model version.

Which model is served lives in a `ServingState`; a worker swaps it whole (`install`),
and each request reads it once, so a request in flight finishes on the model it began
with while the next one gets the new model.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

import assay
from assay.errors import (
    AssayError,
    ConflictError,
    InvalidArgumentError,
    ModelError,
    ModelNotReadyError,
    NotFoundError,
    PayloadTooLargeError,
    PredictTimeoutError,
    UnsupportedMediaTypeError,
)
from assay.limits import FEEDBACK_BODY_BYTES
from assay.serving.bodies import (
    binary_headers,
    error_body,
    error_json,
    read_body,
    read_infer_body,
)
from assay.serving.metrics import CONTENT_TYPE, Metrics, monitor_gauges
from assay.serving.predlog import RequestIds, client_request_id, feedback_fields
from assay.serving.served import Answer, ServedModel, dumps, parse_body, prepare

if TYPE_CHECKING:
    from pathlib import Path

    from assay.registry.bundle import LoadedBundle
    from assay.serving.predlog import PredictionLog

__all__ = ["JsonBody", "ServingState", "create_app", "error_kind"]

log = logging.getLogger("assay.serving")

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
# Threads that run `predict`. A prediction past its timeout is answered 504 but its
# thread runs on until the model returns; a few spare threads keep the service answering.
DEFAULT_PREDICT_THREADS = 4
PREDICT_THREAD_PREFIX = "assay-predict"

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


# The `kind` label of `assay_request_errors_total`.
_ERROR_KINDS: dict[type[AssayError], str] = {
    InvalidArgumentError: "invalid_input",
    NotFoundError: "not_found",
    PayloadTooLargeError: "too_large",
    UnsupportedMediaTypeError: "media_type",
    ModelNotReadyError: "not_ready",
    ModelError: "model",
    PredictTimeoutError: "timeout",
}

_JSON_HEADERS = [(b"content-type", b"application/json")]


class JsonBody(Response):
    """A JSON response whose headers were built once; only the length is new."""

    media_type = "application/json"

    def __init__(
        self,
        body: bytes,
        status_code: int = 200,
        headers: list[tuple[bytes, bytes]] = _JSON_HEADERS,
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode()), *headers]


def _json(doc: Any, status_code: int = 200) -> JsonBody:
    return JsonBody(dumps(doc), status_code)


# ---- a model, ready to answer -----------------------------------------------------------------


# ---- what is served now ---------------------------------------------------------------------


class ServingState:
    """What a worker serves now. `install` swaps the model whole; a request reads
    `current` once and uses that model to the end."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics if metrics is not None else Metrics()
        self.current: ServedModel | None = None
        self.draining = False
        # The prediction log (None when logging is off), and the file where the control
        # plane leaves the latest monitor check (exported as gauges on /metrics).
        self.log: PredictionLog | None = None
        self.monitor_file: Path | None = None

    @property
    def ready(self) -> bool:
        """Loaded, warmed up, and not shutting down."""
        return self.current is not None and not self.draining

    def install(self, served: ServedModel) -> ServedModel | None:
        """Serve `served` from the next request on; returns the model it replaces."""
        old = self.current
        served.metrics.serving(True)
        served.log = self.log
        self.current = served  # one reference assignment: atomic for every reader
        if old is not None and (old.name, old.version) != (served.name, served.version):
            old.metrics.serving(False)
        return old

    @classmethod
    def of(cls, bundle: LoadedBundle, metrics: Metrics | None = None) -> ServingState:
        """A state that serves `bundle`, prepared and warmed up."""
        state = cls(metrics)
        state.install(prepare(bundle, state.metrics))
        return state


# ---- routes -----------------------------------------------------------------------------------


def error_kind(exc: AssayError) -> str:
    for cls in type(exc).__mro__:
        kind = _ERROR_KINDS.get(cls)
        if kind is not None:
            return kind
    return "other"


def _is_v2(request: Request) -> bool:
    path: str = request.scope["path"]
    # Mounted under a prefix (a Ray Serve application's route prefix), the path keeps it.
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == "/v2" or path.startswith("/v2/")


class _Endpoints:
    def __init__(
        self, state: ServingState, timeout_s: float, max_body_bytes: int, threads: int
    ) -> None:
        self.state = state
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix=PREDICT_THREAD_PREFIX)
        self.request_ids = RequestIds()

    # -- predictions

    async def v1_predict(self, request: Request) -> Response:
        return await self._answer(request, "v1", _v1_predict)

    async def v1_predict_proba(self, request: Request) -> Response:
        return await self._answer(request, "v1", _v1_proba)

    async def v2_infer(self, request: Request) -> Response:
        return await self._answer(request, "v2", _v2_infer)

    async def _answer(
        self,
        request: Request,
        protocol: str,
        op: Callable[[ServedModel, bytes, int | None, str], Answer],
    ) -> Response:
        started = time.perf_counter()
        served = self.state.current
        v2 = protocol == "v2"
        if served is None:
            return self._not_ready(v2)
        kind: str | None = None
        request_id = client_request_id(request.scope["headers"]) or self.request_ids()
        headers = [*served.headers, (b"x-assay-request-id", request_id.encode())]
        try:
            self._check_path(served, request.path_params)
            body, json_length = await read_infer_body(request, self.max_body_bytes, binary=v2)
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.pool, op, served, body, json_length, request_id)
            try:
                answer = await asyncio.wait_for(future, self.timeout_s)
            except TimeoutError:
                log.warning(
                    "model %s took longer than %g s to predict; answered 504",
                    served.ref,
                    self.timeout_s,
                )
                raise PredictTimeoutError(
                    f"Model {served.ref} took longer than {self.timeout_s:g} s to predict; the "
                    "request was abandoned. Send fewer rows, or ask the service's operator "
                    "for a longer timeout.",
                    timeout_s=self.timeout_s,
                ) from None
            payload, json_length = answer
            if json_length is None:
                response = JsonBody(payload, 200, headers)
            else:
                response = JsonBody(payload, 200, binary_headers(headers, json_length))
        except AssayError as exc:
            kind = error_kind(exc)
            response = JsonBody(error_body(exc, v2), exc.status, headers)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        served.metrics.record(protocol, response.status_code, time.perf_counter() - started, kind)
        return response

    def _check_path(self, served: ServedModel, params: dict[str, Any]) -> None:
        name = params["name"]
        if name != served.name:
            raise NotFoundError(
                f"Model {name!r} is not served here: this service serves {served.name!r} "
                f"(version {served.version}). Send requests to "
                f"/v1/models/{served.name}:predict or /v2/models/{served.name}/infer.",
                model=name,
                served=served.name,
                version=served.version,
            )
        version = params.get("version")
        if version is not None and version != str(served.version):
            raise NotFoundError(
                f"Model {served.name!r} version {version} is not served here: this service "
                f"serves version {served.version}. Send requests to "
                f"/v2/models/{served.name}/infer.",
                model=name,
                version=version,
                served_version=served.version,
            )

    def _not_ready(self, v2: bool) -> Response:
        exc = ModelNotReadyError(
            "The model is still loading (or the service is stopping); retry shortly. "
            "GET /health/ready answers 200 once it is ready."
        )
        return JsonBody(error_body(exc, v2), exc.status)

    def _served(self, request: Request) -> ServedModel | Response:
        served = self.state.current
        v2 = _is_v2(request)
        if served is None:
            return self._not_ready(v2)
        try:
            self._check_path(served, request.path_params)
        except NotFoundError as exc:
            return JsonBody(error_body(exc, v2), exc.status, served.headers)
        return served

    # -- descriptions and health

    async def v1_models(self, request: Request) -> Response:
        served = self.state.current
        return _json({"models": [served.name] if served else []})

    async def v1_model(self, request: Request) -> Response:
        if request.path_params["name"].endswith((":predict", ":predict_proba")):
            return _method_not_allowed(request, "POST")
        found = self._served(request)
        if isinstance(found, Response):
            return found
        ready = self.state.ready
        return _json({"name": found.name, "ready": ready}, 200 if ready else 503)

    async def v2_server(self, request: Request) -> Response:
        return _json(
            {"name": "assay", "version": assay.__version__, "extensions": ["binary_tensor_data"]}
        )

    async def v2_live(self, request: Request) -> Response:
        return _json({"live": True})

    async def v2_ready(self, request: Request) -> Response:
        ready = self.state.ready
        return _json({"ready": ready}, 200 if ready else 503)

    async def v2_model(self, request: Request) -> Response:
        found = self._served(request)
        if isinstance(found, Response):
            return found
        return _json(found.metadata())

    async def v2_model_ready(self, request: Request) -> Response:
        found = self._served(request)
        if isinstance(found, Response):
            return found
        ready = self.state.ready
        return _json({"name": found.name, "ready": ready}, 200 if ready else 503)

    async def live(self, request: Request) -> Response:
        return _json({"live": True})

    async def root(self, request: Request) -> Response:
        return JsonBody(b'{"status":"alive"}')  # what KServe's V1 `is_server_live` reads

    async def ready(self, request: Request) -> Response:
        served, state = self.state.current, self.state
        if state.ready and served is not None:
            return _json({"ready": True, "model": served.name, "version": served.version})
        reason = "draining" if state.draining else "loading"
        return _json({"ready": False, "reason": reason}, 503)

    async def metrics(self, request: Request) -> Response:
        text = self.state.metrics.render() + monitor_gauges(self.state.monitor_file)
        return Response(text, media_type=CONTENT_TYPE)

    async def feedback(self, request: Request) -> Response:
        try:
            log = self.state.log
            body = await read_body(request, min(self.max_body_bytes, FEEDBACK_BODY_BYTES))
            request_id, reward, label = feedback_fields(parse_body(body))
            if log is None:
                raise ConflictError(
                    "Prediction logging is off for this service, so feedback has nothing to "
                    "join; deploy it again with --log-sample above 0.",
                )
            log.feedback(request_id, label, reward)
        except AssayError as exc:
            return JsonBody(error_body(exc), exc.status)
        except ClientDisconnect:
            return Response(status_code=400)
        return JsonBody(dumps({"request_id": request_id, "logged": True}))


def _v1_predict(served: ServedModel, body: bytes, json_length: int | None, rid: str) -> Answer:
    return served.v1(body, False, rid), None


def _v1_proba(served: ServedModel, body: bytes, json_length: int | None, rid: str) -> Answer:
    return served.v1(body, True, rid), None


def _v2_infer(served: ServedModel, body: bytes, json_length: int | None, rid: str) -> Answer:
    return served.v2(body, json_length, rid)


def _method_not_allowed(request: Request, allowed: str) -> Response:
    body = error_json(
        "MethodNotAllowedError",
        f"{request.method} is not allowed on {request.url.path}; use {allowed}.",
        {"allowed": allowed.split(", ") if allowed else []},
        _is_v2(request),
    )
    return JsonBody(body, 405, [*_JSON_HEADERS, (b"allow", allowed.encode())])


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _method_not_allowed(request, (exc.headers or {}).get("Allow", ""))
    if exc.status_code == 404:
        error = NotFoundError(
            f"No route {request.method} {request.url.path}. Predict with "
            "POST /v1/models/NAME:predict or POST /v2/models/NAME/infer; "
            "GET /v2/models/NAME describes the model.",
            path=request.url.path,
        )
        return JsonBody(error_body(error, _is_v2(request)), 404)
    return JsonBody(error_json("HTTPError", str(exc.detail), {}, _is_v2(request)), exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    error_id = uuid.uuid4().hex[:12]
    log.error("error_id=%s %s %s failed", error_id, request.method, request.url.path, exc_info=exc)
    error = AssayError(
        f"The service failed on this request. Quote error_id {error_id} to its operator; "
        "its log has the details.",
        error_id=error_id,
    )
    return JsonBody(error_body(error, _is_v2(request)), 500)


def create_app(
    state: ServingState,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    predict_threads: int = DEFAULT_PREDICT_THREADS,
    lifespan: Lifespan | None = None,
) -> Starlette:
    """The inference app over `state` (which the caller loads and swaps).

    `timeout_s` bounds each prediction (504 past it), `max_body_bytes` each request
    body (413), `lifespan` runs the caller's start-up and shut-down around the app's.
    """
    e = _Endpoints(state, timeout_s, max_body_bytes, predict_threads)
    post = ["POST"]
    routes = [
        # The hot routes first: the router tries routes in order.
        Route("/v1/models/{name}:predict", e.v1_predict, methods=post),
        Route("/v2/models/{name}/infer", e.v2_infer, methods=post),
        Route("/v1/models/{name}:predict_proba", e.v1_predict_proba, methods=post),
        Route("/v2/models/{name}/versions/{version}/infer", e.v2_infer, methods=post),
        Route("/feedback", e.feedback, methods=post),
        Route("/health/ready", e.ready),
        Route("/health/live", e.live),
        Route("/metrics", e.metrics),
        Route("/v1/models", e.v1_models),
        Route("/v1/models/{name}", e.v1_model),
        Route("/v2", e.v2_server),
        Route("/v2/health/live", e.v2_live),
        Route("/v2/health/ready", e.v2_ready),
        Route("/v2/models/{name}", e.v2_model),
        Route("/v2/models/{name}/ready", e.v2_model_ready),
        Route("/v2/models/{name}/versions/{version}", e.v2_model),
        Route("/v2/models/{name}/versions/{version}/ready", e.v2_model_ready),
        Route("/", e.root),
    ]

    @asynccontextmanager
    async def app_lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            # Threads stuck in a model past its timeout must not hold up the exit.
            e.pool.shutdown(wait=False, cancel_futures=True)

    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=app_lifespan,
    )
