"""`assay sweep` and `assay sweeps …`: tune hyperparameters and select algorithms."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape

from assay.cli.context import is_remote, local, remote, workspace
from assay.cli.output import JsonOpt, console, emit_json, err, fmt_num, sparkline, status, when
from assay.cli.tables import Table
from assay.errors import InvalidArgumentError
from assay.serialize import dump

if TYPE_CHECKING:
    from assay.runs.executor import Executor
    from assay.sweeps.entities import Sweep, Trial, TrialState
    from assay.sweeps.service import Update

app = typer.Typer(
    help="Sweeps: list, show, plot, resume.", no_args_is_help=True, rich_markup_mode=None
)

_STATE = {
    "complete": "[green]complete[/green]",
    "pruned": "[yellow]pruned[/yellow]",
    "fail": "[red]failed[/red]",
    "running": "[cyan]running[/cyan]",
    "interrupted": "[yellow]interrupted[/yellow]",
    "retried": "[dim]retried[/dim]",
}


def sweep_command(
    pipeline: Annotated[
        str, typer.Argument(help="NAME[@VERSION] or a path to pipeline.py; or `resume`.")
    ],
    resume_name: Annotated[
        str | None, typer.Argument(help="With `resume`: the sweep to continue.", show_default=False)
    ] = None,
    data: Annotated[str | None, typer.Option("--data", help="DATASET[@VERSION].")] = None,
    params: Annotated[
        Path | None, typer.Option("--params", help="Base params (JSON); the space overrides.")
    ] = None,
    space: Annotated[
        Path | None, typer.Option("--space", help="The search space (JSON or YAML).")
    ] = None,
    trials: Annotated[int | None, typer.Option("--trials", help="How many trials.")] = None,
    objective: Annotated[
        list[str] | None,
        typer.Option("--objective", help="METRIC[:max|min]; repeat for a Pareto front."),
    ] = None,
    direction: Annotated[
        str | None, typer.Option("--direction", help="max or min (default: from the name).")
    ] = None,
    parallel: Annotated[int, typer.Option("--parallel", help="Trials at once.")] = 1,
    sampler: Annotated[str, typer.Option("--sampler", help="tpe, random, grid or nsga2.")] = "tpe",
    pruner: Annotated[str, typer.Option("--pruner", help="median, hyperband or none.")] = "median",
    prune_on: Annotated[
        str | None,
        typer.Option("--prune-on", help="Stepped metric the pruner reads (default: objective)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="The sampler's seed.")] = 0,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop before this many seconds pass.")
    ] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Stop before the trials' cost passes this.")
    ] = None,
    executor: Annotated[str, typer.Option("--executor", help="local or ray.")] = "local",
    register: Annotated[
        str, typer.Option("--register", help="Models to register: best, all or none.")
    ] = "best",
    name: Annotated[str | None, typer.Option("--name", help="A name for the sweep.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tune PIPELINE's params over a search space: every trial is a run; Optuna picks the next."""
    if pipeline == "resume":
        if not resume_name:
            raise InvalidArgumentError("Name the sweep to resume: assay sweep resume NAME.")
        _drive(resume_name, executor=None, parallel=None, as_json=as_json)
        return
    if resume_name is not None:
        raise InvalidArgumentError(
            f"Unexpected argument {resume_name!r}; options take dashes, e.g. --data."
        )
    missing = [
        flag
        for flag, value in (
            ("--data", data),
            ("--space", space),
            ("--trials", trials),
            ("--objective", objective),
        )
        if value is None or value == []
    ]
    if missing:
        raise InvalidArgumentError(f"assay sweep needs {', '.join(missing)}.")
    from assay.runs.executor import check_executor

    check_executor(executor)
    assert data is not None
    assert space is not None
    assert trials is not None
    assert objective
    driven_there = is_remote()  # then the server drives the trials, on its runners or its Ray
    runners: Executor | None = None
    if not driven_there and executor == "ray":
        from assay.executors.ray_cluster import check_ready

        check_ready(local().settings, os.environ)
    elif not driven_there:
        # Start the runners now: their start-up overlaps the checks and the
        # pipeline's registration below.
        runners = _executor("local", parallel)
    try:
        sweep = workspace().sweeps.create(
            pipeline,
            data=data,
            params_file=params,
            space_file=space,
            trials=trials,
            objectives=objective,
            direction=direction,
            parallel=parallel,
            sampler=sampler,
            pruner=pruner,
            prune_on=prune_on,
            seed=seed,
            timeout_s=timeout,
            budget=budget,
            name=name,
            executor=executor,
            register=register,
        )
    except BaseException:
        if runners is not None:
            runners.close()
        raise
    if driven_there:
        _follow(sweep, as_json=as_json)
        return
    if runners is not None:
        from assay.executors import preload

        preload(runners, sweep.pipeline_ref)
    _drive(sweep.name, executor=executor, parallel=parallel, as_json=as_json, runners=runners)


