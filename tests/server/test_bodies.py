"""What a request body may cost the server: nothing without a token (401 before a byte is
read, and the connection closed), at most its route's limit with one (413 naming it), and
no longer than the body deadline (408 for a client that trickles bytes)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from assay import httpclient
from assay.limits import FEEDBACK_BODY_BYTES
from assay.server.schemas import METRICS_BODY, SMALL_BODY
from assay.workspace import Workspace

from .conftest import Serve, TestClient, assert_error

pytestmark = pytest.mark.one_backend  # HTTP behaviour, not the database


def raw(url: str, head: str, body: bytes = b"", *, timeout: float = 20) -> socket.socket:
    """A socket that sent `head` (the request line and headers) and the start of a body."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    host = f"Host: {parts.hostname}:{parts.port}\r\n"
    first, _, rest = head.partition("\r\n")
    sock.sendall(f"{first}\r\n{host}{rest}\r\n\r\n".encode() + body)
    return sock


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The response, read until the server closes the connection (the test fails on a
    timeout if it never does)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


SIXTY_MB = 60 * 1024 * 1024


@pytest.fixture
def server(ws: Workspace, serve: Serve) -> Iterator[str]:
    with serve(ws, body_timeout=1.0) as url:
        yield url


def test_without_a_token_a_body_is_never_read(server: str) -> None:
    """The client announces 60 MB and sends 1 KB: the answer comes at once, and the server
    closes the connection rather than wait for (or read) the rest."""
    for head in (
        f"POST /api/v1/experiments/e/runs HTTP/1.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {SIXTY_MB}",
        f"PUT /api/v1/uploads/{'0' * 32}?path=a HTTP/1.1\r\nContent-Length: {SIXTY_MB}",
        "POST /api/v1/tokens HTTP/1.1\r\nContent-Type: application/json\r\n"
        "Authorization: Bearer assay_not-a-token\r\nTransfer-Encoding: chunked",
    ):
        start = b"[" * 1024
        if "chunked" in head:
            start = b"400\r\n" + start + b"\r\n"  # one chunk of 0x400 bytes, more to come
        with raw(server, head, start) as sock:
            status, headers, body = answer(sock)
        assert status == 401, head
        assert headers["connection"] == "close"
        assert headers["www-authenticate"] == "Bearer"
        assert json.loads(body)["error"]["type"] == "UnauthorizedError"


def test_a_dashboard_form_without_a_sign_in_is_sent_to_sign_in_unread(server: str) -> None:
    head = (
        "POST /abtests/ab/conclude HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded"
        f"\r\nContent-Length: {SIXTY_MB}"
    )
    with raw(server, head, b"winner=a&" * 100) as sock:
        status, headers, _ = answer(sock)
    assert status == 303
    assert headers["location"].startswith("/login?next=%2Fabtests%2Fab")
    assert headers["connection"] == "close"


def test_a_slow_body_is_408_within_the_deadline(server: str, secrets: dict[str, str]) -> None:
    """One second to send the whole body (`body_timeout`): a client that sent 10 bytes of
    100 and then nothing is answered 408 and disconnected."""
    token = f"Authorization: Bearer {secrets['write']}"
    for head in (
        f"POST /api/v1/experiments/e/runs HTTP/1.1\r\n{token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100",
        f"POST /api/v1/experiments/e/runs HTTP/1.1\r\n{token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked",
        f"POST /api/v1/uploads HTTP/1.1\r\n{token}\r\nContent-Length: 0",
    ):
        if "uploads" in head:  # a streamed upload part, to an upload that exists
            upload = httpclient.post(f"{server}/api/v1/uploads", headers={"Authorization":
                                f"Bearer {secrets['write']}"}).json()["id"]  # fmt: skip
            head = f"PUT /api/v1/uploads/{upload}?path=f HTTP/1.1\r\n{token}\r\nContent-Length: 100"
        start = b"a\r\n" + b"x" * 10 + b"\r\n" if "chunked" in head else b'{"params": '
        with raw(server, head, start) as sock:
            status, headers, body = answer(sock)
        assert status == 408, (head, body)
        assert headers["connection"] == "close"
        error = json.loads(body)["error"]
        assert error["type"] == "RequestTimeoutError"
        assert "1 s" in error["message"]


def test_each_route_takes_a_body_up_to_its_own_limit(local: Callable[..., TestClient]) -> None:
    api = local("admin")
    big = {"name": "t", "scope": "read", "pad": "x" * SMALL_BODY}
    error = assert_error(api.post("/api/v1/tokens", json=big), 413)
    assert error["type"] == "PayloadTooLargeError"
    assert f"{SMALL_BODY:,} bytes" in error["message"]
    assert error["details"] == {"limit": SMALL_BODY}
    sent = json.dumps(big).encode()
    chunked = api.post(  # no Content-Length: counted as it arrives
        "/api/v1/tokens",
        content=iter([sent[i : i + 1000] for i in range(0, len(sent), 1000)]),
        headers={"Content-Type": "application/json"},
    )
    assert f"{SMALL_BODY:,} bytes" in assert_error(chunked, 413)["message"]
    assert [t.name for t in api.app.state.workspace.tokens.tokens()] == [  # type: ignore[attr-defined]
        "admin", "write", "read", "predict"
    ]  # fmt: skip
    rid = api.post("/api/v1/experiments/e/runs", json={}).json()["id"]
    points = [{"key": "loss", "value": 0.5, "step": i} for i in range(METRICS_BODY // 40)]
    error = assert_error(api.post(f"/api/v1/runs/{rid}/metrics", json={"metrics": points}), 413)
    assert f"{METRICS_BODY:,} bytes" in error["message"]
    # Each limit is in the API's document, for clients to read.
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert paths["/api/v1/abtests/{name}/feedback"]["post"]["x-body-limit"] == FEEDBACK_BODY_BYTES
    assert paths["/api/v1/tokens"]["post"]["x-body-limit"] == SMALL_BODY
    assert paths["/api/v1/pipelines"]["post"]["x-body-limit"] == "server"
    # The server's ceiling still caps a route that takes more.
    small = local("admin", max_body=1000)
    answer = small.post("/api/v1/experiments/e/runs", json={"params": {"x": "y" * 2000}})
    error = assert_error(answer, 413)
    assert "1,000 bytes" in error["message"]
