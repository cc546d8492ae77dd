"""Wire models shared by the routes: the error body, pages of results.

Entities (frozen dataclasses) are the response models themselves: FastAPI
describes them in the OpenAPI document, and the SDK reads them back into the same
classes, so a client and the server speak in the same types.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, with_config

from assay.errors import InvalidArgumentError

T = TypeVar("T")


class ErrorDetail(BaseModel):
    type: str = Field(description="The error's class, e.g. NotFoundError")
    message: str = Field(description="What went wrong and what to do about it")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: ErrorDetail


_DOCUMENTED = {
    400: "Malformed input (the message names the field)",
    401: "No token, or an unknown or revoked one",
    403: "The token's scope does not allow this",
    404: "No such thing",
    409: "Clashes with what is stored",
    413: "The body is larger than the server accepts",
    415: "The body is not JSON",
    422: "The body does not match the route's model",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _DOCUMENTED.items()
}


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_page_token: str | None = Field(
        default=None, description="Pass as page_token for the next page; absent on the last"
    )


def page_of(items: list[T], limit: int, page_token: str | None) -> Page[T]:
    """One page of a listing the service returned whole (the small listings: datasets,
    models, services…), so that every listing route pages the same way."""
    offset = decode_token(page_token)
    chunk = items[offset : offset + limit]
    more = offset + limit < len(items)
    return Page[T](items=chunk, next_page_token=encode_token(offset + limit) if more else None)


Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page")]

# Request bodies: a route that declares no limit takes DEFAULT_BODY (1 MiB); these say
# more or less. The server's --max-body-mb caps every one of them.
SMALL_BODY = 64 * 1024  # a name, a scope, a tag, an alias, a winner
METRICS_BODY = 8 * 1024 * 1024  # a batch of metric points (100,000 short-named ones fit)
SWEEP_BODY = 4 * 1024 * 1024  # a sweep's options, its space file's text and base params
CEILING = "server"  # as much as the server takes: sources, predictions, upload parts


def body_limit(size: int | str, **extra: Any) -> dict[str, Any]:
    """A route's `openapi_extra` saying its body may be at most `size` bytes (or CEILING);
    the server answers 413 beyond it (before reading, when Content-Length says so), and
    the OpenAPI document shows it as `x-body-limit`."""
    from assay.server.guard import BODY_LIMIT

    return {BODY_LIMIT: size, **extra}


def documented(doc: type[T]) -> type[T]:
    """A service's document type (a TypedDict) as a response model whose attribute
    docstrings become its fields' descriptions in the OpenAPI document; the TypedDicts
    it nests inherit the setting."""
    return with_config(ConfigDict(use_attribute_docstrings=True))(doc)


def decode_token(token: str | None) -> int:
    """A page token to the offset it stands for."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode() + b"==").decode())["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidArgumentError(
            f"page_token {token!r} is not one this server gave out."
        ) from None


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def registered_pipeline(ref: str) -> str:
    """A pipeline ref from a client: NAME[@VERSION], never a path. A path would name a file
    on the server's disk (the CLI registers its own files first, then names them).

    Raises:
        InvalidArgumentError: `ref` looks like a path.
    """
    from assay.runs.service import looks_like_path

    if looks_like_path(ref):
        raise InvalidArgumentError(
            f"Pipeline {ref!r} is a path; register it first (`assay pipelines register PATH`, "
            "or POST /pipelines) and name it as NAME[@VERSION]."
        )
    return ref
