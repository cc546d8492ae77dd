"""Printing: Rich for people, JSON for scripts, plain lines when not on a terminal."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress


def _width(stream: object) -> int | None:
    # Piped into a file or another program, tables keep their full width rather than
    # being cut to an imaginary 80-column terminal.
    isatty = getattr(stream, "isatty", None)
    if os.environ.get("COLUMNS") or (isatty is not None and isatty()):
        return None
    return 200


def _console(stderr: bool) -> dict[str, Any]:
    stream = sys.stderr if stderr else sys.stdout
    return {"stderr": stderr, "highlight": False, "soft_wrap": True, "width": _width(stream)}


console = Console(**_console(stderr=False))
err = Console(**_console(stderr=True))


def rebind() -> None:
    """Bind both consoles to this process's streams and environment again: a warm
    server's child (`assay.cli.warm`) took its client's after they were made. Modules
    that imported `console` or `err` keep the same objects."""
    import rich

    Console.__init__(console, **_console(stderr=False))
    Console.__init__(err, **_console(stderr=True))
    rich._console = None  # rich.get_console()'s, made on first use


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def emit_json(obj: Any, kind: Any = None) -> None:
    """Print `obj` as JSON, entities in the shape the REST API answers with
    (`assay.serialize.dump`); `kind` names its type when it is not the object's own."""
    from assay.serialize import dump

    sys.stdout.write(json.dumps(dump(obj, kind), indent=2) + "\n")


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def when(ts: datetime | None) -> str:
    return ts.astimezone().strftime("%Y-%m-%d %H:%M") if ts else "-"


def fmt_num(x: float | int | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, int) or (float(x).is_integer() and abs(x) < 1e15):
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(counts: list[int] | tuple[int, ...]) -> str:
    """A histogram in one line of block characters."""
    top = max(counts, default=0)
    if top == 0:
        return ""
    return "".join(_BARS[min(7, round(c / top * 7))] if c else " " for c in counts)


@contextlib.contextmanager
def progress(label: str, unit: str = "files") -> Iterator[Callable[[int, int], None]]:
    """A progress callback: a Rich bar on a terminal, a line every few seconds otherwise.

    Nothing is shown for work that finishes within a second.
    """
    start = time.monotonic()
    if err.is_terminal:
        bar: Progress | None = None
        task = None

        def update(done: int, total: int) -> None:
            nonlocal bar, task
            if bar is None:
                if time.monotonic() - start < 0.5 or done >= total:
                    return
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                bar = Progress(
                    TextColumn(label),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn(unit),
                    TimeElapsedColumn(),
                    console=err,
                    transient=True,
                )
                bar.start()
                task = bar.add_task(label, total=total)
            assert task is not None
            bar.update(task, completed=done, total=total)

        try:
            yield update
        finally:
            if bar is not None:
                bar.stop()
    else:
        last = start

        def update(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 2 and now - start >= 1:
                last = now
                err.print(f"{label}: {done}/{total} {unit} ({done * 100 // max(total, 1)}%)")

        yield update


PROGRESS_AFTER_S = 1.0


@contextlib.contextmanager
def status(label: str) -> Iterator[Callable[[str], None]]:
    """A step-by-step status: a spinner on a terminal, one plain line per step otherwise."""
    if err.is_terminal:
        with err.status(label) as spinner:

            def update(message: str) -> None:
                spinner.update(f"{label}: {message}")

            yield update
    else:
        # Plain lines, for a log: only once the work has taken a second (a quick answer,
        # or a quick error, stays the one line it is).
        started = time.monotonic()

        def update(message: str) -> None:
            if time.monotonic() - started >= PROGRESS_AFTER_S:
                err.print(f"{label}: {message}")

        yield update


def warn_if_exposed(name: str, host: str) -> None:
    """Say loudly that an endpoint without authentication listens beyond loopback."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"[yellow]warning:[/yellow] {name} listens on {host}: anyone who can reach this "
            "machine can call it (it has no authentication)."
        )
