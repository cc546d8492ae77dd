"""`assay services …`: models deployed as REST endpoints on this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from assay.cli.context import is_remote, local, workspace
from assay.cli.output import (
    JsonOpt,
    console,
    emit_json,
    err,
    fmt_num,
    status,
    warn_if_exposed,
    when,
)
from assay.cli.tables import Table
from assay.errors import AssayError, InvalidArgumentError
from assay.serving import api

if TYPE_CHECKING:
    from assay.serving.entities import Service

app = typer.Typer(
    help="Inference services: deploy, list, status, logs, update, stop, start.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_STATE = {
    "running": "[green]running[/green]",
    "starting": "[yellow]starting[/yellow]",
    "stopped": "[dim]stopped[/dim]",
    "failed": "[red]failed[/red]",
}


@app.command()
def deploy(
    name: Annotated[str, typer.Argument(help="The service's name.")],
    model: Annotated[str, typer.Option("--model", help="MODEL@VERSION or MODEL@ALIAS to serve.")],
    port: Annotated[
        int | None, typer.Option("--port", help="Port to listen on (default: a free one).")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = api.HOST,
    workers: Annotated[int, typer.Option("--workers", help="Server processes.")] = api.WORKERS,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds a prediction may take before a 504.")
    ] = api.TIMEOUT_S,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", help="Largest request body accepted (413 above).")
    ] = api.MAX_BODY_BYTES / (1024 * 1024),
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
            help="Where it runs: local (a process here) or ray (a Ray Serve application on "
            "the cluster at ASSAY_RAY_ADDRESS).",
        ),
    ] = api.ON,
    replicas: Annotated[
        int | None, typer.Option("--replicas", help="On Ray: how many replicas (default 1).")
    ] = None,
    autoscale: Annotated[
        str | None,
        typer.Option(
            "--autoscale",
            metavar="MIN..MAX",
            help="On Ray: scale between MIN and MAX replicas on ongoing requests.",
        ),
    ] = None,
    target_ongoing: Annotated[
        float,
        typer.Option(
            "--target-ongoing",
            help="On Ray with --autoscale: ongoing requests per replica to scale at.",
        ),
    ] = api.TARGET_ONGOING_REQUESTS,
    cpus: Annotated[
        float | None, typer.Option("--cpus", help="On Ray: CPUs per replica (default 0.5).")
    ] = None,
    memory: Annotated[
        str | None,
        typer.Option("--memory", help="On Ray: memory per replica, such as 512M or 2G."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve a model version as a REST endpoint (KServe V1 and Open Inference Protocol V2);
    returns once it answers."""
    with status(f"Deploying {name}") as progress:
        svc = workspace().services.deploy(
            name,
            model,
            port=port,
            host=host,
            workers=workers,
            timeout_s=timeout,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            log_sample=log_sample,
            progress=progress,
            on=on,
            replicas=replicas,
            autoscale=parse_range(autoscale) if autoscale is not None else None,
            target_ongoing_requests=target_ongoing,
            cpus=cpus,
            memory_bytes=parse_size(memory) if memory is not None else None,
        )
    if svc.on == "local":
        warn_if_exposed(name, host)
    if as_json:
        emit_json(svc)
        return
    console.print(f"Deployed [bold]{svc.model_ref}[/bold] as {name} at {svc.url}")
    console.print(f"  KServe V1  POST {svc.url}/v1/models/{svc.model}:predict")
    console.print(f"  OIP V2     POST {svc.url}/v2/models/{svc.model}/infer")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List services and whether they are running."""
    items = workspace().services.services()
    if as_json:
        emit_json(items)
        return
    if not items:
        console.print("No services yet. Deploy one with `assay services deploy NAME --model M@V`.")
        return
    table = Table(
        "service",
        "on",
        "state",
        "model",
        "url",
        "workers",
        "started",
        box=None,
        header_style="bold",
    )
    for s in items:
        table.add_row(
            s.name,
            s.on,
            _STATE.get(s.state, s.state),
            s.model_ref,
            s.url if s.state == "running" else "-",
            str(s.workers),
            when(s.started_at) if s.state == "running" else "-",
        )
    console.print(table)


@app.command("status")
def status_(name: str, as_json: JsonOpt = False) -> None:
    """A service's model, URL, uptime, requests, errors and latency p50/p99."""
    doc = workspace().services.status(name)
    if as_json:
        emit_json(doc)
        return
    grid = Table.grid(padding=(0, 2))
    traffic = doc.traffic
    rows = [
        ("on", doc.on),
        ("state", _STATE.get(doc.state, doc.state)),
        ("model", doc.model_ref),
        ("url", doc.url if doc.state == "running" else "-"),
        ("workers", str(doc.workers)),
        ("uptime", _duration(doc.uptime_s)),
        ("requests", fmt_num(traffic["requests"]) if traffic else "-"),
        ("errors", fmt_num(traffic["errors"]) if traffic else "-"),
        ("latency p50", _ms(traffic["p50_ms"] if traffic else None)),
        ("latency p99", _ms(traffic["p99_ms"] if traffic else None)),
    ]
    if doc.last_error:
        rows.append(("last error", f"[red]{escape(doc.last_error)}[/red]"))
    if doc.on == "ray":
        models = [r for r in doc.replicas if r["deployment"] == "model"]
        rows[4] = ("replicas", str(len(models)))
        rows[6:10] = []  # the traffic is in Ray Serve's metrics, per replica
    console.print(f"[bold]{doc.name}[/bold]")
    for key, value in rows:
        grid.add_row(f"[dim]{key}[/dim]", value)
    console.print(grid)
    if doc.replicas:
        table = Table(
            "deployment", "replica", "state", "pid", "node", "started", box=None,
            header_style="bold",
        )  # fmt: skip
        for r in doc.replicas:
            table.add_row(
                r["deployment"],
                r["replica_id"],
                r["state"],
                str(r["pid"] or "-"),
                r["node_ip"] or "-",
                r["started_at"] or "-",
            )
        console.print(table)


