"""Signing in and out: the only dashboard forms that need no sign-in."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assay.errors import AssayError
from assay.ui import csrf
from assay.ui.common import dashboard_router, templates
from assay.ui.session import COOKIE, workspace

router = dashboard_router()


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
