"""API tokens: who may do what through the server. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Each scope allows what the scopes after it allow, except `predict`, which only
# reaches the prediction and A/B routes.
SCOPES = ("admin", "write", "read", "predict")
_RANK = {"admin": 3, "write": 2, "read": 1}


def allows(scope: str, needed: str) -> bool:
    """Whether a token of `scope` may call a route that needs `needed`."""
    if needed == "predict":
        return scope in SCOPES
    return _RANK.get(scope, 0) >= _RANK[needed]


@dataclass(frozen=True)
class Token:
    id: int
    name: str
    scope: str
    prefix: str  # the token's first characters, to tell tokens apart in lists
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
