"""Who is acting: the author recorded on what a call creates (data, pipeline and model
versions, tokens).

Each service is built with a default author (ASSAY_AUTHOR, or the user and host). A
server acts for many people: it names the caller (its token's name) for the request
it is serving, and everything that request records carries that name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assay.config import Settings

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


def acting_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` for a process started to work on `settings`' workspace for the author
    acting now (a run's runner, a sweep's driver): the workspace's URLs and that author.
    Never a server's: the process works here, whatever `ASSAY_REMOTE` (and its token)
    this process's environment names for its own commands."""
    env = {k: v for k, v in environ.items() if k not in ("ASSAY_REMOTE", "ASSAY_TOKEN")}
    env.update(
        ASSAY_DB_URL=settings.db_url,
        ASSAY_STORE_URL=settings.store_url,
        ASSAY_AUTHOR=author_or(settings.author),
    )
    return env
