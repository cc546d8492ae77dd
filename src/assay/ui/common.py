"""What every page module shares: the templates and their filters, the request's
workspace and viewer, rendering a page or an error page, and the router factory that
puts the CSRF check on every dashboard route.

Page modules import this (never `ui.app`, which includes their routers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from assay.ui import csrf
from assay.ui.session import Viewer, viewer, workspace
from assay.workspace import Workspace

HERE = Path(__file__).parent

WS = Annotated[Workspace, Depends(workspace)]
Who = Annotated[Viewer, Depends(viewer)]


def _csrf_context(request: Request) -> dict[str, Any]:
    # Called by the templates that hold a form, so a page without one makes no nonce.
    return {"csrf_token": lambda: csrf.token(request)}


templates = Jinja2Templates(directory=HERE / "templates", context_processors=[_csrf_context])


def dashboard_router() -> APIRouter:
    """A page module's router: out of the API's document, and every route, now and later,
    behind the CSRF check (nothing changes state without it)."""
    return APIRouter(include_in_schema=False, dependencies=[Depends(csrf.check)])


def page(request: Request, template: str, who: Viewer, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, {"who": who, **context})
    csrf.keep(request, response)
    return response


def wants_page(request: Request) -> bool:
    """A browser asking for a dashboard page (not the API): errors become pages too."""
    path = request.url.path
    return not path.startswith(("/api/", "/v1/", "/v2/", "/static/")) and (
        "text/html" in request.headers.get("accept", "")
    )


def error_page(request: Request, status: int, kind: str, message: str) -> HTMLResponse:
    who = Viewer("local", "admin") if not request.app.state.auth else None
    response = templates.TemplateResponse(
        request,
        "error.html",
        {"who": who, "status": status, "kind": kind, "message": message},
        status_code=status,
    )
    csrf.keep(request, response)
    return response


# ---- filters -------------------------------------------------------------------------------


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if abs(value) >= 1e5 or (0 < abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.{digits}g}"
    return str(value)


def _when(ts: Any) -> str:
    return ts.strftime("%Y-%m-%d %H:%M") if ts else "–"


def _data(value: Any) -> Markup:
    """Chart data for a page: JSON in a script element, escaped by Jinja's tojson rules."""
    from jinja2.utils import htmlsafe_json_dumps

    return Markup(htmlsafe_json_dumps(value, dumps=lambda v, **k: json.dumps(v, default=str)))


templates.env.filters["num"] = _num
templates.env.filters["when"] = _when
templates.env.filters["chart"] = _data
templates.env.globals["urlencode"] = urlencode
