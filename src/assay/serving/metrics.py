"""A service's Prometheus metrics: written by the inference app, read by the control plane.

Metric names (the contract with `summarize` and with anyone's Prometheus):

- `assay_requests_total{model,version,protocol,code}`: prediction requests answered,
  by protocol (`v1`, `v2`) and HTTP status.
- `assay_request_errors_total{model,version,kind}`: the failed ones among them, by kind
  (`invalid_input`, `not_found`, `too_large`, `media_type`, `not_ready`, `model`,
  `timeout`).
- `assay_request_duration_seconds{model,version}`: time to answer a prediction request,
  from the first byte read to the response built.
- `assay_model_info{model,version}`: 1 for the version a worker serves, 0 for one it
  served before (with a `pid` label when the service runs several workers).

With several worker processes, `prometheus_client`'s multiprocess mode aggregates them:
`PROMETHEUS_MULTIPROC_DIR` must be set before `prometheus_client` is first imported
(the service process does that), and `Metrics(multiproc_dir=...)` reads every worker's
files when rendering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from assay.serving.entities import Traffic, TrafficSummary

__all__ = ["BUCKETS", "CONTENT_TYPE", "Metrics", "ModelMetrics", "summarize"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Fine at the low end, where a tabular model answers (0.3 to 3 ms), so p50 and p99
# interpolate within a narrow bucket; coarse up to the default predict timeout.
BUCKETS = (
    0.0005,
    0.00075,
    0.001,
    0.00125,
    0.0015,
    0.002,
    0.0025,
    0.003,
    0.004,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)

REQUESTS = "assay_requests_total"
ERRORS = "assay_request_errors_total"
DURATION = "assay_request_duration_seconds"
MODEL_INFO = "assay_model_info"


class Metrics:
    """The app's metric families, in a registry of their own (so two apps in one test
    process do not share counts), and how to render them."""

    def __init__(self, multiproc_dir: Path | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            REQUESTS.removesuffix("_total"),
            "Prediction requests answered.",
            ("model", "version", "protocol", "code"),
            registry=self.registry,
        )
        self.errors = Counter(
            ERRORS.removesuffix("_total"),
            "Prediction requests that failed, by kind of failure.",
            ("model", "version", "kind"),
            registry=self.registry,
        )
        self.duration = Histogram(
            DURATION,
            "Seconds to answer a prediction request.",
            ("model", "version"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            MODEL_INFO,
            "1 for the model version a worker serves, 0 for one it served before.",
            ("model", "version"),
            registry=self.registry,
            # Only live workers' values: a dead worker's model is nobody's model.
            multiprocess_mode="liveall",
        )

    def for_model(self, name: str, version: int | str) -> ModelMetrics:
        """The children of one model version, bound once so a request updates them in O(1)."""
        return ModelMetrics(self, name, str(version))

    def render(self) -> bytes:
        """The Prometheus text exposition: every worker's when multiprocess, else this one's."""
        if self.multiproc_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            registry, path=str(self.multiproc_dir)
        )
        return generate_latest(registry)


class ModelMetrics:
    """One model version's metric children, looked up once and cached per label set."""

    def __init__(self, metrics: Metrics, name: str, version: str) -> None:
        self._metrics = metrics
        self.name = name
        self.version = version
        self._duration = metrics.duration.labels(name, version)
        self._requests: dict[tuple[str, int], Any] = {}
        self._errors: dict[str, Any] = {}

    def record(self, protocol: str, code: int, seconds: float, error: str | None) -> None:
        """Count one answered prediction request, its latency, and its error kind if any."""
        child = self._requests.get((protocol, code))
        if child is None:
            child = self._metrics.requests.labels(self.name, self.version, protocol, str(code))
            self._requests[(protocol, code)] = child
        child.inc()
        self._duration.observe(seconds)
        if error is not None:
            err = self._errors.get(error)
            if err is None:
                err = self._metrics.errors.labels(self.name, self.version, error)
                self._errors[error] = err
            err.inc()

    def serving(self, now: bool) -> None:
        """Mark this version as the one served now (1) or served before (0)."""
        self._metrics.model_info.labels(self.name, self.version).set(1 if now else 0)


# ---- reading the text back (the control plane's side) -----------------------------------


@dataclass
class _Traffic:
    model: str = ""
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count

    def summary(self) -> TrafficSummary:
        return {
            "requests": int(self.requests),
            "errors": int(self.errors),
            "p50_ms": _ms(quantile(0.5, self.buckets)),
            "p99_ms": _ms(quantile(0.99, self.buckets)),
        }


def summarize(text: str) -> Traffic:
    """Request count, error count and latency p50/p99 (ms) from a service's `/metrics` text.

    `by_version` maps each version number (an int) to the same four numbers plus
    `"model"`, the model's name. Quantiles interpolate within histogram buckets as
    Prometheus's `histogram_quantile` does; they are None before any request.
    Raises ValueError when `text` is not Prometheus text.
    """
    from prometheus_client.parser import text_string_to_metric_families

    total = _Traffic()
    by_version: dict[tuple[str, str], _Traffic] = {}

    def slot(labels: dict[str, str]) -> _Traffic:
        key = (labels.get("model", ""), labels.get("version", ""))
        found = by_version.get(key)
        if found is None:
            found = by_version[key] = _Traffic(model=key[0])
        return found

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS:
                slot(sample.labels).requests += sample.value
                total.requests += sample.value
            elif sample.name == ERRORS:
                slot(sample.labels).errors += sample.value
                total.errors += sample.value
            elif sample.name == DURATION + "_bucket":
                le = float(sample.labels["le"])
                for traffic in (slot(sample.labels), total):
                    traffic.buckets[le] = traffic.buckets.get(le, 0.0) + sample.value

    return {
        **total.summary(),
        "by_version": {
            _version(version): {"model": traffic.model, **traffic.summary()}
            for (_model, version), traffic in sorted(by_version.items())
        },
    }


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram {upper bound: count}, interpolated
    linearly inside its bucket (Prometheus's `histogram_quantile`); None when empty."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    count = buckets[bounds[-1]]  # the +Inf bucket holds every observation
    if count <= 0:
        return None
    rank = q * count
    lower, below = 0.0, 0.0
    for upper in bounds:
        cumulative = buckets[upper]
        if cumulative >= rank:
            if math.isinf(upper):
                # Past the last finite bound: the best answer is that bound.
                return lower
            inside = cumulative - below
            if inside <= 0:
                return upper
            return lower + (upper - lower) * (rank - below) / inside
        lower, below = upper, cumulative
    return lower


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _version(label: str) -> int | str:
    try:
        return int(label)
    except ValueError:
        return label
