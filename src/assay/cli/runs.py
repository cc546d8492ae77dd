"""`assay run` and `assay runs …`: experiments, their runs, and comparing them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from assay.cli.context import is_remote, local, remote, workspace
from assay.cli.output import JsonOpt, console, emit_json, err, fmt_num, human_bytes, sparkline, when
from assay.cli.tables import Table
from assay.runs.entities import lower_is_better, same_metrics

if TYPE_CHECKING:
    from assay.api import Assay
    from assay.runs.entities import Run

app = typer.Typer(
    help="Experiment runs: list, show, compare, logs, rerun, leaderboard.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def run_command(
    pipeline: Annotated[str, typer.Argument(help="NAME[@VERSION], or a path to pipeline.py.")],
    data: Annotated[str, typer.Option("--data", help="DATASET[@VERSION] to train on.")],
    params: Annotated[
        Path | None, typer.Option("--params", help="A JSON file of parameters.")
    ] = None,
    override: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="Override: KEY=VALUE (repeatable).")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Group the run (default: pipeline name).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name for the run.")] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, even unchanged ones.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run even if these inputs already succeeded.")
    ] = False,
    executor: Annotated[
        str, typer.Option("--executor", help="local, or ray (ASSAY_RAY_ADDRESS or a local Ray).")
    ] = "local",
    as_json: JsonOpt = False,
) -> None:
    """Run PIPELINE on a data version with a params file; record everything."""
    from assay.runs.executor import check_executor

    check_executor(executor)

    if is_remote():
        finished = _run_remote(
            pipeline, data, params, override or [], experiment, name, force, quiet=as_json
        )
        if as_json:
            emit_json(finished)
        else:
            print_outcome(finished)
        if finished.status != "succeeded":
            raise typer.Exit(1)
        return
    ws = local()
    if executor == "ray":
        from assay.executors.ray_cluster import check_ready

        check_ready(ws.settings, os.environ)
    run = ws.runs.prepare(
        pipeline,
        data=data,
        params_file=params,
        overrides=override or [],
        experiment=experiment,
        name=name,
        force=force,
    )
    if executor == "ray":
        finished = execute_on_ray(run, use_cache=not no_cache, quiet=as_json)
    else:
        finished = execute(run, use_cache=not no_cache, quiet=as_json)
    if as_json:
        emit_json(finished)
    else:
        print_outcome(finished)
    if finished.status != "succeeded":
        raise typer.Exit(1)


def execute(run: Run, *, use_cache: bool, quiet: bool = False) -> Run:
    """Launch the runner for a queued run, show its progress, and return the finished run.

    The runner dies with this command (killed with -9, it takes the runner down);
    SIGTERM stops the runner first, and the run is recorded as killed.
    """
    import signal
    import threading

    from assay.executors.lifeline import Terminated
    from assay.executors.local import LocalExecutor

    ws = local()
    if not quiet:
        console.print(
            f"Run [bold]{run.short_id}[/bold] ({run.name}): pipeline {run.pipeline_ref}, "
            f"data {run.data_ref}, params {run.params_ref}"
        )

    def terminated(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the stop below must finish
        raise Terminated("SIGTERM")

    # Signal handlers belong to the main thread (where a command runs, but not always
    # where a caller of this function does).
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminated) if main else None
    try:
        ws.db.dispose()  # the runner may be a fork of this process: it opens its own
        executor = LocalExecutor(Path.cwd(), os.environ, fork=True)
        handle = executor.launch(run.id, use_cache=use_cache)
        try:
            for event in handle.events():
                if not quiet:
                    _show(event)
            code = handle.wait()
        except Terminated:
            handle.stop(ws.runs, run.id, "SIGTERM")
            err.print(f"[yellow]Run {run.short_id} killed (SIGTERM).[/yellow]")
            raise typer.Exit(128 + signal.SIGTERM) from None
        except KeyboardInterrupt:
            handle.interrupt(ws.runs, run.id)
            err.print(f"[yellow]Run {run.short_id} killed.[/yellow]")
            raise typer.Exit(130) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    handle.settle(ws.runs, run.id, code)
    return ws.runs.get(run.id)


def _run_remote(
    pipeline: str,
    data: str,
    params_file: Path | None,
    overrides: list[str],
    experiment: str | None,
    name: str | None,
    force: bool,
    *,
    quiet: bool,
) -> Run:
    """`assay run --remote`: the server versions the inputs and executes the run."""
    from assay.cli.output import status
    from assay.runs.params import apply_overrides, load_params
    from assay.runs.service import looks_like_path

    client = remote()
    params = apply_overrides(load_params(params_file) if params_file else {}, overrides)
    if looks_like_path(pipeline):  # a file here: sent to the server, registered there
        pv, _ = client.pipelines.register(Path(pipeline))
        pipeline = pv.ref
    with status(f"Run on {client.url}") as say:
        finished = client.runs.create(
            pipeline, data=data, params=params, experiment=experiment, name=name, force=force,
            on_wait=None if quiet else lambda run: say(f"{run.short_id} {run.status}"),
        )  # fmt: skip
    if not quiet:
        console.print(
            f"Run [bold]{finished.short_id}[/bold] ({finished.name}): pipeline "
            f"{finished.pipeline_ref}, data {finished.data_ref}, params {finished.params_ref}, "
            f"on {client.url}"
        )
        for step in finished.steps:
            tag = "[cyan]cached[/cyan]" if step.cached else f"{step.seconds or 0:.2f} s"
            mark = "[green]✓[/green]" if step.status == "succeeded" else "[red]✗[/red]"
            console.print(f"  {mark} {step.name:<16} {tag}")
    return finished


def execute_on_ray(run: Run, *, use_cache: bool, quiet: bool = False) -> Run:
    """Send a queued run to Ray as one task; wait for it, then show its steps."""
    from assay.cli.output import status
    from assay.executors import open_executor
    from assay.runs.executor import Job

    ws = local()
    if not quiet:
        console.print(
            f"Run [bold]{run.short_id}[/bold] ({run.name}): pipeline {run.pipeline_ref}, "
            f"data {run.data_ref}, params {run.params_ref}, on Ray"
        )
    with status("Starting Ray…") as say:
        executor = open_executor("ray", ws.settings, os.environ, slots=1, cwd=Path.cwd())
        say("Running on Ray…")
        try:
            executor.submit(Job(run.id, use_cache=use_cache))
            done: list[Any] = []
            while not done:
                done = executor.wait(1.0)
        except KeyboardInterrupt:
            executor.close(cancel=True)
            ws.runs.abandon(run.id, "killed", "Interrupted (Ctrl-C).")
            err.print(f"[yellow]Run {run.short_id} killed.[/yellow]")
            raise typer.Exit(130) from None
        executor.close()
    if done[0].problem:
        ws.runs.abandon(run.id, "failed", done[0].problem)
    finished = ws.runs.get(run.id)
    if not quiet:
        for step in finished.steps:
            tag = "[cyan]cached[/cyan]" if step.cached else f"{step.seconds or 0:.2f} s"
            mark = "[green]✓[/green]" if step.status == "succeeded" else "[red]✗[/red]"
            console.print(f"  {mark} {step.name:<16} {tag}")
        if finished.status == "succeeded" and finished.model:
            from assay.errors import AssayError

            try:  # the task registered it; this finds that version
                mv = ws.registry.register_run(finished.id)
                _show({"event": "model", "ref": mv.ref, "flavor": mv.flavor})
            except AssayError:
                pass  # not a model that predicts: nothing was registered
    return finished


def _show(event: dict[str, Any]) -> None:
    kind = event.get("event")
    if kind == "step" and err.is_terminal:
        err.print(f"  [dim]… {event['name']}[/dim]", end="\r")
    elif kind == "step_done":
        tag = "[cyan]cached[/cyan]" if event.get("cached") else f"{event['seconds']:.2f} s"
        console.print(f"  [green]✓[/green] {event['name']:<16} {tag}")
    elif kind == "step_failed":
        console.print(f"  [red]✗[/red] {event['name']:<16} {event['seconds']:.2f} s")
    elif kind == "model":
        console.print(f"  [green]→[/green] model [bold]{event['ref']}[/bold] ({event['flavor']})")
    elif kind == "model_error":
        err.print(f"  [yellow]warning:[/yellow] the model was not registered: {event['error']}")
    elif kind == "leakage":
        console.print(
            f"  [yellow]warning:[/yellow] {event['rows']} row(s) of the test split also "
            "appear in the training split (leakage)."
        )


def print_outcome(run: Run) -> None:
    style = {"succeeded": "green", "failed": "red", "killed": "yellow"}.get(run.status, "white")
    duration = f" in {run.duration_s:.2f} s" if run.duration_s is not None else ""
    console.print(f"[{style}]{run.status}[/{style}]{duration}")
    if run.metrics:
        console.print("  " + "  ".join(f"{k}={fmt_num(v)}" for k, v in sorted(run.metrics.items())))
    if run.error:
        err.print(run.error.rstrip(), markup=False, highlight=False)


@app.command("list")
def list_(
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    filter: Annotated[
        str | None,
        typer.Option("--filter", help='e.g. "params.C > 1 and metrics.val_f1 >= 0.9"'),
    ] = None,
    sort: Annotated[str | None, typer.Option("--sort", help='e.g. "metrics.val_f1 desc"')] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    all_runs: Annotated[
        bool,
        typer.Option("--all", help="Also runs made inside others (a search's candidates)."),
    ] = False,
    archived: Annotated[
        bool, typer.Option("--archived", help="Also archived runs and experiments.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first (or as sorted), filtered by params, metrics and attributes."""
    query = filter
    if not all_runs and not (filter and "parent_id" in filter):
        query = f"parent_id is null and ({filter})" if filter else "parent_id is null"
    found = workspace().runs.search(
        experiment=experiment, filter=query, sort=sort, limit=limit, archived=archived
    )
    if as_json:
        emit_json(found)
        return
    if not found:
        console.print("No runs match." if filter or experiment else "No runs yet.")
        return
    print_runs(found)


