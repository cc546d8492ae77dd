"""A monitor's webhook goes only where it may: never to link-local or metadata addresses,
to loopback and private ones only when allowed, never through a redirect, and not for long.
Real HTTP servers on loopback answer it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from assay.monitoring.entities import Webhook
from assay.monitoring.webhook import WebhookRefusedError, notify, post


class _Hook(BaseHTTPRequestHandler):
    got: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    mode = "ok"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).got.append((self.headers["Host"], body))
        if self.mode == "slow":
            time.sleep(0.6)
        if self.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[int, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"got": [], "mode": "ok"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = False  # closing waits for a slow answer to end
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def _resolve_to(address: str) -> Any:
    def resolver(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolver


def test_a_state_change_is_posted_to_the_hook(hook: tuple[int, type[_Hook]]) -> None:
    port, handler = hook
    said = post(
        Webhook(f"http://hooks.example:{port}/assay", allow_private=True),
        {"monitor": "churn-api", "state": "drift"},
        resolver=_resolve_to("127.0.0.1"),
    )
    assert said == f"webhook http://hooks.example:{port}/assay answered 204"
    # The connection went to the address that was checked, naming the host it was for.
    assert handler.got == [(f"hooks.example:{port}", {"monitor": "churn-api", "state": "drift"})]


@pytest.mark.parametrize(
    ("url", "resolved", "problem"),
    [
        ("http://169.254.169.254/latest/meta-data/", None, "link-local or cloud metadata"),
        ("http://metadata.google.internal/x", "169.254.169.254", "link-local or cloud metadata"),
        ("http://[fd00:ec2::254]/x", None, "link-local or cloud metadata"),
        ("http://[::ffff:169.254.169.254]/x", None, "link-local or cloud metadata"),
        ("http://hooks.example/x", "127.0.0.1", "loopback or private"),
        ("http://hooks.example/x", "10.1.2.3", "loopback or private"),
        ("http://0.0.0.0/x", None, "cannot be called"),
    ],
)
def test_addresses_a_hook_must_not_reach_are_refused(
    url: str, resolved: str | None, problem: str
) -> None:
    resolver = _resolve_to(resolved) if resolved else _resolve_to("203.0.113.9")
    with pytest.raises(WebhookRefusedError, match=problem):
        post(Webhook(url), {}, resolver=resolver)


def test_metadata_stays_refused_even_when_private_addresses_are_allowed() -> None:
    with pytest.raises(WebhookRefusedError, match="metadata"):
        post(Webhook("http://169.254.169.254/", allow_private=True), {})


def test_a_redirect_is_never_followed(hook: tuple[int, type[_Hook]]) -> None:
    port, handler = hook
    handler.mode = "redirect"
    said = post(Webhook(f"http://127.0.0.1:{port}/", allow_private=True), {"n": 1})
    assert said.endswith("answered 302; the redirect was not followed")
    assert len(handler.got) == 1


def test_a_slow_hook_times_out_and_a_check_does_not_fail_on_it(
    hook: tuple[int, type[_Hook]],
) -> None:
    port, handler = hook
    handler.mode = "slow"
    said = notify(Webhook(f"http://127.0.0.1:{port}/", timeout_s=0.2, allow_private=True), {})
    assert said is not None
    assert "failed" in said
    refused = notify(Webhook("http://127.0.0.1:9/"), {})  # loopback, not allowed
    assert refused is not None
    assert refused.startswith("webhook refused: ")