@app.command()
def resume(name: str, as_json: JsonOpt = False) -> None:
    """Continue an interrupted sweep; finished trials are kept, interrupted ones retried."""
    _drive(name, executor=None, parallel=None, as_json=as_json)


def _drive(
    name: str,
    *,
    executor: str | None,
    parallel: int | None,
    as_json: bool,
    runners: Executor | None = None,
) -> None:
    if is_remote():
        _follow(remote().sweeps.resume(name), as_json=as_json)
        return
    ws = local()
    sweep = ws.sweeps.get(name)
    try:
        ws.sweeps.check_runnable(sweep)  # before starting runners for nothing
    except BaseException:
        if runners is not None:
            runners.close()
        raise
    kind = executor or sweep.executor
    slots = parallel or sweep.parallel
    if not as_json:
        console.print(_header(sweep, slots, kind))
    view = _View(sweep, quiet=as_json)
    runner = runners or _executor(kind, slots)
    try:
        with view:
            finished = ws.sweeps.run(name, runner, watch=view.update)
    except KeyboardInterrupt:
        err.print(
            f"[yellow]Sweep {name} interrupted.[/yellow] Resume it with "
            f"`assay sweep resume {name}`."
        )
        raise typer.Exit(130) from None
    if as_json:
        emit_json(finished)
    else:
        print_summary(finished)
    if finished.status == "failed":
        raise typer.Exit(1)


def _header(sweep: Sweep, slots: int, kind: str) -> str:
    goals = ", ".join(o.label for o in sweep.objectives)
    left = sweep.trials - sweep.counted()
    return (
        f"Sweep [bold]{sweep.name}[/bold]: {sweep.pipeline_ref} on {sweep.data_ref}, "
        f"{left} of {sweep.trials} trials to go, {goals}, sampler {sweep.sampler}, "
        f"{slots} at a time on {kind}"
    )


def _follow(sweep: Sweep, *, as_json: bool, poll_s: float = 0.5) -> None:
    """Follow a sweep the server drives by reading it back, with the table and summary
    of a local one. Ctrl-C asks the server to stop it, as Ctrl-C stops a local sweep."""
    from assay.sweeps.entities import ACTIVE

    client = remote()
    name = sweep.name
    if not as_json:
        console.print(f"{_header(sweep, sweep.parallel, sweep.executor)} at {client.url}")
    view = _View(sweep, quiet=as_json)
    # Trials as they were when it was sent: a resumed sweep shows only what happens now.
    seen = {t.number: t.state for t in sweep.trial_list}
    try:
        with view:
            while True:
                _changed(view, sweep, seen)
                if sweep.status not in ACTIVE:
                    break
                time.sleep(poll_s)
                sweep = client.sweeps.get(name)
    except KeyboardInterrupt:
        client.sweeps.stop(name)
        err.print(
            f"[yellow]Sweep {name} interrupted.[/yellow] Resume it with "
            f"`assay sweep resume {name}`."
        )
        raise typer.Exit(130) from None
    if sweep.status == "interrupted":
        why = f" ({escape(sweep.stop_cause)})" if sweep.stop_cause else ""
        err.print(
            f"[yellow]Sweep {name} interrupted{why}.[/yellow] Resume it with "
            f"`assay sweep resume {name}`."
        )
        raise typer.Exit(1)
    if as_json:
        emit_json(sweep)
    else:
        print_summary(sweep)
    if sweep.status == "failed":
        raise typer.Exit(1)


def _changed(view: _View, sweep: Sweep, seen: dict[int, TrialState]) -> None:
    """Tell the view of each trial that started or ended since the last look."""
    from assay.sweeps.entities import FINISHED_STATES
    from assay.sweeps.service import Update, best_trial

    finished = [t for t in sweep.trial_list if t.state in FINISHED_STATES]
    best = None if sweep.multi else best_trial(finished, sweep.objectives[0])
    running = sum(1 for t in sweep.trial_list if t.state == "running")
    for t in sweep.trial_list:
        if seen.get(t.number) == t.state or t.state == "retried":
            continue
        seen[t.number] = t.state
        view.update(Update("started" if t.state == "running" else "ended", t, sweep, running, best))


