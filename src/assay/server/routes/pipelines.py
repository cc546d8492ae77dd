"""Versioned pipelines: list, read, and register from source files sent as text.

Registering imports the pipeline's module on the server to find its steps, so a
`write` token can run code here, as it can by starting a run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from assay.data.entities import FileEntry
from assay.pipelines.entities import PipelineInfo, PipelineVersion
from assay.server.deps import READ, WRITE, WS
from assay.server.schemas import (
    BY_PATH,
    CEILING,
    ERRORS,
    TEXT_ROUTE_ERRORS,
    Input,
    Limit,
    Name,
    NameText,
    Page,
    PageToken,
    PipelineRefText,
    PipelineSelector,
    RelPathText,
    body_limit,
    name_field,
    page_of,
)
from assay.store.paths import safe_join

router = APIRouter(prefix="/pipelines", tags=["pipelines"], responses=ERRORS)


class PipelineIn(Input):
    files: dict[RelPathText, str] = Field(
        json_schema_extra=BY_PATH,
        description="The source files by relative path (`*.py`, `requirements*.txt`)",
        min_length=1,
        max_length=2000,
    )
    entry: RelPathText = Field(description="The file defining the pipeline, e.g. pipeline.py")
    name: NameText | None = name_field("Default: the pipeline's own", default=None)
    message: str = Field(default="", max_length=4096)


class Registered(BaseModel):
    version: PipelineVersion
    created: bool = Field(description="False when the source was unchanged")


@router.get("", response_model=Page[PipelineInfo], dependencies=READ)
def list_pipelines(ws: WS, limit: Limit = 100, page_token: PageToken = None) -> Page[PipelineInfo]:
    return page_of(ws.pipelines.pipelines(), limit, page_token)


@router.get("/{name}/versions", response_model=Page[PipelineVersion], dependencies=READ)
def pipeline_log(
    name: Name, ws: WS, limit: Limit = 100, page_token: PageToken = None
) -> Page[PipelineVersion]:
    return page_of(ws.pipelines.log(name), limit, page_token)


@router.get("/{name}/versions/{selector}", response_model=PipelineVersion, dependencies=READ)
def get_pipeline(name: Name, selector: PipelineSelector, ws: WS) -> PipelineVersion:
    return ws.pipelines.resolve(f"{name}@{selector}")


@router.get(
    "/{name}/versions/{selector}/files", response_model=list[FileEntry], dependencies=READ,
    summary="The snapshot's files: path, content hash and size",
)  # fmt: skip
def files(name: Name, selector: PipelineSelector, ws: WS) -> list[FileEntry]:
    return list(ws.pipelines.files(ws.pipelines.resolve(f"{name}@{selector}")))


@router.get(
    "/diff", response_class=PlainTextResponse, dependencies=READ,
    responses=TEXT_ROUTE_ERRORS,
    summary="A unified diff of two versions' source (empty when the same)",
)  # fmt: skip
def diff(
    old: Annotated[PipelineRefText, Query(description="NAME@VERSION")],
    new: Annotated[PipelineRefText, Query(description="NAME@VERSION")],
    ws: WS,
) -> str:
    return ws.pipelines.diff(old, new)


@router.get(
    "/{name}/versions/{selector}/source",
    response_class=PlainTextResponse,
    responses=TEXT_ROUTE_ERRORS,
    dependencies=READ,
)
def source(name: Name, selector: PipelineSelector, ws: WS, path: str | None = None) -> str:
    return ws.pipelines.source(ws.pipelines.resolve(f"{name}@{selector}"), path)


@router.post(
    "", response_model=Registered, status_code=201, dependencies=WRITE,
    openapi_extra=body_limit(CEILING),  # the sources, as text
)  # fmt: skip
def register(body: PipelineIn, ws: WS) -> Registered:
    with tempfile.TemporaryDirectory(prefix="assay-upload-") as tmp:
        root = Path(tmp)
        for rel, text in body.files.items():
            target = safe_join(root, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        entry = safe_join(root, body.entry)
        version, created = ws.pipelines.register(entry, body.name, body.message)
    return Registered(version=version, created=created)
