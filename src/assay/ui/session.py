"""Who is looking at the dashboard: the sign-in cookie and the token it holds.

The server's middleware and dependencies read the cookie's name from here too, so this
module imports nothing else of the dashboard's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request

from assay.auth.entities import allows
from assay.errors import AssayError, UnauthorizedError
from assay.workspace import Workspace

COOKIE = "assay_token"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: their token's name and scope (everything, with auth off)."""

    name: str
    scope: str

    @property
    def can_write(self) -> bool:
        return allows(self.scope, "write")

    @property
    def is_admin(self) -> bool:
        return allows(self.scope, "admin")


class SignIn(Exception):
    """Raised by `viewer` when the page needs a token the request does not carry."""

    def __init__(self, message: str) -> None:
        self.message = message


def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.workspace
    return ws


def viewer(request: Request) -> Viewer:
    if not request.app.state.auth:
        return Viewer("local", "admin")
    ws = workspace(request)
    secret = request.cookies.get(COOKIE)
    if not secret:
        raise SignIn("Sign in with a token to see this workspace.")
    try:
        token = ws.tokens.check(secret, "read")
    except UnauthorizedError as exc:
        raise SignIn(exc.message) from None
    except AssayError as exc:  # a predict-only token: not for the dashboard
        raise SignIn(exc.message) from None
    return Viewer(token.name, token.scope)


def sign_in_url(path: str, why: str) -> str:
    """The sign-in page, saying why, that comes back to `path` once signed in."""
    return "/login?" + urlencode({"next": path, "why": why})
