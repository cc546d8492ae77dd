"""The server's outermost layer: who may send a body, how large and how fast; the security
headers on every answer; and the last word on any exception.

For a request with a body (POST, PUT, PATCH, DELETE), in this order:

1. Who. Its token (the `Authorization: Bearer` header under `/api`, the sign-in cookie on
   the dashboard) is checked before a byte of the body is read. Without a valid one the
   answer is 401 (on the dashboard, a redirect to sign in) and the connection is closed:
   an anonymous client cannot make the server read, parse or hold anything. Signing in and
   out are the only bodies anyone may send.
2. How large. Each route takes at most its own limit (declared with `schemas.body_limit`,
   else DEFAULT_BODY), and never more than the server's `--max-body-mb`: over it by
   Content-Length, the answer is 413 before reading; without one (chunked), it is counted
   as the route reads. Bodies stream to the route: nothing is buffered here.
3. How fast. From the moment the route asks for it, the whole body must arrive within
   `body_timeout` seconds; a client that trickles bytes is answered 408 and disconnected
   (uvicorn's keep-alive timeout does not cover a body that has started).

Any answer given before its request's body was read whole says `Connection: close`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.errors import AssayError

log = logging.getLogger("assay.server")

DEFAULT_MAX_BODY = 64 * 1024 * 1024  # the server's ceiling: --max-body-mb
DEFAULT_BODY = 1024 * 1024  # a route that declares no limit of its own
DEFAULT_BODY_TIMEOUT_S = 60.0
# In a route's openapi_extra (schemas.body_limit): its limit in bytes, or "server" for
# the server's own; the OpenAPI document shows it.
BODY_LIMIT = "x-body-limit"

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_PUBLIC = {"/login", "/logout"}  # the dashboard's forms that need no sign-in

# On every answer, the API's and the dashboard's, errors included. The dashboard's scripts
# and styles are files under /static (no inline script, style or handler anywhere), so the
# policy allows nothing else; no page may be framed (clickjacking).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class BodyRefused(HTTPException):
    """A body over its limit (413) or too slow (408), raised from the `receive` a route
    reads with. An HTTPException, so FastAPI's body parsing passes it on as it is."""

    def __init__(self, status: int, kind: str, message: str, **details: Any) -> None:
        super().__init__(status, message)
        self.kind = kind
        self.message = message
        self.details = details


def too_large(limit: int, taker: str = "this route") -> BodyRefused:
    return BodyRefused(
        413,
        "PayloadTooLargeError",
        f"The body is larger than {taker} accepts ({limit:,} bytes).",
        limit=limit,
    )


def too_slow(seconds: float) -> BodyRefused:
    return BodyRefused(
        408,
        "RequestTimeoutError",
        f"The body did not arrive within {seconds:g} s; send it again on a faster "
        "connection, or in smaller parts.",
        timeout_s=seconds,
    )


def error(
    status: int, kind: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message, "details": details or {}}}, status_code=status
    )


class Guard:
    """The middleware; `create_app` adds it last, so it runs first. It finds the workspace
    and whether tokens are needed on the app (`scope["app"].state`)."""

    def __init__(self, app: ASGIApp, *, max_body: int, body_timeout: float) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body(self, scope, receive)
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in have]
                if not body.done:  # what is left of the body is not worth reading
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            refusal = self._refusal(scope) if scope["method"] in _BODY_METHODS else None
            if refusal is not None:
                await refusal(scope, receive, guarded_send)
                return
            await self.app(scope, body.receive, guarded_send)
        except BodyRefused as exc:
            if not started:
                await error(exc.status_code, exc.kind, exc.message, exc.details)(
                    scope, receive, guarded_send
                )
        except Exception as exc:
            error_id = uuid.uuid4().hex[:12]
            log.error("error %s on %s %s", error_id, scope["method"], scope["path"], exc_info=exc)
            if not started:
                message = f"The server failed on this request; its log names error {error_id}."
                answer = error(500, "InternalError", message, {"error_id": error_id})
                await answer(scope, receive, guarded_send)

    def _refusal(self, scope: Scope) -> Response | None:
        """The answer to a request whose body must not be read, else None."""
        headers = Headers(scope=scope)
        path: str = scope["path"]
        state = scope["app"].state
        if state.auth and path not in _PUBLIC:
            if not path.startswith(("/api/", "/static/")):  # the dashboard: its sign-in cookie
                from assay.ui.session import COOKIE, sign_in_url

                secret = cookie_parser(headers.get("cookie", "")).get(COOKIE)
                try:
                    state.workspace.tokens.check(secret, "read")
                except AssayError as exc:
                    return RedirectResponse(sign_in_url(path, exc.message), status_code=303)
            else:
                scheme, _, secret = headers.get("authorization", "").partition(" ")
                try:  # any valid token: the route checks its scope
                    state.workspace.tokens.check(
                        secret if scheme.lower() == "bearer" else None, "predict"
                    )
                except AssayError as exc:
                    answer = error(exc.status, type(exc).__name__, exc.message)
                    answer.headers["WWW-Authenticate"] = "Bearer"
                    return answer
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise too_large(self.max_body, "this server")
        # Under /api every body is JSON, but for an upload's raw file parts.
        json_route = path.startswith("/api/") and not path.startswith("/api/v1/uploads/")
        has_body = (length or "0") != "0" or "chunked" in headers.get("transfer-encoding", "")
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if json_route and has_body and ctype != "application/json":
            return error(
                415,
                "UnsupportedMediaTypeError",
                f"Send JSON with Content-Type: application/json (got {ctype or 'none'!r}).",
            )
        return None


class _Body:
    """A request's `receive`, metered: its route's limit and the body deadline."""

    def __init__(self, guard: Guard, scope: Scope, receive: Receive) -> None:
        self.guard = guard
        self.scope = scope
        self._receive = receive
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        self.length = int(length) if length is not None and length.isdigit() else None
        chunked = "chunked" in headers.get("transfer-encoding", "")
        self.done = not chunked and not self.length  # nothing (more) to read
        self.seen = 0
        self.limit = 0
        self.deadline: float | None = None

    async def receive(self) -> Message:
        if self.done:  # a route listening for the client to go away: no deadline
            return await self._receive()
        if self.deadline is None:  # the route asks for its body: routing has happened
            self.limit = _route_limit(self.scope, self.guard.max_body)
            if self.length is not None and self.length > self.limit:
                raise too_large(self.limit)
            self.deadline = asyncio.get_running_loop().time() + self.guard.body_timeout
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            raise too_slow(self.guard.body_timeout) from None
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise too_large(self.limit)
            self.done = not message.get("more_body", False)
        else:
            self.done = True  # the client went away
        return message


def _route_limit(scope: Scope, ceiling: int) -> int:
    extra = getattr(scope.get("route"), "openapi_extra", None) or {}
    limit = extra.get(BODY_LIMIT, DEFAULT_BODY)
    return min(ceiling, limit if isinstance(limit, int) else ceiling)
