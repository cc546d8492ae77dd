"""The model repository: models, versions, aliases, lineage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from assay.registry.entities import Model, ModelVersion
from assay.server.deps import READ, WRITE, WS
from assay.server.schemas import ERRORS, Limit, Page, page_of

router = APIRouter(prefix="/models", tags=["models"], responses=ERRORS)


class AliasIn(BaseModel):
    version: int


@router.get("", response_model=Page[Model], dependencies=READ)
def list_models(ws: WS, limit: Limit = 100, page_token: str | None = None) -> Page[Model]:
    return page_of(ws.registry.models(), limit, page_token)


@router.get("/{name}/versions", response_model=Page[ModelVersion], dependencies=READ)
def versions(
    name: str, ws: WS, limit: Limit = 100, page_token: str | None = None
) -> Page[ModelVersion]:
    return page_of(ws.registry.versions(name), limit, page_token)


@router.get(
    "/{name}/versions/{selector}", response_model=ModelVersion, dependencies=READ,
    summary="A version by number, alias or `latest`",
)  # fmt: skip
def get_version(name: str, selector: str, ws: WS) -> ModelVersion:
    return ws.registry.resolve(f"{name}@{selector}")


@router.get("/{name}/versions/{selector}/lineage", dependencies=READ)
def lineage(name: str, selector: str, ws: WS) -> dict[str, Any]:
    return ws.registry.lineage(f"{name}@{selector}")


@router.put("/{name}/aliases/{alias}", response_model=ModelVersion, dependencies=WRITE)
def set_alias(name: str, alias: str, body: AliasIn, ws: WS) -> ModelVersion:
    return ws.registry.alias(f"{name}@{body.version}", alias)


@router.delete("/{name}/aliases/{alias}", status_code=204, dependencies=WRITE)
def delete_alias(name: str, alias: str, ws: WS) -> None:
    ws.registry.unalias(name, alias)