def parse_range(text: str) -> tuple[int, int]:
    """`MIN..MAX` as two integers."""
    low, sep, high = text.partition("..")
    try:
        if not sep:
            raise ValueError
        return int(low), int(high)
    except ValueError:
        raise InvalidArgumentError(
            f"--autoscale takes MIN..MAX replicas, such as 1..4, not {text!r}."
        ) from None


def parse_size(text: str) -> int:
    """`512M`, `2G`, `1.5G` or a number of bytes, as bytes."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = units.get(raw[-1:], 1)
    number = raw[:-1] if raw[-1:] in units else raw
    try:
        value = float(number) * factor
    except ValueError:
        raise InvalidArgumentError(
            f"--memory takes a size such as 512M or 2G, not {text!r}."
        ) from None
    return int(value)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}m"


@app.command()
def logs(
    name: str,
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many lines from the end.")] = 100,
) -> None:
    """Print the end of a service's log."""
    text = workspace().services.logs(name, lines=lines)
    console.print(escape(text.rstrip("\n")) if text else "(the log is empty)")


@app.command()
def update(
    name: str,
    model: Annotated[str, typer.Option("--model", help="MODEL@VERSION to serve instead.")],
    as_json: JsonOpt = False,
) -> None:
    """Swap the model a running service serves, without dropping a request."""
    with status(f"Updating {name}") as progress:
        svc = workspace().services.update(name, model, progress=progress)
    if as_json:
        emit_json(svc)
        return
    console.print(f"{name} now serves [bold]{svc.model_ref}[/bold] at {svc.url}")


@app.command()
def stop(
    name: str,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to let in-flight requests finish.")
    ] = api.STOP_TIMEOUT_S,
    as_json: JsonOpt = False,
) -> None:
    """Stop a service: it stops taking requests, finishes those in flight, then exits."""
    with status(f"Stopping {name}") as progress:
        progress("draining in-flight requests")
        svc = workspace().services.stop(name, timeout_s=timeout)
    if as_json:
        emit_json(svc)
        return
    console.print(f"Stopped {name}")


@app.command()
def start(
    name: Annotated[str | None, typer.Argument(help="The service to start again.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Start every service that should be running.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a stopped service again (or, with --all, every service stored as running)."""
    if all_ == (name is not None):
        raise InvalidArgumentError("Give a service NAME or --all.")
    if all_ and is_remote():
        raise InvalidArgumentError(
            "`assay services start --all` is for this machine's services; a server brings "
            "back its own when it starts. Start one with `assay services start NAME`."
        )
    with status("Starting") as progress:
        results: list[tuple[str, Service | AssayError]]
        if name is not None:
            results = [(name, workspace().services.start(name, progress=progress))]
        else:
            results = local().services.start_all(progress=progress)
    if as_json:
        emit_json(
            [{"name": n, "error": str(r)} if isinstance(r, Exception) else r for n, r in results]
        )
        return
    if not results:
        console.print("Every service that should be running is running.")
    failed = False
    for n, r in results:
        if isinstance(r, Exception):
            failed = True
            err.print(f"[red]error:[/red] {n}: {escape(str(r))}")
        else:
            console.print(f"Started {n} ({r.model_ref}) at {r.url}")
    if failed:
        raise typer.Exit(1)
