"""`assay data …`: the versioned data repository."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from assay.cli.context import workspace
from assay.cli.output import (
    JsonOpt,
    console,
    emit_json,
    err,
    fmt_num,
    human_bytes,
    progress,
    sparkline,
    when,
)
from assay.cli.tables import Table
from assay.serialize import load

if TYPE_CHECKING:
    from assay.data.checks import Checks
    from assay.data.entities import DataVersion
    from assay.data.profiles import ColumnProfile, TableProfile
    from assay.data.tablediff import TableDiff
    from assay.data.validation import ValidationReport

app = typer.Typer(
    help="Version datasets: commit, log, show, checkout, diff, tag, profile, validate, verify.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _load_checks(path: Path) -> Checks:
    from assay.data.checks import load_checks
    from assay.store.paths import read_user_text

    return load_checks(read_user_text(path, "checks file"), str(path))


@app.command()
def commit(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. churn or params/train.")],
    path: Annotated[Path, typer.Argument(help="A file or a folder.")],
    message: Annotated[str, typer.Option("-m", "--message", help="What changed.")] = "",
    checks: Annotated[
        Path | None, typer.Option("--checks", help="Validate first; refuse data that fails.")
    ] = None,
    allow_invalid: Annotated[
        bool, typer.Option("--allow-invalid", help="Commit data that fails, marked failed.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Commit a file or folder as the next version of dataset NAME."""
    from assay.errors import ValidationFailedError

    spec = _load_checks(checks) if checks else None
    ws = workspace()
    try:
        with progress(f"Committing {name}") as update:
            result = ws.data.commit(
                name, path, message, checks=spec, allow_invalid=allow_invalid, progress=update
            )
    except ValidationFailedError as exc:
        from assay.data.validation import ValidationReport

        report = load(ValidationReport, exc.details["report"])
        if as_json:
            emit_json({"committed": False, "validation": report})
        else:
            _print_report(report)
        raise
    v = result.version
    if as_json:
        emit_json(
            {
                "created": result.created,
                "version": v,
                "files_hashed": result.files_hashed,
                "files_cached": result.files_cached,
                "bytes_stored": result.bytes_stored,
                "validation": result.validation,
            }
        )
        return
    if result.validation is not None:
        _print_report(result.validation, only_failures=True)
    mark = " [red](validation failed)[/red]" if v.validation == "failed" else ""
    if not result.created:
        checked = mark if result.validation is not None else ""
        console.print(f"Nothing changed: {v.ref} already holds this content{checked}.")
        return
    console.print(
        f"Committed [bold]{v.ref}[/bold]{mark}: {v.file_count:,} file(s), "
        f"{human_bytes(v.total_bytes)} ({result.files_hashed:,} hashed, "
        f"{result.files_cached:,} unchanged)"
    )


