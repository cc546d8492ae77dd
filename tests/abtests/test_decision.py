"""The auto-promote check both routers share: when it looks, what it announces, what it
survives. The report is stubbed: `test_abtests.py` runs the real one end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from assay.abtests import report
from assay.abtests.decision import DecisionCheck
from assay.abtests.routing import Router
from assay.abtests.strategies import parse_strategy
from assay.abtests.worker import ABServed, ABTarget, Variant

LABELS = ["A", "B"]


def _served(*, auto_promote: bool = True, status: str = "running") -> ABServed:
    target = ABTarget(
        name="t",
        strategy="weighted:50,50",
        key=None,
        status=status,
        winner=None,
        variants=tuple(Variant(label, Path("."), "m", 1, {}) for label in LABELS),
        target_id="x",
        auto_promote=auto_promote,
        alpha=0.01,
    )
    router = Router(parse_strategy(target.strategy, LABELS), LABELS)
    return ABServed(target, {}, router)


class Holder:
    """What a router supplies: its events, and how it announces a winner."""

    def __init__(self) -> None:
        self.reads = 0
        self.announced: list[tuple[ABServed, str, str]] = []
        self.fail_reading = False

    async def events(self) -> list[dict[str, Any]]:
        self.reads += 1
        if self.fail_reading:
            raise OSError("the store is away")
        return [{"t": "a"}]

    async def announce(self, current: ABServed, winner: str, message: str) -> None:
        self.announced.append((current, winner, message))


@pytest.fixture
def verdicts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the stubbed report decides, and the arguments it was built with."""
    seen: list[dict[str, Any]] = []
    verdict = {"decided": False, "winner": None, "message": "not yet"}

    def build_report(events: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        seen.append({"events": events, **kwargs})
        return {"verdict": dict(verdict)}

    monkeypatch.setattr(report, "build_report", build_report)
    seen.append(verdict)  # seen[0]: the verdict to return, changed by a test
    return seen


async def _feed(check: DecisionCheck, current: ABServed | None, n: int) -> None:
    for _ in range(n):
        check.after_feedback(current)
        await asyncio.sleep(0)
    while check.looking:
        await asyncio.sleep(0.001)


def test_it_looks_every_n_feedbacks_and_announces_a_decided_winner(
    verdicts: list[dict[str, Any]],
) -> None:
    holder = Holder()
    check = DecisionCheck(holder.events, holder.announce, every=3)
    current = _served()

    async def scenario() -> None:
        await _feed(check, current, 5)
        assert holder.reads == 1  # the third feedback
        assert holder.announced == []  # not decided
        verdicts[0].update(decided=True, winner="B", message="B wins")
        await _feed(check, current, 1)
        assert holder.announced == [(current, "B", "B wins")]

    asyncio.run(scenario())
    assert check.feedbacks == 6
    built = verdicts[1]
    assert built["events"] == [{"t": "a"}]
    assert built["labels"] == LABELS
    assert built["strategy"] == "weighted:50,50"
    assert built["alpha"] == 0.01


@pytest.mark.parametrize("case", ["no test", "no auto-promote", "paused", "concluded"])
def test_it_does_not_look_without_a_running_auto_promoted_test(
    verdicts: list[dict[str, Any]], case: str
) -> None:
    current = {
        "no test": None,
        "no auto-promote": _served(auto_promote=False),
        "paused": _served(status="paused"),
        "concluded": _served(status="concluded"),
    }[case]
    holder = Holder()
    check = DecisionCheck(holder.events, holder.announce, every=1)
    asyncio.run(_feed(check, current, 4))
    assert holder.reads == 0
    assert check.feedbacks == 4


def test_one_look_at_a_time(verdicts: list[dict[str, Any]]) -> None:
    holder = Holder()
    gate = asyncio.Event()

    async def slow_events() -> list[dict[str, Any]]:
        holder.reads += 1
        await gate.wait()
        return []

    check = DecisionCheck(slow_events, holder.announce, every=1)

    async def scenario() -> None:
        current = _served()
        for _ in range(5):
            check.after_feedback(current)
            await asyncio.sleep(0)
        assert check.looking
        assert holder.reads == 1  # the others came while the first look was in flight
        gate.set()
        await _feed(check, current, 0)
        check.after_feedback(current)
        await _feed(check, current, 0)
        assert holder.reads == 2

    asyncio.run(scenario())


def test_a_failing_look_is_logged_and_the_next_one_runs(
    verdicts: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    holder = Holder()
    holder.fail_reading = True
    check = DecisionCheck(holder.events, holder.announce, every=1)

    async def scenario() -> None:
        await _feed(check, _served(), 1)
        holder.fail_reading = False
        await _feed(check, _served(), 1)

    asyncio.run(scenario())
    assert "could not evaluate the sequential test" in caplog.text
    assert holder.reads == 2
