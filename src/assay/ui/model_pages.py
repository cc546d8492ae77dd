"""The model repository's pages: models, a model's versions, and one version's lineage.

Model names may hold '/', so a version is `/models/NAME/VERSION` with a numeric last part.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from assay.ui.common import WS, Who, dashboard_router, page

router = dashboard_router()


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, ws: WS, who: Who) -> HTMLResponse:
    return page(request, "models.html", who, models=ws.registry.models())


@router.get("/models/{name:path}/{version:int}", response_class=HTMLResponse)
def model_version_page(request: Request, name: str, version: int, ws: WS, who: Who) -> HTMLResponse:
    mv = ws.registry.resolve(f"{name}@{version}")
    return page(request, "model_version.html", who, mv=mv, lineage=ws.registry.lineage(mv.ref))


@router.get("/models/{name:path}", response_class=HTMLResponse)
def model_page(request: Request, name: str, ws: WS, who: Who) -> HTMLResponse:
    versions = ws.registry.versions(name)
    metrics = sorted({k for v in versions for k in v.metrics})[:6]
    return page(request, "model.html", who, name=name, versions=versions, metrics=metrics)
