"""Which variant answers a request: the router of an A/B test.

`Router` routes a test's requests between its variants with one `Strategy` (parsed from
its spec by `assay.abtests.strategies.parse_strategy`), in the process that serves the
models:

- weighted: a random split by weight;
- sticky: the same split, but a request key always reaches the same variant, across
  requests, processes and restarts. Weighted rendezvous hashing: each (key, variant)
  pair gets a fixed score, the best score wins, so when a weight changes only the keys
  that must move do, and a zero weight gets no keys;
- round-robin: variants in turn, in order;
- shadow: the primary answers every request; `shadows` names the variants that get a
  copy of it;
- epsilon-greedy, ucb, thompson: multi-armed bandits. Feedback (a reward per request,
  1/0 for a right/wrong answer) is given back with `Router.reward`, and traffic shifts
  toward the variant with the better mean reward.

Routing is pure and in-process: `choose` costs a few microseconds and does no I/O, and
this module imports nothing outside the standard library but `assay.errors` and
`assay.abtests.strategies`.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypedDict

from assay.abtests.strategies import WEIGHTED, Strategy, check_weights, parse_strategy
from assay.errors import InvalidArgumentError

__all__ = [
    "ArmStats",
    "Router",
]

# Sticky scores use 52 bits of the hash: (x + 0.5) / 2**52 lies strictly inside (0, 1),
# and so does every double it rounds to, so the logarithm is finite and negative.
_HASH_BITS_DROPPED = 64 - 52
_HASH_SCALE = 2.0**-52


class ArmStats(TypedDict):
    """The feedback one variant has had: how many rewards, and their mean (None if none)."""

    rewards: int
    mean: float | None


class Router:
    """Routes requests between the variants of one A/B test, with one strategy.

    `choose` picks the variant that answers a request; `shadows` names the variants that
    get a copy of it (shadow strategy only); `reward` gives back a request's feedback.
    Feedback is recorded for every strategy (see `arms`), but only the bandits route by
    it. It may arrive late and in any order: a reward just adds to its variant's totals.

    Until every variant has had some feedback, a bandit routes round-robin, so that a
    variant whose feedback is late, or never comes, keeps its even share rather than
    all of the traffic or none of it. After that:

    - epsilon-greedy: with probability epsilon a variant at random, else the best mean;
    - ucb (UCB1): the best mean + sqrt(2 ln N / n). Rewards outside [0, 1] are scaled
      by the range seen so far, which makes UCB1 cautious with wide-ranging rewards;
    - thompson: a draw from each variant's posterior mean, the best draw wins. While
      every reward so far lies in [0, 1], a Beta(1 + successes, 1 + failures) posterior,
      a reward r counting as r of a success; after that a normal posterior with the
      sample mean and variance / n, under a weak prior (one pseudo-observation of the
      variance of all rewards together).

    A Router is not thread-safe: the inference app calls it from its event loop. Share
    one between threads only behind a lock.

    `seed` fixes the random choices (for tests; None in production). `salt` mixes into
    sticky hashing: give each A/B test its own (its name) so that two tests split the
    same users independently; changing it moves every key.
    """

    def __init__(
        self,
        strategy: Strategy,
        labels: Sequence[str],
        *,
        seed: int | None = None,
        salt: str = "",
    ) -> None:
        # Re-parsing checks the strategy against these labels, with the parse messages.
        self._strategy = parse_strategy(strategy.spec, labels)
        self._labels = tuple(labels)
        self._index = {label: i for i, label in enumerate(self._labels)}
        self._rng = random.Random(seed)
        self._salt = salt.encode()
        self._next = 0  # round-robin's (and the bandits' warm-up) position
        self._epsilon = self._strategy.epsilon or 0.0
        self._feedback = _Feedback(len(self._labels))
        self._others: dict[str, list[str]] = {}
        if self._strategy.kind == "shadow":
            self._others = {
                label: [other for other in self._labels if other != label] for label in self._labels
            }
        # Filled in by _configure from the weights, for weighted and sticky.
        self._cumulative: list[float] = []
        self._positive: tuple[str, ...] = ()
        self._total = 0.0
        self._sticky: list[tuple[str, hashlib.blake2b, float]] = []
        self._choose: Callable[[str | None], str] = self._route_round_robin
        self._configure()

    @property
    def strategy(self) -> Strategy:
        """The strategy routed with, with the weights last set."""
        return self._strategy

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def weights(self) -> tuple[float, ...] | None:
        """Each variant's configured share of requests, as fractions summing to 1.

        What a sample-ratio check compares the observed split with: the weights for
        weighted and sticky, equal shares for round-robin. None where no split is fixed
        in advance: the bandits (traffic follows the rewards) and shadow (every variant
        sees every request).
        """
        kind = self._strategy.kind
        if kind in WEIGHTED:
            weights = self._weights()
            total = math.fsum(weights)
            return tuple(w / total for w in weights)
        if kind == "round-robin":
            return tuple(1.0 / len(self._labels) for _ in self._labels)
        return None

    @property
    def arms(self) -> dict[str, ArmStats]:
        """The feedback each variant has had: `{"rewards": n, "mean": mean or None}`."""
        fb = self._feedback
        return {
            label: ArmStats(rewards=fb.n[i], mean=fb.mean[i] if fb.n[i] else None)
            for i, label in enumerate(self._labels)
        }

    def choose(self, key: str | None = None) -> str:
        """The variant that answers this request.

        `key` identifies the caller for sticky routing (a user or session id); other
        strategies ignore it.

        Raises:
            InvalidArgumentError: sticky routing without a key.
        """
        return self._choose(key)

    def shadows(self, chosen: str) -> list[str]:
        """The variants that get a copy of a request `chosen` answers: with the shadow
        strategy all the others, in order; with any other, none.

        Raises:
            InvalidArgumentError: `chosen` is not a variant.
        """
        if chosen not in self._index:
            raise self._unknown(chosen)
        others = self._others.get(chosen)
        return list(others) if others else []

    def reward(self, label: str, value: float) -> None:
        """Record a request's feedback: a reward for the variant that answered it.

        Raises:
            InvalidArgumentError: `label` is not a variant, or `value` is not a finite number.
        """
        i = self._index.get(label)
        if i is None:
            raise self._unknown(label)
        self._feedback.add(i, _check_reward(value, label))

    def restore(self, rewards: Iterable[tuple[str, float]]) -> None:
        """Replace the feedback recorded so far with `rewards`, e.g. after a restart from
        the logged feedback; order does not matter.

        Raises:
            InvalidArgumentError: a label that is not a variant, or a reward that is not
                a finite number. The feedback recorded before is then kept as it was.
        """
        feedback = _Feedback(len(self._labels))
        for label, value in rewards:
            i = self._index.get(label)
            if i is None:
                raise self._unknown(label)
            feedback.add(i, _check_reward(value, label))
        self._feedback = feedback

    def set_weights(self, weights: Sequence[float]) -> None:
        """Change the split of a weighted or sticky strategy, one weight per variant.

        Sticky keys move only as far as the change requires: from a variant whose
        share shrank to one whose share grew.

        Raises:
            InvalidArgumentError: not a weighted or sticky strategy, or weights that are
                not one non-negative number per variant with a positive sum.
        """
        kind = self._strategy.kind
        if kind not in WEIGHTED:
            raise InvalidArgumentError(
                f"Strategy {self._strategy.spec!r} has no weights to set; only weighted "
                f"and sticky do.",
                strategy=self._strategy.spec,
            )
        checked = check_weights(list(weights), self._labels, "the new weights")
        self._strategy = replace(self._strategy, weights=checked)
        self._configure()

    # ---- routing, one method per strategy; `choose` calls the one chosen here -------------

    def _configure(self) -> None:
        kind = self._strategy.kind
        if kind in WEIGHTED:
            weights = self._weights()
            positive = [(label, w) for label, w in zip(self._labels, weights, strict=True) if w]
            if kind == "weighted":
                self._positive = tuple(label for label, _ in positive)
                self._cumulative = []
                running = 0.0
                for _, w in positive:
                    running += w
                    self._cumulative.append(running)
                self._total = running
                self._choose = self._route_weighted
            else:
                self._sticky = [
                    (label, self._label_hasher(label), 1.0 / w) for label, w in positive
                ]
                self._choose = self._route_sticky
        elif kind == "shadow":
            primary = self._strategy.primary
            assert primary is not None  # a shadow Strategy always has one
            self._choose = lambda key: primary
        elif kind == "epsilon-greedy":
            self._choose = self._route_epsilon_greedy
        elif kind == "ucb":
            self._choose = self._route_ucb
        elif kind == "thompson":
            self._choose = self._route_thompson
        else:
            self._choose = self._route_round_robin

    def _weights(self) -> tuple[float, ...]:
        weights = self._strategy.weights
        return tuple(1.0 for _ in self._labels) if weights is None else weights

    def _label_hasher(self, label: str) -> hashlib.blake2b:
        # The hashed bytes are part of the contract: change them and every sticky key
        # moves. Lengths prefix salt and label, so no two (salt, label, key) collide.
        name = label.encode()
        prefix = (
            len(self._salt).to_bytes(4, "big") + self._salt + len(name).to_bytes(4, "big") + name
        )
        return hashlib.blake2b(prefix, digest_size=8)

    def _route_weighted(self, key: str | None) -> str:
        i = bisect_right(self._cumulative, self._rng.random() * self._total)
        # random() * total can round up to total itself; that belongs to the last variant.
        positive = self._positive
        return positive[i] if i < len(positive) else positive[-1]

    def _route_sticky(self, key: str | None) -> str:
        if not key:
            raise InvalidArgumentError(
                "Sticky routing needs a request key (a user or session id) to keep each "
                "caller on one variant; send one with the request.",
                strategy=self._strategy.spec,
            )
        data = key.encode()
        best = ""
        best_score = math.inf
        # Weighted rendezvous hashing: the lowest -ln(u) / w wins (the same as the highest
        # -w / ln(u)), u the hash of (label, key) in (0, 1). The winner is variant i with
        # probability w_i / sum(w), and raising one weight only ever pulls keys to it.
        for label, prefix, inverse_weight in self._sticky:
            hasher = prefix.copy()
            hasher.update(data)
            bits = int.from_bytes(hasher.digest(), "big") >> _HASH_BITS_DROPPED
            score = -math.log((bits + 0.5) * _HASH_SCALE) * inverse_weight
            if score < best_score:
                best, best_score = label, score
        return best

    def _route_round_robin(self, key: str | None) -> str:
        i = self._next
        self._next = i + 1 if i + 1 < len(self._labels) else 0
        return self._labels[i]

    def _route_epsilon_greedy(self, key: str | None) -> str:
        fb = self._feedback
        if fb.unseen:
            return self._route_round_robin(key)
        if self._rng.random() < self._epsilon:
            return self._rng.choice(self._labels)
        return self._labels[_argmax(fb.mean)]

    def _route_ucb(self, key: str | None) -> str:
        fb = self._feedback
        if fb.unseen:
            return self._route_round_robin(key)
        twice_log_total = 2.0 * math.log(fb.total)
        if fb.unit:
            low, span = 0.0, 1.0
        else:
            low, span = fb.low, fb.high - fb.low
        best, best_score = 0, -math.inf
        for i, n in enumerate(fb.n):
            mean = (fb.mean[i] - low) / span if span > 0 else 0.0
            score = mean + math.sqrt(twice_log_total / n)
            if score > best_score:
                best, best_score = i, score
        return self._labels[best]

    def _route_thompson(self, key: str | None) -> str:
        fb = self._feedback
        if fb.unseen:
            return self._route_round_robin(key)
        rng = self._rng
        best, best_draw = 0, -math.inf
        if fb.unit:
            for i, n in enumerate(fb.n):
                successes = fb.sum[i]
                draw = rng.betavariate(1.0 + successes, 1.0 + max(n - successes, 0.0))
                if draw > best_draw:
                    best, best_draw = i, draw
        else:
            prior_variance = fb.m2_all / fb.total if fb.m2_all > 0 else 1.0
            for i, n in enumerate(fb.n):
                sd = math.sqrt((fb.m2[i] + prior_variance) / n / n)
                draw = fb.mean[i] + sd * rng.gauss()
                if draw > best_draw:
                    best, best_draw = i, draw
        return self._labels[best]

    def _unknown(self, label: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"{label!r} is not a variant of this A/B test; use one of {', '.join(self._labels)}.",
            label=label,
        )


class _Feedback:
    """Running reward totals per variant and over all, updated in O(1) per reward.

    Means and squared deviations by Welford's method, which stays accurate for rewards
    far from zero (revenue) where sum-of-squares arithmetic cancels.
    """

    __slots__ = (
        "high",
        "low",
        "m2",
        "m2_all",
        "mean",
        "mean_all",
        "n",
        "sum",
        "total",
        "unit",
        "unseen",
    )

    def __init__(self, arms: int) -> None:
        self.n = [0] * arms
        self.sum = [0.0] * arms
        self.mean = [0.0] * arms
        self.m2 = [0.0] * arms
        self.unseen = arms  # variants with no feedback yet
        self.total = 0
        self.mean_all = 0.0
        self.m2_all = 0.0
        self.low = math.inf
        self.high = -math.inf
        self.unit = True  # every reward so far within [0, 1]

    def add(self, i: int, value: float) -> None:
        if self.n[i] == 0:
            self.unseen -= 1
        n = self.n[i] = self.n[i] + 1
        self.sum[i] += value
        delta = value - self.mean[i]
        self.mean[i] += delta / n
        self.m2[i] += delta * (value - self.mean[i])
        self.total += 1
        delta = value - self.mean_all
        self.mean_all += delta / self.total
        self.m2_all += delta * (value - self.mean_all)
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if not 0.0 <= value <= 1.0:
            self.unit = False


def _check_reward(value: float, label: str) -> float:
    try:
        reward = float(value)
    except (TypeError, ValueError):
        reward = math.nan
    if not math.isfinite(reward):
        raise InvalidArgumentError(
            f"Reward {value!r} for variant {label!r} is not a finite number; give a "
            f"number, or 1/0 for a right/wrong answer.",
            label=label,
        )
    return reward


def _argmax(values: Sequence[float]) -> int:
    best, best_value = 0, values[0]
    for i in range(1, len(values)):
        if values[i] > best_value:
            best, best_value = i, values[i]
    return best
