"""The OpenAPI document and its browsable page, for callers with a token.

Like every route but health, they need one: a bearer token (read scope or above), or
the dashboard's sign-in, so that a browser signed in at `/login` can read the page and
the document it loads. A browser that is not signed in is sent to sign in first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
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
    from assay.ui.session import SignIn

    try:
        await _reader(request, credentials)
    except UnauthorizedError as exc:
        if "text/html" in request.headers.get("accept", ""):
            raise SignIn(exc.message) from None  # the dashboard's sign-in, then back here
        raise
    return HTMLResponse(_PAGE)


# Served here, not from a CDN: the page works on a machine with no internet. Swagger UI
# starts from a file (static/swagger-init.js): the server's CSP allows no inline script.
_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Assay API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui-{SWAGGER_UI}.min.css">
<link rel="icon" href="data:,">
</head>
<body>
<div id="swagger-ui" data-url="{DOCUMENT}"></div>
<script src="/static/vendor/swagger-ui-{SWAGGER_UI}-bundle.min.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""
