"""A sweep's plots: Optuna's own charts drawn with matplotlib, saved as PNG, plus one
self-contained HTML page (the PNGs inlined, the trials table) that opens offline."""

from __future__ import annotations

import base64
import html
import warnings
from pathlib import Path
from typing import Any

from assay.errors import InvalidArgumentError
from assay.sweeps.entities import Sweep


def save_plots(sweep: Sweep, study: Any, importances: dict[str, float], out: Path) -> list[Path]:
    """Write `<sweep>-history.png`, `<sweep>-parallel.png` (and importances) and `<sweep>.html`.

    Raises:
        InvalidArgumentError: the sweep has no finished trial to plot.
    """
    if not any(t.state == "complete" for t in sweep.trial_list):
        raise InvalidArgumentError(f"Sweep {sweep.name!r} has no finished trial to plot yet.")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis
    from optuna.exceptions import ExperimentalWarning

    out.mkdir(parents=True, exist_ok=True)
    goal = sweep.objectives[0]
    target: Any = None
    if sweep.multi:

        def target(t: Any) -> float:
            return float(t.values[0])

    charts: list[tuple[str, str, Any]] = [
        ("history", "Optimization history", lambda: vis.plot_optimization_history(
            study, target=target, target_name=goal.metric)),
        ("parallel", "Parallel coordinates", lambda: vis.plot_parallel_coordinate(
            study, target=target, target_name=goal.metric)),
    ]  # fmt: skip
    if importances:
        charts.append(
            ("importances", "Parameter importances", lambda: _importance_chart(plt, importances))
        )
    files: list[Path] = []
    images: list[tuple[str, bytes]] = []
    for key, title, draw in charts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)
            ax = draw()
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(9, 5)
        fig.tight_layout()
        path = out / f"{sweep.name}-{key}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
        images.append((title, path.read_bytes()))
    page = out / f"{sweep.name}.html"
    page.write_text(_page(sweep, images, importances), encoding="utf-8")
    files.append(page)
    return files


def _importance_chart(plt: Any, importances: dict[str, float]) -> Any:
    _, ax = plt.subplots()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="#3b82f6")
    ax.set_xlabel("importance (fANOVA)")
    ax.set_title("Parameter importances")
    return ax


def _page(sweep: Sweep, images: list[tuple[str, bytes]], importances: dict[str, float]) -> str:
    e = html.escape
    goals = ", ".join(o.label for o in sweep.objectives)
    rows = []
    keys: list[str] = []
    for t in sweep.trial_list:
        keys.extend(k for k in t.params if k not in keys)
    for t in sweep.trial_list:
        values = ", ".join(f"{v:.6g}" for v in t.values) if t.values else ""
        cells = "".join(f"<td>{e(str(t.params.get(k, '')))}</td>" for k in keys)
        rows.append(
            f"<tr><td>{t.number}</td><td>{e(t.state)}</td><td>{e(values)}</td>"
            f"<td>{e((t.run_id or '')[:8])}</td>{cells}</tr>"
        )
    figures = "".join(
        f"<h2>{e(title)}</h2><img alt='{e(title)}' "
        f"src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
        for title, data in images
    )
    head = "".join(f"<th>{e(k)}</th>" for k in keys)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(sweep.name)} · Assay sweep</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#111}}img{{max-width:100%}}
table{{border-collapse:collapse}}
td,th{{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}}</style></head><body>
<h1>Sweep {e(sweep.name)}</h1>
<p>{e(sweep.pipeline_ref)} on {e(sweep.data_ref)} · {e(goals)} · sampler {e(sweep.sampler)} ·
{sweep.counted()} of {sweep.trials} trials · {e(sweep.status)}</p>
{figures}
<h2>Trials</h2>
<table><tr><th>trial</th><th>state</th><th>{e(goals)}</th><th>run</th>{head}</tr>
{"".join(rows)}</table>
</body></html>
"""
