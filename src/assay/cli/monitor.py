"""`assay monitor …` and `assay retrain`: watch served models, and retrain them on live data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from assay.cli.context import is_remote, local, remote, workspace
from assay.cli.output import JsonOpt, console, emit_json, err, fmt_num, sparkline, when
from assay.cli.tables import Table
from assay.errors import InvalidArgumentError
from assay.monitoring import api

if TYPE_CHECKING:
    from collections.abc import Callable

    from assay.monitoring.entities import FeatureDrift, MonitorReport, Retrain, Window
    from assay.runs.entities import Run


class _CheckByDefault(TyperGroup):
    """`assay monitor NAME` checks NAME; `assay monitor snapshot …` and the other
    subcommands are themselves."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["check", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_CheckByDefault,
    help="Watch served models: `assay monitor NAME` checks a service or A/B test for drift; "
    "snapshot, config, history, list, watch, snapshots, retrains.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_STATE = {
    "ok": "[green]ok[/green]",
    "warning": "[yellow]warning[/yellow]",
    "drift": "[red]drift[/red]",
    None: "[dim]-[/dim]",
}

Last = Annotated[
    str | None,
    typer.Option("--last", help="The last N requests (5000), or a duration (30m, 1h, 1d)."),
]
From = Annotated[str | None, typer.Option("--from", help="Window start, ISO 8601 (UTC).")]
To = Annotated[str | None, typer.Option("--until", help="Window end, ISO 8601 (UTC).")]


def _window(last: str | None, start: str | None, end: str | None) -> Window | None:
    from assay.monitoring.entities import Window

    if last is None and start is None and end is None:
        return None  # the monitor's config says
    return Window.parse(last, start, end)


@app.command("check", hidden=True)
def check(
    name: Annotated[str, typer.Argument(help="A service or A/B test.")],
    last: Last = None,
    start: From = None,
    end: To = None,
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="Compare with DATASET@V, not the model's training data."),
    ] = None,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Report only: record no state, call no webhook.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare a window of NAME's logged traffic with its model's training data."""
    window = _window(last, start, end)
    if is_remote():  # a retrain the check starts runs on the server
        report = workspace().monitoring.check(
            name, window=window, reference=reference, record=not no_record
        )
    else:  # ... or here, shown as `assay run` shows a run
        report = local().monitoring.check(
            name,
            window=window,
            reference=reference,
            record=not no_record,
            launch=_launch(quiet=as_json),
        )
    if as_json:
        emit_json(report)
    else:
        print_report(report)


def print_report(r: MonitorReport) -> None:
    """The report as people read it: the state, each feature, the model's outputs."""
    console.print(
        f"[bold]{escape(r['monitor'])}[/bold]  {r['target']}  model {r['model']}  "
        f"reference {r['reference'] or '-'}"
        + (f":{r['reference_file']}" if r["reference_file"] else "")
    )
    span = ""
    if r["start"] is not None and r["end"] is not None:
        span = f", {_clock(r['start'])} → {_clock(r['end'])}"
    console.print(
        f"window {r['window_text']}: {r['requests']:,} requests, {r['rows']:,} rows{span}"
    )
    console.print(f"state  {_STATE.get(r['state'], r['state'])}  (alpha {r['alpha']:g}, Holm)")
    features = [*r["features"], *([r["prediction"]] if r["prediction"] else [])]
    if features:
        table = Table(
            "feature",
            "kind",
            "test",
            "p (Holm)",
            "PSI",
            "missing",
            "out of range",
            "state",
            "training → live",
            "why",
            box=None,
            header_style="bold",
        )
        for f in features:
            table.add_row(
                escape(f["name"]),
                f["kind"],
                f["test"] or "-",
                _p(f["p_adjusted"]),
                fmt_num(f["psi"], 3),
                _pct(f["missing_live"]),
                _pct(f["out_of_range"]),
                _STATE.get(f["state"], f["state"]),
                _shapes(f),
                escape("; ".join(f["reasons"])),
            )
        console.print(table)
    perf = r["performance"]
    if perf["metric"]:
        lo, hi = perf["ci"]
        band = f" (95% CI {fmt_num(lo, 3)}–{fmt_num(hi, 3)})" if lo is not None else ""
        console.print(
            f"performance  {perf['metric']} {fmt_num(perf['value'], 4)}{band} from "
            f"{perf['n']:,} predictions with feedback  {_STATE.get(perf['state'])}"
        )
    else:
        console.print("performance  no feedback in the window")
    for note in r["notes"]:
        console.print(f"[dim]note: {escape(note)}[/dim]")
    for action in r["actions"]:
        console.print(f"→ {escape(action)}")


def _shapes(f: FeatureDrift) -> str:
    h = f["histogram"]
    if not h:
        return ""
    ref = sparkline([round(x * 1000) for x in h["reference"]])
    live = sparkline([round(x * 1000) for x in h["live"]])
    return f"{ref} → {live}"


