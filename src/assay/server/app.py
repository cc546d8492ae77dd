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
        meta,
        models,
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
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.workspace = ws
    app.state.auth = auth
    for module in (meta, tokens, data, pipelines, runs, models, sweeps, services):
        app.include_router(module.router, prefix="/api/v1")

    from assay.ui.app import error_page, wants_page

    @app.exception_handler(AssayError)
    async def assay_error(request: Request, exc: AssayError) -> Response:
        if wants_page(request):
            return error_page(request, exc.status, type(exc).__name__, exc.message)
        response = error(exc.status, type(exc).__name__, exc.message, _jsonable(exc.details))
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

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
        return error(
            500,
            "InternalError",
            f"The server failed on this request; its log names error {error_id}.",
            {"error_id": error_id},
        )

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


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    import json

    try:
        json.dumps(details)
        return details
    except (TypeError, ValueError):
        return {k: str(v) for k, v in details.items()}


class _Guard:
    """Refuse, before any route runs: bodies over the limit (413), and JSON routes
    sent something other than JSON (415). The limit also holds for a body sent
    without Content-Length: it is counted as it arrives."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _JSON_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        # File parts are raw bytes; the dashboard's forms are form-encoded.
        streamed = scope["path"].startswith("/api/v1/uploads/")
        if not scope["path"].startswith("/api/"):
            streamed = True
        limit = self.max_body
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _send(send, error(413, "PayloadTooLargeError", _too_large(limit)))
            return
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if not streamed and length not in (None, "0") and ctype != "application/json":
            await _send(
                send,
                error(
                    415,
                    "UnsupportedMediaTypeError",
                    f"Send JSON with Content-Type: application/json (got {ctype or 'none'!r}).",
                ),
            )
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _send(send, error(413, "PayloadTooLargeError", _too_large(limit)))


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
