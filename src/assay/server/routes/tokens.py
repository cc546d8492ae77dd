"""API tokens (admin only): create, list, revoke."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from assay.auth.entities import Token
from assay.server.deps import ADMIN, WS
from assay.server.schemas import (
    ERRORS,
    SMALL_BODY,
    Input,
    Limit,
    Page,
    PageToken,
    body_limit,
    page_of,
)

router = APIRouter(prefix="/tokens", tags=["tokens"], dependencies=ADMIN, responses=ERRORS)


class TokenIn(Input):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Letters, digits, ._- (a letter or digit first)",
    )
    scope: Literal["admin", "write", "read", "predict"] = Field(
        description="What it may do: each scope allows the ones after it"
    )


class TokenCreated(BaseModel):
    token: Token
    secret: str = Field(description="Shown once; only its hash is stored.")


@router.get("", response_model=Page[Token], summary="List tokens (never their secrets)")
def list_tokens(ws: WS, limit: Limit = 100, page_token: PageToken = None) -> Page[Token]:
    return page_of(ws.tokens.tokens(), limit, page_token)


@router.post(
    "", response_model=TokenCreated, status_code=201, summary="Create a token",
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def create_token(body: TokenIn, ws: WS) -> TokenCreated:
    token, secret = ws.tokens.create(body.name, body.scope)
    return TokenCreated(token=token, secret=secret)


@router.delete(
    "/{name}", response_model=Token, summary="Revoke a token", openapi_extra=body_limit(SMALL_BODY)
)
def revoke_token(name: str, request: Request, ws: WS) -> Token:
    from assay.errors import ConflictError

    caller = getattr(request.state, "token", None)
    if caller is not None and caller.name == name:
        raise ConflictError(
            f"Token {name!r} is the one this request is made with; revoke it with another "
            "admin token (or `assay tokens revoke` on the server's machine).",
            token=name,
        )
    return ws.tokens.revoke(name)
