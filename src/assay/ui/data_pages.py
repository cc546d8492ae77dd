"""The data repository's pages: datasets, a dataset's versions, a version, and a diff.

Dataset names may hold '/', so a dataset or version is addressed by the rest of the
path: `/data/params/churn` lists versions, `/data/params/churn@3` shows one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from assay.data.entities import is_tabular_path
from assay.errors import AssayError, InvalidArgumentError
from assay.ui.common import WS, Who, dashboard_router, page, templates

router = dashboard_router()

MAX_FILES_SHOWN = 500
# Tables profiled on a version's page: each is profiled (once) when first shown.
MAX_PROFILES_SHOWN = 20


def _bytes(n: int | None) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


templates.env.filters["bytes"] = _bytes


@router.get("/data", response_class=HTMLResponse)
def datasets_page(
    request: Request, ws: WS, who: Who, include_params: Annotated[bool, Query(alias="all")] = False
) -> HTMLResponse:
    found = ws.data.datasets(include_params=include_params)
    return page(request, "data.html", who, datasets=found, all=include_params)


@router.get("/data-diff", response_class=HTMLResponse)
def data_diff_page(
    request: Request, ws: WS, who: Who, old: str = "", new: str = "", key: str = ""
) -> HTMLResponse:
    diff, error = None, None
    if old and new:
        try:
            diff = ws.data.diff(old, new, key=key.strip() or None)
        except AssayError as exc:
            error = exc.message
    return page(request, "data_diff.html", who, diff=diff, old=old, new=new, key=key, error=error)


@router.get("/data/{ref:path}", response_class=HTMLResponse)
def dataset_page(request: Request, ref: str, ws: WS, who: Who) -> HTMLResponse:
    if "@" not in ref:
        return page(request, "dataset.html", who, name=ref, versions=ws.data.log(ref))
    profiles: dict[str, Any] = {}
    no_profile = None
    try:
        version, profiles = ws.data.profile(ref, limit=MAX_PROFILES_SHOWN)
    except InvalidArgumentError as exc:  # no tabular file
        version, no_profile = ws.data.resolve(ref), exc.message
    files = ws.data.files(version)
    tables = sum(1 for f in files if is_tabular_path(f.path))
    return page(
        request,
        "data_version.html",
        who,
        version=version,
        files=files[:MAX_FILES_SHOWN],
        total_files=len(files),
        profiles=profiles,
        more_tables=tables - len(profiles) if profiles else 0,
        no_profile=no_profile,
    )
