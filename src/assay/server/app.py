"""`create_app`: the FastAPI app `assay server` serves.

Errors are JSON everywhere: `{"error": {"type", "message", "details"}}` with the
status of the `AssayError` raised below; anything else is a 500 whose body names
an `error_id` (also in the server's log) and never a stack trace.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
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
        lifecycle,
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
    for module in (
        runs, meta, docs, tokens, data, pipelines, models, sweeps, services, lifecycle,
        monitoring,
    ):  # fmt: skip
        app.include_router(module.router, prefix="/api/v1")

    from assay.ui.common import error_page, wants_page

    local = _Places.of(ws)

    @app.exception_handler(AssayError)
    async def assay_error(request: Request, exc: AssayError) -> Response:
        message = local.relative(exc.message)
        if wants_page(request):
            return error_page(request, exc.status, type(exc).__name__, message)
        # A pipeline's own traceback helps its author at the terminal; over the API the
        # message says what failed, and stack traces stay on the server.
        details = {k: v for k, v in exc.details.items() if k != "traceback"}
        details = local.relative(_jsonable(details))
        response = error(exc.status, type(exc).__name__, message, details)
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
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 405:  # RFC 9110: say which methods the resource has
            allowed = _allowed_methods(app, request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; use {' or '.join(allowed)}."
        if wants_page(request):
            answer: Response = error_page(request, exc.status_code, kind, message)
        else:
            answer = error(exc.status_code, kind, message)
        answer.headers.update(headers)
        return answer

    from assay.ui.app import mount

    mount(app)  # the dashboard, at /
    app.add_middleware(Guard, max_body=max_body, body_timeout=body_timeout)
    app.openapi = _Document(app)  # type: ignore[method-assign]
    return app


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route of `app` answers at the request's path (all the routes
    sharing the path, not only the first that matched it)."""
    from starlette.routing import Match

    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


class _Document:
    """`app.openapi`: FastAPI's document, built once, with tuples spelled for every reader.

    Pydantic writes a tuple (`tuple[str, int]`) as JSON Schema 2020-12 `prefixItems`, which
    OpenAPI 3.1 allows but older readers (schemathesis among them) turn into a Draft 4
    `items` list that no 3.1 validator accepts. Here a tuple is an array of its length whose
    items are any of its members' schemas: a little looser, and read the same by all.
    """

    def __init__(self, app: FastAPI) -> None:
        self.build = app.openapi  # FastAPI's own
        self.document: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        if self.document is None:
            self.document = _without_prefix_items(self.build())
        return self.document


def _without_prefix_items(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_prefix_items(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _without_prefix_items(value) for key, value in node.items()}
    members = node.pop("prefixItems", None)
    if members is not None:
        unique = [m for i, m in enumerate(members) if m not in members[:i]]
        node["items"] = unique[0] if len(unique) == 1 else {"anyOf": unique}
    return node


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    import json

    try:
        json.dumps(details)
        return details
    except (TypeError, ValueError):
        return {k: str(v) for k, v in details.items()}


class _Places:
    """The server's own places on its disk, to be named relatively in errors: a client
    learns nothing of the machine's layout (user names, install paths, temporary folders).

    A path in the workspace is relative to it; in a temporary folder of ours, relative to
    that folder (what the client sent, e.g. a pipeline's file); the home folder is `~`, the
    Python installation `<python>`. A path the client sent is answered as sent.
    """

    def __init__(self, prefixes: list[tuple[str, str]], temporary: re.Pattern[str]) -> None:
        self.prefixes = prefixes
        self.temporary = temporary

    @classmethod
    def of(cls, ws: Workspace) -> _Places:
        named: dict[str, str] = {}
        for place, name in (
            (Path(sys.base_prefix), "<python>/"),
            (Path(sys.prefix), "<python>/"),
            (Path.home(), "~/"),
            (ws.settings.root, ""),
        ):
            if place is not None:
                for variant in {str(place), str(place.resolve())}:
                    if variant != "/":
                        named[variant.rstrip("/") + "/"] = name
        # Longest first: the workspace may be in the home folder, a venv in the workspace.
        prefixes = sorted(named.items(), key=lambda item: -len(item[0]))
        tmp = Path(tempfile.gettempdir())
        folders = "|".join(sorted({re.escape(str(p)) for p in (tmp, tmp.resolve())}))
        # tempfile's folders: ours are named assay-…, the unnamed ones tmp…
        temporary = re.compile(rf"(?:{folders})/(?:assay-|tmp)[^/\s'\"]*/")
        return cls(prefixes, temporary)

    def relative(self, value: Any) -> Any:
        if isinstance(value, str):
            value = self.temporary.sub("", value)
            for prefix, name in self.prefixes:
                if prefix in value:
                    value = value.replace(prefix, name)
            return value
        if isinstance(value, dict):
            return {k: self.relative(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.relative(v) for v in value]
        return value