def _executor(kind: str, slots: int) -> Executor:
    from assay.executors import open_executor

    ws = local()
    if kind == "ray":
        with status("Ray") as say:
            say("starting or connecting")
            return open_executor(kind, ws.settings, os.environ, slots=slots, cwd=Path.cwd())
    return open_executor(kind, ws.settings, os.environ, slots=slots, cwd=Path.cwd())


class _View:
    """The live table of trials on a terminal; one line per finished trial otherwise."""

    def __init__(self, sweep: Sweep, *, quiet: bool) -> None:
        self.sweep = sweep
        self.quiet = quiet
        self.rows: dict[int, Trial] = {}
        self.best: Trial | None = None
        self.running = 0
        self.started = time.monotonic()
        self.live: Live | None = None
        if not quiet and console.is_terminal:
            self.live = Live(self._render(), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> _View:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, update: Update) -> None:
        self.rows[update.trial.number] = update.trial
        self.best, self.running = update.best, update.running
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(self._render())
        elif update.kind == "ended":
            t = update.trial
            value = ", ".join(fmt_num(v) for v in t.values) if t.values else "-"
            console.print(
                f"  trial {t.number:>3}  {t.state:<8} {value:>10}  {_params(t.params)}",
                markup=False,
            )

    def _render(self) -> Table:
        done = sum(1 for t in self.rows.values() if t.state in ("complete", "pruned", "fail"))
        goals = self.sweep.objectives
        best = (
            f"best {goals[0].metric} {fmt_num(self.best.values[0])} (trial {self.best.number})"
            if self.best and self.best.values
            else "no result yet"
        )
        table = Table(
            "trial", "state", *(o.metric for o in goals), "time", "params",
            box=None, header_style="bold",
            title=f"{done} done · {self.running} running · {best} · "
            f"{time.monotonic() - self.started:.0f} s",
            title_justify="left",
        )  # fmt: skip
        for t in sorted(self.rows.values(), key=lambda t: t.number)[-12:]:
            values: list[float | None] = [*t.values] if t.values else [None] * len(goals)
            table.add_row(
                str(t.number),
                _STATE.get(t.state, t.state),
                *(fmt_num(v) for v in values),
                f"{t.seconds:.1f}s" if t.seconds is not None else "…",
                escape(_params(t.params)),
            )
        return table


def print_summary(sweep: Sweep) -> None:
    states: dict[str, int] = {}
    for t in sweep.trial_list:
        states[t.state] = states.get(t.state, 0) + 1
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    style = {"finished": "green", "stopped": "yellow", "failed": "red"}.get(sweep.status, "white")
    console.print(f"[{style}]{sweep.status}[/{style}]: {counts}")
    if sweep.stop_cause:
        console.print(f"  [dim]{escape(sweep.stop_cause)}[/dim]")
    _print_best(sweep)


