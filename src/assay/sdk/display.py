"""Runs in a notebook: a DataFrame to filter and sort, HTML tables, inline charts.

    assay.runs(experiment="wine", filter="metrics.val_f1 > 0.9")   # a DataFrame
    assay.get_run("7530bb09")          # a table of inputs, params, metrics, and charts
    assay.compare("7530bb09", "db91babd")   # side by side, best values starred

Charts are small inline SVG (no JavaScript, nothing to load): they render in Jupyter,
VS Code and in a saved notebook on GitHub alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from assay.runs.entities import lower_is_better

if TYPE_CHECKING:
    import pandas as pd

    from assay.runs.entities import Run

Series = list[tuple[str, float | None, int | None, float]]
_PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6")
_STYLE = (
    "<style>.assay-run td,.assay-run th{text-align:left;padding:2px 10px 2px 0;"
    "font-family:monospace}.assay-run th{color:#666;font-weight:normal}"
    ".assay-best{font-weight:bold;color:#2a7d2a}.assay-diff{background:#fff6d5}</style>"
)


def frame(runs: Sequence[Run]) -> pd.DataFrame:
    """Runs as a DataFrame, one row each: id, name, experiment, status, times, inputs,
    then `params.*` and `metrics.*` columns (the names the query language filters on)."""
    import pandas as pd

    rows = []
    for r in runs:
        row: dict[str, Any] = {
            "id": r.id,
            "name": r.name,
            "experiment": r.experiment,
            "status": r.status,
            "created_at": r.created_at,
            "duration_s": r.duration_s,
            "pipeline": r.pipeline_ref,
            "data": r.data_ref,
            "parent": r.parent_id,
        }
        row.update({f"params.{k}": _cell(v) for k, v in r.params.items()})
        row.update({f"metrics.{k}": v for k, v in r.metrics.items()})
        rows.append(row)
    out = pd.DataFrame(rows)
    if not out.empty:
        out = out.set_index("id")
    return out


def _cell(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


# ---- one run ----------------------------------------------------------------------------------


def run_html(run: Run, series: Series) -> str:
    """A run as a notebook shows it: what it is, its inputs, params, metrics (with the
    curve of each metric logged more than once)."""
    curves = _curves(series)
    head = [
        ("run", f"{run.id[:8]} ({escape(run.name)})"),
        ("experiment", escape(run.experiment)),
        ("status", escape(run.status)),
        ("data", escape(run.data_ref or "-")),
        ("pipeline", escape(run.pipeline_ref or "-")),
        ("params version", escape(run.params_ref or "-")),
        ("code", escape((run.code or "-")[:16])),
        ("duration", f"{run.duration_s:.2f} s" if run.duration_s is not None else "-"),
    ]
    parts = [_STYLE, '<div class="assay-run"><table>']
    parts += [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in head]
    parts.append("</table>")
    if run.params:
        parts.append("<table><tr><th>param</th><th>value</th></tr>")
        for key, value in sorted(run.params.items()):
            parts.append(f"<tr><td>{escape(key)}</td><td>{escape(str(value))}</td></tr>")
        parts.append("</table>")
    if run.metrics:
        parts.append("<table><tr><th>metric</th><th>value</th><th></th></tr>")
        for key, value in sorted(run.metrics.items()):
            points = curves.get(key, [])
            chart = _svg({key: points}, width=160, height=32, axes=False) if len(points) > 1 else ""
            parts.append(f"<tr><td>{escape(key)}</td><td>{_num(value)}</td><td>{chart}</td></tr>")
        parts.append("</table>")
    parts.append("</div>")
    return "".join(parts)


class RunView:
    """A run as `assay.get_run` returns it: the entity (`.run`) and its metric points,
    shown in a notebook as a table with each metric's curve."""

    def __init__(self, run: Run, series: Series) -> None:
        self.run = run
        self.series = series

    def __getattr__(self, name: str) -> Any:
        return getattr(self.run, name)

    def __repr__(self) -> str:
        return f"<Run {self.run.id[:8]} {self.run.name!r} {self.run.status}>"

    def _repr_html_(self) -> str:
        return run_html(self.run, self.series)


# ---- runs side by side ----------------------------------------------------------------------


