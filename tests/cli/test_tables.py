"""The one-pass table draws exactly what Rich's own layout draws, styles included."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from rich.console import Console
from rich.table import Table as RichTable

from assay.cli.tables import Table


def _list(t: type[RichTable]) -> RichTable:
    table = t("run", "name", "status", "m0", box=None, header_style="bold")
    table.add_row("abc", "bench-1", "[green]succeeded[/green]", "1,000")
    table.add_row("abcdef", "x", "failed", "-")
    return table


def _grid(t: type[RichTable]) -> RichTable:
    grid = t.grid(padding=(0, 2))
    grid.add_row("[dim]key[/dim]", "value here")
    grid.add_row("[dim]a longer key[/dim]", "v")
    return grid


def _wide_chars_and_right_justified(t: type[RichTable]) -> RichTable:
    table = t("a", "b", box=None, header_style="bold")
    table.add_column("n", justify="right", style="cyan")
    table.add_row("1", "2", "3")
    table.add_row("héllo wörld 日本", "", "12345")
    return table


def _render(table: RichTable, color: bool) -> str:
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=100,
        force_terminal=color,
        color_system="truecolor" if color else None,
        highlight=False,
        soft_wrap=True,
    )
    console.print(table)
    return buf.getvalue()


@pytest.mark.parametrize("build", [_list, _grid, _wide_chars_and_right_justified])
@pytest.mark.parametrize("color", [False, True])
def test_the_one_pass_table_draws_what_rich_draws(
    build: Callable[[type[RichTable]], RichTable], color: bool
) -> None:
    ours = build(Table)
    assert isinstance(ours, Table)
    console = Console(file=io.StringIO(), width=100)
    assert ours._one_pass(console, console.options) is not None  # the fast path was taken
    assert _render(ours, color) == _render(build(RichTable), color)


def test_a_table_wider_than_the_terminal_or_multi_line_is_left_to_rich() -> None:
    console = Console(file=io.StringIO(), width=60)
    wide = Table("a", "b", box=None)
    wide.add_row("x" * 50, "y" * 30)
    multi = Table("a", box=None)
    multi.add_row("one\ntwo")
    titled = Table("a", box=None, title="t")
    titled.add_row("x")
    for table in (wide, multi, titled):
        assert table._one_pass(console, console.options) is None
    assert _render(wide, False) == _render(_copy(wide), False)


def _copy(table: Table) -> RichTable:
    out = RichTable(*(str(c.header) for c in table.columns), box=None)
    for row in zip(*(c._cells for c in table.columns), strict=True):
        out.add_row(*row)
    return out