def print_runs(found: list[Run]) -> None:
    metric_keys: dict[str, int] = {}
    for r in found:
        for k in r.metrics:
            metric_keys[k] = metric_keys.get(k, 0) + 1
    shown = sorted(metric_keys, key=lambda k: (-metric_keys[k], k))[:5]
    table = Table(
        "run", "name", "status", "pipeline", "data", "time", *shown, box=None, header_style="bold"
    )
    for r in found:
        style = {"succeeded": "green", "failed": "red", "killed": "yellow"}.get(r.status, "")
        table.add_row(
            r.short_id,
            r.name,
            f"[{style}]{r.status}[/{style}]" if style else r.status,
            r.pipeline_ref or "-",
            r.data_ref or "-",
            f"{r.duration_s:.1f}s" if r.duration_s is not None else "-",
            *(fmt_num(r.metrics.get(k)) for k in shown),
        )
    console.print(table)


@app.command()
def show(run: str, as_json: JsonOpt = False) -> None:
    """Show a run: inputs with their versions, params, metrics, steps, resources, model."""
    ws = workspace()
    r = ws.runs.get(run)
    if as_json:
        emit_json(r)
        return
    grid = Table.grid(padding=(0, 2))
    rows = _overview(ws, r)
    for key, value in rows:
        grid.add_row(f"[dim]{key}[/dim]", value)
    console.print(grid)
    _tables(ws, r)


