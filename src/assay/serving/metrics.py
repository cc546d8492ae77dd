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

When a monitor has checked the service (`assay monitor`), its latest state is exported
beside them, read from the `monitor.json` the control plane leaves in the service folder:
`assay_monitor_state{monitor}` (0 ok, 1 warning, 2 drift), per input feature (and
`prediction`) `assay_monitor_feature_state`, `assay_monitor_feature_psi` and
`assay_monitor_feature_p_value` (Holm-adjusted), `assay_monitor_rows`,
`assay_monitor_performance{metric}` and `assay_monitor_checked_timestamp_seconds`.

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

__all__ = ["BUCKETS", "CONTENT_TYPE", "Metrics", "ModelMetrics", "monitor_gauges", "summarize"]

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


# ---- the monitor's state, as gauges -----------------------------------------------------

STATE_VALUES = {"ok": 0, "warning": 1, "drift": 2}
_gauge_cache: dict[Path, tuple[tuple[int, int], bytes]] = {}


def monitor_gauges(path: Path | None) -> bytes:
    """The Prometheus text of the monitor state in `path` (a `monitor.json`); empty when
    there is none. Read again only when the file changes."""
    if path is None:
        return b""
    try:
        st = path.stat()
    except OSError:
        return b""
    seen = (st.st_mtime_ns, st.st_size)
    cached = _gauge_cache.get(path)
    if cached is not None and cached[0] == seen:
        return cached[1]
    try:
        import json

        text = _gauges(json.loads(path.read_bytes()))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        text = b""  # a file being replaced, or not ours: nothing rather than a broken page
    _gauge_cache[path] = (seen, text)
    return text


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _gauges(doc: dict[str, Any]) -> bytes:
    mon = _label(doc["monitor"])
    lines: list[str] = []

    def family(name: str, help_: str, samples: list[tuple[str, float | None]]) -> None:
        samples = [(labels, v) for labels, v in samples if isinstance(v, int | float)]
        if not samples:
            return
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            lines.append(f"{name}{{{labels}}} {float(value or 0.0)!r}")

    base = f'monitor="{mon}"'
    family(
        "assay_monitor_state",
        "The monitor's state: 0 ok, 1 warning, 2 drift.",
        [(base, STATE_VALUES.get(str(doc.get("state")), 0))],
    )
    features: dict[str, Any] = dict(doc.get("features") or {})
    if doc.get("prediction"):
        features["prediction"] = doc["prediction"]

    def per_feature(key: str) -> list[tuple[str, float | None]]:
        out: list[tuple[str, float | None]] = []
        for name, f in features.items():
            value = STATE_VALUES.get(f.get("state"), 0) if key == "state" else f.get(key)
            out.append((f'{base},feature="{_label(name)}"', value))
        return out

    family(
        "assay_monitor_feature_state",
        "Each feature's state: 0 ok, 1 warning, 2 drift.",
        per_feature("state"),
    )
    family(
        "assay_monitor_feature_psi",
        "Population stability index against the training data.",
        per_feature("psi"),
    )
    family(
        "assay_monitor_feature_p_value",
        "The drift test's p-value, Holm-adjusted across the features.",
        per_feature("p_adjusted"),
    )
    family(
        "assay_monitor_rows",
        "Logged rows in the window the monitor checked.",
        [(base, doc.get("rows"))],
    )
    perf = doc.get("performance") or {}
    if perf.get("metric"):
        family(
            "assay_monitor_performance",
            "The model's performance from feedback.",
            [(f'{base},metric="{_label(perf["metric"])}"', perf.get("value"))],
        )
    family(
        "assay_monitor_checked_timestamp_seconds",
        "When the monitor last checked.",
        [(base, doc.get("at"))],
    )
    return ("\n".join(lines) + "\n").encode() if lines else b""


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
