"""Who is acting: the author recorded on what a call creates (data, pipeline and model
versions, tokens).

Each service is built with a default author (ASSAY_AUTHOR, or the user and host). A
server acts for many people: it names the caller (its token's name) for the request
it is serving, and everything that request records carries that name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_acting: ContextVar[str | None] = ContextVar("assay_acting_author", default=None)


def act_as(name: str) -> None:
    """From here on in this context (a server's request: its own task), record `name`."""
    _acting.set(name)


@contextlib.contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Record `name` as the author of what the block creates."""
    token = _acting.set(name)
    try:
        yield
    finally:
        _acting.reset(token)


def author_or(default: str) -> str:
    """The author acting now, or `default` where no one was named."""
    return _acting.get() or default
