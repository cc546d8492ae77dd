"""The auto-promote check, as every A/B router runs it (a local worker, a Ray replica).

A test created with auto-promotion has its sequential test looked at every `CHECK_EVERY`
feedbacks its router took, in the background (one look at a time, so a busy router does
not pile them up). Once it decides, the holder announces the winner its own way: a local
worker leaves `decided.json` in its folder and routes to the winner; a Ray replica tells
the test's shared state and the store. The control plane records the verdict and moves
the alias when it next reads the test.

Like the routers, nothing here imports control-plane code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.abtests.worker import ABServed

CHECK_EVERY = 50  # feedbacks between two looks of the auto-promote check

log = logging.getLogger("assay.abtests")

Events = Callable[[], Awaitable[list[dict[str, Any]]]]
"""Every event the test logged, from every worker or replica."""
Announce = Callable[["ABServed", str, str], Awaitable[None]]
"""Called with the test as it was looked at, the winner and the verdict's message."""


class DecisionCheck:
    """Counts a router's feedbacks and, with auto-promote, looks at the sequential test
    every `every` of them; a decision goes to `announce`."""

    def __init__(self, events: Events, announce: Announce, *, every: int = CHECK_EVERY) -> None:
        self.events = events
        self.announce = announce
        self.every = every
        self.feedbacks = 0
        self._looking: asyncio.Task[None] | None = None  # held, so it is not collected

    @property
    def looking(self) -> bool:
        """A look is in flight."""
        return self._looking is not None and not self._looking.done()

    def after_feedback(self, current: ABServed | None) -> None:
        """Count one feedback to `current`, the test as the router serves it now; start a
        look when auto-promote is on, the test runs, no look is in flight and it is time.
        Called on the router's event loop."""
        self.feedbacks += 1
        if (
            current is None
            or not current.target.auto_promote
            or current.target.status != "running"
            or self.looking
            or self.feedbacks % self.every
        ):
            return
        self._looking = asyncio.get_running_loop().create_task(self.look(current))

    async def look(self, current: ABServed) -> None:
        """Build the report from every event and announce a decided winner. Never raises:
        the check must never take the serving down."""
        from assay.abtests.report import build_report

        target = current.target
        try:
            doc = await asyncio.to_thread(
                build_report,
                await self.events(),
                labels=[v.label for v in target.variants],
                strategy=target.strategy,
                alpha=target.alpha,
            )
            verdict = doc["verdict"]
            if verdict["decided"]:
                await self.announce(current, str(verdict["winner"]), str(verdict["message"]))
        except Exception:
            log.exception("could not evaluate the sequential test")