@app.command("list")
def list_(
    all_: Annotated[
        bool, typer.Option("--all", help="Include the runs' params/* datasets.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List datasets (the runs' params/* datasets only with --all)."""
    items = workspace().data.datasets(include_params=all_)
    if as_json:
        emit_json(
            [
                {
                    "name": d.name,
                    "versions": d.versions,
                    "latest": d.latest,
                    "updated_at": d.updated_at,
                }
                for d in items
            ]
        )
        return
    if not items:
        console.print("No datasets yet. Commit one with `assay data commit NAME PATH`.")
        return
    table = Table("dataset", "versions", "latest", "updated", box=None, header_style="bold")
    for d in items:
        table.add_row(
            d.name, str(d.versions), f"@{d.latest}" if d.latest else "-", when(d.updated_at)
        )
    console.print(table)


@app.command()
def log(name: str, as_json: JsonOpt = False) -> None:
    """Show the versions of dataset NAME, newest first."""
    versions = workspace().data.log(name)
    if as_json:
        emit_json(versions)
        return
    table = Table(
        "version",
        "tags",
        "files",
        "size",
        "author",
        "when",
        "checks",
        "message",
        box=None,
        header_style="bold",
    )
    for v in versions:
        table.add_row(
            f"@{v.number}",
            ", ".join(v.tags),
            f"{v.file_count:,}",
            human_bytes(v.total_bytes),
            v.author,
            when(v.created_at),
            _validation(v.validation),
            v.message,
        )
    console.print(table)


def _validation(status: str | None) -> str:
    return {"passed": "[green]passed[/green]", "failed": "[red]failed[/red]"}.get(status or "", "")


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION, NAME@TAG or NAME@latest.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a version: its files, sizes, hashes, message, author, time and parent."""
    ws = workspace()
    v = ws.data.resolve(ref)
    files = ws.data.files(v)
    if as_json:
        emit_json({"version": v, "files": files})  # GET /versions/REF
        return
    _header(v)
    table = Table("path", "size", "hash", box=None, header_style="bold")
    for f in files:
        table.add_row(f.path, human_bytes(f.size), f.hash[:16])
    console.print(table)


def _header(v: DataVersion) -> None:
    console.print(f"[bold]{v.ref}[/bold]" + (f"  tags: {', '.join(v.tags)}" if v.tags else ""))
    rows = [
        ("message", v.message or "-"),
        ("author", v.author),
        ("created", when(v.created_at)),
        ("parent", f"{v.dataset}@{v.parent}" if v.parent else "-"),
        ("files", f"{v.file_count:,} ({human_bytes(v.total_bytes)})"),
        ("manifest", v.manifest[:16]),
    ]
    if v.validation:
        rows.append(("checks", _validation(v.validation)))
    grid = Table.grid(padding=(0, 2))
    for key, value in rows:
        grid.add_row(f"[dim]{key}[/dim]", value)
    console.print(grid)


@app.command()
def checkout(
    ref: str,
    dest: Path,
    force: Annotated[bool, typer.Option("--force", help="Replace DEST's contents.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore version REF into folder DEST, byte for byte."""
    with progress(f"Checking out {ref}") as update:
        v = workspace().data.checkout(ref, dest, force=force, progress=update)
    if as_json:
        emit_json({"version": v, "dest": str(dest.resolve())})
        return
    console.print(
        f"Checked out {v.ref} into {dest} ({v.file_count:,} file(s), {human_bytes(v.total_bytes)})"
    )


@app.command()
def tag(
    ref: str,
    tag: str,
    force: Annotated[bool, typer.Option("--force", help="Move the tag if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Tag version REF, so that NAME@TAG resolves to it."""
    v = workspace().data.tag(ref, tag, force=force)
    if as_json:
        emit_json(v)
        return
    console.print(f"{v.dataset}@{tag} -> version {v.number}")


@app.command()
def diff(
    old: str,
    new: str,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Match rows by this column (default: a unique id-like column)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare two versions: files, and for tables rows (added, removed, changed),
    columns and statistics."""
    d = workspace().data.diff(old, new, key=key)
    if as_json:
        emit_json(d)
        return
    console.print(f"[bold]{d.old} -> {d.new}[/bold]")
    if d.unchanged:
        console.print("No differences.")
        return
    console.print(f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed")
    table = Table("", "path", "size", box=None, header_style="bold")
    for f in d.added:
        table.add_row("[green]+[/green]", f.path, human_bytes(f.size))
    for f in d.removed:
        table.add_row("[red]-[/red]", f.path, human_bytes(f.size))
    for c in d.changed:
        table.add_row(
            "[yellow]~[/yellow]", c.path, f"{human_bytes(c.old_size)} -> {human_bytes(c.new_size)}"
        )
    console.print(table)
    for path, td in d.tables.items():
        _print_table_diff(path, td)
    for path, reason in d.unreadable.items():
        console.print()
        console.print(Text.assemble((path, "bold"), f"  not compared as a table: {reason}"))


def _print_table_diff(path: str, td: TableDiff) -> None:
    console.print()
    parts = [
        (td.rows_unchanged, "unchanged", ""),
        (td.rows_changed, "changed", "yellow"),
        (td.rows_added, "added", "green"),
        (td.rows_removed, "removed", "red"),
    ]
    counts = ", ".join(
        f"[{style}]{n:,} {word}[/{style}]" if style else f"{n:,} {word}"
        for n, word, style in parts
        if n
    )
    console.print(
        Text.assemble((path, "bold"), f"  rows {td.rows_old:,} -> {td.rows_new:,}"),
        Text.from_markup(f": {counts}" if counts else ""),
        sep="",
    )
    _print_row_changes(td)
    for col in td.columns_added:
        console.print(f"  [green]+ column[/green] {col}")
    for col in td.columns_removed:
        console.print(f"  [red]- column[/red] {col}")
    for col, old_t, new_t in td.columns_retyped:
        console.print(f"  [yellow]~ column[/yellow] {col}: {old_t} -> {new_t}")
    # Small drifts are noise to a reader; --json has every shift.
    notable = [s for s in td.stat_shifts if _notable(s.old, s.new)]
    if notable:
        table = Table(
            "column",
            "statistic",
            "old",
            "new",
            "change",
            box=None,
            header_style="bold",
            padding=(0, 2),
        )
        for s in notable:
            change = "-"
            if s.old is not None and s.new is not None and s.old != 0:
                change = f"{(s.new - s.old) / abs(s.old):+.1%}"
            table.add_row(s.column, s.stat, fmt_num(s.old), fmt_num(s.new), change)
        console.print(table)
    hidden = len(td.stat_shifts) - len(notable)
    if hidden:
        console.print(
            f"  [dim]{hidden} smaller shift(s) (under 5%) not shown; --json lists all[/dim]"
        )


def _print_row_changes(td: TableDiff) -> None:
    hint = "no key column; --key COL matches rows by one"
    if td.match == "key":
        console.print(Text(f"  rows matched by {td.key}", style="dim"))
    elif td.match == "columns":
        ignored = ", ".join(td.ignored)
        console.print(
            Text(f"  rows matched on the shared columns but {ignored} ({hint})", style="dim")
        )
    elif td.rows_added and td.rows_removed:
        console.print(Text(f"  rows matched only when equal in every column ({hint})", style="dim"))
    if td.changed_columns:
        console.print(
            "  changed columns: "
            + ", ".join(f"{_one_line(c)} ({n:,})" for c, n in td.changed_columns)
        )
    if td.examples:
        grid = Table.grid(padding=(0, 2))
        for e in td.examples:
            grid.add_row(
                Text("   " + e.row),
                Text(_one_line(e.column)),
                Text(f"{e.old} -> {e.new}"),
            )
        console.print(grid)
    for word, rows, total in (
        ("added", td.added_rows, td.rows_added),
        ("removed", td.removed_rows, td.rows_removed),
    ):
        if rows:
            more = ", …" if total > len(rows) else ""
            console.print(Text(f"  {word}: {', '.join(rows)}{more}"))


def _notable(old: float | None, new: float | None) -> bool:
    if old is None or new is None or old == 0:
        return old != new
    return abs(new - old) / abs(old) >= 0.05


@app.command()
def profile(ref: str, as_json: JsonOpt = False) -> None:
    """Profile the tables of a version: types, missing values, statistics, histograms."""
    with progress(f"Profiling {ref}"):
        v, profiles = workspace().data.profile(ref)
    if as_json:
        emit_json({"version": v, "tables": profiles})  # GET /profiles/REF
        return
    for path, prof in profiles.items():
        _print_profile(f"{v.ref}:{path}", prof)


_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _print_profile(title: str, prof: TableProfile) -> None:
    if prof.error is not None:
        console.print(
            Text.assemble(
                (title, "bold"),
                f"  not readable as a table: {prof.error}. Its bytes are versioned as they are.",
            )
        )
        console.print()
        return
    read_as = []
    if prof.delimiter not in (None, ","):
        read_as.append(f"{_SEPARATORS.get(prof.delimiter or '', repr(prof.delimiter))}-separated")
    if prof.encoding not in (None, "utf-8"):
        read_as.append(str(prof.encoding))
    console.print(
        Text.assemble(
            (title, "bold"),
            f"  {prof.rows:,} rows x {len(prof.columns)} columns",
            (f"  ({', '.join(read_as)})" if read_as else "", "dim"),
        )
    )
    for warning in prof.warnings:
        console.print(Text(f"  ! {warning}", style="yellow"))
    if not prof.columns:
        console.print()
        return
    table = Table(
        "column",
        "type",
        "missing",
        "distinct",
        "min",
        "mean",
        "max",
        "std",
        "distribution",
        box=None,
        header_style="bold",
        padding=(0, 1),
    )
    for c in prof.columns:
        missing = f"{c.missing:,} ({c.missing_share:.0%})" if c.missing else "0"
        table.add_row(
            Text(_one_line(c.name)),
            _column_type(c),
            missing,
            f"{c.distinct:,}",
            fmt_num(c.min),
            fmt_num(c.mean),
            fmt_num(c.max),
            fmt_num(c.std),
            Text(_distribution(c)),
        )
    console.print(table)
    console.print()


def _column_type(c: ColumnProfile) -> str:
    if c.numeric_share is None:
        return c.type
    return f"{c.type}, {_share(c.numeric_share)} numbers"


def _share(x: float) -> str:
    """A share that never rounds to 100% (or 0%) unless it is."""
    pct = x * 100
    if 0 < pct < 1:
        return "<1%"
    if 99 < pct < 100:
        return ">99%"
    return f"{pct:.0f}%"


def _distribution(c: ColumnProfile) -> str:
    values = ", ".join(f"{_one_line(v, 20)} ({n:,})" for v, n in (c.odd or c.top)[:3])
    if c.histogram is None:
        return values
    bars = sparkline(c.histogram.counts)
    return f"{bars}  other: {values}" if c.odd else bars


def _one_line(text: str, limit: int = 40) -> str:
    """A cell's text on one line: line breaks shown as ⏎, tabs as spaces, long text cut."""
    flat = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎").replace("\t", " ")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@app.command()
def validate(
    ref: str,
    checks: Annotated[Path, typer.Option("--checks", help="A YAML or JSON checks file.")],
    as_json: JsonOpt = False,
) -> None:
    """Check a version's tables against a checks file; exit 1 if any check fails."""
    spec = _load_checks(checks)
    v, report = workspace().data.validate(ref, spec)
    if as_json:
        emit_json({"version": v, "report": report})  # POST /validations/REF
    else:
        _print_report(report)
        failed = len(report.failures)
        console.print(
            f"{v.ref}: [green]all {len(report.results)} checks passed[/green]"
            if report.passed
            else f"{v.ref}: [red]{failed} of {len(report.results)} checks failed[/red]"
        )
    if not report.passed:
        raise typer.Exit(1)


def _print_report(report: ValidationReport, only_failures: bool = False) -> None:
    table = Table(
        "",
        "file",
        "column",
        "check",
        "failing",
        "detail",
        box=None,
        header_style="bold",
        padding=(0, 1),
    )
    shown = 0
    for r in report.results:
        if only_failures and r.passed:
            continue
        shown += 1
        examples = ""
        if r.examples:
            examples = "  e.g. " + ", ".join(
                f"row {e.get('row')}: {e.get('value')!r}" for e in r.examples[:3]
            )
        table.add_row(
            "[green]✓[/green]" if r.passed else "[red]✗[/red]",
            r.file,
            r.column or "",
            r.check,
            f"{r.failed_count:,}" if not r.passed else "",
            ("" if r.passed else r.message) + examples,
        )
    if shown:
        console.print(table)


@app.command()
def verify(as_json: JsonOpt = False) -> None:
    """Re-hash every stored object; report any missing or corrupt one; exit 1 if any."""
    with progress("Verifying objects", unit="objects") as update:
        report = workspace().data.verify(progress=update)
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "checked": report.checked,
                "corrupt": list(report.corrupt),
                "missing": [{"object": h, "needed_by": w} for h, w in report.missing],
            }
        )
    else:
        for digest in report.corrupt:
            err.print(f"[red]corrupt[/red]  {digest}")
        for digest, where in report.missing:
            err.print(f"[red]missing[/red]  {digest}  needed by {where}")
        if report.ok:
            console.print(f"Checked {report.checked:,} objects: all intact.")
        else:
            console.print(
                f"Checked {report.checked:,} objects: [red]{len(report.corrupt)} corrupt, "
                f"{len(report.missing)} missing[/red]."
            )
    if not report.ok:
        raise typer.Exit(1)