class Comparison:
    """Runs side by side (`assay.compare(...)`): an HTML table in a notebook, with
    differing values highlighted and each metric's best value starred, and the curves
    of the metrics they share overlaid; `.to_frame()` for the numbers."""

    def __init__(self, runs: Sequence[Run], series: dict[str, Series]) -> None:
        self.runs = list(runs)
        self.series = series

    def to_frame(self) -> pd.DataFrame:
        return frame(self.runs).T

    def __repr__(self) -> str:
        return f"<Comparison of {len(self.runs)} runs: {', '.join(r.id[:8] for r in self.runs)}>"

    def _repr_html_(self) -> str:
        runs = self.runs
        parts = [_STYLE, '<div class="assay-run"><table><tr><th></th>']
        parts += [f"<th>{r.id[:8]}<br>{escape(r.name)}</th>" for r in runs]
        parts.append("</tr>")

        def row(label: str, values: list[str], marks: list[str] | None = None) -> None:
            same = len(set(values)) <= 1
            cells = []
            for i, v in enumerate(values):
                cls = (marks[i] if marks else "") or ("" if same else "assay-diff")
                cells.append(f'<td class="{cls}">{v}</td>')
            parts.append(f"<tr><th>{escape(label)}</th>{''.join(cells)}</tr>")

        row("status", [escape(r.status) for r in runs])
        row("data", [escape(r.data_ref or "-") for r in runs])
        row("pipeline", [escape(r.pipeline_ref or "-") for r in runs])
        row("code", [escape((r.code or "-")[:12]) for r in runs])
        for key in sorted({k for r in runs for k in r.params}):
            row(f"params.{key}", [escape(str(r.params.get(key, "-"))) for r in runs])
        for key in sorted({k for r in runs for k in r.metrics}):
            values = [r.metrics.get(key) for r in runs]
            present = [v for v in values if v is not None]
            best = (min if lower_is_better(key) else max)(present) if len(present) > 1 else None
            texts = [_num(v) + (" ★" if v is not None and v == best else "") for v in values]
            marks = ["assay-best" if v is not None and v == best else "" for v in values]
            row(f"metrics.{key}", texts, marks)
        parts.append("</table>")
        shared = _shared_curves(runs, self.series)
        for key, lines in shared.items():
            parts.append(f"<div><b>{escape(key)}</b><br>{_svg(lines)}</div>")
        parts.append("</div>")
        return "".join(parts)


def _shared_curves(runs: Sequence[Run], series: dict[str, Series]) -> dict[str, dict[str, Any]]:
    by_key: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for r in runs:
        for key, points in _curves(series.get(r.id, [])).items():
            if len(points) > 1:
                by_key.setdefault(key, {})[f"{r.id[:8]} {r.name}"] = points
    return {k: v for k, v in sorted(by_key.items())}


# ---- drawing ------------------------------------------------------------------------------


def _curves(series: Series) -> dict[str, list[tuple[float, float]]]:
    """Each metric's points as (x, value): x is the step, or the order logged."""
    out: dict[str, list[tuple[float, float]]] = {}
    for key, value, step, _ts in series:
        if value is None:
            continue
        points = out.setdefault(key, [])
        points.append((float(step) if step is not None else float(len(points)), float(value)))
    return out


def _svg(lines: dict[str, Any], *, width: int = 360, height: int = 140, axes: bool = True) -> str:
    """Lines as an inline SVG chart, with the value range and a legend when it has axes."""
    everything = [p for points in lines.values() for p in points]
    if not everything:
        return ""
    xs = [x for x, _ in everything]
    ys = [y for _, y in everything]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    pad = 4 if not axes else 26
    w, h = width - pad - 4, height - 8 - (14 if axes else 0)

    def at(x: float, y: float) -> str:
        px = pad + (x - x0) / ((x1 - x0) or 1) * w
        py = 4 + h - (y - y0) / ((y1 - y0) or 1) * h
        return f"{px:.1f},{py:.1f}"

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, points) in enumerate(lines.items()):
        color = _PALETTE[i % len(_PALETTE)]
        path = " ".join(at(x, y) for x, y in sorted(points))
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}">'
            f"<title>{escape(label)}</title></polyline>"
        )
    if axes:
        parts.append(
            f'<text x="0" y="12" font-size="10" fill="#666">{_num(y1)}</text>'
            f'<text x="0" y="{h + 4}" font-size="10" fill="#666">{_num(y0)}</text>'
        )
        legend = "  ".join(
            f'<tspan fill="{_PALETTE[i % len(_PALETTE)]}">■ {escape(label)}</tspan>'
            for i, label in enumerate(lines)
        )
        parts.append(f'<text x="{pad}" y="{height - 2}" font-size="10">{legend}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"
