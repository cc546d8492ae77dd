"""`assay runs code RUN`: the code a run executed, and what changed between two runs."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from assay.cli.context import workspace
from assay.cli.output import JsonOpt, console, emit_json

if TYPE_CHECKING:
    from assay.runs.code import CodeVersion


def code_command(
    run: Annotated[str, typer.Argument(help="A run id (or a unique prefix).")],
    diff: Annotated[
        str | None, typer.Option("--diff", help="Another run: show how its code differs.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the code's files into this new folder.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the code a run executed: its pipeline snapshot, or the notebook, script or
    cells a tracked run captured, with its git commit and uncommitted changes."""
    from assay.runs.code import as_text

    runs = workspace().runs
    version = runs.code_of(run)
    files = runs.code_files(version)
    if diff is not None:
        other = runs.code_of(diff)
        text = _diff(version, files, other, runs.code_files(other), run, diff)
        if as_json:
            emit_json({"old": _doc(version), "new": _doc(other), "diff": text})
        elif text:
            console.out(text, end="", highlight=False)
        else:
            console.print(f"Same code: both ran code version {version.short}.")
        return
    if out is not None:
        _write(out, files)
        if not as_json:
            console.print(f"Wrote {len(files)} file(s) of code version {version.short} to {out}")
    if as_json:
        emit_json({**_doc(version), "files": {k: as_text(k, v) for k, v in files.items()}})
        return
    if out is not None:
        return
    console.print(f"[bold]{escape(version.describe())}[/bold]  [dim]{version.hash}[/dim]")
    entry = files.get(version.entry)
    if entry is not None:
        console.out(as_text(version.entry, entry), highlight=False)
    others = [name for name in files if name not in (version.entry, "git.diff")]
    if others:
        console.print(f"[dim]also: {', '.join(others)} (--out DIR writes every file)[/dim]")
    if "git.diff" in files:
        console.print("[dim]uncommitted changes at the time (git diff HEAD):[/dim]")
        console.out(files["git.diff"].decode("utf-8", errors="replace"), highlight=False)


def _doc(version: CodeVersion) -> dict[str, Any]:
    return {
        "hash": version.hash,
        "kind": version.kind,
        "entry": version.entry,
        "files": version.files,
        "git": version.git,
    }


def _diff(
    old: CodeVersion,
    old_files: dict[str, bytes],
    new: CodeVersion,
    new_files: dict[str, bytes],
    a: str,
    b: str,
) -> str:
    """A unified diff of two code versions, file by file (notebooks as their code), and
    of their git commits."""
    from assay.runs.code import as_text

    if old.hash == new.hash:
        return ""
    out: list[str] = []
    old_commit = (old.git or {}).get("commit")
    new_commit = (new.git or {}).get("commit")
    if old_commit != new_commit:
        out.append(f"# git commit: {old_commit or '-'} -> {new_commit or '-'}\n")
    # The entry files are compared with each other even when their names differ (a
    # notebook renamed between runs is still the notebook).
    pairs: list[tuple[str | None, str | None]] = [(old.entry, new.entry)]
    rest = sorted((set(old_files) | set(new_files)) - {old.entry, new.entry})
    pairs += [(n if n in old_files else None, n if n in new_files else None) for n in rest]
    for left, right in pairs:
        before = as_text(left, old_files[left]) if left in old_files else ""
        after = as_text(right, new_files[right]) if right in new_files else ""
        if before == after:
            continue
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{a}/{left}" if left else "/dev/null",
            tofile=f"b/{b}/{right}" if right else "/dev/null",
        )
        out.extend(line if line.endswith("\n") else line + "\n" for line in lines)
    return "".join(out)


def _write(out: Path, files: dict[str, bytes]) -> None:
    from assay.errors import ConflictError
    from assay.store.paths import safe_join

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConflictError(f"{out} exists and is not empty; pick a new folder.")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = safe_join(out, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