def _print_best(sweep: Sweep) -> None:
    by_run = {t.run_id: t for t in sweep.trial_list}
    if sweep.multi and sweep.best_runs:
        console.print(f"Pareto front ({len(sweep.best_runs)} trials):")
        for run_id in sweep.best_runs:
            t = by_run[run_id]
            values = "  ".join(
                f"{o.metric}={fmt_num(v)}"
                for o, v in zip(sweep.objectives, t.values or [], strict=True)
            )
            console.print(
                f"  trial {t.number}  run {run_id[:8]}  {values}  {escape(_params(t.params))}"
            )
    elif sweep.best_runs:
        t = by_run[sweep.best_runs[0]]
        goal = sweep.objectives[0]
        console.print(
            f"Best: trial {t.number}, {goal.metric} = "
            f"[bold]{fmt_num(t.values[0] if t.values else None)}"
            f"[/bold] (run {sweep.best_runs[0][:8]})"
        )
        console.print(f"  params: {escape(_params(t.params))}")
    if sweep.best_models:
        console.print(
            f"  → model{'s' if len(sweep.best_models) > 1 else ''} "
            f"[bold]{', '.join(sweep.best_models)}[/bold]"
        )


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={fmt_num(v) if isinstance(v, float) else v}" for k, v in params.items())


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List sweeps: status, trials done, best value."""
    found = workspace().sweeps.sweeps()
    if as_json:
        emit_json([{k: v for k, v in dump(s).items() if k != "trial_list"} for s in found])
        return
    if not found:
        console.print("No sweeps yet. Start one with `assay sweep PIPELINE --data … --space …`.")
        return
    table = Table(
        "sweep", "pipeline", "data", "status", "trials", "objective", "best", "created",
        box=None, header_style="bold",
    )  # fmt: skip
    for s in found:
        scored = [t.values[0] for t in s.trial_list if t.state == "complete" and t.values]
        pick = max if s.objectives[0].direction == "maximize" else min
        table.add_row(
            s.name,
            s.pipeline_ref,
            s.data_ref,
            s.status,
            f"{s.counted()}/{s.trials}",
            ", ".join(o.label for o in s.objectives),
            fmt_num(pick(scored)) if scored else "-",
            when(s.created_at),
        )
    console.print(table)


@app.command()
def show(
    name: str,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Trials to list.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show a sweep: its best trial, the trials by objective, and parameter importances."""
    ws = workspace()
    sweep = ws.sweeps.get(name)
    importances = ws.sweeps.importances(sweep) if sweep.counted() >= 2 else {}
    if as_json:
        emit_json({**dump(sweep), "importances": importances})
        return
    grid = Table.grid(padding=(0, 2))
    for label, value in (
        ("sweep", sweep.name),
        ("status", sweep.status + (f" ({sweep.stop_cause})" if sweep.stop_cause else "")),
        ("pipeline", sweep.pipeline_ref),
        ("data", sweep.data_ref),
        ("objective", ", ".join(o.label for o in sweep.objectives)),
        ("sampler", f"{sweep.sampler} (seed {sweep.seed}), pruner {sweep.pruner}"),
        ("trials", f"{sweep.counted()} of {sweep.trials}, {sweep.parallel} at a time on "
                   f"{sweep.executor}"),
        ("experiment", f"{sweep.name} (assay runs list --experiment {sweep.name})"),
    ):  # fmt: skip
        grid.add_row(f"[bold]{label}[/bold]", escape(value))
    console.print(grid)
    console.print()
    _print_best(sweep)
    ranked = ws.sweeps.ranked(sweep)
    keys: list[str] = []
    for t in ranked:
        keys.extend(k for k in t.params if k not in keys)
    table = Table(
        "trial", "state", *(o.metric for o in sweep.objectives), "run", "time", *keys,
        box=None, header_style="bold",
    )  # fmt: skip
    for t in ranked[:limit]:
        values: list[float | None] = [*t.values] if t.values else [None] * len(sweep.objectives)
        table.add_row(
            str(t.number),
            _STATE.get(t.state, t.state),
            *(fmt_num(v) for v in values),
            (t.run_id or "-")[:8],
            f"{t.seconds:.1f}s" if t.seconds is not None else "-",
            *(escape(str(fmt_num(t.params[k]) if isinstance(t.params.get(k), float)
                         else t.params.get(k, "")))
              for k in keys),
        )  # fmt: skip
    console.print()
    console.print(table)
    if len(ranked) > limit:
        console.print(f"[dim]… {len(ranked) - limit} more (--limit)[/dim]")
    history = [
        (t.number, t.values[0]) for t in sweep.trial_list if t.state == "complete" and t.values
    ]
    if len(history) >= 2:
        goal = sweep.objectives[0]
        pick = max if goal.direction == "maximize" else min
        best_so_far, running = [], None
        for _, v in history:
            running = v if running is None else pick(running, v)
            best_so_far.append(running)
        lo, hi = min(v for _, v in history), max(v for _, v in history)
        span = (hi - lo) or 1.0
        console.print()
        console.print(f"[dim]{goal.metric} by trial, and the best so far[/dim]")
        console.print(
            "  trials "
            + sparkline([round((v - lo) / span * 7) + 1 for _, v in history])
            + f"  {fmt_num(lo)} – {fmt_num(hi)}"
        )
        console.print(
            "  best   "
            + sparkline([round((v - lo) / span * 7) + 1 for v in best_so_far])
            + f"  → {fmt_num(best_so_far[-1])}"
        )
    if importances:
        console.print()
        console.print("[bold]parameter importances[/bold] [dim](fANOVA)[/dim]")
        width = max(len(k) for k in importances)
        for key, share in importances.items():
            bar = "█" * max(1, round(share * 30)) if share > 0 else ""
            console.print(f"  {escape(key):<{width}}  {share:5.1%}  [cyan]{bar}[/cyan]")


@app.command()
def plot(
    name: str,
    out: Annotated[Path, typer.Option("--out", help="Folder for the plots.")] = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Save the optimization history and parallel coordinates as PNG, with an HTML page."""
    from assay.sweeps.plots import save_plots

    ws = workspace()
    sweep = ws.sweeps.get(name)
    files = save_plots(sweep, ws.sweeps.study(sweep), ws.sweeps.importances(sweep), out)
    if as_json:
        emit_json({"files": [str(f) for f in files]})
        return
    for f in files:
        console.print(f"wrote {f}")
