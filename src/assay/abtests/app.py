"""The A/B test's HTTP face: predict, feedback, report, health and metrics routes.

The worker (`worker.py`) holds what is served; these routes read it once per request.
The model's own answer is extended in place (variant, request id, provenance), and
every answer and feedback is appended to the test's event log before the response
goes out.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from assay.errors import (
    AssayError,
    InvalidArgumentError,
    ModelNotReadyError,
    NotFoundError,
    PredictTimeoutError,
)
from assay.limits import FEEDBACK_BODY_BYTES, too_deep
from assay.serving.app import JsonBody, error_kind
from assay.serving.bodies import binary_headers, error_body, read_body, read_infer_body
from assay.serving.metrics import CONTENT_TYPE, monitor_gauges
from assay.serving.predlog import feedback_fields
from assay.serving.served import Answer, dumps, first_output
from assay.serving.worker import log

if TYPE_CHECKING:
    from assay.abtests.worker import ABServed, ABWorker

PREDICT_THREADS = 4
SHADOW_BACKLOG = 64  # copies waiting for a shadow beyond this are dropped, not queued
SHADOW_MAX_WAIT_S = 1.0  # a copy that found no idle moment within this is dropped
SHADOW_GRACE_S = 0.0005  # how long the router must be idle before a copy runs


def create_ab_app(worker: ABWorker, *, lifespan: Any = None) -> Starlette:
    """The A/B test's app over `worker`'s state."""
    ep = _ABEndpoints(worker)
    routes = [
        Route("/abtests/{name}/predict", ep.predict, methods=["POST"]),
        Route("/abtests/{name}/feedback", ep.feedback, methods=["POST"]),
        Route("/abtests/{name}/report", ep.report, methods=["GET"]),
        Route("/abtests/{name}", ep.describe, methods=["GET"]),
        Route("/health/live", ep.live, methods=["GET"]),
        Route("/health/ready", ep.ready, methods=["GET"]),
        Route("/metrics", ep.metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class _ABEndpoints:
    def __init__(self, worker: ABWorker) -> None:
        self.w = worker
        self.timeout_s = worker.config.timeout_s
        self.limit = worker.config.max_body_bytes
        self.pool = ThreadPoolExecutor(PREDICT_THREADS, thread_name_prefix="assay-predict")
        self.shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="assay-shadow")
        self.shadow_dropped = 0
        # Shadow copies wait in `shadow_queue` and run one at a time, only while no
        # primary request is being answered (`idle`): on a busy router they expire and
        # are dropped, so a shadow never takes the primary's CPU or slows its answers.
        self.shadow_queue: deque[tuple[float, ABServed, str, _Body, str]] = deque()
        self.active = 0  # primary requests being answered now
        self.last_start = 0.0  # when the latest one came in (the loop's clock)
        self.idle = asyncio.Event()
        self.idle.set()
        self._runner: asyncio.Task[None] | None = None

    def _current(self, request: Request) -> ABServed:
        ab = self.w.ab.current
        if ab is None or self.w.ab.draining:
            raise ModelNotReadyError(
                "The A/B test is still loading its models (or stopping); retry shortly."
            )
        name = request.path_params["name"]
        if name != ab.name:
            raise NotFoundError(
                f"No A/B test {name!r} here: this router serves {ab.name!r}.",
                abtest=name,
            )
        return ab

    async def predict(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        self.active += 1
        self.last_start = loop.time()
        self.idle.clear()
        try:
            return await self._predict(request, loop)
        finally:
            self.active -= 1
            if not self.active:
                self.idle.set()

    async def _predict(self, request: Request, loop: asyncio.AbstractEventLoop) -> Response:
        started = time.perf_counter()
        label: str | None = None
        ab: ABServed | None = None
        request_id = os.urandom(16).hex()
        try:
            ab = self._current(request)
            body = await read_infer_body(request, self.limit)
            key = _key(request, body, ab.target.key)
            label = ab.choose(key)
            served = ab.served[label]
            try:
                payload, json_length = await asyncio.wait_for(
                    self._answer(served, body, request_id, self.pool), self.timeout_s
                )
            except TimeoutError:
                raise PredictTimeoutError(
                    f"Variant {label} ({served.ref}) took longer than {self.timeout_s:g} s; "
                    "the request was abandoned.",
                    timeout_s=self.timeout_s,
                ) from None
            elapsed = time.perf_counter() - started
            predictions = _raw_predictions(payload, json_length)
            # The event line is assembled from the answer's own JSON bytes: the hot path
            # parses and re-encodes nothing (the same fields as `EventLog` documents).
            self.w.events.write(
                b'{"t":"a","id":"%s","ts":%.6f,"v":%s,"ms":%.3f,"ok":true,"err":null,'
                b'"pred":%s,"live":%s}\n'
                % (
                    request_id.encode(),
                    time.time(),
                    ab.label_json[label],
                    elapsed * 1000,
                    predictions,
                    b"true" if ab.live else b"false",
                )
            )
            if ab.live:
                self.w.remember(request_id, label, predictions.decode())
            served.metrics.record("ab", 200, elapsed, None)
            for shadow in ab.shadows(label):
                self._shadow(ab, shadow, body, request_id)
            if json_length is None:
                return JsonBody(
                    ab.answer(label, payload, request_id), 200, ab.headers(label, request_id)
                )
            # Binary outputs follow the JSON: the variant goes into the JSON, whose new
            # length the header says.
            head = ab.answer(label, payload[:json_length], request_id)
            return JsonBody(
                head + payload[json_length:],
                200,
                binary_headers(ab.headers(label, request_id), len(head)),
            )
        except AssayError as exc:
            elapsed = time.perf_counter() - started
            if ab is not None and label is not None:
                self.w.events.append(
                    {
                        "t": "a",
                        "id": request_id,
                        "ts": time.time(),
                        "v": label,
                        "ms": round(elapsed * 1000, 3),
                        "ok": False,
                        "err": error_kind(exc),
                        "pred": None,
                        "live": ab.live,
                    }
                )
                ab.served[label].metrics.record("ab", exc.status, elapsed, error_kind(exc))
                return JsonBody(error_body(exc), exc.status, ab.headers(label, request_id))
            return JsonBody(error_body(exc), exc.status)
        except ClientDisconnect:
            return Response(status_code=400)

    def _answer(
        self, served: Any, body: _Body, request_id: str | None, pool: ThreadPoolExecutor
    ) -> Awaitable[Answer]:
        """The variant's answer: a model in this process predicts on a thread of `pool`;
        one in another (a Ray Serve deployment's replica) is awaited as it is."""
        remote = getattr(served, "answer_async", None)
        if remote is not None:
            return remote(*body, request_id)  # type: ignore[no-any-return]
        return asyncio.get_running_loop().run_in_executor(pool, served.answer, *body, request_id)

    def _shadow(self, ab: ABServed, label: str, body: _Body, request_id: str) -> None:
        if len(self.shadow_queue) >= SHADOW_BACKLOG:
            self._dropped(label)
            return
        loop = asyncio.get_running_loop()
        self.shadow_queue.append((loop.time() + SHADOW_MAX_WAIT_S, ab, label, body, request_id))
        if self._runner is None:
            self._runner = loop.create_task(self._shadows())

    async def _shadows(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.shadow_queue:
                await self.idle.wait()
                # Idle for a moment, not just between a client's back-to-back requests.
                await asyncio.sleep(SHADOW_GRACE_S)
                if self.active or loop.time() - self.last_start < SHADOW_GRACE_S:
                    expires, _ab, label, _body, _id = self.shadow_queue[0]
                    if loop.time() > expires:
                        self.shadow_queue.popleft()
                        self._dropped(label)
                    continue
                expires, ab, label, body, request_id = self.shadow_queue.popleft()
                if loop.time() > expires:
                    self._dropped(label)
                    continue
                await self._run_shadow(ab, label, body, request_id)
        finally:
            self._runner = None

    def _dropped(self, label: str) -> None:
        self.shadow_dropped += 1
        if self.shadow_dropped in (1, 10, 100, 1000) or self.shadow_dropped % 10000 == 0:
            log.warning("shadow %s is behind: %d copies dropped", label, self.shadow_dropped)

    async def _run_shadow(self, ab: ABServed, label: str, body: _Body, request_id: str) -> None:
        served = ab.served[label]
        started = time.perf_counter()
        ok, pred = True, None
        try:
            answer: Answer = await asyncio.wait_for(
                self._answer(served, body, None, self.shadow_pool), self.timeout_s
            )
            pred = _predictions(*answer)
        except (AssayError, TimeoutError):
            ok = False
        self.w.events.append(
            {
                "t": "s",
                "id": request_id,
                "ts": time.time(),
                "v": label,
                "ms": round((time.perf_counter() - started) * 1000, 3),
                "ok": ok,
                "pred": pred,
            }
        )

    async def feedback(self, request: Request) -> Response:
        try:
            ab = self._current(request)
            doc = _parse_object(await read_body(request, min(self.limit, FEEDBACK_BODY_BYTES)))
            request_id, reward, truth = feedback_fields(doc)
            return JsonBody(dumps(await self.w.feedback(ab, request_id, reward, truth)))
        except AssayError as exc:
            return JsonBody(error_body(exc), exc.status)
        except ClientDisconnect:
            return Response(status_code=400)

    async def describe(self, request: Request) -> Response:
        try:
            ab = self._current(request)
        except AssayError as exc:
            return JsonBody(error_body(exc), exc.status)
        return JsonBody(
            dumps(
                {
                    "name": ab.name,
                    "strategy": ab.target.strategy,
                    "status": ab.target.status,
                    "winner": ab.target.winner,
                    "variants": {
                        v.label: {"model": v.name, "version": v.version, **v.provenance}
                        for v in ab.target.variants
                    },
                    "arms": await self.w.arms(ab),
                    "shadow_dropped": self.shadow_dropped,
                }
            )
        )

    async def report(self, request: Request) -> Response:
        try:
            ab = self._current(request)
        except AssayError as exc:
            return JsonBody(error_body(exc), exc.status)
        from assay.abtests.report import build_report

        events = await self.w.all_events()
        doc = await asyncio.to_thread(
            build_report,
            events,
            labels=[v.label for v in ab.target.variants],
            strategy=ab.target.strategy,
        )
        return JsonBody(dumps(doc))

    async def live(self, request: Request) -> Response:
        return JsonBody(b'{"live":true}')

    async def ready(self, request: Request) -> Response:
        ok = self.w.ab.ready
        return JsonBody(dumps({"ready": ok}), 200 if ok else 503)

    async def metrics(self, request: Request) -> Response:
        text = self.w.ab.metrics.render() + monitor_gauges(self.w.monitor_file)
        return Response(text, media_type=CONTENT_TYPE)


# A request body and, when binary tensor data follows its JSON, the JSON's length.
_Body = tuple[bytes, int | None]


def _key(request: Request, body: _Body, field: str | None) -> str | None:
    """The request's routing key: the X-Assay-Key header, else the test's key field
    (top level of the body, or the first row's of `instances` or V1 `inputs`)."""
    for name, value in request.scope["headers"]:
        if name == b"x-assay-key":
            return str(value.decode("latin-1"))
    if field is None:
        return None
    data, json_length = body
    try:
        doc = json.loads(data if json_length is None else data[:json_length])
    except (ValueError, RecursionError):
        return None  # the model's own parsing says what is wrong with the body
    if isinstance(doc, dict):
        if field in doc:
            return str(doc[field])
        rows = doc.get("instances", doc.get("inputs"))
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and field in rows[0]:
            return str(rows[0][field])
        column = rows.get(field) if isinstance(rows, dict) else None  # V1 columnar inputs
        if isinstance(column, list) and column:
            return str(column[0])
    return None


def _raw_predictions(payload: bytes, json_length: int | None) -> bytes:
    """The predictions' JSON, cut out of a V1 answer (`{"predictions":[...],"model":…`)
    without parsing it; a V2 answer's first output's data, through the parser."""
    if json_length is None and payload.startswith(b'{"predictions":'):
        end = payload.rfind(b',"model":')
        if end > 0:
            return payload[15:end]
    return json.dumps(_predictions(payload, json_length), separators=(",", ":")).encode()


def _predictions(payload: bytes, json_length: int | None) -> Any:
    if json_length is None and payload.startswith(b'{"predictions":'):
        return json.loads(payload)["predictions"]
    return first_output(payload, json_length)


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidArgumentError(f"The body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise too_deep("The feedback") from None
    if not isinstance(doc, dict):
        raise InvalidArgumentError('Send a JSON object: {"request_id": ..., "reward": ...}.')
    return doc