def _overview(ws: Assay, r: Run) -> list[tuple[str, str]]:
    """The run's one-line facts: what it ran on, when, how long, and what it made."""
    rows: list[tuple[str, str]] = [
        ("run", f"{r.id}  ({r.name})"),
        ("experiment", r.experiment),
        ("status", r.status),
        ("pipeline", r.pipeline_ref or "-"),
        ("data", r.data_ref or "-"),
        ("params", r.params_ref or "-"),
        ("created", when(r.created_at)),
        ("duration", f"{r.duration_s:.2f} s" if r.duration_s is not None else "-"),
    ]
    code = _code_line(ws, r)
    if code:
        rows.append(("code", code))
    if r.model:
        rows.append(("model", f"{r.model[:16]} ({r.model_flavor})"))
    if r.rerun_of:
        rows.append(("rerun of", r.rerun_of[:8]))
    if r.parent_id:
        rows.append(("parent", r.parent_id[:8]))
    children = ws.runs.children(r.id)
    if children:
        rows.append(
            ("children", f"{len(children)} (`assay runs list --filter \"parent_id = '{r.id}'\"`)")
        )
    res = r.resources
    if res:
        rows.append(
            (
                "resources",
                f"wall {res.get('wall_s', 0):.2f} s, cpu {res.get('cpu_s', 0):.2f} s, "
                f"peak {human_bytes(int(res.get('peak_rss_bytes', 0)))}, "
                f"cost ≈ ${res.get('cost', 0):.4f} (at ${res.get('cost_per_hour', 0)}/h)",
            )
        )
    env = r.environment
    if env:
        rows.append(
            (
                "environment",
                f"Python {env.get('python')}, {env.get('package_count', 0)} packages",
            )
        )
    split = r.extra.get("split")
    if split:
        sizes = split.get("sizes", {})
        leak = split.get("leaked_rows", 0)
        rows.append(
            (
                "split",
                f"seed {split.get('seed')}: train {sizes.get('train')}, "
                f"val {sizes.get('val')}, test {sizes.get('test')}"
                + (f"  [yellow]{leak} leaked row(s)[/yellow]" if leak else ""),
            )
        )
    return rows


