"""The sweeps' pages: every sweep, and one sweep's best trials, history and importances."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from assay.sweeps.entities import Sweep, Trial
from assay.ui.common import WS, Who, dashboard_router, page

router = dashboard_router()


@router.get("/sweeps", response_class=HTMLResponse)
def sweeps_page(request: Request, ws: WS, who: Who) -> HTMLResponse:
    found = ws.sweeps.sweeps()
    return page(request, "sweeps.html", who, sweeps=found, best={s.name: _best(s) for s in found})


@router.get("/sweeps/{name:path}", response_class=HTMLResponse)
def sweep_page(request: Request, name: str, ws: WS, who: Who) -> HTMLResponse:
    sweep = ws.sweeps.get(name)
    ranked = ws.sweeps.ranked(sweep)
    importances = ws.sweeps.importances(sweep) if sweep.counted() >= 2 else {}
    keys: list[str] = []
    for t in ranked:
        keys.extend(k for k in t.params if k not in keys)
    by_run = {t.run_id: t for t in sweep.trial_list if t.run_id}
    best = [by_run[r] for r in sweep.best_runs if r in by_run]
    if not best and (top := _best_trial(sweep)) is not None:
        best = [top]  # a sweep still going: its best so far
    return page(
        request,
        "sweep.html",
        who,
        sweep=sweep,
        ranked=ranked,
        keys=keys,
        best=best,
        history=_history(sweep),
        parallel=_parallel(sweep, keys),
        importances=importances,
        top_importance=max(importances.values(), default=0.0) or 1.0,
    )


def _scored(sweep: Sweep) -> list[Trial]:
    return sorted(
        (t for t in sweep.trial_list if t.state == "complete" and t.values),
        key=lambda t: t.number,
    )


def _best_trial(sweep: Sweep) -> Trial | None:
    scored = _scored(sweep)
    if not scored:
        return None
    sign = 1.0 if sweep.objectives[0].direction == "maximize" else -1.0
    return max(scored, key=lambda t: sign * (t.values or [0.0])[0])


def _best(sweep: Sweep) -> float | None:
    top = _best_trial(sweep)
    return top.values[0] if top is not None and top.values else None


def _history(sweep: Sweep) -> dict[str, Any]:
    """The first objective by trial number, and the best value so far (kind "steps")."""
    goal = sweep.objectives[0]
    pick = max if goal.direction == "maximize" else min
    values: list[list[float]] = []
    best: list[list[float]] = []
    running: float | None = None
    for t in _scored(sweep):
        v = (t.values or [0.0])[0]
        running = v if running is None else pick(running, v)
        values.append([t.number, v])
        best.append([t.number, running])
    return {
        "title": f"{goal.metric} by trial",
        "xLabel": "trial",
        "series": {goal.metric: values, "best so far": best},
    }


def _parallel(sweep: Sweep, keys: list[str]) -> dict[str, Any]:
    """Params (numbers; choices by their index) against the first objective (kind "parallel")."""
    scored = _scored(sweep)
    choices: dict[str, list[str]] = {}
    for k in keys:
        seen = [t.params[k] for t in scored if k in t.params]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in seen):
            choices[k] = sorted({str(v) for v in seen})
    axes = [k for k in keys if any(k in t.params for t in scored)]

    def value(t: Trial, k: str) -> float | None:
        if k not in t.params:
            return None
        v = t.params[k]
        return float(choices[k].index(str(v))) if k in choices else float(v)

    goal = sweep.objectives[0].metric
    return {
        "axes": [*axes, goal],
        "lines": [
            {
                "label": f"trial {t.number}",
                "values": [*(value(t, k) for k in axes), t.values[0] if t.values else None],
            }
            for t in scored
        ],
        "choices": choices,
    }
