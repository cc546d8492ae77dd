"""`create_app`: the FastAPI app `assay server` serves.

Errors are JSON everywhere: `{"error": {"type", "message", "details"}}` with the
status of the `AssayError` raised below; anything else is a 500 whose body names
an `error_id` (also in the server's log) and never a stack trace.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.errors import AssayError
from assay.workspace import Workspace

log = logging.getLogger("assay.server")

DEFAULT_MAX_BODY = 64 * 1024 * 1024  # JSON bodies; file uploads stream in parts below this
_JSON_METHODS = {"POST", "PUT", "PATCH"}


def create_app(ws: Workspace, *, auth: bool = True, max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    from assay import __version__
    from assay.server.routes import (
        data,
        docs,
        meta,
        models,
        monitoring,
        pipelines,
        runs,
        services,
        sweeps,
        tokens,
    )

    app = FastAPI(
        title="Assay",
        version=__version__,
        summary="Version data and pipelines, run experiments, serve and A/B test models.",
        # Served by routes.docs, behind a token like every route but health.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.workspace = ws
    app.state.auth = auth
    # Routes are matched in order: the busiest (a tracked run's metric batches) first.
    for module in (runs, meta, docs, tokens, data, pipelines, models, sweeps, services, monitoring):
        app.include_router(module.router, prefix="/api/v1")

    from assay.ui.app import error_page, wants_page

    @app.exception_handler(AssayError)
    async def assay_error(request: Request, exc: AssayError) -> Response:
        if wants_page(request):
            return error_page(request, exc.status, type(exc).__name__, exc.message)
        # A pipeline's own traceback helps its author at the terminal; over the API the
        # message says what failed, and stack traces stay on the server.
        details = {k: v for k, v in exc.details.items() if k != "traceback"}
        response = error(exc.status, type(exc).__name__, exc.message, _jsonable(details))
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return error(400, "InvalidArgumentError", "The body is not valid JSON.", {})
        first = problems[0] if problems else {"where": "request", "problem": "invalid"}
        return error(
            422,
            "InvalidArgumentError",
            f"{first['where']}: {first['problem']}",
            {"problems": problems},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "NotFoundError", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        if wants_page(request):
            return error_page(request, exc.status_code, kind, str(exc.detail))
        return error(exc.status_code, kind, str(exc.detail))

    from assay.ui.app import mount

    mount(app)  # the dashboard, at /
    app.add_middleware(_Guard, max_body=max_body)
    return app


def error(
    status: int, kind: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message, "details": details or {}}}, status_code=status
    )


def _not_json(ctype: str) -> JSONResponse:
    return error(
        415,
        "UnsupportedMediaTypeError",
        f"Send JSON with Content-Type: application/json (got {ctype or 'none'!r}).",
    )


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    import json

    try:
        json.dumps(details)
        return details
    except (TypeError, ValueError):
        return {k: str(v) for k, v in details.items()}


class _Guard:
    """The outermost layer: body limits and content types before any route runs, and
    the last word on any exception.

    A JSON route's body is read here, up to the limit (413 beyond it, with or without
    Content-Length); a file part or a form is counted as the route streams it. An
    exception no handler took becomes a JSON 500 naming an `error_id` that is also in
    the log, and is not raised further, so the client's connection stays usable.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._guarded(scope, receive, tracked)
        except _TooLarge:
            if not started:
                await _send(send, error(413, "PayloadTooLargeError", _too_large(self.max_body)))
        except Exception as exc:
            error_id = uuid.uuid4().hex[:12]
            log.error("error %s on %s %s", error_id, scope["method"], scope["path"], exc_info=exc)
            if not started:
                await _send(
                    send,
                    error(
                        500,
                        "InternalError",
                        f"The server failed on this request; its log names error {error_id}.",
                        {"error_id": error_id},
                    ),
                )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in _JSON_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        # File parts are raw bytes and the dashboard's forms are form-encoded: both are
        # counted as they stream; everything else under /api is JSON, read whole here.
        streamed = path.startswith("/api/v1/uploads/") or not path.startswith("/api/")
        limit = self.max_body
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _TooLarge
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if not streamed and length not in (None, "0") and ctype != "application/json":
            await _send(send, _not_json(ctype))
            return
        if streamed:
            seen = 0

            async def counted() -> Message:
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise _TooLarge
                return message

            await self.app(scope, counted, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if size and ctype != "application/json":
            await _send(send, _not_json(ctype))
            return
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _TooLarge(Exception):
    pass


def _too_large(limit: int) -> str:
    return f"The body is larger than this server accepts ({limit:,} bytes)."


async def _send(send: Send, response: JSONResponse) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})
