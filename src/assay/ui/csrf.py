"""Cross-site request forgery: what stops a page elsewhere from posting the dashboard's forms.

The sign-in cookie is SameSite=Strict, which keeps it off requests from other sites but
not from other origins of the same site: another port on this host, a sibling subdomain.
So every dashboard request that may change something (any method but GET, HEAD, OPTIONS)
must, as `check` enforces for every route of the dashboard's router:

- come from this origin: its Origin header (or, without one, its Referer) names the host
  it was sent to. Browsers send Origin with every POST, so a form posted from
  http://127.0.0.1:18600 to :8000, or from a sibling subdomain, is refused;
- carry this session's token: the hidden `csrf` field each form holds (htmx sends the same
  as an X-CSRF-Token header), an HMAC keyed by the session's secret: the sign-in cookie, or
  before signing in (and with auth off) a random cookie of its own. A page elsewhere can
  read neither the HTTP-only cookies nor our pages, so it cannot know the token.

A refused request is a 403 that says why, before the route does anything.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from assay.errors import ForbiddenError

FIELD = "csrf"
HEADER = "x-csrf-token"
NONCE_COOKIE = "assay_csrf"
_SAFE = {"GET", "HEAD", "OPTIONS"}
_PORTS = {"http": 80, "https": 443}


def token(request: Request) -> str:
    """This session's token, for the page being rendered to put in its forms. Before the
    session has a secret, makes one (a nonce) that `keep` sets as a cookie."""
    secret = _secret(request)
    if secret is None:
        request.state.csrf_nonce = secrets.token_urlsafe(32)
        secret = _secret(request)
        assert secret is not None
    return _sign(secret)


def keep(request: Request, response: Response) -> Response:
    """Set the nonce `token` made for this page, if it made one."""
    nonce = getattr(request.state, "csrf_nonce", None)
    if nonce is not None and request.cookies.get(NONCE_COOKIE) != nonce:
        response.set_cookie(NONCE_COOKIE, nonce, httponly=True, samesite="strict")
    return response


async def check(request: Request) -> None:
    """Refuse a request that may change something unless it comes from this origin and
    carries this session's token (a dependency of every dashboard route).

    Raises:
        ForbiddenError: another origin, or no (or another session's) token; 403.
    """
    if request.method in _SAFE:
        return
    source = _foreign_origin(request)
    if source is not None:
        raise ForbiddenError(
            f"This form was not sent from this server's pages (it came from {source}), so "
            "it was refused. Open the dashboard at this server's address and send it there."
        )
    sent = request.headers.get(HEADER)
    if sent is None:
        form: Any = await request.form()
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    secret = _secret(request)
    if not sent or secret is None or not hmac.compare_digest(sent, _sign(secret)):
        raise ForbiddenError(
            "This form did not carry this session's CSRF token, so it was refused. Reload "
            "the page and send the form again."
        )


def _secret(request: Request) -> str | None:
    from assay.ui.session import COOKIE

    if request.app.state.auth:
        session = request.cookies.get(COOKIE)
        if session:
            return f"session:{session}"
    nonce = getattr(request.state, "csrf_nonce", None) or request.cookies.get(NONCE_COOKIE)
    return f"nonce:{nonce}" if nonce else None


def _sign(secret: str) -> str:
    return hmac.new(secret.encode(), b"assay dashboard csrf v1", hashlib.sha256).hexdigest()


def _foreign_origin(request: Request) -> str | None:
    """Where the request says it came from, when that is not this server; None when it is
    (or, without Origin and Referer, it does not say: then the token alone decides)."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed is None:
        return None
    if claimed == "null":
        return "an opaque origin (a sandboxed frame, a local file)"
    source = urlsplit(claimed)
    host = urlsplit("//" + request.headers.get("host", ""))
    try:
        source_port = source.port or _PORTS.get(source.scheme)
        host_port = host.port
    except ValueError:
        return claimed
    same = (
        source.scheme in _PORTS
        and source.hostname is not None
        and source.hostname == host.hostname
        # A Host without a port was reached on its scheme's default one (behind a proxy,
        # that of the scheme the browser used).
        and (source_port == host_port or (host_port is None and source.port is None))
    )
    return None if same else f"{source.scheme}://{source.netloc}"
