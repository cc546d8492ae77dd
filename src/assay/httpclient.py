"""Where Assay makes its outbound HTTP clients: one TLS context a process.

httpx builds a TLS context for every client it makes, loading the CA bundle each time:
24 ms of CPU. A plain `httpx.get` to a service on this machine cost 28 ms, where the
request itself took under 1 ms, and `ServingService.get` asks each service whether it is
ready (`services list`, the dashboard, every wait). Every client made here shares one
context, built on first use with what httpx would build (its CA bundle, or
`SSL_CERT_FILE` / `SSL_CERT_DIR`).
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def client(**kwargs: Any) -> httpx.Client:
    """An `httpx.Client(**kwargs)` on the shared TLS context."""
    return httpx.Client(verify=tls(), **kwargs)


def get(url: str | httpx.URL, *, timeout: float = 5.0, **kwargs: Any) -> httpx.Response:
    """`httpx.get` on the shared TLS context."""
    with client(timeout=timeout) as http:
        return http.get(url, **kwargs)


def post(url: str | httpx.URL, *, timeout: float = 5.0, **kwargs: Any) -> httpx.Response:
    """`httpx.post` on the shared TLS context."""
    with client(timeout=timeout) as http:
        return http.post(url, **kwargs)
