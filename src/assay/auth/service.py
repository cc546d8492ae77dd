"""Tokens: create (shown once), list, revoke, and check one a request presents."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import replace
from datetime import timedelta

from assay.auth.entities import SCOPES, Token, allows
from assay.auth.repository import TokenRepository
from assay.errors import (
    ConflictError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    UnauthorizedError,
)
from assay.store.acting import author_or
from assay.store.db import Database, utcnow

PREFIX = "assay_"
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# A token found valid is trusted again for this long without a database read (every
# request presents one). A revocation through this process (the server's route) takes
# effect at once; one made elsewhere (another worker, a local CLI) within this time.
RECHECK_S = 1.0
_clock = time.monotonic


class TokenService:
    def __init__(self, db: Database, *, author: str) -> None:
        self.db = db
        self._author = author
        self._valid: dict[str, tuple[Token, float]] = {}  # digest -> (token, trusted until)

    @property
    def author(self) -> str:
        """Whom what this records names: the caller a server acts for, else the default."""
        return author_or(self._author)

    def create(self, name: str, scope: str) -> tuple[Token, str]:
        """A new token; returns it and its secret, which is not stored and never shown again.

        Raises:
            InvalidArgumentError: an unknown scope or a malformed name.
            ConflictError: a token of that name exists.
        """
        if scope not in SCOPES:
            raise InvalidArgumentError(
                f"Unknown scope {scope!r}; choose one of {', '.join(SCOPES)}."
            )
        if not _TOKEN_NAME.fullmatch(name):
            raise InvalidArgumentError(
                f"Token name {name!r} is not valid: 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit.",
                name=name,
            )
        secret = PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as conn:
            repo = TokenRepository(conn)
            if repo.by_name(name) is not None:
                raise ConflictError(f"A token named {name!r} exists; pick another name.")
            repo.insert(
                {
                    "name": name,
                    "scope": scope,
                    "prefix": secret[: len(PREFIX) + 4],
                    "hash": _digest(secret),
                    "created_at": utcnow(),
                    "created_by": self.author,
                }
            )
            token = repo.by_name(name)
        assert token is not None
        return token, secret

    def tokens(self) -> list[Token]:
        with self.db.read() as conn:
            return TokenRepository(conn).all()

    def revoke(self, name: str) -> Token:
        """Raises NotFoundError for an unknown name; revoking twice is harmless."""
        with self.db.session() as conn:
            repo = TokenRepository(conn)
            token = repo.by_name(name)
            if token is None:
                raise NotFoundError(f"No token named {name!r}. List them with `assay tokens list`.")
            if token.revoked_at is None:
                repo.update(token.id, revoked_at=utcnow())
            found = repo.by_name(name)
        self._valid.clear()  # trusted no more, here at once
        assert found is not None
        return found

    def check(self, secret: str | None, needed: str) -> Token:
        """The token a request presents, if it may do what `needed` names.

        Raises:
            UnauthorizedError: the token is missing, unknown or revoked (401).
            ForbiddenError: its scope does not allow `needed` (403).
        """
        if not secret:
            raise UnauthorizedError("This route needs a token: send `Authorization: Bearer TOKEN`.")
        digest = _digest(secret)
        now = _clock()
        known = self._valid.get(digest)
        if known is not None and known[1] > now:
            token = known[0]
        else:
            with self.db.read() as conn:
                found = TokenRepository(conn).by_hash(digest)
            if found is None or not hmac.compare_digest(digest, _digest(secret)):
                raise UnauthorizedError("The token is not valid.")
            if found.revoked_at is not None:
                raise UnauthorizedError(f"Token {found.name!r} was revoked.")
            token = found
            self._valid[digest] = (token, now + RECHECK_S)
        if not allows(token.scope, needed):
            raise ForbiddenError(
                f"Token {token.name!r} has scope {token.scope!r}; this needs {needed!r}."
            )
        if token.last_used_at is None or utcnow() - token.last_used_at > timedelta(minutes=1):
            used = utcnow()
            with self.db.session() as conn:  # at most once a minute: reads stay reads
                TokenRepository(conn).update(token.id, last_used_at=used)
            token = replace(token, last_used_at=used)
            self._valid[digest] = (token, now + RECHECK_S)
        return token


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
