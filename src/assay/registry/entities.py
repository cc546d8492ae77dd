"""What the model repository stores, as plain values (no I/O, no ORM)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from typing_extensions import TypedDict

from assay.serialize import json_shape

# The kinds a column may hold, as a request's JSON carries them.
COLUMN_KINDS = ("float", "int", "bool", "str")


# Stored shapes of older releases, upgraded as they load.


def _with_dtype(d: dict[str, Any]) -> dict[str, Any]:
    """A column or output stored before dtypes were recorded: its dtype is its kind."""
    if "dtype" not in d and "kind" in d:
        d["dtype"] = d["kind"]
    if d.get("shape") is None:
        d.pop("shape", None)
    return d


def _signature_v1(d: dict[str, Any]) -> dict[str, Any]:
    """A signature stored without inputs, or with an empty output, as today's."""
    d.setdefault("inputs", [])
    if not d.get("output"):
        d["output"] = None
    return d


@dataclass(frozen=True)
class ColumnSpec:
    """One input column: its name, its kind (`COLUMN_KINDS`), its training dtype, and
    whether training saw missing values in it (if not, a NaN in a request is refused)."""

    name: str
    kind: str
    dtype: str
    nullable: bool = False

    __get_pydantic_core_schema__ = json_shape(upgrade=_with_dtype)


@dataclass(frozen=True)
class OutputSpec:
    """What `predict` returns: its kind and dtype, the class labels of a classifier, and
    whether the model also has `predict_proba`."""

    kind: str
    dtype: str
    shape: tuple[int, ...] = (-1,)
    classes: tuple[Any, ...] | None = None
    has_proba: bool = False

    __get_pydantic_core_schema__ = json_shape(upgrade=_with_dtype)


@dataclass(frozen=True)
class Signature:
    """The input schema a model was trained on, and its output.

    `tabular` is true when the model was fitted on named columns (a DataFrame):
    requests may then send rows as objects; otherwise only as arrays, in column order.
    """

    inputs: tuple[ColumnSpec, ...]
    output: OutputSpec | None = None
    tabular: bool = True

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.inputs]

    __get_pydantic_core_schema__ = json_shape(upgrade=_signature_v1)


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from: the run and its inputs, by reference and hash.

    Empty for a model registered from a file trained elsewhere (`source` says which file).
    """

    run_id: str | None = None
    data: str | None = None
    data_manifest: str | None = None
    pipeline: str | None = None
    pipeline_manifest: str | None = None
    params: str | None = None
    params_manifest: str | None = None
    source: str | None = None
    # The code version the run executed (`assay.runs.code`): a pipeline snapshot's hash,
    # or a notebook's or script's captured code.
    code: str | None = None


class LineageInput(TypedDict):
    """An input of the run (a data, pipeline or params version): `ref` is its
    `NAME@VERSION` (null when the run had none), `manifest` the content hash of its
    file list, which pins every byte of it."""

    ref: str | None
    manifest: str | None


class LineageData(LineageInput):
    """The data version the run trained on."""

    message: str | None
    """What the version says about itself: for live data (`assay monitor snapshot`, or a
    retrain's training plus live rows), the service, model versions and window it came from."""


class LineageStep(TypedDict):
    """One step of the pipeline version."""

    name: str
    inputs: list[str]
    """The steps whose outputs it reads."""
    code_hash: str


class LineagePipeline(LineageInput):
    """The pipeline version the run executed, with its steps."""

    steps: list[LineageStep]


class LineageParams(LineageInput):
    """The parameters version the run used, with its values."""

    values: dict[str, Any]
    """The parameters file, as JSON; empty when the run had none."""


class LineageCode(TypedDict):
    """The code version the run executed: a pipeline snapshot, or the notebook, script
    or cells a tracked run captured (`assay runs code RUN` prints it)."""

    ref: str
    """Its content hash."""
    kind: str
    """pipeline, script, notebook or cells."""
    entry: str
    git_commit: str | None
    git_branch: str | None
    git_dirty: bool
    """Whether there were uncommitted changes (stored with it as a diff)."""


class LineageRun(TypedDict):
    """The run that trained the model version, and the versions of its inputs."""

    id: str
    name: str
    experiment: str
    status: str
    started_at: str | None
    """ISO 8601."""
    metrics: dict[str, float]
    """The model version's metrics."""
    data: LineageData
    pipeline: LineagePipeline
    params: LineageParams
    code: LineageCode | None
    """Null when the run recorded no code."""


class LineageTree(TypedDict):
    """A model version traced back to its run, data, pipeline and params, with hashes
    (`assay models lineage`)."""

    model: str
    """`NAME@VERSION`."""
    bundle: str
    """The content hash of the stored bundle."""
    flavor: str
    source: str | None
    """For a model registered from a file trained elsewhere: which file (and its hash)."""
    run: LineageRun | None
    """Null for a model registered from a file."""


@dataclass(frozen=True)
class ModelVersion:
    """An immutable model: `name@version`, stored in a safe format with its signature.

    `bundle` is the content hash of the stored bundle (the model files and `assay.json`);
    `flavor` names the framework that saves and loads it (sklearn, xgboost, lightgbm,
    python); `frameworks` the library versions it was saved with.
    """

    name: str
    version: int
    bundle: str
    flavor: str
    signature: Signature | None
    metrics: dict[str, float]
    frameworks: dict[str, str]
    lineage: Lineage
    aliases: tuple[str, ...]
    description: str
    author: str
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    __get_pydantic_core_schema__ = json_shape(computed=("ref",))


@dataclass(frozen=True)
class Model:
    """A named model and a summary of its versions."""

    name: str
    versions: int
    latest: int | None
    aliases: dict[str, int]
    created_at: datetime
