"""`assay models …`: the model repository (versions, aliases, lineage, export)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from assay.cli.context import workspace
from assay.cli.output import JsonOpt, console, emit_json, fmt_num, when
from assay.cli.tables import Table

if TYPE_CHECKING:
    from assay.registry.entities import ModelVersion

app = typer.Typer(
    help="The model repository: list, show, lineage, alias, register, export.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List models with their latest version and aliases."""
    items = workspace().models.models()
    if as_json:
        emit_json(items)
        return
    if not items:
        console.print(
            "No models yet. A succeeded `assay run` registers its model; so does "
            "`assay models register FILE --name NAME`."
        )
        return
    table = Table(
        "model", "versions", "latest", "aliases", "created", box=None, header_style="bold"
    )
    for m in items:
        aliases = ", ".join(f"{a}→@{n}" for a, n in m.aliases.items()) or "-"
        table.add_row(
            m.name,
            str(m.versions),
            f"@{m.latest}" if m.latest else "-",
            aliases,
            when(m.created_at),
        )
    console.print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="MODEL, MODEL@VERSION or MODEL@ALIAS.")],
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, help="Show at most N of the version's inputs (all by default)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model's versions (MODEL) or one version: metrics, signature, lineage (MODEL@V)."""
    registry = workspace().models
    if "@" not in ref:
        versions = registry.versions(ref)
        if as_json:
            emit_json(versions)
            return
        _versions_table(versions)
        return
    mv = registry.resolve(ref)
    if as_json:
        emit_json(mv)
        return
    _show_version(mv, limit)


def _versions_table(versions: list[ModelVersion]) -> None:
    metric_names = sorted({k for v in versions for k in v.metrics})[:4]
    table = Table(
        "version", "aliases", "flavor", *metric_names, "run", "created", box=None,
        header_style="bold",
    )  # fmt: skip
    for v in versions:
        table.add_row(
            f"@{v.version}",
            ", ".join(v.aliases) or "-",
            v.flavor,
            *(fmt_num(v.metrics.get(k)) for k in metric_names),
            (v.lineage.run_id or "-")[:8],
            when(v.created_at),
        )
    console.print(table)


def _show_version(mv: ModelVersion, limit: int | None = None) -> None:
    console.print(f"[bold]{mv.ref}[/bold]" + (f"  ({', '.join(mv.aliases)})" if mv.aliases else ""))
    grid = Table.grid(padding=(0, 2))
    rows: list[tuple[str, str]] = [
        ("flavor", mv.flavor),
        ("frameworks", ", ".join(f"{k} {v}" for k, v in mv.frameworks.items()) or "-"),
        ("bundle", mv.bundle[:16]),
        ("run", mv.lineage.run_id or "-"),
        ("data", mv.lineage.data or "-"),
        ("pipeline", mv.lineage.pipeline or "-"),
        ("params", mv.lineage.params or "-"),
        ("source", escape(mv.lineage.source or "-")),
        ("author", escape(mv.author)),
        ("created", when(mv.created_at)),
        ("description", escape(mv.description) or "-"),
    ]
    if mv.extra.get("note"):
        rows.append(("note", escape(str(mv.extra["note"]))))
    for key, value in rows:
        grid.add_row(f"[dim]{key}[/dim]", value)
    console.print(grid)
    if mv.metrics:
        console.print()
        metrics = Table("metric", "value", box=None, header_style="bold")
        for k, v in sorted(mv.metrics.items()):
            metrics.add_row(k, fmt_num(v))
        console.print(metrics)
    sig = mv.signature
    if sig is not None:
        console.print()
        shown = sig.inputs[:limit] if limit else sig.inputs
        inputs = Table("input", "kind", "dtype", "nulls", box=None, header_style="bold")
        for c in shown:
            inputs.add_row(escape(c.name), c.kind, c.dtype, "yes" if c.nullable else "no")
        console.print(inputs)
        if len(sig.inputs) > len(shown):
            more = len(sig.inputs) - len(shown)
            console.print(f"[dim]… and {more} more inputs (--limit {limit} cut them)[/dim]")
        if sig.output:
            out = sig.output
            classes = f", classes {list(out.classes)}" if out.classes is not None else ""
            proba = ", predict_proba" if out.has_proba else ""
            console.print(f"[dim]output[/dim]  {out.kind} ({out.dtype}){classes}{proba}")


