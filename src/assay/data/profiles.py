"""What a profile of a table says, as stored and shown: plain frozen dataclasses.

Reading a stored profile (`assay data profile` of a version profiled before, the
dashboard, `--remote`) needs only these, not pandas; making one is
`assay.data.tabular`. Each has a JSON-ready `to_dict()` (every float finite or None)
and `from_dict()` that reverses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from assay.errors import InvalidArgumentError

ColumnType = Literal["integer", "float", "boolean", "datetime", "categorical", "text", "empty"]
COLUMN_TYPES: tuple[ColumnType, ...] = get_args(ColumnType)

# Bumped when a profile of the same bytes would come out differently; a stored profile of
# an older format is made again when next read.
PROFILE_FORMAT = 2


@dataclass(frozen=True)
class Histogram:
    """Counts of a numeric column's finite values in equal-width bins.

    `edges` has one more entry than `counts`; the last bin includes its right edge.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` reverses it."""
        return {"edges": list(self.edges), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Histogram:
        """Rebuild from `to_dict()` output."""
        return cls(
            edges=tuple(float(e) for e in d["edges"]), counts=tuple(int(c) for c in d["counts"])
        )


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` reverses it exactly."""
        return {
            "name": self.name,
            "type": self.type,
            "missing": self.missing,
            "missing_share": self.missing_share,
            "distinct": self.distinct,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "quantiles": dict(self.quantiles),
            "top": [[value, count] for value, count in self.top],
            "histogram": None if self.histogram is None else self.histogram.to_dict(),
            "numeric_share": self.numeric_share,
            "odd": [[value, count] for value, count in self.odd],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnProfile:
        """Rebuild from `to_dict()` output."""
        hist = d.get("histogram")
        return cls(
            name=str(d["name"]),
            type=_column_type(d["type"]),
            missing=int(d["missing"]),
            missing_share=float(d["missing_share"]),
            distinct=int(d["distinct"]),
            min=_opt_float(d.get("min")),
            max=_opt_float(d.get("max")),
            mean=_opt_float(d.get("mean")),
            std=_opt_float(d.get("std")),
            quantiles={str(k): float(v) for k, v in (d.get("quantiles") or {}).items()},
            top=tuple((str(v), int(c)) for v, c in d.get("top") or ()),
            histogram=None if hist is None else Histogram.from_dict(hist),
            numeric_share=_opt_float(d.get("numeric_share")),
            odd=tuple((str(v), int(c)) for v, c in d.get("odd") or ()),
        )


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` reverses it exactly."""
        return {
            "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns],
            "error": self.error,
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "warnings": list(self.warnings),
            "format": self.format,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableProfile:
        """Rebuild from `to_dict()` output (or an older format's, which has no `format`)."""
        return cls(
            rows=int(d["rows"]),
            columns=tuple(ColumnProfile.from_dict(c) for c in d["columns"]),
            error=None if d.get("error") is None else str(d["error"]),
            delimiter=None if d.get("delimiter") is None else str(d["delimiter"]),
            encoding=None if d.get("encoding") is None else str(d["encoding"]),
            warnings=tuple(str(w) for w in d.get("warnings") or ()),
            format=int(d.get("format") or 1),
        )


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _column_type(x: Any) -> ColumnType:
    if x not in COLUMN_TYPES:
        raise InvalidArgumentError(
            f"Unknown column type {x!r} in a stored profile; expected one of "
            f"{', '.join(COLUMN_TYPES)}. The profile was not written by this version of Assay.",
        )
    return cast(ColumnType, x)
