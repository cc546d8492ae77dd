"""Deleting, archiving and collecting garbage: admin tokens only (deletes cannot be undone)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from assay.lifecycle.api import GRACE_S
from assay.lifecycle.entities import Collection, Deleted
from assay.server.deps import ADMIN, WRITE, WS
from assay.server.schemas import (
    ERRORS,
    RUN_PATTERN,
    SMALL_BODY,
    Input,
    Name,
    body_limit,
)

router = APIRouter(tags=["lifecycle"], responses=ERRORS)

Force = Annotated[
    bool, Query(description="Delete even what others depend on; the answer says what broke")
]


class RunsIn(Input):
    runs: list[Annotated[str, Field(pattern=RUN_PATTERN)]] = Field(
        min_length=1, max_length=10_000, description="Run ids or prefixes"
    )


class Archived(BaseModel):
    runs: list[str] = Field(description="The runs' full ids")
    archived: bool


class ExperimentArchived(BaseModel):
    experiment: str
    runs: int = Field(description="How many runs it holds")
    archived: bool


class GCIn(Input):
    dry_run: bool = Field(default=False, description="Only say what would go")
    grace_s: float = Field(
        default=GRACE_S, ge=0, description="Spare objects written or reused this recently"
    )


@router.post(
    "/runs/delete", response_model=Deleted, dependencies=ADMIN,
    openapi_extra=body_limit(SMALL_BODY * 16),
    summary="Delete runs (and the runs made inside them); refused while a model came from one",
)  # fmt: skip
def delete_runs(body: RunsIn, ws: WS, force: Force = False) -> Deleted:
    return ws.lifecycle.delete_runs(body.runs, force=force)


@router.delete(
    "/models/{name}/versions/{version}", response_model=Deleted, dependencies=ADMIN,
    summary="Delete a model version; refused while an alias, a service or an A/B test uses it",
)  # fmt: skip
def delete_model(
    name: Name, version: Annotated[int, Path(ge=1, le=2**31 - 1)], ws: WS, force: Force = False
) -> Deleted:
    return ws.lifecycle.delete_model(f"{name}@{version}", force=force)


@router.delete(
    "/datasets/{name}/versions/{version}", response_model=Deleted, dependencies=ADMIN,
    summary="Delete a data version; refused while runs used it, models name it or tags point "
    "at it",
)  # fmt: skip
def delete_data(
    name: Name, version: Annotated[int, Path(ge=1, le=2**31 - 1)], ws: WS, force: Force = False
) -> Deleted:
    return ws.lifecycle.delete_data(f"{name}@{version}", force=force)


@router.post(
    "/runs/archive", response_model=Archived, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY * 16), summary="Archive runs: out of listings, kept whole",
)  # fmt: skip
def archive_runs(body: RunsIn, ws: WS) -> Archived:
    return Archived(runs=ws.runs.archive(body.runs), archived=True)


@router.post(
    "/runs/restore", response_model=Archived, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY * 16), summary="Bring archived runs back",
)  # fmt: skip
def restore_runs(body: RunsIn, ws: WS) -> Archived:
    return Archived(runs=ws.runs.archive(body.runs, restore=True), archived=False)


@router.post(
    "/experiments/{name}/archive", response_model=ExperimentArchived, dependencies=WRITE,
    summary="Archive an experiment: its runs leave the listings with it",
)  # fmt: skip
def archive_experiment(name: Name, ws: WS) -> ExperimentArchived:
    count = ws.runs.archive_experiment(name)
    return ExperimentArchived(experiment=name, runs=count, archived=True)


@router.post(
    "/experiments/{name}/restore", response_model=ExperimentArchived, dependencies=WRITE,
    summary="Bring an archived experiment back",
)  # fmt: skip
def restore_experiment(name: Name, ws: WS) -> ExperimentArchived:
    count = ws.runs.archive_experiment(name, restore=True)
    return ExperimentArchived(experiment=name, runs=count, archived=False)


@router.post(
    "/gc", response_model=Collection, dependencies=ADMIN, openapi_extra=body_limit(SMALL_BODY),
    summary="Remove the objects nothing refers to (older than the grace period), killed "
    "writers' temporaries and expired uploads",
)  # fmt: skip
def collect(body: GCIn, ws: WS) -> Collection:
    return ws.lifecycle.collect(dry_run=body.dry_run, grace_s=body.grace_s)
