"""The strategy specs of an A/B test: what a user writes, parsed and checked.

A strategy is named by a spec, as a user writes it after `--strategy`:

- `weighted[:W1,W2,...]`: a random split by weight, one weight per variant in order
  (non-negative, any positive sum: `70,30` and `7,3` are the same split). No weights:
  an even split.
- `sticky[:W1,W2,...]`: the same split, but a request key (a user id, a session) always
  reaches the same variant, across requests, processes and restarts.
- `round-robin`: variants in turn, in order. It takes no weights (`round-robin:70,30` is
  refused): every variant gets an equal share.
- `shadow:LABEL`: LABEL answers every request; every other variant gets a copy, which
  the caller runs in the background and whose answer is never sent.
- `epsilon-greedy[:EPSILON]`, `ucb`, `thompson`: multi-armed bandits, whose traffic
  shifts toward the variant with the better mean reward.

`parse_strategy` turns a spec such as `weighted:70,30` or `thompson` into a `Strategy`
(a value, stored with the test), checking it against the test's variants; `spec` renders
one back. How each strategy routes is `assay.abtests.routing`'s. This module imports
nothing outside the standard library but `assay.errors`, so the control plane can check
a spec without loading anything else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from assay.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_EPSILON",
    "STRATEGIES",
    "WEIGHTED",
    "Strategy",
    "check_weights",
    "parse_strategy",
]

STRATEGIES = (
    "weighted",
    "sticky",
    "round-robin",
    "shadow",
    "epsilon-greedy",
    "ucb",
    "thompson",
)

DEFAULT_EPSILON = 0.1

# What every parse error ends with, so the user sees the accepted forms in one line.
FORMS = (
    "weighted[:W1,W2,...], sticky[:W1,W2,...], round-robin, shadow:LABEL, "
    "epsilon-greedy[:EPSILON], ucb, thompson"
)

WEIGHTED = frozenset({"weighted", "sticky"})  # the strategies that take weights
_BANDITS = frozenset({"epsilon-greedy", "ucb", "thompson"})


@dataclass(frozen=True)
class Strategy:
    """A routing strategy, as parsed from a spec: a value, stored with its A/B test.

    `weights` (weighted and sticky only) are as the user gave them, one per variant in
    order; None means an even split. `primary` is shadow's answering variant; `epsilon`
    is epsilon-greedy's share of random exploration. `spec` renders it back, so
    `parse_strategy(s.spec, labels) == s`.
    """

    kind: str
    weights: tuple[float, ...] | None = None
    primary: str | None = None
    epsilon: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in STRATEGIES:
            raise InvalidArgumentError(
                f"Unknown routing strategy {self.kind!r}; use one of {FORMS}.", kind=self.kind
            )
        if self.weights is not None and self.kind not in WEIGHTED:
            raise InvalidArgumentError(
                f"Strategy {self.kind!r} takes no weights; only weighted and sticky do.",
                kind=self.kind,
            )
        if (self.primary is None) == (self.kind == "shadow"):
            raise InvalidArgumentError(
                "A shadow strategy, and only one, names its primary variant: `shadow:LABEL`.",
                kind=self.kind,
            )
        if self.epsilon is not None and self.kind != "epsilon-greedy":
            raise InvalidArgumentError(
                f"Strategy {self.kind!r} takes no epsilon; only epsilon-greedy does.",
                kind=self.kind,
            )

    @property
    def spec(self) -> str:
        """The spec this strategy parses from, e.g. `weighted:70,30` or `shadow:A`."""
        if self.kind in WEIGHTED and self.weights is not None:
            return f"{self.kind}:{','.join(_number(w) for w in self.weights)}"
        if self.kind == "shadow":
            return f"shadow:{self.primary}"
        if self.kind == "epsilon-greedy":
            epsilon = DEFAULT_EPSILON if self.epsilon is None else self.epsilon
            return f"epsilon-greedy:{_number(epsilon)}"
        return self.kind

    @property
    def is_bandit(self) -> bool:
        """Whether traffic follows the rewards given back (epsilon-greedy, ucb, thompson)."""
        return self.kind in _BANDITS


def parse_strategy(spec: str, labels: Sequence[str]) -> Strategy:
    """Parse a strategy spec for an A/B test between the variants `labels`, in order.

    Raises:
        InvalidArgumentError: an unknown strategy, weights that are not one non-negative
            number per variant with a positive sum, a shadow primary that is not a
            variant, an epsilon outside [0, 1], arguments to a strategy that takes none,
            fewer than 2 variants or a label given twice. The message names the problem
            and the accepted forms.
    """
    _check_labels(labels)
    name, colon, arg = spec.strip().partition(":")
    kind = name.strip().lower().replace("_", "-")
    arg = arg.strip()
    if kind not in STRATEGIES:
        raise InvalidArgumentError(
            f"Unknown routing strategy {name.strip()!r}; use one of {FORMS}.", strategy=spec
        )
    if colon and not arg:
        raise InvalidArgumentError(
            f"Strategy {spec!r} has nothing after ':'; use one of {FORMS}.", strategy=spec
        )
    if kind in WEIGHTED:
        if not arg:
            return Strategy(kind)
        return Strategy(kind, weights=check_weights(arg.split(","), labels, f"{spec!r}"))
    if kind == "shadow":
        if not arg:
            raise InvalidArgumentError(
                f"A shadow strategy names the variant that answers: `shadow:{labels[0]}`; "
                f"accepted forms: {FORMS}.",
                strategy=spec,
            )
        if arg not in labels:
            raise InvalidArgumentError(
                f"Shadow primary {arg!r} is not one of the variants ({', '.join(labels)}); "
                f"use `shadow:LABEL` with one of them.",
                strategy=spec,
            )
        return Strategy(kind, primary=arg)
    if kind == "epsilon-greedy":
        return Strategy(kind, epsilon=_check_epsilon(arg, spec) if arg else DEFAULT_EPSILON)
    if arg:
        raise InvalidArgumentError(
            f"Strategy {kind!r} takes no arguments, got {arg!r}; write just `{kind}` "
            f"(accepted forms: {FORMS}).",
            strategy=spec,
        )
    return Strategy(kind)


def _check_labels(labels: Sequence[str]) -> None:
    if isinstance(labels, str):
        raise InvalidArgumentError(
            f"Give the variant labels as a list, not the string {labels!r}.", labels=labels
        )
    if len(labels) < 2:
        raise InvalidArgumentError(
            f"An A/B test needs at least 2 variants, got {len(labels)} "
            f"({', '.join(labels) or 'none'}); add another.",
            labels=list(labels),
        )
    seen: set[str] = set()
    for label in labels:
        if not label:
            raise InvalidArgumentError("A variant label is empty; give each one a name.")
        if label in seen:
            raise InvalidArgumentError(
                f"Variant label {label!r} appears more than once; give each variant its own.",
                labels=list(labels),
            )
        seen.add(label)


def check_weights(
    values: Sequence[str | float], labels: Sequence[str], where: str
) -> tuple[float, ...]:
    """One finite, non-negative number per variant with a positive sum, as floats."""
    example = ",".join("1" for _ in labels)
    if len(values) != len(labels):
        raise InvalidArgumentError(
            f"{len(values)} weights in {where} for {len(labels)} variants "
            f"({', '.join(labels)}); give one weight per variant, in order "
            f"(e.g. `weighted:{example}`).",
            weights=[str(v) for v in values],
        )
    weights: list[float] = []
    for value in values:
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"Weight {value!r} in {where} is not a number; weights are non-negative "
                f"numbers, one per variant (e.g. `weighted:{example}`).",
                weight=str(value),
            ) from None
        if not math.isfinite(weight):
            raise InvalidArgumentError(
                f"Weight {value!r} in {where} is not a finite number; weights are "
                f"non-negative numbers, one per variant (e.g. `weighted:{example}`).",
                weight=str(value),
            )
        if weight < 0:
            raise InvalidArgumentError(
                f"Weight {value!r} in {where} is negative; weights are non-negative "
                f"numbers, one per variant (e.g. `weighted:{example}`).",
                weight=str(value),
            )
        weights.append(weight)
    if not any(weights):
        raise InvalidArgumentError(
            f"The weights in {where} sum to zero; give at least one variant a positive "
            f"weight (e.g. `weighted:{example}`).",
        )
    return tuple(weights)


def _check_epsilon(text: str, spec: str) -> float:
    try:
        epsilon = float(text)
    except ValueError:
        raise InvalidArgumentError(
            f"Epsilon {text!r} in {spec!r} is not a number; use a share of exploration "
            f"between 0 and 1, e.g. `epsilon-greedy:0.1`.",
            strategy=spec,
        ) from None
    if not 0.0 <= epsilon <= 1.0:  # also refuses nan
        raise InvalidArgumentError(
            f"Epsilon {text} in {spec!r} is not between 0 and 1; use a share of "
            f"exploration such as `epsilon-greedy:0.1`.",
            strategy=spec,
        )
    return epsilon


def _number(value: float) -> str:
    """A weight or epsilon as a spec writes it: `70`, not `70.0`; exact otherwise."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
