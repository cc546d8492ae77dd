"""What the serving control plane stores and reports, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Service:
    """A model version deployed behind a REST endpoint on this machine.

    `desired` is what the user last asked for (`running` or `stopped`); `state` is what
    was found when the service was read: `running` (answering and ready), `starting`,
    `stopped`, or `failed` (asked to run, but its process is gone).
    """

    name: str
    model: str
    version: int
    host: str
    port: int
    workers: int
    desired: str
    state: str
    pid: int | None
    started_at: datetime | None
    created_at: datetime
    updated_at: datetime
    settings: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None

    @property
    def model_ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "model_ref": self.model_ref,
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "workers": self.workers,
            "desired": self.desired,
            "state": self.state,
            "pid": self.pid,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "settings": self.settings,
            "last_error": self.last_error,
        }