def _p(p: float | None) -> str:
    return "-" if p is None else "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _clock(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@app.command()
def snapshot(
    name: Annotated[str, typer.Argument(help="A service or A/B test.")],
    to: Annotated[str, typer.Option("--to", help="The dataset to commit to (its next version).")],
    last: Last = None,
    start: From = None,
    end: To = None,
    labeled_only: Annotated[
        bool, typer.Option("--labeled-only", help="Only rows whose feedback came in.")
    ] = False,
    message: Annotated[str | None, typer.Option("-m", "--message", help="Commit message.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Commit a window of NAME's logged traffic, labels joined, as a data version."""
    snap = workspace().monitoring.snapshot(
        name, to, window=_window(last, start, end), labeled_only=labeled_only, message=message
    )
    if as_json:
        emit_json(snap)
        return
    console.print(
        f"Committed [bold]{snap.ref}[/bold]: {snap.rows:,} rows ({snap.labeled:,} labeled) of "
        f"{snap.source}'s traffic, {', '.join(snap.models)}, as {snap.path}"
    )
    if snap.window_start is not None and snap.window_end is not None:
        console.print(f"  window  {_clock(snap.window_start)} → {_clock(snap.window_end)}")


@app.command()
def config(
    name: Annotated[str, typer.Argument(help="A service or A/B test.")],
    file: Annotated[
        Path | None, typer.Argument(help="A monitor config (YAML); without it, show the config.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set NAME's monitor config (thresholds, window, schedule, webhook, on_drift), or show it."""
    ws = workspace()
    if file is None:
        mon = ws.monitoring.get(name)
    else:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(f"Cannot read {str(file)!r}: {exc}.") from None
        mon = ws.monitoring.configure(name, text, str(file))
    if as_json:
        emit_json(mon)
        return
    if file is not None:
        due = f"; next check {when(mon.next_check_at)}" if mon.next_check_at else ""
        console.print(f"Monitor [bold]{escape(name)}[/bold] configured from {file}{due}")
        return
    console.print(escape(mon.config_text.rstrip()))


@app.command()
def history(
    name: Annotated[str, typer.Argument(help="A service or A/B test.")],
    limit: Annotated[int, typer.Option("--limit", help="The latest N checks.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """NAME's recorded checks: state, rows, and the features that moved."""
    checks = workspace().monitoring.history(name, limit=limit)
    if as_json:
        emit_json(checks)
        return
    if not checks:
        console.print(f"No checks of {escape(name)} yet: run `assay monitor {escape(name)}`.")
        return
    table = Table("when", "state", "model", "rows", "not ok", box=None, header_style="bold")
    for c in checks:
        moved = [
            f"{k} ({v['state']})"
            for k, v in (c.summary.get("features") or {}).items()
            if v.get("state") != "ok"
        ]
        table.add_row(
            when(c.at),
            _STATE.get(c.state, c.state),
            c.model,
            f"{c.rows:,}",
            escape(", ".join(moved)) or "-",
        )
    console.print(table)


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Monitors and their latest state."""
    monitors = workspace().monitoring.monitors()
    if as_json:
        emit_json(monitors)
        return
    if not monitors:
        console.print("No monitors yet: `assay monitor NAME` checks a service or A/B test.")
        return
    table = Table("monitor", "watches", "state", "checked", "next", box=None, header_style="bold")
    for m in monitors:
        table.add_row(
            escape(m.name),
            m.target,
            _STATE.get(m.state, m.state),
            when(m.checked_at),
            when(m.next_check_at),
        )
    console.print(table)


@app.command()
def watch(
    once: Annotated[bool, typer.Option("--once", help="Check what is due, then exit.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between looks.")] = 30.0,
) -> None:
    """Run the scheduled checks (each monitor's `schedule`) until Ctrl-C."""
    if is_remote():
        raise InvalidArgumentError(
            "The server runs scheduled checks itself (`assay server`); `assay monitor watch` "
            "is for a workspace on this machine."
        )
    ws = local()
    launch = scheduled_launch()
    while True:
        for name, outcome in ws.monitoring.run_due(launch=launch):
            if isinstance(outcome, dict):
                console.print(
                    f"{time.strftime('%H:%M:%S')} {escape(name)}: {_STATE.get(outcome['state'])}"
                )
                for action in outcome["actions"]:
                    console.print(f"  → {escape(action)}")
            else:
                err.print(f"[red]{escape(name)}: {escape(outcome.message)}[/red]")
        if once:
            return
        time.sleep(interval)


@app.command("snapshots")
def snapshots_(
    name: Annotated[str | None, typer.Argument(help="Only this service's or test's.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Data versions committed from logged traffic, and where they came from."""
    found = workspace().monitoring.snapshots(name)
    if as_json:
        emit_json(found)
        return
    table = Table(
        "version", "from", "models", "rows", "labeled", "window", box=None, header_style="bold"
    )
    for s in found:
        span = (
            f"{_clock(s.window_start)} → {_clock(s.window_end)}"
            if s.window_start is not None and s.window_end is not None
            else "-"
        )
        table.add_row(s.ref, s.source, ", ".join(s.models), f"{s.rows:,}", f"{s.labeled:,}", span)
    console.print(table)


@app.command("retrains")
def retrains_(as_json: JsonOpt = False) -> None:
    """Models retrained on live data: the run, the data, the new version, its challenge."""
    found = workspace().monitoring.retrains()
    if as_json:
        emit_json(found)
        return
    table = Table(
        "run",
        "model",
        "with",
        "trained on",
        "status",
        "new",
        "A/B test",
        box=None,
        header_style="bold",
    )
    for r in found:
        table.add_row(
            r.run_id[:8],
            r.model,
            r.with_data,
            r.data,
            r.status,
            r.new_model or "-",
            r.abtest or "-",
        )
    console.print(table)


# ---- assay retrain -----------------------------------------------------------------------------


def retrain_command(
    model: Annotated[str, typer.Argument(help="MODEL@VERSION to retrain.")],
    with_data: Annotated[
        str, typer.Option("--with", help="DATASET@VERSION of live data (`assay monitor snapshot`).")
    ],
    alone: Annotated[
        bool,
        typer.Option("--alone", help="Train on the new data only, not the training data too."),
    ] = False,
    challenge: Annotated[
        bool,
        typer.Option("--challenge", help="Start an A/B test of it against the champion."),
    ] = False,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            help=f"The challenge's routing (default {api.CHALLENGE}): weighted:80,20, thompson, …",
        ),
    ] = None,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help=f"Challenge as a shadow ({api.SHADOW}): the champion answers every request, "
            "the new version gets a copy of each. Implies --challenge.",
        ),
    ] = False,
    label: Annotated[
        str | None, typer.Option("--label", help="The label column, if the data has several.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rerun MODEL's own pipeline and params on its training data plus live data, register
    the new version, and (--challenge) A/B test it against the champion."""
    if shadow and strategy is not None:
        raise InvalidArgumentError(
            f"--shadow and --strategy cannot be used together: --shadow is --strategy {api.SHADOW}."
        )
    # The monitoring service reads `shadow` as api.SHADOW, here and on a server alike.
    chosen = "shadow" if shadow else (strategy or api.CHALLENGE) if challenge else None
    if is_remote():  # the server runs it; this waits for the new version
        retrain = remote().monitoring.retrain(
            model, with_data, alone=alone, challenge=chosen, label=label
        )
    else:
        retrain = local().monitoring.retrain(
            model,
            with_data,
            alone=alone,
            challenge=chosen,
            label=label,
            launch=_launch(quiet=as_json),
        )
    if as_json:
        emit_json(retrain)
    else:
        _print_retrain(retrain)
    if retrain.status == "failed":
        raise typer.Exit(1)


def _print_retrain(r: Retrain) -> None:
    console.print(f"Retrained {r.model} on {r.data} (run {r.run_id[:8]}): {r.status}")
    if r.new_model:
        console.print(f"  → model [bold]{r.new_model}[/bold]")
    kind, _, answers = (r.challenge or "").partition(":")
    if r.abtest and kind == "shadow":
        # Auto-promote never decides a shadow test: the copies' answers get no feedback.
        who = (
            f"the champion answers, {r.new_model} gets copies"
            if answers == "champion"
            else f"{r.new_model} answers, the champion gets copies"
        )
        console.print(
            f"  → shadow test [bold]{r.abtest}[/bold] ({r.challenge}: {who}; conclude it "
            f"yourself): `assay abtests report {r.abtest}`"
        )
    elif r.abtest:
        console.print(
            f"  → A/B test [bold]{r.abtest}[/bold] (champion against {r.new_model}, "
            f"{r.challenge}, auto-promote): `assay abtests report {r.abtest}`"
        )
    if r.error:
        err.print(f"[yellow]{escape(r.error)}[/yellow]")


def scheduled_launch() -> Callable[[Run, Callable[[], None]], None]:
    """How a scheduled check (`assay monitor watch`, the server) runs a retrain: here,
    quietly, to the end."""
    return _launch(quiet=True)


def _launch(*, quiet: bool) -> Callable[[Run, Callable[[], None]], None]:
    """Run a queued run here, in a runner process, showing its steps; then `done`."""

    def launch(run: Run, done: Callable[[], None]) -> None:
        from assay.cli.runs import execute

        execute(run, use_cache=True, quiet=quiet)
        done()

    return launch


__all__ = ["app", "print_report", "retrain_command"]
