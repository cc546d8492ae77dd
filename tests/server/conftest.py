"""The API server as it runs in production: uvicorn on a loopback port, in a thread.

`serve(ws)` starts `create_app(ws, …)` and yields its base URL; `api` is an httpx
client with an admin token on the parametrised `ws` (SQLite, then PostgreSQL).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest

from assay import httpclient
from assay.server.app import create_app
from assay.workspace import Workspace
from servers import serve_asgi  # type: ignore[import-not-found]  # tests/ is on sys.path

with warnings.catch_warnings():
    # Starlette 1.10 prefers httpx2 for its test client; plain httpx works the same.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient as TestClient

Serve = Callable[..., AbstractContextManager[str]]


@contextmanager
def serve_app(ws: Workspace, **options: Any) -> Iterator[str]:
    """Serve `create_app(ws, **options)` until the block ends; yields the base URL."""
    with serve_asgi(create_app(ws, **options)) as url:
        yield url


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "details"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def listing(api: httpx.Client, url: str, **query: Any) -> list[Any]:
    """Every item a list route returns, following page tokens (a plain list is one page)."""
    out: list[Any] = []
    while True:
        answer = api.get(url, params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if isinstance(body, list):
            return body
        out += body["items"]
        if not body.get("next_page_token"):
            return out
        query["page_token"] = body["next_page_token"]


@pytest.fixture
def serve() -> Serve:
    return serve_app


@pytest.fixture
def base_url(ws: Workspace) -> Iterator[str]:
    with serve_app(ws) as url:
        yield url


@pytest.fixture
def secrets(ws: Workspace) -> dict[str, str]:
    """One token of each scope, by scope."""
    return {
        scope: ws.tokens.create(scope, scope)[1] for scope in ("admin", "write", "read", "predict")
    }


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    """No token."""
    with httpclient.client(base_url=base_url, timeout=60) as c:
        yield c


@pytest.fixture
def as_(base_url: str) -> Iterator[Callable[[str], httpx.Client]]:
    """A client holding a given secret."""
    clients: list[httpx.Client] = []

    def make(secret: str) -> httpx.Client:
        c = httpclient.client(
            base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {secret}"}
        )
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def local(ws: Workspace, secrets: dict[str, str]) -> Iterator[Callable[..., TestClient]]:
    """In-process clients of `create_app(ws, **options)`: `local("admin")` holds that
    scope's token, `local(None)` none; no socket, for what the process is not part of."""
    clients: list[TestClient] = []

    def make(scope: str | None = "admin", **options: Any) -> TestClient:
        headers = {"Authorization": f"Bearer {secrets[scope]}"} if scope else {}
        client = TestClient(create_app(ws, **options), headers=headers)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def api(as_: Callable[[str], httpx.Client], secrets: dict[str, str]) -> httpx.Client:
    """An admin."""
    return as_(secrets["admin"])
