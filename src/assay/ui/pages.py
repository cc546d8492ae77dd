"""The dashboard's pages. Each reads one or two service methods and renders a template."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from assay.errors import AssayError
from assay.ui.common import WS, Who, dashboard_router, page

router = dashboard_router()

PAGE_SIZE = 50


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, ws: WS, who: Who) -> HTMLResponse:
    runs = ws.runs.search(limit=10)
    models = ws.registry.models()
    services = [s for s in ws.services.services() if s.desired == "running"]
    tests = [t for t in ws.abtests.tests() if t.status in ("running", "paused")]
    return page(
        request, "overview.html", who, runs=runs, models=models, services=services, tests=tests
    )


# ---- runs ------------------------------------------------------------------------------------


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    ws: WS,
    who: Who,
    filter: str = "",
    sort: str = "",
    experiment: str = "",
    page_no: Annotated[int, Query(alias="page", ge=1)] = 1,
    cols: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    error = None
    found: list[Any] = []
    try:
        found = ws.runs.search(
            experiment=experiment or None,
            filter=filter or None,
            sort=sort or None,
            limit=PAGE_SIZE + 1,
            offset=(page_no - 1) * PAGE_SIZE,
        )
    except AssayError as exc:
        error = exc.message
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    param_keys, metric_keys = ws.runs.keys()
    chosen = [c for c in (cols or []) if c.startswith(("params.", "metrics."))]
    if not chosen:  # the metrics most of this page's runs have, then nothing else
        counts: dict[str, int] = {}
        for run in found:
            for key in run.metrics:
                counts[key] = counts.get(key, 0) + 1
        chosen = [f"metrics.{k}" for k in sorted(counts, key=lambda k: (-counts[k], k))[:4]]
    context = {
        "runs": found,
        "filter": filter,
        "sort": sort,
        "experiment": experiment,
        "page_no": page_no,
        "more": more,
        "cols": chosen,
        "param_keys": param_keys,
        "metric_keys": metric_keys,
        "experiments": [name for name, _ in ws.runs.experiments()],
        "error": error,
    }
    template = "_runs_table.html" if request.headers.get("hx-request") else "runs.html"
    return page(request, template, who, **context)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, ws: WS, who: Who) -> HTMLResponse:
    run = ws.runs.get(run_id)
    series: dict[str, list[list[float | None]]] = {}
    for key, value, step, _ in ws.runs.series(run.id):
        if step is not None:
            series.setdefault(key, []).append([step, value])
    return page(
        request,
        "run.html",
        who,
        run=run,
        series=series,
        logs=ws.runs.logs(run.id),
        artifacts=ws.runs.artifacts(run.id),
    )


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    ws: WS,
    who: Who,
    run: Annotated[list[str] | None, Query()] = None,
    objective: str = "",
) -> HTMLResponse:
    refs = run or []
    found = ws.runs.compare(refs) if len(refs) >= 2 else []
    params = sorted({k for r in found for k in r.params})
    metrics = sorted({k for r in found for k in r.metrics})
    differs = {k for k in params if len({repr(r.params.get(k)) for r in found}) > 1}
    differs |= {f"m:{k}" for k in metrics if len({r.metrics.get(k) for r in found}) > 1}
    curves: dict[str, dict[str, list[list[float | None]]]] = {}
    for r in found:
        for key, value, step, _ in ws.runs.series(r.id):
            if step is not None:
                curves.setdefault(key, {}).setdefault(r.name, []).append([step, value])
    varying = [k for k in metrics if f"m:{k}" in differs]
    preferred = [k for k in varying if not k.startswith("curve")] or varying or metrics
    target = objective or (preferred[0] if preferred else "")
    numeric = [  # the params that vary and are numbers: constant axes say nothing
        k
        for k in params
        if k in differs and all(isinstance(r.params.get(k), int | float) for r in found)
    ]
    parallel = {
        "axes": numeric + ([f"metrics.{target}"] if target else []),
        "lines": [
            {
                "label": r.name,
                "values": [r.params.get(k) for k in numeric]
                + ([r.metrics.get(target)] if target else []),
            }
            for r in found
        ],
    }
    return page(
        request,
        "compare.html",
        who,
        runs=found,
        params=params,
        metrics=metrics,
        differs=differs,
        curves=curves,
        parallel=parallel,
        refs=refs,
        objective=target,
    )
