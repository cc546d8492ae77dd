"""The pipeline registry's pages: pipelines, and one version's steps, source and diff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from assay.errors import NotFoundError
from assay.pipelines.entities import PipelineVersion
from assay.ui.common import WS, Who, dashboard_router, page

router = dashboard_router()

# The step graph's layout, in SVG user units.
BOX_H, GAP_X, GAP_Y, PAD = 34, 56, 18, 10
ARC = 40  # room above and below the boxes for edges that arc around others


@router.get("/pipelines", response_class=HTMLResponse)
def pipelines_page(request: Request, ws: WS, who: Who) -> HTMLResponse:
    return page(request, "pipelines.html", who, pipelines=ws.pipelines.pipelines())


@router.get("/pipelines/{name:path}", response_class=HTMLResponse)
def pipeline_page(
    request: Request,
    name: str,
    ws: WS,
    who: Who,
    version: int | None = None,
    diff: int | None = None,
) -> HTMLResponse:
    versions = ws.pipelines.log(name)  # newest first
    shown = _pick(versions, name, version)
    diff_html = None
    other = _pick(versions, name, diff) if diff is not None else None
    if other is not None:
        text = ws.pipelines.diff(other.ref, shown.ref)
        diff_html = _highlight(text, "diff") if text else None
    return page(
        request,
        "pipeline.html",
        who,
        name=name,
        versions=versions,
        version=shown,
        graph=step_graph(shown),
        source=_highlight(ws.pipelines.readable(shown), "python"),
        other=other,
        diff_html=diff_html,
    )


def _pick(versions: list[PipelineVersion], name: str, number: int | None) -> PipelineVersion:
    if number is None and versions:
        return versions[0]
    for v in versions:
        if v.number == number:
            return v
    raise NotFoundError(f"Pipeline {name!r} has no version {number}.", pipeline=name)


def _highlight(text: str, language: str) -> Markup:
    """Source as HTML, coloured by Pygments (which escapes the text it is given)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import DiffLexer, PythonLexer

    lexer = PythonLexer() if language == "python" else DiffLexer()
    return Markup(highlight(text, lexer, HtmlFormatter(nowrap=False, cssclass="source")))


@dataclass(frozen=True)
class Node:
    name: str
    x: int
    y: int
    kind: str  # "input" (the run's data or params), "step", "model" or "metrics"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    d: str  # the SVG path from the source's right side to the target's left side


def step_graph(version: PipelineVersion) -> dict[str, Any]:
    """The steps laid out left to right: each in the column after its latest input.

    The run's own inputs (`data`, `params`) sit just before the first step that takes
    them. An edge that skips columns along a row arcs around the boxes between.
    """
    steps = {s.name for s in version.steps}
    column: dict[str, int] = {}
    for s in version.steps:
        for i in s.inputs:
            if i not in steps:
                column.setdefault(i, 0)
    for s in version.steps:  # steps come in order: every input is placed already
        column[s.name] = 1 + max((column.get(i, 0) for i in s.inputs), default=0)
    for key in [k for k in column if k not in steps]:
        column[key] = min(column[s.name] for s in version.steps if key in s.inputs) - 1
    low = min(column.values(), default=0)
    column = {k: v - low for k, v in column.items()}
    box_w = max(96, 8 * max((len(k) for k in column), default=0) + 24)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    nodes: list[Node] = []
    for key in sorted(column, key=lambda k: k not in steps):  # steps above inputs
        col = column[key]
        row = rows.get(col, 0)
        rows[col] = row + 1
        place[key] = (col, row)
        kind = "input" if key not in steps else "step"
        if key == version.model_step:
            kind = "model"
        elif key == version.metrics_step:
            kind = "metrics"
        nodes.append(Node(key, PAD + col * (box_w + GAP_X), ARC + row * (BOX_H + GAP_Y), kind))
    at = {n.name: n for n in nodes}
    edges = []
    for s in version.steps:
        b = at[s.name]
        for i in s.inputs:
            a = at[i]
            x1, y1 = a.x + box_w, a.y + BOX_H // 2
            x2, y2 = b.x - 4, b.y + BOX_H // 2
            span = place[s.name][0] - place[i][0]
            if span > 1 and y1 == y2:  # around the boxes between: over row 0, else under
                bow = (BOX_H // 2 + 6 + 4 * span) * 4 // 3 * (-1 if place[i][1] == 0 else 1)
                d = f"M{x1},{y1} C{x1 + GAP_X},{y1 + bow} {x2 - GAP_X},{y2 + bow} {x2},{y2}"
            else:
                mid = (x1 + x2) // 2
                d = f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"
            edges.append(Edge(i, s.name, d))
    width = PAD * 2 + (max(column.values(), default=0) + 1) * (box_w + GAP_X) - GAP_X
    height = ARC * 2 + max(rows.values(), default=1) * (BOX_H + GAP_Y) - GAP_Y
    return {
        "nodes": nodes,
        "edges": edges,
        "width": width,
        "height": height,
        "box_w": box_w,
        "box_h": BOX_H,
    }
