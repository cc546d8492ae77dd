"""`assay pipelines …`: versioned pipelines (snapshots of their source)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from assay.cli.context import workspace
from assay.cli.output import JsonOpt, console, emit_json, when
from assay.cli.tables import Table
from assay.serialize import dump

if TYPE_CHECKING:
    from assay.pipelines.entities import PipelineVersion

app = typer.Typer(
    help="Version pipelines: register, list, log, show, diff.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def register(
    path: Annotated[
        Path, typer.Argument(help="The .py file that defines the pipeline, or its folder.")
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", help="Register under this name (default: the pipeline's own)."),
    ] = None,
    message: Annotated[str, typer.Option("-m", "--message", help="What changed.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Snapshot the pipeline's source as its next version (a no-op when unchanged)."""
    service = workspace().pipelines
    v, created = service.register(path, name, message)
    files = service.files(v)
    if as_json:
        emit_json({"created": created, "version": v, "files": len(files)})
        return
    if not created:
        console.print(f"Unchanged: [bold]{v.ref}[/bold] already holds this source.")
        return
    console.print(
        f"Registered [bold]{v.ref}[/bold] ({_count(len(v.steps), 'step')}, "
        f"{_count(len(files), 'file')})"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List pipelines."""
    items = workspace().pipelines.pipelines()
    if as_json:
        emit_json(items)
        return
    if not items:
        console.print("No pipelines yet. Register one with `assay pipelines register PATH`.")
        return
    table = Table("pipeline", "versions", "latest", "updated", box=None, header_style="bold")
    for p in items:
        table.add_row(
            p.name, str(p.versions), f"@{p.latest}" if p.latest else "-", when(p.updated_at)
        )
    console.print(table)


@app.command()
def log(name: str, as_json: JsonOpt = False) -> None:
    """Show the versions of pipeline NAME, newest first."""
    versions = workspace().pipelines.log(name)
    if as_json:
        emit_json(versions)
        return
    table = Table(
        "version", "steps", "source", "author", "when", "message", box=None, header_style="bold"
    )
    for v in versions:
        table.add_row(
            f"@{v.number}",
            str(len(v.steps)),
            v.manifest[:12],
            escape(v.author),
            when(v.created_at),
            escape(v.message),
        )
    console.print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@latest.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a version: its steps, their inputs and code hashes, and the pipeline's source."""
    from rich.syntax import Syntax

    service = workspace().pipelines
    v = service.resolve(ref)
    files = service.files(v)
    if as_json:
        source = service.source(v)
        emit_json({**dump(v), "files": files, "source": source})
        return
    source = service.readable(v)
    _header(v, len(files))
    table = Table("#", "step", "inputs", "code", "", box=None, header_style="bold")
    for i, s in enumerate(v.steps, start=1):
        role = []
        if s.name == v.model_step:
            role.append("[green]model[/green]")
        if s.name == v.metrics_step:
            role.append("[cyan]metrics[/cyan]")
        table.add_row(str(i), s.name, ", ".join(s.inputs) or "-", s.code_hash[:12], " ".join(role))
    console.print(table)
    console.print()
    console.print(f"[dim]{v.entry}[/dim]")
    console.print(
        Syntax(source.rstrip("\n"), "python", theme="ansi_dark", line_numbers=True, word_wrap=True)
    )


def _header(v: PipelineVersion, n_files: int) -> None:
    console.print(f"[bold]{v.ref}[/bold]")
    rows = [
        ("pipeline", v.pipeline),
        ("version", str(v.number)),
        ("entry", v.entry),
        ("files", str(n_files)),
        ("hash", v.manifest[:16]),
        ("message", escape(v.message) or "-"),
        ("author", escape(v.author)),
        ("created", when(v.created_at)),
    ]
    grid = Table.grid(padding=(0, 2))
    for key, value in rows:
        grid.add_row(f"[dim]{key}[/dim]", value)
    console.print(grid)
    console.print()


@app.command()
def diff(old: str, new: str, as_json: JsonOpt = False) -> None:
    """Compare the source of two versions as a unified diff."""
    from rich.syntax import Syntax

    service = workspace().pipelines
    a, b = service.resolve(old), service.resolve(new)
    text = service.diff(a.ref, b.ref)
    if as_json:
        emit_json({"old": a.ref, "new": b.ref, "identical": not text, "diff": text})
        return
    if not text:
        console.print(f"[bold]{a.ref} -> {b.ref}[/bold]")
        console.print("No differences.")
        return
    console.print(Syntax(text, "diff", theme="ansi_dark", word_wrap=True))
