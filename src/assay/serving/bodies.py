"""Bodies of the inference apps (a service's and an A/B test's): a request's body read
within its limit, as JSON or as JSON followed by binary tensor data, and error bodies in
each protocol's shape.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request

from assay.errors import (
    AssayError,
    InvalidArgumentError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from assay.serving.served import dumps

__all__ = ["binary_headers", "error_body", "error_json", "read_body", "read_infer_body"]

# What a body with binary tensor data may say it is, besides JSON (KServe's client sends
# application/octet-stream; tritonclient sends no Content-Type at all).
_BINARY_MEDIA = frozenset((b"application/octet-stream",))


def error_body(exc: AssayError, v2: bool = False) -> bytes:
    """The JSON of an error: Assay's `{"error": {"type", "message", "details"}}`, or on
    V2 routes the protocol's `{"error": "<message>"}` with the type and details beside it."""
    return error_json(type(exc).__name__, exc.message, exc.details, v2)


def error_json(kind: str, message: str, details: dict[str, Any], v2: bool) -> bytes:
    """An error body from its parts, in Assay's shape or (`v2`) the protocol's."""
    if v2:
        return dumps({"error": message, "type": kind, "details": details})
    return dumps({"error": {"type": kind, "message": message, "details": details}})


def binary_headers(
    headers: list[tuple[bytes, bytes]], json_length: int
) -> list[tuple[bytes, bytes]]:
    """`headers` for an answer with binary tensor data after `json_length` bytes of JSON."""
    return [
        (b"content-type", b"application/octet-stream"),
        *(h for h in headers if h[0] != b"content-type"),
        (b"inference-header-content-length", str(json_length).encode()),
    ]


async def read_body(request: Request, limit: int) -> bytes:
    """The request's JSON body, at most `limit` bytes.

    Raises:
        UnsupportedMediaTypeError: a Content-Type other than JSON (none is taken as JSON).
        PayloadTooLargeError: over the limit, by Content-Length or counted while reading.
        ClientDisconnect: the client went away.
    """
    body, _ = await read_infer_body(request, limit, binary=False)
    return body


async def read_infer_body(
    request: Request, limit: int, *, binary: bool = True
) -> tuple[bytes, int | None]:
    """The request's body, at most `limit` bytes, and with `binary` the length of its
    JSON when an `Inference-Header-Content-Length` header says binary tensor data
    follows it (else None: the body is all JSON).

    Raises:
        UnsupportedMediaTypeError: a Content-Type other than JSON (none is taken as JSON;
            a binary body may also be application/octet-stream).
        InvalidArgumentError: the header is not a length within the body.
        PayloadTooLargeError: over the limit, by Content-Length or counted while reading.
        ClientDisconnect: the client went away.
    """
    content_type, content_length, header_length = _headers(request)
    if not binary:
        header_length = None
    # No Content-Type at all is taken as JSON: only a wrong one is refused.
    if content_type is not None:
        _check_media(content_type, header_length is not None, binary)
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise _too_large(limit, int(content_length))
    json_length = _json_length(header_length)
    body = await _read(request, limit)
    if json_length is not None and json_length > len(body):
        raise InvalidArgumentError(
            f"The Inference-Header-Content-Length header says the JSON is {json_length} "
            f"bytes, but the body has {len(body)}; send the length of the JSON before the "
            "binary data.",
            field="Inference-Header-Content-Length",
        )
    return body, json_length


def _headers(request: Request) -> tuple[bytes | None, bytes | None, bytes | None]:
    """The request's Content-Type, Content-Length and Inference-Header-Content-Length."""
    content_type = content_length = header_length = None
    for key, value in request.scope["headers"]:
        if key == b"content-type":
            content_type = value
        elif key == b"content-length":
            content_length = value
        elif key == b"inference-header-content-length":
            header_length = value
    return content_type, content_length, header_length


def _check_media(content_type: bytes, with_binary: bool, binary: bool) -> None:
    media = content_type.split(b";", 1)[0].strip().lower()
    json_media = media == b"application/json" or media.endswith(b"+json")
    if json_media or (with_binary and media in _BINARY_MEDIA):
        return
    raise UnsupportedMediaTypeError(
        f"The body is {media.decode('latin-1') or 'untyped'}; send JSON with "
        "Content-Type: application/json"
        + (
            " (or binary tensor data after it, with an Inference-Header-Content-Length header)."
            if binary
            else "."
        ),
        content_type=media.decode("latin-1"),
    )


def _json_length(header_length: bytes | None) -> int | None:
    if header_length is None:
        return None
    if not header_length.isdigit():
        raise InvalidArgumentError(
            "The Inference-Header-Content-Length header must be the length of the body's "
            f"JSON in bytes, not {header_length.decode('latin-1')!r}.",
            field="Inference-Header-Content-Length",
        )
    return int(header_length)


async def _read(request: Request, limit: int) -> bytes:
    """The body, counted while reading (chunked bodies carry no length): stop at `limit`."""
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, size)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int, size: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The body is over the service's limit of {limit} bytes "
        f"({'at least ' if size else ''}{size} bytes); send fewer rows per request.",
        limit=limit,
    )
