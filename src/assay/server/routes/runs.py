"""Experiments and runs: search, read, start a pipeline run, and track a run from outside."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from assay.runs.code import CodeVersion
from assay.runs.entities import EndStatus, Run
from assay.server.deps import READ, WRITE, WS
from assay.server.schemas import (
    BY_PATH,
    CEILING,
    ERRORS,
    METRICS_BODY,
    RUN_PATTERN,
    SMALL_BODY,
    TEXT_ROUTE_ERRORS,
    Input,
    Limit,
    Name,
    NameText,
    Page,
    PageToken,
    ParamName,
    PipelineRefText,
    RefText,
    RelPathText,
    RunId,
    body_limit,
    decode_token,
    encode_token,
    name_field,
    page_of,
    pipeline_field,
    ref_field,
    registered_pipeline,
)

router = APIRouter(tags=["runs"], responses=ERRORS)


class Point(BaseModel):
    key: str = Field(min_length=1, max_length=255)
    value: float | None
    step: int | None = Field(default=None, ge=-(2**53), le=2**53)
    ts: float | None = Field(default=None, description="Unix time; the server's when absent")


class PointIn(Input):
    key: ParamName
    value: float
    step: int | None = Field(default=None, ge=-(2**53), le=2**53)
    ts: float | None = Field(default=None, description="Unix time; the server's when absent")


class PointsIn(Input):
    metrics: list[PointIn] = Field(max_length=100_000)


class RunIn(Input):
    pipeline: PipelineRefText = pipeline_field()
    data: RefText = ref_field("DATASET[@VERSION]")
    params: dict[ParamName, Any] = Field(default_factory=dict)
    experiment: NameText | None = name_field("Default: the pipeline's name", default=None)
    name: str | None = Field(default=None, max_length=255)
    force: bool = False


class TrackIn(Input):
    params: dict[ParamName, Any] = Field(default_factory=dict)
    data: RefText | None = ref_field("DATASET[@VERSION] the run used", default=None)
    name: str | None = Field(default=None, max_length=255)
    parent: str | None = Field(
        default=None, pattern=RUN_PATTERN, description="The run this one is made inside"
    )


class EndIn(Input):
    status: EndStatus = Field(default="succeeded", description="How it ended")
    error: str | None = None
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="What the caller's machine measured: cpu_s, peak_rss_bytes (wall time is "
        "the server's own, from open to close)",
    )
    environment: dict[str, Any] = Field(
        default_factory=dict,
        description="The caller's Python and packages (python, platform, packages)",
    )


class ParamsIn(Input):
    params: dict[ParamName, Any]


class ArtifactsIn(Input):
    upload: str = Field(description="The upload (`POST /uploads`) holding the files")
    files: dict[RelPathText, str] = Field(
        json_schema_extra=BY_PATH, min_length=1, description="{path in the upload: BLAKE3 hash}"
    )
    name: str = Field(min_length=1, max_length=1024, description="The artifact's name")
    folder: bool = Field(default=False, description="The files are a folder's (name/path)")


class GitIn(Input):
    commit: str = Field(max_length=64)
    branch: str | None = Field(default=None, max_length=255)
    path: str | None = Field(default=None, max_length=1024)
    dirty: bool = False
    diff: str = Field(default="", max_length=4 * 1024 * 1024)


class CodeIn(Input):
    kind: Literal["script", "notebook", "cells"]
    entry: str = Field(min_length=1, max_length=255)
    files: dict[str, str] = Field(description="{file name: its text}", max_length=16)
    git: GitIn | None = None


class CodeOut(BaseModel):
    version: CodeVersion
    files: dict[str, str] = Field(description="{file name: its text}; `git.diff` the changes")


class DataLinkIn(Input):
    ref: RefText = ref_field("DATASET[@VERSION] the run used")


class ExtraIn(Input):
    extra: dict[str, Any]


class CandidateIn(Input):
    params: dict[ParamName, Any] = Field(default_factory=dict)
    metrics: dict[ParamName, float | None] = Field(default_factory=dict)
    name: str | None = Field(default=None, max_length=255)
    status: Literal["succeeded", "failed"] = "succeeded"


class ChildrenIn(Input):
    children: list[CandidateIn] = Field(max_length=10_000)


class Experiment(BaseModel):
    name: str
    runs: int


@router.get("/runs", response_model=Page[Run], dependencies=READ, summary="Search runs")
def search_runs(
    ws: WS,
    experiment: str | None = None,
    filter: Annotated[
        str | None,
        Query(description="e.g. params.C > 1 and metrics.val_f1 >= 0.9 and status = 'succeeded'"),
    ] = None,
    sort: Annotated[str | None, Query(description='e.g. "metrics.val_f1 desc"')] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: PageToken = None,
    archived: Annotated[bool, Query(description="Also archived runs and experiments")] = False,
) -> Page[Run]:
    offset = decode_token(page_token)
    found = ws.runs.search(
        experiment=experiment,
        filter=filter,
        sort=sort,
        limit=limit + 1,
        offset=offset,
        archived=archived,
    )
    more = len(found) > limit
    return Page[Run](
        items=found[:limit], next_page_token=encode_token(offset + limit) if more else None
    )


@router.get("/experiments", response_model=Page[Experiment], dependencies=READ)
def experiments(ws: WS, limit: Limit = 100, page_token: PageToken = None) -> Page[Experiment]:
    found = [Experiment(name=n, runs=c) for n, c in ws.runs.experiments()]
    return page_of(found, limit, page_token)


@router.get(
    "/runs/{run:runid}", response_model=Run, dependencies=READ, summary="A run by id or prefix"
)
def get_run(run: RunId, ws: WS) -> Run:
    return ws.runs.get(run)


@router.get("/runs/{run:runid}/metrics", response_model=list[Point], dependencies=READ)
def metric_series(run: RunId, ws: WS, key: str | None = None) -> list[Point]:
    return [Point(key=k, value=v, step=s, ts=t) for k, v, s, t in ws.runs.series(run, key)]


class Artifact(BaseModel):
    path: str
    hash: str
    size: int


@router.get("/runs/{run:runid}/artifacts", response_model=list[Artifact], dependencies=READ)
def run_artifacts(run: RunId, ws: WS) -> list[Artifact]:
    return [Artifact(path=p, hash=h, size=n) for p, h, n in ws.runs.artifacts(run)]


@router.get(
    "/runs/{run:runid}/logs",
    response_class=PlainTextResponse,
    responses=TEXT_ROUTE_ERRORS,
    dependencies=READ,
)
def run_logs(run: RunId, ws: WS) -> str:
    return ws.runs.logs(run)


@router.post(
    "/runs", response_model=Run, status_code=202, dependencies=WRITE,
    summary="Run a pipeline on a data version with params; executes on the server",
)  # fmt: skip
def start_run(body: RunIn, ws: WS) -> Run:
    from assay.server.launch import launch

    run = ws.runs.prepare(
        registered_pipeline(body.pipeline),
        data=body.data,
        params=body.params,
        experiment=body.experiment,
        name=body.name,
        force=body.force,
    )
    launch(ws, run.id)
    return run


@router.post(
    "/runs/{run:runid}/rerun", response_model=Run, status_code=202, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY),
    summary="Run again with exactly the inputs of a run; executes on the server",
)  # fmt: skip
def rerun(run: RunId, ws: WS) -> Run:
    from assay.server.launch import launch

    new = ws.runs.rerun(run)
    launch(ws, new.id, use_cache=False)
    return new


@router.post(
    "/experiments/{experiment}/runs", response_model=Run, status_code=201, dependencies=WRITE,
    summary="Open a run that the caller fills in (a notebook or script elsewhere)",
)  # fmt: skip
def track_run(experiment: Name, body: TrackIn, ws: WS) -> Run:
    return ws.runs.begin(
        experiment,
        data=body.data,
        params=body.params,
        name=body.name,
        remote=True,
        parent=body.parent,
    )


@router.post(
    "/runs/{run:runid}/metrics", status_code=204, dependencies=WRITE,
    openapi_extra=body_limit(METRICS_BODY),
    summary="Log metric points, in a batch",
)  # fmt: skip
def log_metrics(run: RunId, body: PointsIn, ws: WS) -> None:
    ws.runs.log_points(run, [(p.key, p.value, p.step, p.ts) for p in body.metrics])


@router.post("/runs/{run:runid}/end", response_model=Run, dependencies=WRITE, summary="Close a run")
def end_run(run: RunId, body: EndIn, ws: WS) -> Run:
    return ws.runs.finish(
        run, body.status, body.error, reported=body.resources, environment=body.environment
    )


@router.post(
    "/runs/{run:runid}/params", status_code=204, dependencies=WRITE,
    summary="Add params to a running run (names it has keep their values)",
)  # fmt: skip
def log_params(run: RunId, body: ParamsIn, ws: WS) -> None:
    ws.runs.log_params(run, body.params)


@router.post(
    "/runs/{run:runid}/artifacts", status_code=204, dependencies=WRITE,
    openapi_extra=body_limit(CEILING),  # a folder's every file and hash
    summary="Store files sent as an upload with a running run",
)  # fmt: skip
def log_artifacts(run: RunId, body: ArtifactsIn, ws: WS) -> None:
    staged = ws.uploads.verified(body.upload, body.files)
    try:
        files = {
            (f"{body.name}/{rel}" if body.folder else body.name): staged.path(rel)
            for rel in body.files
        }
        ws.runs.add_artifacts(run, files)
    finally:
        ws.uploads.discard(body.upload)


@router.put(
    "/runs/{run:runid}/code", response_model=CodeVersion, dependencies=WRITE,
    openapi_extra=body_limit(CEILING),  # a notebook, its files and a git diff of 4 MB
    summary="Store the code that produced a tracked run (its script, notebook or cells)",
)  # fmt: skip
def record_code(run: RunId, body: CodeIn, ws: WS) -> CodeVersion:
    from assay.runs.code import CodeCapture, GitState

    git = GitState(**body.git.model_dump()) if body.git else None
    files = {name: text.encode() for name, text in body.files.items()}
    return ws.runs.record_code(run, CodeCapture(body.kind, body.entry, files, git))


@router.get(
    "/runs/{run:runid}/code", response_model=CodeOut, dependencies=READ,
    summary="The code version a run executed, with its files",
)  # fmt: skip
def code(run: RunId, ws: WS) -> CodeOut:
    version = ws.runs.code_of(run)
    files = ws.runs.code_files(version)
    return CodeOut(
        version=version,
        files={k: v.decode("utf-8", errors="replace") for k, v in files.items()},
    )


@router.post(
    "/runs/{run:runid}/data", response_model=Run, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY),
    summary="Name a data version the run used",
)  # fmt: skip
def link_data(run: RunId, body: DataLinkIn, ws: WS) -> Run:
    return ws.runs.link_data(run, body.ref)


@router.patch(
    "/runs/{run:runid}/extra", status_code=204, dependencies=WRITE,
    summary="Merge values into a run's extra (a fit's data fingerprint, …)",
)  # fmt: skip
def annotate(run: RunId, body: ExtraIn, ws: WS) -> None:
    ws.runs.annotate(run, **body.extra)


class ChildrenOut(BaseModel):
    ids: list[str] = Field(description="The new runs' ids, in the order they were sent")


@router.post(
    "/runs/{run:runid}/children", response_model=ChildrenOut, status_code=201, dependencies=WRITE,
    openapi_extra=body_limit(CEILING),  # up to 10,000 candidates, their params and metrics
    summary="Record finished runs made inside a run (a search's candidates); their ids",
)  # fmt: skip
def add_children(run: RunId, body: ChildrenIn, ws: WS) -> ChildrenOut:
    from assay.runs.entities import Candidate

    ids = ws.runs.add_children(
        run, [Candidate(c.params, c.metrics, c.name, c.status) for c in body.children]
    )
    return ChildrenOut(ids=ids)


@router.get("/runs/{run:runid}/children", response_model=list[Run], dependencies=READ)
def children(run: RunId, ws: WS) -> list[Run]:
    return ws.runs.children(run)
