"""Rich's `Table`, drawn in one pass when nothing in it needs Rich's layout engine.

A list command prints a table of short, single-line cells that fits the terminal, and
Rich lays out every cell as a padded renderable of its own: for `assay runs list` (50
rows, 9 columns) that took longer than the query. When every cell is one line and the
widest row fits, this draws the same characters and styles directly; any other table
(titles, boxes, wrapping, fixed widths, row styles) is left to Rich.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich import table as rich_table
from rich.segment import Segment
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult


class Table(rich_table.Table):
    """A `rich.table.Table` with a fast path for plain, single-line tables."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = self._one_pass(console, options)
        if lines is None:
            yield from super().__rich_console__(console, options)
        else:
            yield from lines

    def _simple(self) -> bool:
        top, _, bottom, _ = self.padding
        return (
            self.box is None
            and not (self.title or self.caption or self.show_footer or self.show_lines)
            and not (self.expand or self.width or self.min_width or self.row_styles)
            and top == 0
            and bottom == 0
            and self.style in (None, "", "none")
            and all(row.style is None and not row.end_section for row in self.rows)
            and all(
                c.width is None
                and c.min_width is None
                and c.max_width is None
                and c.ratio is None
                and c.justify in ("left", "right", "default")
                for c in self.columns
            )
        )

    def _one_pass(self, console: Console, options: ConsoleOptions) -> list[Segment] | None:
        if not self.columns or not self._simple():
            return None
        _, right, _, left = self.padding
        count = len(self.columns)
        get_style = console.get_style
        header_style = get_style(self.header_style or "")
        columns: list[tuple[list[Text], int, int, int]] = []
        for i, column in enumerate(self.columns):
            raw = [column.header, *column.cells] if self.show_header else list(column.cells)
            found = [self._text(console, options, c) for c in raw]
            cells = [c for c in found if c is not None and "\n" not in c.plain]
            if len(cells) < len(found):
                return None
            pad_left = left if i == 0 or not self.collapse_padding else max(0, left - right)
            pad_right = right
            if not self.pad_edge:
                pad_left = 0 if i == 0 else pad_left
                pad_right = 0 if i == count - 1 else pad_right
            width = max((c.cell_len for c in cells), default=0)
            columns.append((cells, width, pad_left, pad_right))
        if sum(w + pl + pr for _, w, pl, pr in columns) > options.max_width:
            return None
        out: list[Segment] = []
        rows = self.row_count + (1 if self.show_header else 0)
        for r in range(rows):
            header = self.show_header and r == 0
            for column, (cells, width, pad_left, pad_right) in zip(
                self.columns, columns, strict=True
            ):
                style = get_style(column.style or "")
                if header:
                    style = header_style + get_style(column.header_style or "")
                text = cells[r]
                gap = width - text.cell_len
                if gap:
                    text = text.copy()
                    if column.justify == "right":
                        text.pad_left(gap)
                    else:
                        text.pad_right(gap)
                if pad_left:
                    out.append(Segment(" " * pad_left, style))
                out.extend(_styled(text.render(console), style))
                if pad_right:
                    out.append(Segment(" " * pad_right, style))
            out.append(Segment.line())
        return out

    def _text(self, console: Console, options: ConsoleOptions, cell: object) -> Text | None:
        if isinstance(cell, Text):
            return cell
        if isinstance(cell, str):
            return console.render_str(
                cell, highlight=self.highlight, markup=options.markup, emoji=True
            )
        return None  # another renderable: Rich lays it out


def _styled(segments: Iterable[Segment], style: object) -> Iterable[Segment]:
    if not style:
        return segments
    return Segment.apply_style(segments, style)  # type: ignore[arg-type]


__all__ = ["Table"]
