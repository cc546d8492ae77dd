"""What a profile of a table says, as stored and shown: plain frozen dataclasses.

Reading a stored profile (`assay data profile` of a version profiled before, the
dashboard, `--remote`) needs only these, not pandas; making one is
`assay.data.tabular`. They are stored and sent as `assay.serialize.dump` makes them
(every float finite or None), and read back with `assay.serialize.load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from assay.serialize import json_shape

ColumnType = Literal["integer", "float", "boolean", "datetime", "categorical", "text", "empty"]
COLUMN_TYPES: tuple[ColumnType, ...] = get_args(ColumnType)

# Bumped when a profile of the same bytes would come out differently; a stored profile of
# an older format is made again when next read.
PROFILE_FORMAT = 2


def _format_1(d: dict[str, Any]) -> dict[str, Any]:
    """A profile stored before formats were numbered is of format 1 (made again when read)."""
    d.setdefault("format", 1)
    return d


@dataclass(frozen=True)
class Histogram:
    """Counts of a numeric column's finite values in equal-width bins.

    `edges` has one more entry than `counts`; the last bin includes its right edge.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class ColumnProfile:
    """Summary statistics of one column.

    Numeric stats (`min` to `histogram`) are set for integer and float columns, and for
    mostly numeric text columns over their numbers; they are computed over finite values:
    JSON has no infinity, and one would swamp the mean. `top` holds the most common
    values, as text, for categorical, text and boolean columns. `missing` counts null
    values (NaN, None, NaT, NA); a column of nothing but those is of type `empty`.
    `numeric_share` is set for a text or categorical column whose values are mostly
    numbers: the share of its present values that are, with the most common of the
    others in `odd` (a column of 65 numbers and 6 "high": 0.92 and (("high", 6),)).
    """

    name: str
    type: ColumnType
    missing: int
    missing_share: float
    distinct: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    # Not hashed (dicts cannot be); equal profiles still hash equal.
    quantiles: dict[str, float] = field(default_factory=dict, hash=False)
    top: tuple[tuple[str, int], ...] = ()
    histogram: Histogram | None = None
    numeric_share: float | None = None
    odd: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class TableProfile:
    """Row count and per-column profiles of one table, columns in table order.

    A file that cannot be read as a table has a profile too: no rows, no columns, and
    `error` saying why (its bytes are versioned all the same). `delimiter` and
    `encoding` say how a CSV or TSV file was read; `warnings` what was odd but readable
    (a column name given twice). `format` is the `PROFILE_FORMAT` it was made with.
    """

    rows: int
    columns: tuple[ColumnProfile, ...]
    error: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    warnings: tuple[str, ...] = ()
    format: int = PROFILE_FORMAT

    @classmethod
    def unreadable(cls, reason: str) -> TableProfile:
        """The profile of a file that is not a readable table, for `reason`."""
        return cls(rows=0, columns=(), error=reason)

    def column(self, name: str) -> ColumnProfile | None:
        """The profile of the (first) column called `name`, or None if there is none."""
        return next((c for c in self.columns if c.name == name), None)

    __get_pydantic_core_schema__ = json_shape(upgrade=_format_1)
