"""Live answers waiting for their feedback, and the feedback joined to them by request id.

A router remembers each live answer (its variant and predictions) so that feedback sent
later with the answer's `request_id` can be credited to the variant that answered, once:
a second feedback for the same id is a duplicate, not a second reward. A `label` (the
ground truth) becomes a reward by comparing it with the predictions.

The local router keeps one `Answers` per process and fills it from the other
processes' event logs as well; on a Ray cluster one `Answers` lives in the test's
shared-state actor, so every router replica joins against all of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from assay.errors import InvalidArgumentError, NotFoundError

# Feedback for an answer older than the last million is refused (404): the answer is
# still in the log and the analysis, but the router no longer holds it.
MAX_ANSWERED = 1_000_000


class Answers:
    """The latest `MAX_ANSWERED` live answers and the rewards given to them."""

    def __init__(self, limit: int = MAX_ANSWERED) -> None:
        self.limit = limit
        # request id -> (variant, predictions as JSON): strings in tuples, nothing the
        # garbage collector keeps scanning.
        self.answered: dict[str, tuple[str, str]] = {}
        self.rewards: dict[str, float] = {}

    def remember(self, request_id: str, label: str, predictions: str) -> None:
        """Keep a live answer for its feedback; the oldest goes past the limit."""
        answered = self.answered
        if request_id in answered:
            return
        if len(answered) >= self.limit:
            del answered[next(iter(answered))]
        answered[request_id] = (label, predictions)

    def find(self, request_id: str) -> tuple[str, str] | None:
        return self.answered.get(request_id)

    def take(self, event: dict[str, Any]) -> tuple[str, float] | None:
        """Take in one logged event (another router's, or an earlier run's). Returns the
        (variant, reward) a feedback event credits, when its answer is known."""
        kind = event.get("t")
        if kind == "a" and event.get("live", True) and event.get("ok"):
            self.remember(str(event["id"]), str(event["v"]), json.dumps(event.get("pred")))
        elif kind == "f":
            rid, reward = str(event.get("id")), event.get("reward")
            if rid in self.rewards or not isinstance(reward, int | float):
                return None
            self.rewards[rid] = float(reward)
            found = self.answered.get(rid)
            if found is not None:
                return found[0], float(reward)
        return None

    def join(
        self, test: str, request_id: str, reward: float | None, truth: Any
    ) -> tuple[str, float | None, bool]:
        """Join feedback to its answer: (variant, reward, duplicate). A duplicate's reward
        is None (the first one counted).

        Raises:
            NotFoundError: no live answer has that request id.
            InvalidArgumentError: a label that does not fit the predictions.
        """
        found = self.answered.get(request_id)
        if found is None:
            raise NotFoundError(
                f"No prediction with request_id {request_id!r} in A/B test {test!r} "
                "(while paused or concluded, predictions take no feedback).",
                request_id=request_id,
            )
        label, predictions = found
        if request_id in self.rewards:
            return label, None, True
        if reward is None:
            reward = label_reward(truth, json.loads(predictions))
        self.rewards[request_id] = reward
        return label, reward, False

    def credited(self, labels: tuple[str, ...] | list[str]) -> Iterator[tuple[str, float]]:
        """Every (variant, reward) joined so far, for the variants in `labels`."""
        for rid, reward in self.rewards.items():
            found = self.answered.get(rid)
            if found is not None and found[0] in labels:
                yield found[0], reward


def label_reward(truth: Any, predictions: Any) -> float:
    """1 for a correct prediction, 0 for a wrong one; the share correct for several rows."""
    if not isinstance(predictions, list) or not predictions:
        raise InvalidArgumentError("This prediction has no labels to compare the truth with.")
    truths = truth if isinstance(truth, list) else [truth]
    if len(truths) != len(predictions):
        raise InvalidArgumentError(
            f"'label' has {len(truths)} value(s) but the prediction had {len(predictions)} "
            "row(s); send one label per row.",
            field="label",
        )
    return sum(_same(t, p) for t, p in zip(truths, predictions, strict=True)) / len(truths)


def _same(truth: Any, predicted: Any) -> bool:
    if isinstance(truth, int | float) and isinstance(predicted, int | float):
        return float(truth) == float(predicted)
    return str(truth) == str(predicted)
