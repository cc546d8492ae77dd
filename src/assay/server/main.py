"""The app uvicorn serves: built in each worker process from the environment.

`assay server` sets `ASSAY_SERVER_AUTH`, `ASSAY_SERVER_MAX_BODY` and
`ASSAY_SERVER_BODY_TIMEOUT` and runs
`uvicorn assay.server.main:build --factory`; the workspace is found as the CLI
finds it (the current folder upwards, or ASSAY_DB_URL and ASSAY_STORE_URL).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from assay.config import Settings
from assay.server.app import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY, create_app
from assay.workspace import Workspace


def build() -> FastAPI:
    ws = Workspace(Settings.load(Path.cwd(), os.environ))
    auth = os.environ.get("ASSAY_SERVER_AUTH", "1") != "0"
    max_body = int(os.environ.get("ASSAY_SERVER_MAX_BODY", DEFAULT_MAX_BODY))
    body_timeout = float(os.environ.get("ASSAY_SERVER_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT_S))
    app = create_app(ws, auth=auth, max_body=max_body, body_timeout=body_timeout)
    compile_routes(app)
    return app


def compile_routes(app: FastAPI) -> None:
    """Build every route's request handling now, before the first request.

    FastAPI builds an included router's routes (a pydantic adapter per parameter) when
    a request first reaches that router; on a fresh server that was half the time of
    the first `data commit --remote` (py-spy). Matching a path that no route has walks
    every router, so each builds here, while the server starts.
    """
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/-/none",
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    for route in app.router.routes:
        route.matches(scope)
