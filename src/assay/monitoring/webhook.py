"""A monitor's webhook: one JSON POST when its state changes, careful where it goes.

The URL is the user's, but the request leaves the machine that holds the workspace (the
server), so it must not become a way to reach what only that machine can: the host's
addresses are resolved once and checked before connecting, and the connection goes to
the address that was checked (no second lookup an attacker's DNS could answer
differently). Refused always: link-local addresses (which include the cloud metadata
endpoint 169.254.169.254), the other metadata addresses, multicast, unspecified and
reserved ones. Refused unless the config says `allow_private: true`: loopback and
private networks. Redirects are never followed (a 3xx is reported as it is), and the
call times out.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from assay import httpclient
from assay.errors import AssayError, InvalidArgumentError
from assay.monitoring.entities import Webhook

log = logging.getLogger("assay.monitoring")

# Cloud metadata services outside the link-local range (AWS IPv6, Alibaba, Oracle's).
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)

Resolver = Callable[..., list[tuple[Any, ...]]]


class WebhookRefusedError(InvalidArgumentError):
    """The webhook's host is an address monitoring must not call."""


def check_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> None:
    """Raise WebhookRefusedError when `ip` may not be called."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    if ip in METADATA or ip.is_link_local:
        raise WebhookRefusedError(
            f"The webhook resolves to {ip}, a link-local or cloud metadata address; "
            "monitoring never calls those. Point it at a public address."
        )
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        raise WebhookRefusedError(f"The webhook resolves to {ip}, which cannot be called.")
    if (ip.is_loopback or ip.is_private) and not allow_private:
        raise WebhookRefusedError(
            f"The webhook resolves to {ip}, a loopback or private address; set "
            "`allow_private: true` under `webhook:` if that is where it should go."
        )


def resolve(host: str, port: int, allow_private: bool, resolver: Resolver) -> str:
    """The first address of `host` after every one of them passed `check_address`."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        check_address(literal, allow_private)
        return str(literal)
    try:
        found = resolver(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookRefusedError(f"The webhook's host {host!r} does not resolve ({exc}).") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    if not addresses:
        raise WebhookRefusedError(f"The webhook's host {host!r} has no address.")
    for ip in addresses:  # every one: the client might otherwise pick a refused one
        check_address(ip, allow_private)
    return str(addresses[0])


def post(
    hook: Webhook,
    payload: dict[str, Any],
    *,
    resolver: Resolver = socket.getaddrinfo,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """POST `payload` to the hook; returns what happened, in words (never raises for
    the remote's answer; raises WebhookRefusedError for an address it must not call).
    """
    parts = urlsplit(hook.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefusedError(f"The webhook URL {hook.url!r} is not an http(s) URL.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve(parts.hostname, port, hook.allow_private, resolver)
    shown = f"[{address}]" if ":" in address else address
    pinned = parts._replace(netloc=f"{shown}:{port}").geturl()
    host_header = parts.hostname + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    try:
        with httpclient.client(
            timeout=hook.timeout_s, follow_redirects=False, trust_env=False, transport=transport
        ) as client:
            response = client.post(
                pinned,
                json=payload,
                headers={"Host": host_header, "User-Agent": "assay-monitor"},
                extensions=extensions,
            )
    except httpx.HTTPError as exc:
        return f"webhook {hook.url} failed: {exc or type(exc).__name__}"
    if response.is_redirect:
        return f"webhook {hook.url} answered {response.status_code}; the redirect was not followed"
    return f"webhook {hook.url} answered {response.status_code}"


def notify(hook: Webhook | None, payload: dict[str, Any]) -> str | None:
    """`post`, with a refusal reported rather than raised (a check must not fail on it)."""
    if hook is None:
        return None
    try:
        said = post(hook, payload)
    except AssayError as exc:
        said = f"webhook refused: {exc.message}"
    log.info("%s", said)
    return said
