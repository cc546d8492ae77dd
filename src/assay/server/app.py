"""`create_app`: the FastAPI app `assay server` serves.

Errors are JSON everywhere: `{"error": {"type", "message", "details"}}` with the
status of the `AssayError` raised below; anything else is a 500 whose body names
an `error_id` (also in the server's log) and never a stack trace.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from assay.errors import AssayError
from assay.server.guard import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_MAX_BODY,
    BodyRefused,
    Guard,
    error,
)
from assay.workspace import Workspace

__all__ = ["DEFAULT_BODY_TIMEOUT_S", "DEFAULT_MAX_BODY", "create_app", "error"]


def create_app(
    ws: Workspace,
    *,
    auth: bool = True,
    max_body: int = DEFAULT_MAX_BODY,
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
) -> FastAPI:
    """The server's app over `ws`: tokens needed unless `auth` is off; request bodies at
    most `max_body` bytes (each route may take less), arriving within `body_timeout` s."""
    from assay import __version__
    from assay.server.routes import (
        data,
        docs,
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
        # Served by routes.docs, behind a token like every route but health.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.workspace = ws
    app.state.auth = auth
    # Routes are matched in order: the busiest (a tracked run's metric batches) first.
    for module in (runs, meta, docs, tokens, data, pipelines, models, sweeps, services):
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

    @app.exception_handler(BodyRefused)
    async def body_refused(request: Request, exc: BodyRefused) -> Response:
        if wants_page(request):
            return error_page(request, exc.status_code, exc.kind, exc.message)
        return error(exc.status_code, exc.kind, exc.message, exc.details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "NotFoundError", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        if wants_page(request):
            return error_page(request, exc.status_code, kind, str(exc.detail))
        return error(exc.status_code, kind, str(exc.detail))

    from assay.ui.app import mount

    mount(app)  # the dashboard, at /
    app.add_middleware(Guard, max_body=max_body, body_timeout=body_timeout)
    return app


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    import json

    try:
        json.dumps(details)
        return details
    except (TypeError, ValueError):
        return {k: str(v) for k, v in details.items()}
