"""Writers that race for one number: the unique constraint picks a winner, the others retry.

Version numbers are taken inside the writing transaction (`versioned.next_number`, which
locks the owner's row on PostgreSQL). Where two writers still collide (SQLite with
another process, the first version of a new name), the loser's transaction rolls back
and it tries again from the start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from assay.errors import ConflictError

T = TypeVar("T")

ATTEMPTS = 20


class Retry(Exception):
    """Raised by an attempt that found the world changed under it: try again."""


def retrying(
    attempt: Callable[[], T],
    refusal: str,
    *,
    attempts: int = ATTEMPTS,
    settled: Callable[[], T | None] | None = None,
) -> T:
    """The result of `attempt()`, run again after a lost race (IntegrityError or `Retry`).

    `settled`, after a lost race, may find that the work was done by the winner (the
    same run's model registered twice): its answer, when not None, is the result.

    Raises:
        ConflictError: every attempt lost (`refusal` says what, and to retry).
    """
    for _ in range(attempts):
        try:
            return attempt()
        except (IntegrityError, Retry):
            if settled is not None and (found := settled()) is not None:
                return found
    raise ConflictError(refusal)
