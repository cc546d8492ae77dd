"""API tokens (admin only): create, list, revoke."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from assay.auth.entities import Token
from assay.server.deps import ADMIN, WS
from assay.server.schemas import ERRORS, SMALL_BODY, Limit, Page, body_limit, page_of

router = APIRouter(prefix="/tokens", tags=["tokens"], dependencies=ADMIN, responses=ERRORS)


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    scope: str = Field(description="admin, write, read or predict")


class TokenCreated(BaseModel):
    token: Token
    secret: str = Field(description="Shown once; only its hash is stored.")


@router.get("", response_model=Page[Token], summary="List tokens (never their secrets)")
def list_tokens(ws: WS, limit: Limit = 100, page_token: str | None = None) -> Page[Token]:
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
def revoke_token(name: str, ws: WS) -> Token:
    return ws.tokens.revoke(name)
