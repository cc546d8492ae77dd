"""What monitoring stores and reports, as plain values (no I/O, no ORM)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from typing_extensions import TypedDict

from assay.errors import InvalidArgumentError
from assay.serialize import json_shape

MonitorState = Literal["ok", "warning", "drift"]
"""A check's verdict on a feature, the prediction, the performance or the whole window."""
RetrainStatus = Literal["running", "registered", "challenged", "failed"]
"""A retrain's run is running; it ended with a new version registered, with that version
challenging in an A/B test, or failed."""

STATES: tuple[MonitorState, ...] = ("ok", "warning", "drift")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def worst(states: list[MonitorState]) -> MonitorState:
    """The worst of some states (`ok` for none)."""
    return max(states, key=STATES.index, default="ok")


def parse_duration(text: str, what: str = "A duration") -> float:
    """Seconds in `90s`, `15m`, `1h`, `1d`, `2w`.

    Raises:
        InvalidArgumentError: anything else.
    """
    found = _DURATION.match(text.strip())
    if not found or float(found.group(1)) <= 0:
        raise InvalidArgumentError(
            f"{what} {text!r} is not a duration: write a number and a unit, e.g. 30m, 1h, 1d.",
            value=text,
        )
    return float(found.group(1)) * _UNIT_S[found.group(2)]


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC.

    Raises:
        InvalidArgumentError: not an ISO 8601 time.
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgumentError(
            f"{text!r} is not a time: write it as ISO 8601, e.g. 2026-05-01T10:00 (UTC).",
            value=text,
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """Which logged traffic a check reads: the last `requests`, the last `seconds`, or
    from `start` to `end` (either may be open). `end` defaults to now."""

    requests: int | None = None
    seconds: float | None = None
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def parse(
        cls, last: str | int | None = None, start: str | None = None, end: str | None = None
    ) -> Window:
        """`last` is a number of requests (`5000`) or a duration (`1h`, `1d`); `start` and
        `end` are ISO 8601 times. `last` with a `start` is refused.

        Raises:
            InvalidArgumentError: a malformed value, or a combination that means nothing.
        """
        begin = parse_time(start) if start else None
        finish = parse_time(end) if end else None
        if begin is not None and finish is not None and finish <= begin:
            raise InvalidArgumentError("The window's end must be after its start.")
        if last is None:
            return cls(start=begin, end=finish)
        if begin is not None:
            raise InvalidArgumentError("Give either --last or --from, not both.")
        text = str(last).strip()
        if text.isdigit():
            if int(text) < 1:
                raise InvalidArgumentError("--last takes at least 1 request.")
            return cls(requests=int(text), end=finish)
        return cls(seconds=parse_duration(text, "--last"), end=finish)

    def bounds(self, now: datetime) -> tuple[datetime | None, datetime]:
        """The time range this window covers at `now` (the start is open for `requests`)."""
        end = self.end or now
        if self.seconds is not None:
            return end - timedelta(seconds=self.seconds), end
        return self.start, end

    def describe(self) -> str:
        if self.requests is not None:
            text = f"last {self.requests:,} requests"
        elif self.seconds is not None:
            text = f"last {_human_s(self.seconds)}"
        elif self.start is not None:
            text = f"from {self.start.isoformat(timespec='seconds')}"
        else:
            text = "everything logged"
        if self.end is not None:
            text += f" to {self.end.isoformat(timespec='seconds')}"
        return text


def _human_s(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# ---- the config ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """When one feature (or all of them) turns `warning` or `drift`.

    A feature drifts when its test rejects "same distribution as training" after the Holm
    correction across features (`alpha`, the monitor's) and its population stability index
    exceeds what sampling alone gives by `psi_min` (a shift worth acting on), or when the
    index reaches `psi_drift`.
    It is a warning at `psi_warning`, when its missing share rose by `missing` or more
    over training, or when `out_of_range` or more of its rows fall outside what training
    saw (a range, or new categories). The PSI and range thresholds apply beyond what
    sampling alone gives samples of the sizes compared, so they hold for small ones too.
    """

    psi_min: float = 0.02
    psi_warning: float = 0.1
    psi_drift: float = 0.25
    missing: float = 0.05
    out_of_range: float = 0.01
    ignore: bool = False


@dataclass(frozen=True)
class Webhook:
    """Where a change of state is posted (JSON); private, loopback and link-local
    addresses are refused unless `allow_private` (metadata endpoints always are)."""

    url: str
    timeout_s: float = 5.0
    allow_private: bool = False


@dataclass(frozen=True)
class OnDrift:
    """What a check that finds drift does next: snapshot the window into `snapshot` (a
    dataset), retrain on it (with or without the training data), and challenge the
    champion with the new model (`challenge`: an A/B strategy, or None for no test)."""

    snapshot: str
    retrain: bool = True
    alone: bool = False
    challenge: str | None = "weighted:50,50"


@dataclass(frozen=True)
class MonitorConfig:
    """A monitor's settings (`assay monitor config NAME FILE`); see `monitoring.config`."""

    alpha: float = 0.05
    min_rows: int = 100
    window: Window = field(default_factory=lambda: Window(requests=10_000))
    schedule_s: float | None = None
    reference: str | None = None
    label: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    features: dict[str, Thresholds] = field(default_factory=dict)
    min_performance: float | None = None
    webhook: Webhook | None = None
    on_drift: OnDrift | None = None

    def for_feature(self, name: str) -> Thresholds:
        return self.features.get(name, self.thresholds)


# ---- a check's report -------------------------------------------------------------------------


class DriftHistogram(TypedDict):
    """Live against training: shares per bin (numeric) or per category."""

    bins: list[str]
    """Bin edges as text (`[a, b)`) or category names."""
    reference: list[float]
    live: list[float]


class FeatureDrift(TypedDict):
    """One input feature (or the model's output, `prediction`) against training."""

    name: str
    kind: str
    """numeric or categorical."""
    test: str | None
    """ks (Kolmogorov–Smirnov) or chi2; null when it could not run."""
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    """Holm-adjusted across every feature tested in this check."""
    psi: float | None
    """Population stability index (10 quantile bins of training, or categories)."""
    psi_noise: float | None
    """The PSI sampling alone gives samples of these sizes; drift needs `psi_min` beyond it."""
    live_rows: int
    reference_rows: int
    missing_live: float | None
    missing_reference: float | None
    out_of_range: float | None
    """Share of live rows outside training's range (numeric) or of unseen categories."""
    out_of_range_noise: float | None
    """That share with no shift at all: 2/(m+1) for m training values, or (Good–Turing)
    the share of training rows in categories seen once; the threshold is on top of it."""
    new_categories: list[str]
    state: MonitorState
    reasons: list[str]
    """Why it is not ok, in words."""
    histogram: DriftHistogram | None


class PerformancePoint(TypedDict):
    start: float
    """Unix seconds."""
    end: float
    n: int
    value: float | None
    lo: float | None
    hi: float | None


class Performance(TypedDict):
    """The model's performance from feedback joined to its predictions."""

    metric: str | None
    """accuracy, mean_abs_error or reward; null without feedback."""
    higher_is_better: bool
    n: int
    value: float | None
    ci: tuple[float | None, float | None]
    """95%: Wilson for accuracy, Student t otherwise."""
    state: MonitorState
    series: dict[str, list[PerformancePoint]]
    """By model version (`MODEL@V`), over time."""


class MonitorReport(TypedDict):
    """What `assay monitor NAME` prints and records."""

    monitor: str
    target: str
    """service or abtest."""
    model: str
    """`MODEL@V` whose training data is the reference."""
    reference: str | None
    """The reference data version (`DATASET@V`) and file."""
    reference_file: str | None
    window: Window
    window_text: str
    start: float | None
    """Unix seconds of the first and last logged request read."""
    end: float | None
    requests: int
    rows: int
    segments: int
    skipped_segments: int
    """Segments that could not be read (corrupt or unreadable); named in `notes`."""
    alpha: float
    state: MonitorState
    features: list[FeatureDrift]
    prediction: FeatureDrift | None
    performance: Performance
    notes: list[str]
    at: str
    """ISO 8601: when the check ran."""
    actions: list[str]
    """What the check did beyond reporting (a webhook, a snapshot, a retrain)."""


# ---- stored --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Monitor:
    """A monitored service or A/B test: its config and its latest state."""

    name: str
    target: str
    config_text: str
    state: MonitorState | None
    checked_at: datetime | None
    next_check_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MonitorCheck:
    """One recorded check: when, what it read, its state and each feature's."""

    id: int
    monitor: str
    at: datetime
    state: MonitorState
    model: str
    reference: str | None
    window_start: float | None
    window_end: float | None
    rows: int
    summary: dict[str, Any]
    """{"features": {name: {state, psi, p_adjusted}}, "prediction": ..., "performance": ...}."""


@dataclass(frozen=True)
class Snapshot:
    """A window of logged traffic committed as a data version, labels joined."""

    dataset: str
    version: int
    source: str
    """`service NAME` or `abtest NAME`."""
    models: tuple[str, ...]
    """The model versions that answered the rows (`MODEL@V`)."""
    window_start: float | None
    window_end: float | None
    rows: int
    labeled: int
    path: str
    """The file in the version (the training data's own name and format)."""
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.version}"

    __get_pydantic_core_schema__ = json_shape(computed=("ref",))


@dataclass(frozen=True)
class Retrain:
    """A model retrained on live data: the run, its data, the new version, its challenge."""

    run_id: str
    model: str
    """The model version retrained (`MODEL@V`)."""
    with_data: str
    """The live data version (`DATASET@V`)."""
    data: str
    """What the run trained on: training data plus live rows, or the live rows alone."""
    alone: bool
    status: RetrainStatus
    """running, registered (a new version), challenged (an A/B test runs), or failed."""
    new_model: str | None
    abtest: str | None
    challenge: str | None
    """The A/B strategy asked for, if any."""
    error: str | None
    created_at: datetime
    updated_at: datetime
