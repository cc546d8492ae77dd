"""Serving and A/B testing pages: services (with a prediction to try) and A/B test reports.

Any signed-in viewer may try a prediction (what the service answers anyone who can reach
it); concluding an A/B test moves an alias, so it needs an admin token, checked here.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from assay.abtests.entities import ABReport
from assay.errors import AssayError
from assay.serving.entities import Service
from assay.ui.common import WS, Who, dashboard_router, page
from assay.ui.session import Viewer
from assay.workspace import Workspace

router = dashboard_router()

EXAMPLE_ROWS = 2
TRY_TIMEOUT_S = 30.0


# ---- services ------------------------------------------------------------------------------


@router.get("/services", response_class=HTMLResponse)
def services_page(request: Request, ws: WS, who: Who) -> HTMLResponse:
    found = ws.services.services()
    status = {s.name: ws.services.status(s.name) for s in found}
    examples = {s.name: _example(ws, s) for s in found if s.state == "running"}
    return page(request, "services.html", who, services=found, status=status, examples=examples)


def _example(ws: Workspace, svc: Service) -> str:
    """A KServe V1 body of the model's own input example, for the try-it form."""
    rows: list[Any] = []
    try:
        manifest = ws.registry.manifest(ws.registry.resolve(svc.model_ref))
        rows = list(manifest.get("input_example") or [])[:EXAMPLE_ROWS]
    except AssayError:
        pass  # the version is gone: an empty body to fill in
    return json.dumps({"instances": rows}, indent=2, default=str)


@router.post("/services/{name:path}/try", response_class=HTMLResponse)
def try_prediction(
    request: Request, name: str, ws: WS, who: Who, body: Annotated[str, Form()] = ""
) -> HTMLResponse:
    import httpx

    from assay import httpclient

    svc = ws.services.get(name)
    result: dict[str, Any] = {"service": svc, "status": None, "answer": None, "error": None}
    if svc.state != "running":
        result["error"] = f"Service {name} is {svc.state}; start it to try a prediction."
    else:
        try:
            response = httpclient.post(
                f"{svc.url}/v1/models/{svc.model}:predict",
                content=body.encode(),
                headers={"content-type": "application/json"},
                timeout=TRY_TIMEOUT_S,
            )
            result["status"] = response.status_code
            try:
                result["answer"] = json.dumps(response.json(), indent=2)
            except ValueError:
                result["answer"] = response.text
        except httpx.HTTPError as exc:
            result["error"] = f"The service did not answer: {exc or type(exc).__name__}."
    template = "_try_result.html" if request.headers.get("hx-request") else "try_result.html"
    return page(request, template, who, **result)


# ---- A/B tests -----------------------------------------------------------------------------


@router.get("/abtests", response_class=HTMLResponse)
def abtests_page(request: Request, ws: WS, who: Who) -> HTMLResponse:
    return page(request, "abtests.html", who, tests=ws.abtests.tests())


@router.post("/abtests/{name:path}/conclude")
def conclude(
    request: Request, name: str, ws: WS, who: Who, winner: Annotated[str, Form()]
) -> Response:
    if not who.is_admin:
        return PlainTextResponse("Concluding an A/B test needs an admin token.", status_code=403)
    try:
        ws.abtests.conclude(name, winner)
    except AssayError as exc:
        return _abtest(request, ws, who, name, error=exc.message)
    return RedirectResponse(f"/abtests/{quote(name)}", status_code=303)


@router.get("/abtests/{name:path}", response_class=HTMLResponse)
def abtest_page(request: Request, name: str, ws: WS, who: Who) -> HTMLResponse:
    return _abtest(request, ws, who, name)


def _abtest(
    request: Request, ws: Workspace, who: Viewer, name: str, error: str | None = None
) -> HTMLResponse:
    report = ws.abtests.report(name, auto=False)  # reading a page never concludes a test
    test = report["abtest"]
    return page(
        request,
        "abtest.html",
        who,
        report=report,
        test=test,
        models={v.label: v.model_ref for v in test.variants},
        shares=_shares(report),
        chart=_bands(report),
        can_conclude=test.status in ("running", "paused"),
        error=error,
    )


def _shares(report: ABReport) -> dict[str, float | None]:
    """Each variant's share of the live requests, in percent."""
    counts = {label: report["variants"][label]["requests"] for label in report["labels"]}
    total = sum(counts.values())
    return {label: (n / total * 100 if total else None) for label, n in counts.items()}


def _bands(report: ABReport) -> dict[str, Any]:
    """The cumulative reward of each variant over time with its 95% band (kind "bands")."""
    series = report["series"]
    times: list[float] = series["times"]
    lines = []
    for label in report["labels"]:
        lines.append(
            {
                "label": label,
                "y": series["values"].get(label, []),
                "lo": (series.get("lo") or {}).get(label),
                "hi": (series.get("hi") or {}).get(label),
            }
        )
    return {
        "title": f"{report['metric']} over time (cumulative)",
        "xLabel": "time",
        "time": True,
        "x": times,
        "lines": lines,
    }
