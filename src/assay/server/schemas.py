"""Wire models shared by the routes: the error body, pages of results.

Entities (frozen dataclasses) are the response models themselves: FastAPI
describes them in the OpenAPI document, and the SDK reads them back into the same
classes, so a client and the server speak in the same types.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, TypeVar, get_args

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    with_config,
)
from pydantic.config import JsonDict
from starlette.convertors import Convertor, register_url_convertor

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
_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
# A route that answers text (logs, sources, diffs) still answers errors as JSON: FastAPI
# would document them in the route's own media type, so they say theirs.
TEXT_ROUTE_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": _ERROR_BODY} for code, text in _DOCUMENTED.items()
}
# Predictions through the server: what it says when the service cannot take them (the
# service's own answers, errors included, are passed on as they are).
PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "The service or A/B test is stopped (or failed): start it first",
    },
    503: {"model": ErrorBody, "description": "It is starting, or did not answer"},
    504: {"model": ErrorBody, "description": "The model took longer than the service allows"},
}


class Input(BaseModel):
    """A request body: taken as the document describes it, strictly. A lax model would
    take `false` for a number or `"3"` for an integer, which the document says it refuses;
    a strict one would refuse `1.0` for an integer, which JSON Schema calls one."""

    model_config = ConfigDict(strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _integral_floats(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, float) and value.is_integer() and info.field_name is not None:
            field = cls.model_fields[info.field_name]
            if field.annotation is int or int in get_args(field.annotation):
                return int(value)
        return value


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
_TOKEN = r"^[0-9]{1,15}$"
PageToken = Annotated[
    str | None,
    Query(
        pattern=_TOKEN,
        description="Where the next page starts: the last page's next_page_token, as it came",
    ),
]

# What the services check, declared so that the document says it and FastAPI enforces it
# before a route runs: a request the document calls valid is never refused for its shape.
# Names of datasets, pipelines, models, experiments, services… (`data.entities.check_name`):
# letters, digits and `._-` in up to four `/`-separated parts of at most 100, each part
# starting with a letter or digit, never `..`. Tags and aliases (`check_tag`): a letter or
# `_` first, never `latest` (which always means the newest version).
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_NAME = rf"(?!.*\.\.){_PART}(?:/{_PART}){{0,3}}"
_TAG = r"(?!latest$)[A-Za-z_][A-Za-z0-9._-]{0,63}"
_SELECTOR = r"(?:[0-9]{1,9}|[A-Za-z_][A-Za-z0-9._-]{0,63})"  # a number, tag, alias, latest
NAME_PATTERN = rf"^{_NAME}$"
TAG_PATTERN = rf"^{_TAG}$"
SELECTOR_PATTERN = rf"^{_SELECTOR}$"
REF_PATTERN = rf"^{_NAME}(?:@{_SELECTOR})?$"  # NAME[@VERSION|@TAG|@latest]
PIPELINE_SELECTOR_PATTERN = r"^(?:[0-9]{1,9}|latest)$"
# A name ending in .py or .ipynb is a file to register (`runs.service.looks_like_path`).
PIPELINE_REF_PATTERN = rf"^(?!.*\.(?:py|ipynb)$){_NAME}(?:@(?:[0-9]{{1,9}}|latest))?$"
RUN_PATTERN = r"^[0-9a-fA-F]{1,64}$"  # a run id, or its first characters
NAME_MAX = 403  # four parts of 100, and the slashes between them
REF_MAX = NAME_MAX + 65


def matching(pattern: str, max_length: int, description: str) -> tuple[Any, ...]:
    """Annotated metadata for a string matching `pattern` (at most `max_length` long).

    Pydantic's own patterns are Rust regular expressions, which have no look-ahead, and
    "never `..`" needs one; so the document states the pattern (ECMA 262 has look-ahead)
    and Python's `re` checks it. A mismatch is a 422, as any constraint is.
    """
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if len(value) > max_length or not compiled.fullmatch(value):
            raise ValueError(f"{description}; got {value[:80]!r}")
        return value

    schema = {"type": "string", "pattern": pattern, "maxLength": max_length}
    return AfterValidator(check), WithJsonSchema(schema)


_NAMED = "letters, digits, '.', '_' and '-', parts between '/', no '..'"
NameText = Annotated[str, *matching(NAME_PATTERN, NAME_MAX, f"A name is {_NAMED}")]
RefText = Annotated[
    str, *matching(REF_PATTERN, REF_MAX, f"A reference is NAME[@VERSION|@TAG], NAME {_NAMED}")
]
PipelineRefText = Annotated[
    str,
    *matching(
        PIPELINE_REF_PATTERN,
        REF_MAX,
        "A pipeline is NAME[@VERSION] of a registered one, never a path on the server: "
        "register it first (POST /pipelines)",
    ),
]
TagText = Annotated[
    str, *matching(TAG_PATTERN, 64, "A tag or alias is a letter or '_' first, not 'latest'")
]

# A file's path inside an upload, a dataset or a pipeline (`store.paths.safe_join`): parts of
# at most 255 bytes between single slashes, at most 64 of them, no `.` or `..` part, no
# backslash or control character, no drive letter; 1024 characters in all.
_FILE_PART = r"[^/\\\x00-\x1f]{1,255}"
REL_PATH_PATTERN = rf"^(?![A-Za-z]:)(?!(?:.*/)?\.\.?(?:/|$)){_FILE_PART}(?:/{_FILE_PART}){{0,63}}$"
RelPathText = Annotated[str, *matching(REL_PATH_PATTERN, 1024, "A relative path")]
# A map keyed by such paths names no other key: JSON Schema's `patternProperties` alone
# would let any other key through, with any value.
BY_PATH: JsonDict = {"additionalProperties": False}
ParamName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
"""A param's or a metric's name."""

Name = Annotated[NameText, Path(description="Letters, digits, ._- (and / between parts)")]
Ref = Annotated[RefText, Path(description="NAME[@VERSION|@TAG|@latest]")]
RunId = Annotated[str, Path(pattern=RUN_PATTERN, description="A run id, or its first characters")]


class _RunIdConvertor(Convertor[str]):
    """`{run:runid}` in a route's path: only a run id (or its first characters) matches,
    so `/runs/archive` is not a run, and the methods a path allows are what it has."""

    regex = RUN_PATTERN[1:-1]

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("runid", _RunIdConvertor())

Selector = Annotated[
    str,
    Path(pattern=SELECTOR_PATTERN, description="A version number, a tag or alias, or `latest`"),
]
PipelineSelector = Annotated[
    str, Path(pattern=PIPELINE_SELECTOR_PATTERN, description="A version number or `latest`")
]
Alias = Annotated[TagText, Path(description="A word (a letter first): not a number, not `latest`")]


def name_field(description: str = "Letters, digits, ._- (and / between parts)", **kw: Any) -> Any:
    """A body field holding a name: declare it `NameText`."""
    return Field(description=description, **kw)


def ref_field(description: str = "NAME[@VERSION|@TAG|@latest]", **kw: Any) -> Any:
    """A body field holding a reference to a version: declare it `RefText`."""
    return Field(description=description, **kw)


def pipeline_field(description: str = "NAME[@VERSION] of a registered pipeline", **kw: Any) -> Any:
    """A body field holding a pipeline reference: declare it `PipelineRefText`."""
    return Field(description=description, **kw)


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
    """A page token to the offset it stands for (routes declare its pattern as PageToken,
    so a token that reaches here is digits; past the end, the page is empty)."""
    if not token:
        return 0
    if not re.fullmatch(_TOKEN, token):
        raise InvalidArgumentError(f"page_token {token!r} is not one this server gave out.")
    return int(token)


def encode_token(offset: int) -> str:
    return str(offset)


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