def _tables(ws: Assay, r: Run) -> None:
    """The run's params, metrics (with their curves), steps and artifacts, as tables."""
    if r.params:
        table = Table("param", "value", box=None, header_style="bold")
        for k, v in sorted(r.params.items()):
            table.add_row(k, repr(v) if isinstance(v, str) else str(v))
        console.print(table)
    if r.metrics:
        series: dict[str, list[float]] = {}
        for mkey, mvalue, _step, _ts in ws.runs.series(r.id):
            if mvalue is not None:
                series.setdefault(mkey, []).append(mvalue)
        table = Table("metric", "value", "series", box=None, header_style="bold")
        for k, v in sorted(r.metrics.items()):
            points = series.get(k, [])
            table.add_row(k, fmt_num(v), _curve(points) if len(points) > 1 else "")
        console.print(table)
    if r.steps:
        table = Table("#", "step", "status", "time", box=None, header_style="bold")
        for s in r.steps:
            t = "cached" if s.cached else (f"{s.seconds:.2f} s" if s.seconds is not None else "-")
            table.add_row(str(s.position + 1), s.name, s.status, t)
        console.print(table)
    artifacts = ws.runs.artifacts(r.id)
    if artifacts:
        table = Table("artifact", "size", "hash", box=None, header_style="bold")
        for path, digest, size in artifacts:
            table.add_row(path, human_bytes(size), digest[:16])
        console.print(table)
    if r.error:
        err.print(r.error.rstrip(), markup=False, highlight=False)


def _code_line(ws: Assay, run: Run) -> str | None:
    from assay.errors import NotFoundError

    try:
        cv = ws.runs.code_of(run.id)
    except NotFoundError:
        return None
    return f"{escape(cv.describe())}  [dim]{cv.short}[/dim]  (`assay runs code {run.short_id}`)"


def _curve(points: list[float], width: int = 24) -> str:
    if len(points) > width:
        step = len(points) / width
        points = [points[int(i * step)] for i in range(width)]
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    return sparkline([int((p - low) / span * 7) + 1 for p in points])


