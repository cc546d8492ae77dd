"""The dashboard, mounted at `/` by the server: one page module per concept, each with
its own router, included here in a fixed order.

Pages read through the same services the API uses. Signing in stores a token in
an HTTP-only cookie; a token without `write` scope sees no write action, and the
one write action here (concluding an A/B test) needs `admin`. Every form carries
the session's CSRF token, and every route checks it (`csrf`).

What the pages share lives in `common` (templates, rendering, filters) and `session`
(the sign-in cookie, who is looking); page modules never import this module.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from assay.ui import (
    data_pages,
    login_pages,
    model_pages,
    monitor_pages,
    pages,
    pipeline_pages,
    service_pages,
    sweep_pages,
)
from assay.ui.common import HERE
from assay.ui.session import SignIn, sign_in_url

# Matched in this order; within a module, in the order its routes are written.
PAGE_MODULES = (
    login_pages,
    pages,
    data_pages,
    pipeline_pages,
    model_pages,
    sweep_pages,
    service_pages,
    monitor_pages,
)

router = APIRouter(include_in_schema=False)  # every dashboard route, for `mount`
for _module in PAGE_MODULES:
    router.include_router(_module.router)


def mount(app: FastAPI) -> None:
    """Serve the dashboard and its assets on `app`."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)

    @app.exception_handler(SignIn)
    async def sign_in(request: Request, exc: SignIn) -> Response:
        return RedirectResponse(sign_in_url(request.url.path, exc.message), status_code=303)


__all__ = ["PAGE_MODULES", "mount", "router"]
