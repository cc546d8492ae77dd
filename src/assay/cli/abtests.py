"""`assay abtests …`: route live traffic among models and tell which is better."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from assay.abtests import api
from assay.cli.context import workspace
from assay.cli.output import (
    JsonOpt,
    console,
    emit_json,
    fmt_num,
    sparkline,
    status,
    warn_if_exposed,
    when,
)
from assay.cli.tables import Table
from assay.errors import InvalidArgumentError

if TYPE_CHECKING:
    from assay.abtests.entities import ABReport

app = typer.Typer(
    help="A/B tests: create, list, report, plan, pause, resume, set-weights, conclude, stop.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_STATUS = {
    "running": "[green]running[/green]",
    "paused": "[yellow]paused[/yellow]",
    "concluded": "[cyan]concluded[/cyan]",
    "stopped": "[dim]stopped[/dim]",
}


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The test's name.")],
    variant: Annotated[
        list[str],
        typer.Option(
            "--variant", help="LABEL=MODEL@VERSION or LABEL=SERVICE; the first is the control."
        ),
    ],
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="weighted:70,30 · sticky[:W,W] · round-robin · shadow:LABEL · "
            "epsilon-greedy:0.1 · ucb · thompson",
        ),
    ] = "weighted",
    key: Annotated[
        str | None,
        typer.Option("--key", help="Request field that keys sticky routing (or X-Assay-Key)."),
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: a free one).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = api.HOST,
    workers: Annotated[int, typer.Option("--workers", help="Router processes.")] = api.WORKERS,
    baseline: Annotated[
        float | None, typer.Option("--baseline", help="Plan: the control's expected rate.")
    ] = None,
    mde: Annotated[
        float | None, typer.Option("--mde", help="Plan: the smallest difference worth finding.")
    ] = None,
    auto_promote: Annotated[
        bool,
        typer.Option(
            "--auto-promote",
            help="Conclude when the sequential test decides, and move the alias to the winner.",
        ),
    ] = False,
    alias: Annotated[str, typer.Option("--alias", help="The alias the winner gets.")] = api.ALIAS,
    log_sample: Annotated[
        float,
        typer.Option(
            "--log-sample",
            help="Share of requests whose inputs and outputs are logged for monitoring "
            "(0 to 1; 0 turns the prediction log off).",
        ),
    ] = api.LOG_SAMPLE,
    on: Annotated[
        str,
        typer.Option(
            "--on",
            help="Where the router runs: local (a process here) or ray (a Ray Serve "
            "application on the cluster at ASSAY_RAY_ADDRESS).",
        ),
    ] = api.ON,
    replicas: Annotated[
        int | None,
        typer.Option("--replicas", help="On Ray: replicas of the router and of each variant."),
    ] = None,
    cpus: Annotated[
        float | None, typer.Option("--cpus", help="On Ray: CPUs per replica (default 0.5).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start an A/B test: one endpoint routes among the variants' models."""
    with status(f"Creating {name}") as progress:
        test = workspace().abtests.create(
            name,
            variant,
            strategy,
            key=key,
            port=port,
            host=host,
            workers=workers,
            baseline=baseline,
            mde=mde,
            auto_promote=auto_promote,
            alias=alias,
            log_sample=log_sample,
            on=on,
            replicas=replicas,
            cpus=cpus,
            progress=progress,
        )
    if test.on == "local":
        warn_if_exposed(name, host)
    if as_json:
        emit_json(test)
        return
    arms = ", ".join(f"{v.label}={v.model_ref}" for v in test.variants)
    console.print(f"A/B test [bold]{name}[/bold] routes {arms} by {test.strategy}")
    console.print(f"  predict   POST {test.url}/predict")
    console.print(f"  feedback  POST {test.url}/feedback")
    if test.plan:
        console.print(f"  plan      {test.plan['per_variant']:,} samples per variant")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List A/B tests.

    `status` is the test's lifecycle, as recorded: running, paused, concluded or stopped.
    `router` is what its router was found doing: running, starting or stopped (the JSON
    field `state`). A running test whose router is stopped takes `assay abtests start`.
    """
    tests = workspace().abtests.tests()
    if as_json:
        emit_json(tests)
        return
    if not tests:
        console.print("No A/B tests yet. Start one with `assay abtests create`.")
        return
    table = Table(
        "test", "status", "router", "variants", "strategy", "winner", "created",
        box=None, header_style="bold",
    )  # fmt: skip
    for t in tests:
        table.add_row(
            t.name,
            _STATUS.get(t.status, t.status),
            t.state,
            ", ".join(f"{v.label}={v.model_ref}" for v in t.variants),
            t.strategy,
            t.winner or "-",
            when(t.created_at),
        )
    console.print(table)


@app.command()
def report(name: str, as_json: JsonOpt = False) -> None:
    """Per variant: traffic, latency, cost, reward with intervals; the tests; the verdict."""
    doc = workspace().abtests.report(name)
    if as_json:
        emit_json(doc)
        return
    print_report(doc)


def print_report(doc: ABReport) -> None:
    test = doc["abtest"]
    metric = doc["metric"]
    console.print(
        f"[bold]{test.name}[/bold]  {_STATUS.get(test.status, test.status)}  "
        f"strategy {test.strategy}"
    )
    models = {v.label: v.model_ref for v in test.variants}
    table = Table(
        "variant", "model", "requests", "errors", "p50 ms", "p99 ms", "cost/1k", "outcomes",
        metric, "95% CI", "P(best)", box=None, header_style="bold",
    )  # fmt: skip
    for label in doc["labels"]:
        v = doc["variants"][label]
        lo, hi = v["ci"]
        table.add_row(
            label,
            models.get(label, "-"),
            fmt_num(v["requests"]),
            fmt_num(v["errors"]),
            fmt_num(v["p50_ms"], 3),
            fmt_num(v["p99_ms"], 3),
            f"${v['cost_per_1k']:.6f}" if v["cost_per_1k"] is not None else "-",
            fmt_num(v["outcomes"]),
            fmt_num(v["mean"], 4),
            f"{lo:.4f} – {hi:.4f}" if lo is not None and hi is not None else "-",
            _percent(doc["p_best"].get(label)),
        )
    console.print(table)
    if doc["comparisons"]:
        console.print()
        comp = Table(
            "vs control", "diff", "95% CI", "test", "p", "always-valid p", box=None,
            header_style="bold",
        )  # fmt: skip
        for c in doc["comparisons"]:
            lo, hi = c["diff_ci"]
            comp.add_row(
                f"{c['label']} vs {c['control']}",
                f"{c['diff']:+.4f}" if c["diff"] is not None else "-",
                f"{lo:+.4f} – {hi:+.4f}" if lo is not None and hi is not None else "-",
                c["test"],
                _p(c["p_value"]),
                _p(c["sequential_p"] if c["sequential_p"] is not None else c["always_valid_p"]),
            )
        console.print(comp)
    series = doc["series"]
    if series["times"]:
        console.print()
        console.print(f"[dim]{metric} over time (cumulative)[/dim]")
        every = [x for label in doc["labels"] for x in series["values"][label] if x is not None]
        top, bottom = max(every), min(every)  # one scale for all, so the lines compare
        span = (top - bottom) or 1.0
        for label in doc["labels"]:
            values = [x for x in series["values"][label] if x is not None]
            if values:
                bars = sparkline([round((x - bottom) / span * 7) + 1 for x in values])
                console.print(f"  {label:<10} {bars}  {values[0]:.3f} → {values[-1]:.3f}")
    srm = doc.get("srm")
    if srm is not None:
        console.print()
        if srm["mismatch"]:
            console.print(f"[bold red]Sample-ratio mismatch:[/bold red] {escape(srm['message'])}")
        else:
            console.print(f"[dim]split check: {escape(srm['message'])}[/dim]")
    for label, s in (doc.get("shadows") or {}).items():
        agree = f"{s['agreement']:.1%}" if s["agreement"] is not None else "-"
        console.print(
            f"[dim]shadow {label}: {s['copies']:,} copies, {s['errors']} errors, agrees with "
            f"the primary on {agree}, p50 {fmt_num(s['p50_ms'], 3)} ms[/dim]"
        )
    planned = doc.get("planned_per_variant")
    if planned:
        least = min(doc["variants"][label]["outcomes"] for label in doc["labels"])
        console.print(f"[dim]plan: {least:,} of {planned:,} outcomes per variant[/dim]")
    console.print()
    verdict = doc["verdict"]
    style = "bold green" if verdict["decided"] else "bold yellow"
    console.print(f"[{style}]{escape(verdict['message'])}[/{style}]")
    if doc.get("auto_concluded"):
        console.print(
            f"Concluded automatically: {test.alias} now points at "
            f"{models.get(verdict['winner'] or '', '?')}."
        )


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


@app.command("plan")
def plan_(
    baseline: Annotated[float, typer.Option("--baseline", help="The control's expected rate.")],
    mde: Annotated[float, typer.Option("--mde", help="Smallest absolute difference to find.")],
    alpha: Annotated[float, typer.Option("--alpha", help="False-positive rate.")] = 0.05,
    power: Annotated[float, typer.Option("--power", help="Chance to find a real effect.")] = 0.8,
    as_json: JsonOpt = False,
) -> None:
    """How many samples per variant a test needs (two-sided, two proportions)."""
    from assay.abtests.service import plan

    doc = plan(baseline, mde, alpha=alpha, power=power)
    if as_json:
        emit_json(doc)
        return
    console.print(
        f"{doc['per_variant']:,} samples per variant to detect {baseline:g} → "
        f"{baseline + mde:g} (alpha {alpha:g}, power {power:g})"
    )


@app.command()
def pause(name: str, as_json: JsonOpt = False) -> None:
    """Send all traffic to the control; nothing is analysed until resume."""
    test = workspace().abtests.pause(name)
    if as_json:
        emit_json(test)
        return
    console.print(f"Paused {name}: all traffic goes to the control")


@app.command()
def resume(name: str, as_json: JsonOpt = False) -> None:
    """Route by the strategy again."""
    test = workspace().abtests.resume(name)
    if as_json:
        emit_json(test)
        return
    console.print(f"Resumed {name}")


@app.command("set-weights")
def set_weights(
    name: str,
    weights: Annotated[str, typer.Argument(help="One weight per variant, e.g. 80,20.")],
) -> None:
    """Change the split of a weighted or sticky test while it runs."""
    try:
        values = [float(w) for w in weights.split(",")]
    except ValueError:
        raise InvalidArgumentError(
            f"Weights {weights!r} are not numbers: write them like 80,20."
        ) from None
    test = workspace().abtests.set_weights(name, values)
    console.print(f"{name} now routes by {test.strategy}")


@app.command()
def conclude(
    name: str,
    winner: Annotated[str, typer.Option("--winner", help="The winning variant's label.")],
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Record the verdict without moving the alias.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop the test, record the verdict, and move the alias (champion) to the winner."""
    with status(f"Concluding {name}") as progress:
        progress("recording the verdict")
        test = workspace().abtests.conclude(name, winner, promote=not no_promote)
    if as_json:
        emit_json(test)
        return
    variant = test.variant(winner)
    assert variant is not None
    console.print(f"Concluded {name}: {winner} ({variant.model_ref}) wins")
    if not no_promote:
        console.print(f"{variant.model}@{test.alias} -> version {variant.version}")


@app.command()
def start(name: str, as_json: JsonOpt = False) -> None:
    """Start a stopped test's router again; its log and learning carry on."""
    with status(f"Starting {name}") as progress:
        progress("loading the variants")
        test = workspace().abtests.start(name)
    if as_json:
        emit_json(test)
        return
    console.print(f"Started {name} at {test.url}")


@app.command()
def stop(name: str, as_json: JsonOpt = False) -> None:
    """Stop the router without a verdict."""
    test = workspace().abtests.stop(name)
    if as_json:
        emit_json(test)
        return
    console.print(f"Stopped {name}")


@app.command()
def logs(
    name: str,
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many lines from the end.")] = 100,
) -> None:
    """Print the end of the router's log."""
    text = workspace().abtests.logs(name, lines=lines)
    console.print(escape(text.rstrip("\n")) if text else "(the log is empty)")


__all__ = ["app", "print_report"]


def _percent(p: float | None) -> str:
    """A probability as a percentage; "-" where it is unknown (too few samples: null)."""
    return "-" if p is None else f"{p:.1%}"
