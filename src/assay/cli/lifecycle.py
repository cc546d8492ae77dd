"""Deleting and archiving (`runs|models|data delete`, `runs archive|restore`), and `assay gc`."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from assay.cli.context import workspace
from assay.cli.output import JsonOpt, console, emit_json, human_bytes

Force = Annotated[
    bool,
    typer.Option("--force", help="Delete even what others depend on; say what that breaks."),
]


def _deleted(kind: str, deleted: object, as_json: bool) -> None:
    from assay.lifecycle.entities import Deleted

    assert isinstance(deleted, Deleted)
    if as_json:
        emit_json(dataclasses.asdict(deleted))
        return
    shown = ", ".join(w[:8] if kind == "run" else w for w in deleted.what)
    console.print(f"Deleted {kind}{'s' if len(deleted.what) > 1 else ''} {shown}")
    for broken in deleted.broke:
        console.print(f"  [yellow]now names something deleted:[/yellow] {broken}")
    console.print("[dim]Its bytes go at the next `assay gc`.[/dim]")


def delete_runs(
    runs: Annotated[list[str], typer.Argument(help="Run ids (or unique prefixes).")],
    force: Force = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete runs (and the runs made inside them) with what they recorded."""
    _deleted("run", workspace().lifecycle.delete_runs(runs, force=force), as_json)


def delete_model(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION.")],
    force: Force = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a model version; refused while an alias, a service or an A/B test uses it."""
    _deleted("model", workspace().lifecycle.delete_model(ref, force=force), as_json)


def delete_data(
    ref: Annotated[str, typer.Argument(help="DATASET@VERSION.")],
    force: Force = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a data version; refused while runs used it, models name it or tags point at it."""
    _deleted("data version", workspace().lifecycle.delete_data(ref, force=force), as_json)


def archive(
    runs: Annotated[list[str] | None, typer.Argument(help="Run ids (or unique prefixes).")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Archive a whole experiment.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Archive runs, or a whole experiment: kept whole, but out of listings until restored."""
    _archive(runs, experiment, restore=False, as_json=as_json)


def restore(
    runs: Annotated[list[str] | None, typer.Argument(help="Run ids (or unique prefixes).")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Restore a whole experiment.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Bring archived runs, or an archived experiment, back into the listings."""
    _archive(runs, experiment, restore=True, as_json=as_json)


def _archive(
    runs: list[str] | None, experiment: str | None, *, restore: bool, as_json: bool
) -> None:
    service = workspace().runs
    verb = "Restored" if restore else "Archived"
    if experiment:
        count = service.archive_experiment(experiment, restore=restore)
        if as_json:
            emit_json({"experiment": experiment, "runs": count, "archived": not restore})
        else:
            console.print(f"{verb} experiment {experiment} ({count} run(s))")
    if runs:
        ids = service.archive(runs, restore=restore)
        if as_json:
            emit_json({"runs": ids, "archived": not restore})
        else:
            console.print(f"{verb} {len(ids)} run(s): {', '.join(i[:8] for i in ids)}")
    if not runs and not experiment:
        raise typer.BadParameter("give run ids, or --experiment NAME")


def gc_command(
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would go, and how many bytes; remove nothing."),
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace-minutes",
            min=0,
            help="Spare objects written or reused this recently (a commit in flight may use them).",
        ),
    ] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Remove the objects no version, run, model or artifact refers to, the temporaries of
    killed writers, and expired uploads (like `dvc gc`)."""
    from assay.cli.output import status

    with status("Collecting garbage…"):
        found = workspace().lifecycle.collect(dry_run=dry_run, grace_s=grace * 60)
    if as_json:
        emit_json(dataclasses.asdict(found))
        return
    verb = "Would remove" if dry_run else "Removed"
    console.print(
        f"{verb} {found.removed:,} of {found.objects:,} object(s), "
        f"{human_bytes(found.removed_bytes)} ({found.packs} pack(s)); "
        f"{found.live:,} live, {found.young:,} unreferenced but younger than "
        f"{grace:g} min (kept)."
    )
    if found.temporaries or found.uploads:
        console.print(
            f"{verb} {found.temporaries} temporary file(s) of killed writers and "
            f"{found.uploads} expired upload(s)."
        )
    if dry_run and found.removed:
        console.print("[dim]Run `assay gc` without --dry-run to remove them.[/dim]")