@app.command()
def lineage(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION or MODEL@ALIAS.")],
    as_json: JsonOpt = False,
) -> None:
    """Trace a model version back to its run, data, pipeline and params, with hashes."""
    tree_doc = workspace().models.lineage(ref)
    if as_json:
        emit_json(tree_doc)
        return
    root = Tree(
        f"[bold]{tree_doc['model']}[/bold]  [dim]{tree_doc['flavor']}, "
        f"bundle {tree_doc['bundle'][:16]}[/dim]"
    )
    run = tree_doc["run"]
    if run is None:
        root.add(f"registered from a file: {escape(tree_doc['source'] or '-')}")
        console.print(root)
        return
    node = root.add(
        f"run [bold]{run['name']}[/bold] [dim]{run['id'][:8]}[/dim] "
        f"({run['status']}, experiment {escape(run['experiment'])})"
    )
    if run["metrics"]:
        node.add(
            "metrics  " + "  ".join(f"{k}={fmt_num(v)}" for k, v in sorted(run["metrics"].items()))
        )
    data = run["data"]
    dnode = node.add(
        f"data      [bold]{data['ref'] or '-'}[/bold]  [dim]{(data['manifest'] or '')[:16]}[/dim]"
    )
    if data.get("message"):
        dnode.add(f"[dim]{escape(str(data['message']))}[/dim]")
    pipe = run["pipeline"]
    if pipe["ref"]:
        pnode = node.add(
            f"pipeline  [bold]{pipe['ref']}[/bold]  [dim]{(pipe['manifest'] or '')[:16]}[/dim]"
        )
        for step in pipe["steps"]:
            pnode.add(f"{step['name']:<10} [dim]{step['code_hash'][:12]}[/dim]")
    code = run.get("code")
    if code and code["kind"] != "pipeline":
        git = ""
        if code["git_commit"]:
            dirty = ", uncommitted changes" if code["git_dirty"] else ""
            git = f"  git {code['git_commit'][:8]} ({code['git_branch'] or 'detached'}{dirty})"
        node.add(
            f"code      [bold]{code['kind']} {escape(code['entry'])}[/bold]  "
            f"[dim]{code['ref'][:16]}[/dim]{git}"
        )
    params = run["params"]
    values = ", ".join(f"{k}={v}" for k, v in sorted(params["values"].items()))
    node.add(
        f"params    [bold]{params['ref']}[/bold]  [dim]{(params['manifest'] or '')[:16]}[/dim]"
        f"  {escape(values)}"
    )
    console.print(root)


@app.command()
def alias(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION to point the alias at.")],
    name: Annotated[str, typer.Argument(help="The alias, e.g. champion.")],
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove the alias from MODEL instead.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Point ALIAS at MODEL@VERSION (moving it from wherever it was); MODEL@ALIAS then
    resolves everywhere."""
    registry = workspace().models
    if delete:
        model = ref.partition("@")[0]
        registry.unalias(model, name)
        if as_json:
            emit_json({"model": model, "alias": name, "deleted": True})
        else:
            console.print(f"Removed {model}@{name}")
        return
    mv = registry.alias(ref, name)
    if as_json:
        emit_json(mv)
        return
    console.print(f"{mv.name}@{name} -> version {mv.version}")


@app.command()
def register(
    path: Annotated[
        Path | None,
        typer.Argument(help="A .skops file, an XGBoost/LightGBM model file, or a pickle."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The model to add a version to.")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Register this succeeded run's model instead.")
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="Load a pickle even though loading a pickle can run any code it holds.",
        ),
    ] = False,
    description: Annotated[str, typer.Option("-m", "--message", help="A description.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a model trained elsewhere (FILE --name NAME), or a run's model (--run RUN)."""
    from assay.errors import InvalidArgumentError

    registry = workspace().models
    if run is not None:
        if path is not None:
            raise InvalidArgumentError("Give a FILE or --run, not both.")
        mv = registry.register_run(run, name)
    else:
        if path is None or name is None:
            raise InvalidArgumentError("Give a FILE and --name NAME (or --run RUN).")
        mv = registry.register_file(path, name, trust=trust, description=description)
    if as_json:
        emit_json(mv)
        return
    console.print(f"Registered [bold]{mv.ref}[/bold] ({mv.flavor})")


@app.command()
def export(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION or MODEL@ALIAS.")],
    dest: Annotated[Path, typer.Argument(help="A new folder to write the model into.")],
    as_json: JsonOpt = False,
) -> None:
    """Write a self-contained folder: the model, its signature, requirements.txt, an input
    example, and an MLmodel file so MLflow's tools can load it too."""
    mv, folder = workspace().models.export(ref, dest)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    if as_json:
        emit_json({"model": mv.ref, "path": str(folder), "files": files})
        return
    console.print(f"Exported [bold]{mv.ref}[/bold] to {folder}")
    for f in files:
        console.print(f"  {f}")
