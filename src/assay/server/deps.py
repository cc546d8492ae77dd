"""What routes depend on: the workspace, and a token allowed to call them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assay.store.acting import act_as
from assay.workspace import Workspace

bearer = HTTPBearer(auto_error=False, description="An Assay token: `assay tokens create`.")


async def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.workspace
    return ws


WS = Annotated[Workspace, Depends(workspace)]


def need(scope: str, *, signed_in: bool = False) -> Callable[..., Any]:
    """A dependency: the request's bearer token must allow `scope` (unless auth is off).
    With `signed_in`, the dashboard's sign-in cookie will do too, for reading only (GET and
    HEAD: pages a browser opens): a cookie rides along on requests a page elsewhere makes,
    so no API route that changes anything may take one."""

    async def check(  # on the event loop: one indexed read, no thread hop per request
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if not request.app.state.auth:
            return
        secret = credentials.credentials if credentials else None
        if secret is None and signed_in and request.method in ("GET", "HEAD"):
            from assay.ui.session import COOKIE

            secret = request.cookies.get(COOKIE)
        ws: Workspace = request.app.state.workspace
        token = request.state.token = ws.tokens.check(secret, scope)  # 401 or 403
        # What this request records (versions, models, tokens) is the caller's: the
        # request is a task of its own, and its route's thread runs in a copy of its context.
        act_as(token.name)

    return check


READ = [Depends(need("read"))]
WRITE = [Depends(need("write"))]
ADMIN = [Depends(need("admin"))]
PREDICT = [Depends(need("predict"))]
