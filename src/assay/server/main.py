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
    return create_app(ws, auth=auth, max_body=max_body, body_timeout=body_timeout)
