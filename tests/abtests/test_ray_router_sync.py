"""A router replica on Ray takes in the rewards the shared state joined: each exactly once,
however its syncs interleave (the loop's, and every feedback's)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from assay.abtests.ray_router import ABRouterReplica
from assay.abtests.routing import Router
from assay.abtests.strategies import parse_strategy


class _Shared:
    """The shared state's `since`, answered after a pause (as a Ray actor call yields)."""

    def __init__(self, credits: list[tuple[str, float]]) -> None:
        self.credits = credits
        self.since = SimpleNamespace(remote=self._since)

    async def _since(self, seen: int) -> tuple[list[tuple[str, float]], None]:
        await asyncio.sleep(0.01)
        return self.credits[seen:], None


def test_concurrent_syncs_take_each_reward_once() -> None:
    labels = ["A", "B"]
    router = Router(parse_strategy("thompson", labels), labels, salt="t")
    replica = object.__new__(ABRouterReplica)  # only what `sync` uses, without Ray
    replica.shared = _Shared([("A", 1.0)] * 5 + [("B", 0.0)] * 3)  # type: ignore[assignment]
    replica.ab = SimpleNamespace(  # type: ignore[assignment]
        current=SimpleNamespace(served={"A": None, "B": None}, router=router, target=None)
    )
    replica._seen = 0
    replica._sync_lock = asyncio.Lock()
    replica._syncing = None  # (and what `__del__` reads)

    async def scenario() -> None:
        await asyncio.gather(*(replica.sync() for _ in range(4)))

    asyncio.run(scenario())
    arms: dict[str, Any] = dict(router.arms)
    assert (arms["A"]["rewards"], arms["B"]["rewards"]) == (5, 3)
    assert replica._seen == 8
