"""What the A/B test control plane stores and reports, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class VariantSpec:
    """One arm: its label, the model version it serves, and the service it was named by."""

    label: str
    model: str
    version: int
    service: str | None = None

    @property
    def model_ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "model": self.model,
            "version": self.version,
            "model_ref": self.model_ref,
            "service": self.service,
        }


@dataclass(frozen=True)
class ABTest:
    """An A/B test: variants, a routing strategy, and where its router listens.

    `status` is running, paused (all traffic to the control, nothing analysed),
    concluded (a winner recorded, its alias moved) or stopped. `state` is what its
    router process was found doing when the test was read.
    """

    name: str
    variants: tuple[VariantSpec, ...]
    strategy: str
    key: str | None
    status: str
    state: str
    host: str
    port: int
    workers: int
    pid: int | None
    alias: str
    auto_promote: bool
    plan: dict[str, Any] | None
    winner: str | None
    verdict: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    concluded_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/abtests/{self.name}"

    def variant(self, label: str) -> VariantSpec | None:
        return next((v for v in self.variants if v.label == label), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variants": [v.to_dict() for v in self.variants],
            "strategy": self.strategy,
            "key": self.key,
            "status": self.status,
            "state": self.state,
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "workers": self.workers,
            "pid": self.pid,
            "alias": self.alias,
            "auto_promote": self.auto_promote,
            "plan": self.plan,
            "winner": self.winner,
            "verdict": self.verdict,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "concluded_at": self.concluded_at.isoformat() if self.concluded_at else None,
        }
