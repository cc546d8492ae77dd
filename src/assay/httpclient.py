"""Where Assay makes its outbound HTTP clients: one TLS context a process.

httpx builds a TLS context for every client it makes, loading the CA bundle each time:
24 ms of CPU. A plain `httpx.get` to a service on this machine cost 28 ms, where the
request itself took under 1 ms, and `ServingService.get` asks each service whether it is
ready (`services list`, the dashboard, every wait). Every client made here shares a
context built on first use with what httpx would build: its CA bundle, or the one
`SSL_CERT_FILE` / `SSL_CERT_DIR` name (built again if they change), or neither for a
client made with `trust_env=False`.

The context is shared, so it must not be changed: a client that needs a certificate of
its own, another `verify` or HTTP/2 (which sets the context's ALPN) makes an
`httpx.Client` itself.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Any

import httpx

_OWN_CONTEXT = ("verify", "cert", "http2")  # each changes or replaces the context


def tls(*, trust_env: bool = True) -> ssl.SSLContext:
    """The shared context for a client that reads (or not) `SSL_CERT_FILE`/`SSL_CERT_DIR`."""
    if not trust_env:
        return _tls(None, None, trust_env=False)
    return _tls(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _tls(cert_file: str | None, cert_dir: str | None, *, trust_env: bool = True) -> ssl.SSLContext:
    # The arguments are the cache's key; httpx reads the variables itself.
    return httpx.create_ssl_context(trust_env=trust_env)


def client(**kwargs: Any) -> httpx.Client:
    """An `httpx.Client(**kwargs)` on the shared TLS context.

    Raises:
        TypeError: `kwargs` name `verify`, `cert` or `http2`, which need a context of
            their own.
    """
    if own := [k for k in _OWN_CONTEXT if k in kwargs]:
        raise TypeError(f"{', '.join(own)}: make an httpx.Client of your own")
    return httpx.Client(verify=tls(trust_env=kwargs.get("trust_env", True)), **kwargs)


def get(url: str | httpx.URL, *, timeout: float = 5.0, **kwargs: Any) -> httpx.Response:
    """`httpx.get` on the shared TLS context; `kwargs` go to the request (headers,
    params), not to the client."""
    with client(timeout=timeout) as http:
        return http.get(url, **kwargs)


def post(url: str | httpx.URL, *, timeout: float = 5.0, **kwargs: Any) -> httpx.Response:
    """`httpx.post` on the shared TLS context; `kwargs` go to the request (json,
    content, headers), not to the client."""
    with client(timeout=timeout) as http:
        return http.post(url, **kwargs)
