"""Sweeps: list them, read one with its trials; start, stop and resume one on the server."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from assay.server.deps import READ, WRITE, WS
from assay.server.schemas import (
    ERRORS,
    SMALL_BODY,
    SWEEP_BODY,
    Input,
    Limit,
    Name,
    NameText,
    Page,
    PageToken,
    PipelineRefText,
    RefText,
    body_limit,
    name_field,
    page_of,
    pipeline_field,
    ref_field,
    registered_pipeline,
)
from assay.sweeps.entities import Sweep

router = APIRouter(prefix="/sweeps", tags=["sweeps"], responses=ERRORS, dependencies=READ)


class SweepIn(Input):
    """`assay sweep`'s options; the files it reads are sent as their contents."""

    pipeline: PipelineRefText = pipeline_field(
        "NAME[@VERSION] of a registered pipeline (send a local one to POST /pipelines first)"
    )
    data: RefText = ref_field("DATASET[@VERSION]")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Base params; the space's values override them"
    )
    space: str = Field(max_length=1_000_000, description="The search space file's text")
    space_file: str = Field(
        default="space.yaml",
        max_length=255,
        description="The space file's name: `.json` is read as JSON, anything else as YAML",
    )
    objectives: list[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]{1,255}(?::(?:max|min))?$")]
    ] = Field(
        min_length=1,
        max_length=16,
        json_schema_extra={"uniqueItems": True},
        description="METRIC[:max|min] each (cost and wall_s from the resources); two or "
        "more give a Pareto front",
    )
    direction: Literal["max", "min"] | None = Field(
        default=None, description="Default: by the objective's name"
    )
    trials: int = Field(ge=1, le=1_000_000)
    parallel: int = Field(default=1, ge=1, le=256, description="Trials at once")
    sampler: Literal["tpe", "random", "grid", "nsga2"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    prune_on: str | None = Field(default=None, description="The stepped metric the pruner reads")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    timeout_s: float | None = Field(default=None, gt=0, description="Stop before this many seconds")
    budget: float | None = Field(default=None, gt=0, description="Stop before the trials cost this")
    # `register` on the wire; as an attribute it would shadow BaseModel's (an ABC's) own.
    register_models: Literal["best", "all", "none"] = Field(
        default="best", alias="register", description="Models to register"
    )
    executor: Literal["local", "ray"] = Field(
        default="local", description="local, or ray (the server's Ray)"
    )
    name: NameText | None = name_field("Default: PIPELINE-sweep-N", default=None)


@router.get("", response_model=Page[Sweep], summary="Sweeps, newest first (trials left out)")
def list_sweeps(ws: WS, limit: Limit = 100, page_token: PageToken = None) -> Page[Sweep]:
    return page_of([replace(s, trial_list=()) for s in ws.sweeps.sweeps()], limit, page_token)


@router.get("/{name}", response_model=Sweep, summary="A sweep and every trial")
def get_sweep(name: Name, ws: WS) -> Sweep:
    return ws.sweeps.get(name)


@router.post(
    "", response_model=Sweep, status_code=202, dependencies=WRITE,
    openapi_extra=body_limit(SWEEP_BODY),
    summary="Check and record a sweep, then drive its trials on the server",
)  # fmt: skip
def create_sweep(body: SweepIn, ws: WS) -> Sweep:
    from assay.server import sweep_driver

    if body.executor == "ray":
        from assay.executors.ray_cluster import check_ready

        check_ready(ws.settings, os.environ)
    sweep = ws.sweeps.create(
        registered_pipeline(body.pipeline),
        data=body.data,
        params=body.params,
        space_text=body.space,
        space_name=body.space_file,
        trials=body.trials,
        objectives=body.objectives,
        direction=body.direction,
        parallel=body.parallel,
        sampler=body.sampler,
        pruner=body.pruner,
        prune_on=body.prune_on,
        seed=body.seed,
        timeout_s=body.timeout_s,
        budget=body.budget,
        name=body.name,
        executor=body.executor,
        register=body.register_models,
    )
    sweep_driver.start(ws, sweep.name)
    return sweep


@router.post(
    "/{name}/resume", response_model=Sweep, status_code=202, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY),
    summary="Continue an interrupted sweep on the server; finished trials are kept",
)  # fmt: skip
def resume_sweep(name: Name, ws: WS) -> Sweep:
    from assay.server import sweep_driver

    return sweep_driver.resume(ws, name)


@router.post(
    "/{name}/stop", response_model=Sweep, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY),
    summary="Stop a running sweep as Ctrl-C does: running trials are recorded interrupted",
)  # fmt: skip
def stop_sweep(name: Name, ws: WS) -> Sweep:
    from assay.server import sweep_driver

    return sweep_driver.stop(ws, name)
