"""What the pipeline registry stores, as plain values (no I/O, no ORM)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from assay.serialize import json_shape


@dataclass(frozen=True)
class StepInfo:
    """One step of a registered version: its name, its inputs and the hash of its code."""

    name: str
    inputs: tuple[str, ...]
    code_hash: str


@dataclass(frozen=True)
class PipelineVersion:
    """An immutable snapshot of a pipeline's source files: `name@number`.

    `manifest` is the content hash of the file list (the version's identity), `entry`
    the file, relative to the snapshot's root, that defines the pipeline.
    `model_step` and `metrics_step` name the steps whose outputs are the model and
    the metrics, when the pipeline has them.
    """

    pipeline: str
    number: int
    manifest: str
    entry: str
    steps: tuple[StepInfo, ...]
    model_step: str | None
    metrics_step: str | None
    message: str
    author: str
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.pipeline}@{self.number}"

    def step(self, name: str) -> StepInfo | None:
        return next((s for s in self.steps if s.name == name), None)

    __get_pydantic_core_schema__ = json_shape(computed=("ref",))


@dataclass(frozen=True)
class PipelineInfo:
    """A registered pipeline: how many versions, the newest, and when it last changed."""

    name: str
    versions: int
    latest: int | None
    updated_at: datetime | None
