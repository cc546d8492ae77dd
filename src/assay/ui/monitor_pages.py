"""Monitoring pages: every monitored service and A/B test, and one monitor's drift over time,
live against training histograms, and performance over time.

The report on a monitor's page is computed when the page is opened and recorded nowhere
(reading a page changes nothing); its history comes from the recorded checks. A write
token may snapshot the window as a data version and retrain on a snapshot (the run
executes on the server, in the background).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from assay.errors import AssayError
from assay.monitoring import api
from assay.monitoring.entities import MonitorCheck, MonitorReport, Window
from assay.ui.common import WS, Who, dashboard_router, page
from assay.ui.session import Viewer
from assay.workspace import Workspace

router = dashboard_router()


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring_page(request: Request, ws: WS, who: Who) -> HTMLResponse:
    monitors = {m.name: m for m in ws.monitoring.monitors()}
    watched = [
        *({"name": s.name, "kind": "service", "model": s.model_ref, "state": s.state}
          for s in ws.services.services()),
        *({"name": t.name, "kind": "abtest",
           "model": ", ".join(f"{v.label}={v.model_ref}" for v in t.variants), "state": t.state}
          for t in ws.abtests.tests()),
    ]  # fmt: skip
    return page(request, "monitoring.html", who, watched=watched, monitors=monitors)


@router.get("/monitoring/{name:path}", response_class=HTMLResponse)
def monitor_page(
    request: Request,
    name: str,
    ws: WS,
    who: Who,
    last: str | None = None,
    said: str | None = None,
) -> HTMLResponse:
    return _monitor(request, ws, who, name, last=last, message=said)


def _monitor(
    request: Request,
    ws: Workspace,
    who: Viewer,
    name: str,
    *,
    last: str | None = None,
    error: str | None = None,
    message: str | None = None,
) -> HTMLResponse:
    window = None
    try:
        window = Window.parse(last) if last else None
    except AssayError as exc:
        error = exc.message
    report: MonitorReport | None = None
    try:
        report = ws.monitoring.check(name, window=window, record=False)
    except AssayError as exc:
        if error is None:
            error = exc.message
    history = ws.monitoring.history(name, limit=200)
    snaps = ws.monitoring.snapshots(name)
    mine = {s.ref for s in snaps}
    retrains = [r for r in ws.monitoring.retrains() if r.with_data in mine]
    return page(
        request,
        "monitor.html",
        who,
        name=name,
        monitor=ws.monitoring.get(name),
        report=report,
        last=last or "",
        drift_chart=_drift_over_time(history),
        performance_chart=_performance(report) if report else None,
        history=history[-20:][::-1],
        snapshots=snaps[::-1],
        retrains=retrains[::-1],
        error=error,
        message=message,
    )


def _drift_over_time(history: list[MonitorCheck]) -> dict[str, Any] | None:
    """Each feature's PSI at every recorded check (kind "steps", a time axis)."""
    series: dict[str, list[list[float]]] = {}
    for check in history:
        at = check.at.timestamp()
        features = dict(check.summary.get("features") or {})
        if check.summary.get("prediction"):
            features["prediction"] = check.summary["prediction"]
        for feature, f in features.items():
            if f.get("psi") is not None:
                series.setdefault(feature, []).append([at, f["psi"]])
    if not series:
        return None
    return {"title": "PSI per feature, at each check", "xLabel": "time", "time": True,
            "series": series}  # fmt: skip


def _performance(report: MonitorReport) -> dict[str, Any] | None:
    """Performance per model version over the window, with 95% bands (kind "bands")."""
    perf = report["performance"]
    if not perf["series"]:
        return None
    xs = sorted({(p["start"] + p["end"]) / 2 for pts in perf["series"].values() for p in pts})
    index = {x: i for i, x in enumerate(xs)}
    lines = []
    for version, points in sorted(perf["series"].items()):
        y: list[float | None] = [None] * len(xs)
        lo: list[float | None] = [None] * len(xs)
        hi: list[float | None] = [None] * len(xs)
        for p in points:
            i = index[(p["start"] + p["end"]) / 2]
            y[i], lo[i], hi[i] = p["value"], p["lo"], p["hi"]
        lines.append({"label": version, "y": y, "lo": lo, "hi": hi})
    return {"title": f"{perf['metric']} over time", "xLabel": "time", "time": True, "x": xs,
            "lines": lines}  # fmt: skip


@router.post("/monitoring/{name:path}/snapshot")
def snapshot(
    request: Request,
    name: str,
    ws: WS,
    who: Who,
    dataset: Annotated[str, Form()],
    last: Annotated[str, Form()] = "",
) -> Response:
    if not who.can_write:
        return PlainTextResponse("Taking a snapshot needs a write token.", status_code=403)
    try:
        window = Window.parse(last) if last.strip() else None
        snap = ws.monitoring.snapshot(name, dataset.strip(), window=window)
    except AssayError as exc:
        return _monitor(request, ws, who, name, error=exc.message)
    said = f"Committed {snap.ref}: {snap.rows} rows, {snap.labeled} labeled."
    return RedirectResponse(
        f"/monitoring/{quote(name)}?{urlencode({'said': said})}", status_code=303
    )


@router.post("/monitoring/{name:path}/retrain")
def retrain(
    request: Request,
    name: str,
    ws: WS,
    who: Who,
    model: Annotated[str, Form()],
    data: Annotated[str, Form()],
    alone: Annotated[bool, Form()] = False,
    challenge: Annotated[bool, Form()] = False,
) -> Response:
    if not who.can_write:
        return PlainTextResponse("Retraining needs a write token.", status_code=403)
    from assay.executors.local import launch_in_background

    try:
        started = ws.monitoring.retrain(
            model,
            data,
            alone=alone,
            challenge=api.CHALLENGE if challenge else None,
            launch=lambda run, done: launch_in_background(ws, run.id, then=done),
        )
    except AssayError as exc:
        return _monitor(request, ws, who, name, error=exc.message)
    said = f"Retraining {started.model} on {started.data}: run {started.run_id[:8]} started."
    return RedirectResponse(
        f"/monitoring/{quote(name)}?{urlencode({'said': said})}", status_code=303
    )