@app.command()
def compare(
    runs: Annotated[list[str] | None, typer.Argument(help="Run ids (or unique prefixes).")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Compare its latest runs.")
    ] = None,
    last: Annotated[int, typer.Option("--last", min=2, help="How many, with -e.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Compare runs side by side: params and metrics, differences and best values marked."""
    ws = workspace()
    if runs:
        found = ws.runs.compare(runs)
    elif experiment:
        latest = ws.runs.search(experiment=experiment, limit=last)
        found = ws.runs.compare([r.id for r in reversed(latest)])
    else:
        raise typer.BadParameter("give two or more run ids, or --experiment NAME")
    if as_json:
        emit_json(found)
        return
    table = Table("", *(f"{r.short_id}\n{r.name}" for r in found), box=None, header_style="bold")
    for label, get in (
        ("pipeline", "pipeline_ref"),
        ("data", "data_ref"),
        ("status", "status"),
    ):
        values = [str(getattr(r, get) or "-") for r in found]
        table.add_row(f"[dim]{label}[/dim]", *_marked(values))
    params = sorted({k for r in found for k in r.params})
    for k in params:
        values = [str(r.params.get(k, "-")) for r in found]
        table.add_row(f"params.{k}", *_marked(values))
    metrics = sorted({k for r in found for k in r.metrics})
    for k in metrics:
        nums = [r.metrics.get(k) for r in found]
        present = [v for v in nums if v is not None]
        best = (min if lower_is_better(k) else max)(present) if present else None
        cells = []
        for v in nums:
            text = fmt_num(v)
            if v is not None and v == best and len(present) > 1:
                text = f"[bold green]{text} ★[/bold green]"
            cells.append(text)
        table.add_row(f"metrics.{k}", *cells)
    console.print(table)


def _marked(values: list[str]) -> list[str]:
    if len(set(values)) <= 1:
        return values
    return [f"[yellow]{v}[/yellow]" for v in values]


@app.command()
def logs(run: str, as_json: JsonOpt = False) -> None:
    """Print what a run's steps wrote to stdout and stderr."""
    text = workspace().runs.logs(run)
    if as_json:
        emit_json({"run": workspace().runs.get(run).id, "logs": text})
        return
    if text:
        console.out(text, end="", highlight=False)
    else:
        console.print("(no output)")


@app.command()
def rerun(run: str, as_json: JsonOpt = False) -> None:
    """Run again with exactly the same data, pipeline and params versions; did it reproduce?"""
    old = workspace().runs.get(run)
    if is_remote():  # the server executes it; this waits for it
        new = remote().runs.rerun(old.id)
    else:
        new = execute(local().runs.rerun(run), use_cache=False, quiet=as_json)
    same = same_metrics(old.metrics, new.metrics)
    if as_json:
        emit_json({"run": new, "rerun_of": old.id, "reproduced": same})
    else:
        print_outcome(new)
        if same:
            console.print(f"[green]Reproduced:[/green] every metric equals run {old.short_id}'s.")
        else:
            diffs = [
                f"{k}: {fmt_num(old.metrics.get(k))} -> {fmt_num(new.metrics.get(k))}"
                for k in sorted(set(old.metrics) | set(new.metrics))
                if old.metrics.get(k) != new.metrics.get(k)
            ]
            console.print(
                f"[yellow]Did not reproduce[/yellow] run {old.short_id}: " + "; ".join(diffs)
            )
    if new.status != "succeeded":
        raise typer.Exit(1)


@app.command()
def leaderboard(
    experiment: Annotated[str, typer.Option("--experiment", "-e")],
    metric: Annotated[str, typer.Option("--metric", "-m", help="Rank by this metric.")],
    minimize: Annotated[
        bool | None, typer.Option("--min/--max", help="Direction (default: from the name).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The best runs of an experiment by one metric."""
    found = workspace().runs.leaderboard(experiment, metric, minimize=minimize, limit=limit)
    if as_json:
        emit_json(found)
        return
    if not found:
        console.print(f"No succeeded run of {experiment!r} has metric {metric!r}.")
        return
    table = Table("#", "run", "name", metric, "pipeline", "data", box=None, header_style="bold")
    for i, r in enumerate(found, 1):
        table.add_row(
            str(i),
            r.short_id,
            r.name,
            fmt_num(r.metrics.get(metric)),
            r.pipeline_ref or "-",
            r.data_ref or "-",
        )
    console.print(table)


@app.command()
def experiments(as_json: JsonOpt = False) -> None:
    """List experiments and how many runs each holds."""
    items = workspace().runs.experiments()
    if as_json:
        emit_json([{"name": n, "runs": c} for n, c in items])
        return
    table = Table("experiment", "runs", box=None, header_style="bold")
    for n, c in items:
        table.add_row(n, str(c))
    console.print(table)
