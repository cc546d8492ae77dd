"""What a workspace's tokens offer, locally (`TokenService`) or over HTTP
(`assay.client.TokensClient`): one signature for both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assay.auth.entities import Token


class TokensAPI(Protocol):
    """API tokens: who may read, write or administer the server."""

    def create(self, name: str, scope: str) -> tuple[Token, str]:
        """A new token and its secret (shown once, stored only hashed)."""
        ...

    def tokens(self) -> list[Token]:
        """Every token, without secrets."""
        ...

    def revoke(self, name: str) -> Token:
        """Revoke a token: its secret is refused from now on."""
        ...
