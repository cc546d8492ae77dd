"""The dashboard's routes: one page per concept, mounted at `/` by the server.

Pages read through the same services the API uses. Signing in stores a token in
an HTTP-only cookie; a token without `write` scope sees no write action, and the
one write action here (concluding an A/B test) needs `admin`. Every form carries
the session's CSRF token, and every route checks it (`csrf`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from assay.auth.entities import allows
from assay.errors import AssayError, UnauthorizedError
from assay.ui import csrf
from assay.workspace import Workspace

HERE = Path(__file__).parent
COOKIE = "assay_token"


def _csrf_context(request: Request) -> dict[str, Any]:
    # Called by the templates that hold a form, so a page without one makes no nonce.
    return {"csrf_token": lambda: csrf.token(request)}


templates = Jinja2Templates(directory=HERE / "templates", context_processors=[_csrf_context])
# Every dashboard route, now and later: nothing that changes state without the CSRF check.
router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf.check)])


@dataclass(frozen=True)
class Viewer:
    """Who is looking: their token's name and scope (everything, with auth off)."""

    name: str
    scope: str

    @property
    def can_write(self) -> bool:
        return allows(self.scope, "write")

    @property
    def is_admin(self) -> bool:
        return allows(self.scope, "admin")


class SignIn(Exception):
    """Raised by `viewer` when the page needs a token the request does not carry."""

    def __init__(self, message: str) -> None:
        self.message = message


def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.workspace
    return ws


def viewer(request: Request) -> Viewer:
    if not request.app.state.auth:
        return Viewer("local", "admin")
    ws = workspace(request)
    secret = request.cookies.get(COOKIE)
    if not secret:
        raise SignIn("Sign in with a token to see this workspace.")
    try:
        token = ws.tokens.check(secret, "read")
    except UnauthorizedError as exc:
        raise SignIn(exc.message) from None
    except AssayError as exc:  # a predict-only token: not for the dashboard
        raise SignIn(exc.message) from None
    return Viewer(token.name, token.scope)


WS = Annotated[Workspace, Depends(workspace)]
Who = Annotated[Viewer, Depends(viewer)]


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


def mount(app: FastAPI) -> None:
    """Serve the dashboard and its assets on `app`."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    from fastapi.responses import RedirectResponse as _Redirect

    @app.exception_handler(SignIn)
    async def sign_in(request: Request, exc: SignIn) -> Response:
        return _Redirect(sign_in_url(request.url.path, exc.message), status_code=303)


def sign_in_url(path: str, why: str) -> str:
    """The sign-in page, saying why, that comes back to `path` once signed in."""
    return "/login?" + urlencode({"next": path, "why": why})


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


# ---- sign-in ---------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/", why: str | None = None) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, "login.html", {"who": None, "next": _local(next), "why": why}
    )
    csrf.keep(request, response)
    return response


@router.post("/login")
def login(
    request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/"
) -> Response:
    ws = workspace(request)
    try:
        ws.tokens.check(token.strip(), "read")
    except AssayError as exc:
        refused = templates.TemplateResponse(
            request,
            "login.html",
            {"who": None, "next": _local(next), "why": exc.message},
            status_code=401,
        )
        return csrf.keep(request, refused)
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def _local(target: str) -> str:
    """Only same-site paths: `next` must not send a signed-in user elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


from assay.ui import (  # noqa: E402  (the pages register themselves on `router`)
    data_pages,
    model_pages,
    monitor_pages,
    pages,
    pipeline_pages,
    service_pages,
    sweep_pages,
)

__all__ = [
    "data_pages",
    "model_pages",
    "monitor_pages",
    "mount",
    "pages",
    "pipeline_pages",
    "router",
    "service_pages",
    "sweep_pages",
]
