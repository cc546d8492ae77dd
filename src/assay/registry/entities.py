"""What the model repository stores, as plain values (no I/O, no ORM)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from typing_extensions import TypedDict

# The kinds a column may hold, as a request's JSON carries them.
COLUMN_KINDS = ("float", "int", "bool", "str")


@dataclass(frozen=True)
class ColumnSpec:
    """One input column: its name, its kind (`COLUMN_KINDS`), its training dtype, and
    whether training saw missing values in it (if not, a NaN in a request is refused)."""

    name: str
    kind: str
    dtype: str
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "nullable": self.nullable,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnSpec:
        return cls(d["name"], d["kind"], d.get("dtype", d["kind"]), bool(d.get("nullable", False)))


@dataclass(frozen=True)
class OutputSpec:
    """What `predict` returns: its kind and dtype, the class labels of a classifier, and
    whether the model also has `predict_proba`."""

    kind: str
    dtype: str
    shape: tuple[int, ...] = (-1,)
    classes: tuple[Any, ...] | None = None
    has_proba: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "classes": list(self.classes) if self.classes is not None else None,
            "has_proba": self.has_proba,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutputSpec:
        classes = d.get("classes")
        return cls(
            d["kind"],
            d.get("dtype", d["kind"]),
            tuple(d.get("shape") or (-1,)),
            tuple(classes) if classes is not None else None,
            bool(d.get("has_proba", False)),
        )


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [c.to_dict() for c in self.inputs],
            "output": self.output.to_dict() if self.output else None,
            "tabular": self.tabular,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signature:
        out = d.get("output")
        return cls(
            tuple(ColumnSpec.from_dict(c) for c in d.get("inputs", [])),
            OutputSpec.from_dict(out) if out else None,
            bool(d.get("tabular", True)),
        )


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

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Lineage:
        d = d or {}
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "bundle": self.bundle,
            "flavor": self.flavor,
            "signature": self.signature.to_dict() if self.signature else None,
            "metrics": self.metrics,
            "frameworks": self.frameworks,
            "lineage": self.lineage.to_dict(),
            "aliases": list(self.aliases),
            "description": self.description,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
            "extra": self.extra,
        }


@dataclass(frozen=True)
class Model:
    """A named model and a summary of its versions."""

    name: str
    versions: int
    latest: int | None
    aliases: dict[str, int]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": self.versions,
            "latest": self.latest,
            "aliases": self.aliases,
            "created_at": self.created_at.isoformat(),
        }
