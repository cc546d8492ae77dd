"""The OpenAPI document and its browsable page, for callers with a token.

Like every route but health, they need one: a bearer token (read scope or above), or
the dashboard's sign-in, so that a browser signed in at `/login` can read the page and
the document it loads. A browser that is not signed in is sent to sign in first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from assay.errors import UnauthorizedError
from assay.server.deps import bearer, need

router = APIRouter(include_in_schema=False)
DOCUMENT = "/api/v1/openapi.json"
SWAGGER_UI = "5.35.0"  # ui/static/vendor/swagger-ui-*: swagger-ui-dist from npm


_reader = need("read", signed_in=True)  # a token, or the dashboard's sign-in


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@router.get("/openapi.json", dependencies=[Depends(_reader)])
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def docs(request: Request, credentials: Credentials) -> HTMLResponse:
    from assay.ui.app import SignIn

    try:
        await _reader(request, credentials)
    except UnauthorizedError as exc:
        if "text/html" in request.headers.get("accept", ""):
            raise SignIn(exc.message) from None  # the dashboard's sign-in, then back here
        raise
    return get_swagger_ui_html(
        openapi_url=DOCUMENT,
        title="Assay API",
        # Served here, not from a CDN: the page works on a machine with no internet.
        swagger_js_url=f"/static/vendor/swagger-ui-{SWAGGER_UI}-bundle.min.js",
        swagger_css_url=f"/static/vendor/swagger-ui-{SWAGGER_UI}.min.css",
        swagger_favicon_url="data:,",
    )
