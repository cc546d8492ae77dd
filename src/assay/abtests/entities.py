"""What the A/B test control plane stores and reports, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from typing_extensions import TypedDict

from assay.errors import AssayError
from assay.serialize import json_shape

if TYPE_CHECKING:
    from assay.registry.entities import ModelVersion

ABTestStatus = Literal["running", "paused", "concluded", "stopped"]
"""Where a test is in its life, as recorded (what it was last told to be): running,
paused (all traffic to the control, nothing analysed), concluded (a winner recorded, its
alias moved) or stopped (its router stopped without a verdict)."""
RouterState = Literal["running", "starting", "stopped"]
"""What a test's router (its process here, or its application on Ray) was found doing
when the test was read; never stored."""


@dataclass(frozen=True)
class VariantSpec:
    """One arm: its label, the model version it serves, and the service it was named by."""

    label: str
    model: str
    version: int
    service: str | None = None
    """The service it was named by, if it was."""

    @property
    def model_ref(self) -> str:
        return f"{self.model}@{self.version}"

    __get_pydantic_core_schema__ = json_shape(computed=("model_ref",))


@dataclass(frozen=True)
class ABTest:
    """An A/B test: variants, a routing strategy, and where its router listens.

    Two fields can both say `running`, and mean different things:

    - `status` (`ABTestStatus`) is the test's lifecycle, recorded by the control plane:
      running, paused (all traffic to the control, nothing analysed), concluded (a winner
      recorded, its alias moved) or stopped. It is what the test should be doing.
    - `state` (`RouterState`) is observed, not stored: what its router was found doing
      when the test was read (`running`, `starting` or `stopped`). The CLI shows it as
      the `router` column.

    A test whose `status` is running can have a router in `state` stopped (the machine
    restarted, or its process died: `assay abtests start` brings it back); a paused test's
    router is `running` (it sends every request to the control). Pausing, resuming and
    new weights need the router `running`. The names stay as they are: both are fields of
    the REST and `--json` shape.
    """

    name: str
    variants: tuple[VariantSpec, ...]
    strategy: str
    key: str | None
    """The request field that routes a user (sticky strategies)."""
    status: ABTestStatus
    """The test's lifecycle, as recorded: `running`, `paused`, `concluded` or `stopped`
    (see `state` for its router)."""
    state: RouterState
    """Its router, as found when the test was read: `running`, `starting` or `stopped`
    (observed, not stored; see `status` for the test's lifecycle)."""
    host: str
    port: int
    workers: int
    pid: int | None
    alias: str
    """The alias a conclusion points at the winner's model version."""
    auto_promote: bool
    plan: dict[str, Any] | None
    """The sample-size plan it was created with, if any."""
    winner: str | None
    verdict: dict[str, Any] | None
    """The verdict recorded when it was concluded."""
    created_at: datetime
    updated_at: datetime
    concluded_at: datetime | None = None
    on: str = "local"
    """Where its router runs: `local` (a process here) or `ray` (a Ray Serve application
    on the cluster, at the cluster's HTTP proxy)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/abtests/{self.name}"

    def variant(self, label: str) -> VariantSpec | None:
        return next((v for v in self.variants if v.label == label), None)

    __get_pydantic_core_schema__ = json_shape(computed=("url",))
    # The attribute docstrings describe the fields in the OpenAPI document.
    __pydantic_config__: ClassVar[dict[str, bool]] = {"use_attribute_docstrings": True}


class ABTestFailedError(AssayError):
    """The router did not start, or did not take a change (here or on Ray)."""

    status = 502


def provenance(mv: ModelVersion) -> dict[str, Any]:
    """What every answer of a variant says of where its model came from (a local router's
    target and a Ray router's deployment document both carry it)."""
    return {
        "model": mv.name,
        "version": mv.version,
        "run": mv.lineage.run_id,
        "data": mv.lineage.data,
        "pipeline": mv.lineage.pipeline,
        "params": mv.lineage.params,
    }


# ---- documents: what the control plane reports, as JSON ------------------------------------


class VariantReport(TypedDict):
    """One variant's live traffic and outcomes. Latencies are in milliseconds; a number
    that cannot be computed yet (no traffic, no outcomes) is null."""

    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    cost_per_1k: float | None
    """Compute cost of 1,000 predictions at the configured hourly price (busy time only)."""
    outcomes: int
    """Predictions with feedback (a reward)."""
    mean: float | None
    """Mean reward, or accuracy when every reward is 0 or 1."""
    ci: list[float | None]
    """The 95% confidence interval of `mean`: [low, high]."""


class ComparisonReport(TypedDict):
    """One variant against the control (the first variant)."""

    label: str
    control: str
    diff: float | None
    """Variant minus control."""
    diff_ci: list[float | None]
    """The difference's confidence interval: [low, high]."""
    test: str
    """The fixed-horizon test: `two-proportion z` or `Welch t`."""
    statistic: float | None
    p_value: float | None
    """The fixed-horizon p-value: valid only for a sample size fixed in advance."""
    always_valid_p: float | None
    """The mSPRT p-value at this look alone."""
    sequential_p: float | None
    """The always-valid p-value over every look: the one to act on."""


class VerdictReport(TypedDict):
    """Which variant wins, or what it would take to know."""

    winner: str | None
    decided: bool
    message: str
    more_samples_needed: int | None
    """Samples per variant still needed at the observed effect (null once decided, or
    when it cannot be estimated)."""


class SRMReport(TypedDict):
    """The sample-ratio-mismatch check: do the live requests fit the configured split?"""

    chi2: float | None
    p_value: float | None
    expected: list[float | None]
    """The requests each variant should have had."""
    mismatch: bool
    """The split itself is broken, so no comparison can be trusted."""
    message: str


class ShadowReport(TypedDict):
    """A shadow variant: the copies of live requests it was sent, whose answers no
    user sees."""

    copies: int
    errors: int
    agreement: float | None
    """The share of its answers equal to the live variant's."""
    p50_ms: float | None
    p99_ms: float | None


class RewardSeries(TypedDict):
    """Each variant's cumulative mean reward over time, with its 95% band; `values`,
    `lo` and `hi` hold one number (or null) per time, by variant label."""

    times: list[float]
    """Unix times."""
    values: dict[str, list[float | None]]
    lo: dict[str, list[float | None]]
    hi: dict[str, list[float | None]]


class ABAnalysis(TypedDict):
    """The analysis of an A/B test's event log (`assay.abtests.report.build_report`)."""

    labels: list[str]
    """The variants, the control first."""
    strategy: str
    metric: str
    """`accuracy` when every reward is 0 or 1, else `mean reward`."""
    binary: bool
    variants: dict[str, VariantReport]
    """By label."""
    alpha: float
    """The significance level."""
    planned_per_variant: int | None
    """The planned sample size per variant, if the test was created with a plan."""
    comparisons: list[ComparisonReport]
    """Empty until every variant has feedback for at least two predictions."""
    p_best: dict[str, float | None]
    """The probability that each variant is best, by label (empty like `comparisons`)."""
    verdict: VerdictReport
    srm: SRMReport | None
    """Null for strategies with no fixed split (bandits), or before any request."""
    shadows: dict[str, ShadowReport]
    """By label."""
    series: RewardSeries


class ABReport(ABAnalysis):
    """An A/B test's report (`assay abtests report`): the analysis and the test."""

    abtest: ABTest
    auto_concluded: bool
    """True when this reading concluded the test (it was created with auto-promotion
    and its sequential test had decided)."""
