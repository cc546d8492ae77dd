"""Tables in a dataset: read them, profile their columns, and diff two versions.

Pure functions over pandas frames; nothing here touches the metadata store or the
object store. Profiles and diffs are frozen dataclasses with a JSON-ready `to_dict()`
(every float finite or None) so the repository can store them as they are.
"""

from __future__ import annotations

import io
import math
import os
import pathlib
from dataclasses import dataclass, field
from typing import IO, Any, Literal, cast, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes

from assay.data.entities import TABULAR_SUFFIXES
from assay.errors import InvalidArgumentError

ColumnType = Literal["integer", "float", "boolean", "datetime", "categorical", "text"]
COLUMN_TYPES: tuple[ColumnType, ...] = get_args(ColumnType)

QUANTILES: dict[str, float] = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
HISTOGRAM_BINS = 10
TOP_VALUES = 5
# A string column with at most this many distinct values (or 5% of the rows, whichever
# is more) is a category rather than free text.
CATEGORICAL_MAX_DISTINCT = 20
CATEGORICAL_MAX_SHARE = 0.05
DIFF_STATS = ("mean", "std", "min", "max", "missing_share", "distinct")
# Stats closer than this (relative) count as unchanged, so float noise is not a shift.
SHIFT_TOLERANCE = 1e-9

_FORMATS = {".csv": "CSV", ".tsv": "TSV", ".parquet": "Parquet", ".pq": "Parquet"}
_REASON_MAX_CHARS = 200


def read_table(source: bytes | pathlib.Path, name: str) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet table from bytes or a path; `name`'s suffix picks the format.

    Columns get pandas' default type inference. The index is a plain `RangeIndex`.

    Raises:
        InvalidArgumentError: `name` has no tabular suffix, or the content cannot be
            read in that format (malformed, empty, not UTF-8, truncated).
        OSError: `source` is a path that cannot be opened.
    """
    suffix = os.path.splitext(name)[1].lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        known = ", ".join(sorted(TABULAR_SUFFIXES))
        raise InvalidArgumentError(
            f"Cannot read {name!r} as a table: its suffix is not one of {known}. "
            "Rename it with one of those suffixes.",
            name=name,
        )
    if isinstance(source, pathlib.Path):
        # Opened here so a missing file is an OSError, not a parse error.
        with source.open("rb") as fh:
            return _read(fh, name, fmt)
    return _read(io.BytesIO(source), name, fmt)


def _read(fh: IO[bytes], name: str, fmt: str) -> pd.DataFrame:
    try:
        if fmt == "Parquet":
            df = pd.read_parquet(fh)
        else:
            # low_memory=False: infer each column's type from all of it at once; chunked
            # inference can give one column mixed types and a DtypeWarning.
            df = pd.read_csv(fh, sep="\t" if fmt == "TSV" else ",", low_memory=False)
    except (ValueError, OSError) as exc:
        # pandas' parse errors, UnicodeDecodeError and pyarrow's ArrowInvalid are all
        # ValueErrors; a truncated Parquet footer can surface as an OSError.
        raise _unreadable(name, fmt, _short_reason(exc)) from exc
    default = pd.RangeIndex(len(df))
    if fmt != "Parquet" and not df.index.equals(default):
        # pandas silently turns the first fields into the index when every row has more
        # fields than the header has names; that is a malformed file, not a table.
        raise _unreadable(name, fmt, "its rows have more fields than its header has names")
    named = any(n is not None for n in df.index.names)
    if named or not isinstance(df.index, pd.RangeIndex):
        # Parquet written by pandas can carry an index (say, `id`); it is data, so it
        # becomes columns again and rows are numbered by position.
        df = df.reset_index()
    elif not df.index.equals(default):
        df = df.reset_index(drop=True)
    return df


def _unreadable(name: str, fmt: str, reason: str) -> InvalidArgumentError:
    hint = {
        "CSV": "Check that it is comma-separated UTF-8 text with one header row.",
        "TSV": "Check that it is tab-separated UTF-8 text with one header row.",
        "Parquet": "Check that it is a complete Parquet file, not truncated or another format.",
    }[fmt]
    return InvalidArgumentError(f"Cannot read {name!r} as {fmt}: {reason}. {hint}", name=name)


def _short_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    if len(reason) > _REASON_MAX_CHARS:
        reason = reason[: _REASON_MAX_CHARS - 3] + "..."
    return reason.rstrip(".")


# --- profiles -------------------------------------------------------------------------


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

    Numeric stats (`min` to `histogram`) are set for integer and float columns only and
    are computed over finite values: JSON has no infinity, and one would swamp the mean.
    `top` holds the most common values, as text, for categorical, text and boolean columns.
    `missing` counts null values (NaN, None, NaT, NA).
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
        )


@dataclass(frozen=True)
class TableProfile:
    """Row count and per-column profiles of one table, columns in table order."""

    rows: int
    columns: tuple[ColumnProfile, ...]

    def column(self, name: str) -> ColumnProfile | None:
        """The profile of the column called `name`, or None if there is none."""
        return next((c for c in self.columns if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` reverses it exactly."""
        return {"rows": self.rows, "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableProfile:
        """Rebuild from `to_dict()` output."""
        return cls(
            rows=int(d["rows"]),
            columns=tuple(ColumnProfile.from_dict(c) for c in d["columns"]),
        )


def profile_table(df: pd.DataFrame) -> TableProfile:
    """Profile every column of `df`: type, missing values, distinct count and stats.

    Vectorised: one sort per numeric column and one value count per other column.
    """
    rows = len(df)
    columns = tuple(
        _profile_column(str(name), df.iloc[:, i], rows) for i, name in enumerate(df.columns)
    )
    return TableProfile(rows=rows, columns=columns)


def infer_column_type(s: pd.Series[Any]) -> ColumnType:
    """The profile type of a column: from its dtype, or its values for object columns.

    A float column stays "float" even when every value is whole, so the type follows
    what pandas read rather than what happens to be in this version of the data.
    """
    kind = _dtype_kind(s)
    if kind is not None:
        return kind
    return _string_type(int(s.nunique(dropna=True)), len(s))


def _dtype_kind(s: pd.Series[Any]) -> ColumnType | None:
    """The type a column's dtype (or, for object columns, its values) settles; None for
    string-like columns, which are categorical or text by their number of distinct values.
    """
    dtype = s.dtype
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_integer_dtype(dtype):
        return "integer"
    if ptypes.is_float_dtype(dtype):
        return "float"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if ptypes.is_object_dtype(dtype):
        inferred = ptypes.infer_dtype(s, skipna=True)
        if inferred == "boolean":
            return "boolean"  # CSV booleans with gaps: an object column of True/False/NaN
        if inferred in ("datetime", "datetime64", "date"):
            return "datetime"  # e.g. Parquet date32 columns, read as datetime.date objects
    return None


def _string_type(distinct: int, rows: int) -> ColumnType:
    limit = max(CATEGORICAL_MAX_DISTINCT, CATEGORICAL_MAX_SHARE * rows)
    return "categorical" if distinct <= limit else "text"


def _profile_column(name: str, s: pd.Series[Any], rows: int) -> ColumnProfile:
    missing = int(s.isna().sum())
    share = missing / rows if rows else 0.0
    kind = _dtype_kind(s)
    if kind in ("integer", "float"):
        return _numeric_profile(name, s, missing, share)
    if kind == "datetime":
        return ColumnProfile(name, kind, missing, share, distinct=int(s.nunique(dropna=True)))
    # One hash pass gives both the distinct count and the most common values.
    counts = s.value_counts(dropna=True)
    # Categorical dtypes also list their unused categories, with a count of 0.
    counts = counts[counts.to_numpy() > 0]
    distinct = len(counts)
    if kind is None:
        kind = _string_type(distinct, rows)
    top = tuple((str(v), int(c)) for v, c in counts.head(TOP_VALUES).items())
    return ColumnProfile(name, kind, missing, share, distinct=distinct, top=top)


def _numeric_profile(name: str, s: pd.Series[Any], missing: int, share: float) -> ColumnProfile:
    integer = ptypes.is_integer_dtype(s.dtype)
    present = s.dropna()
    # Distinct values are counted on the integers themselves: float64 cannot tell apart
    # integers beyond 2**53.
    # (Each integer dtype keeps its own numpy type: uint64 does not fit in int64.)
    raw = present.to_numpy() if integer else present.to_numpy(dtype=np.float64)
    ordered = np.sort(raw)
    distinct = int(np.count_nonzero(ordered[1:] != ordered[:-1]) + 1) if len(ordered) else 0
    values = ordered.astype(np.float64, copy=False)
    if not integer:
        # Sorted, so the infinities sit at the two ends.
        lo = int(np.searchsorted(values, -np.inf, side="right"))
        hi = int(np.searchsorted(values, np.inf, side="left"))
        values = values[lo:hi]
    kind: ColumnType = "integer" if integer else "float"
    if not len(values):
        return ColumnProfile(name, kind, missing, share, distinct=distinct)
    low, high = float(values[0]), float(values[-1])
    quantiles = _quantiles(values)
    return ColumnProfile(
        name,
        kind,
        missing,
        share,
        distinct=distinct,
        min=_finite(low),
        max=_finite(high),
        mean=_finite(float(np.mean(values))),
        std=_finite(float(np.std(values, ddof=1))) if len(values) > 1 else None,
        quantiles=quantiles,
        histogram=_histogram(values, low, high),
    )


def _quantiles(ordered: npt.NDArray[np.float64]) -> dict[str, float]:
    # Linear interpolation on the already sorted values, as numpy's default method does,
    # without numpy re-partitioning the array for each quantile.
    n = len(ordered)
    out: dict[str, float] = {}
    for key, q in QUANTILES.items():
        pos = q * (n - 1)
        below = math.floor(pos)
        above = min(below + 1, n - 1)
        frac = pos - below
        a, b = float(ordered[below]), float(ordered[above])
        value = a + (b - a) * frac if frac < 0.5 else b - (b - a) * (1 - frac)
        out[key] = value if math.isfinite(value) else (a if frac < 0.5 else b)
    return out


def _histogram(values: npt.NDArray[np.float64], low: float, high: float) -> Histogram | None:
    if not math.isfinite(high - low):
        return None  # the span overflows float64; equal-width bins are meaningless
    try:
        counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high))
    except ValueError:
        return None  # the span is too narrow for float64 to split, as for integers near 2**62
    return Histogram(edges=tuple(float(e) for e in edges), counts=tuple(int(c) for c in counts))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _column_type(x: Any) -> ColumnType:
    if x not in COLUMN_TYPES:
        raise InvalidArgumentError(
            f"Unknown column type {x!r} in a stored profile; expected one of "
            f"{', '.join(COLUMN_TYPES)}. The profile was not written by this version of Assay.",
        )
    return cast(ColumnType, x)


# --- diffs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatShift:
    """One summary statistic of a column that changed between two versions."""

    column: str
    stat: str
    old: float | None
    new: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` reverses it exactly."""
        return {"column": self.column, "stat": self.stat, "old": self.old, "new": self.new}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StatShift:
        """Rebuild from `to_dict()` output."""
        return cls(str(d["column"]), str(d["stat"]), _opt_float(d["old"]), _opt_float(d["new"]))


@dataclass(frozen=True)
class TableDiff:
    """What changed between two versions of a table.

    `rows_added` and `rows_removed` compare whole rows over the columns both versions
    share, as multisets: a row present twice before and three times after is one added.
    `columns_retyped` holds (name, old type, new type).
    """

    rows_old: int
    rows_new: int
    rows_added: int
    rows_removed: int
    columns_added: tuple[str, ...]
    columns_removed: tuple[str, ...]
    columns_retyped: tuple[tuple[str, str, str], ...]
    stat_shifts: tuple[StatShift, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` reverses it exactly."""
        return {
            "rows_old": self.rows_old,
            "rows_new": self.rows_new,
            "rows_added": self.rows_added,
            "rows_removed": self.rows_removed,
            "columns_added": list(self.columns_added),
            "columns_removed": list(self.columns_removed),
            "columns_retyped": [list(r) for r in self.columns_retyped],
            "stat_shifts": [s.to_dict() for s in self.stat_shifts],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableDiff:
        """Rebuild from `to_dict()` output."""
        return cls(
            rows_old=int(d["rows_old"]),
            rows_new=int(d["rows_new"]),
            rows_added=int(d["rows_added"]),
            rows_removed=int(d["rows_removed"]),
            columns_added=tuple(str(c) for c in d["columns_added"]),
            columns_removed=tuple(str(c) for c in d["columns_removed"]),
            columns_retyped=tuple((str(n), str(o), str(t)) for n, o, t in d["columns_retyped"]),
            stat_shifts=tuple(StatShift.from_dict(s) for s in d["stat_shifts"]),
        )


def diff_tables(
    old: pd.DataFrame, new: pd.DataFrame, old_profile: TableProfile, new_profile: TableProfile
) -> TableDiff:
    """Compare two versions of a table: rows, columns, column types and summary stats.

    The profiles must be `profile_table` of `old` and `new`; they are passed in because
    the caller usually has them stored already.
    """
    old_names = [str(c) for c in old.columns]
    new_names = [str(c) for c in new.columns]
    new_set, old_set = set(new_names), set(old_names)
    common = [c for c in dict.fromkeys(old_names) if c in new_set]
    added, removed = _row_changes(old, new, common)

    retyped: list[tuple[str, str, str]] = []
    shifts: list[StatShift] = []
    for name in common:
        before, after = old_profile.column(name), new_profile.column(name)
        if before is None or after is None:
            continue
        if before.type != after.type:
            retyped.append((name, before.type, after.type))
        for stat in DIFF_STATS:
            a, b = _stat(before, stat), _stat(after, stat)
            if _changed(a, b):
                shifts.append(StatShift(name, stat, a, b))

    return TableDiff(
        rows_old=len(old),
        rows_new=len(new),
        rows_added=added,
        rows_removed=removed,
        columns_added=tuple(c for c in dict.fromkeys(new_names) if c not in old_set),
        columns_removed=tuple(c for c in dict.fromkeys(old_names) if c not in new_set),
        columns_retyped=tuple(retyped),
        stat_shifts=tuple(shifts),
    )


def _row_changes(old: pd.DataFrame, new: pd.DataFrame, common: list[str]) -> tuple[int, int]:
    if not common:
        # Over no columns every row is the same empty row; only the counts differ.
        return max(len(new) - len(old), 0), max(len(old) - len(new), 0)
    old_rows, new_rows = _comparable(old, new, common)
    try:
        old_hashes, new_hashes = _row_hashes(old_rows), _row_hashes(new_rows)
    except TypeError:
        # Unhashable cells (Parquet lists and structs arrive as arrays and dicts) are
        # compared by their text instead.
        old_hashes, new_hashes = _row_hashes(_as_text(old_rows)), _row_hashes(_as_text(new_rows))
    old_hashes, old_counts = np.unique(old_hashes, return_counts=True)
    new_hashes, new_counts = np.unique(new_hashes, return_counts=True)
    # Rows in both, as a multiset: for each row hash in both, the lesser of its counts.
    # Sorted arrays and searchsorted rather than aligning two value_counts Series,
    # which costs a hash join over a million-entry index.
    shared = 0
    if len(old_hashes) and len(new_hashes):
        at = np.minimum(np.searchsorted(old_hashes, new_hashes), len(old_hashes) - 1)
        both = old_hashes[at] == new_hashes
        shared = int(np.minimum(new_counts[both], old_counts[at[both]]).sum())
    return len(new) - shared, len(old) - shared


def _row_hashes(rows: pd.DataFrame) -> npt.NDArray[np.uint64]:
    return np.asarray(pd.util.hash_pandas_object(rows, index=False), dtype=np.uint64)


def _as_text(rows: pd.DataFrame) -> pd.DataFrame:
    objects = [c for c in rows.columns if ptypes.is_object_dtype(rows[c].dtype)]
    return rows.astype({c: str for c in objects})


def _comparable(
    old: pd.DataFrame, new: pd.DataFrame, common: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The common columns of both, with values of the same meaning given the same dtype.

    Hashes follow the dtype: 1 as int64 and 1.0 as float64 hash differently, and an
    integer column with one new gap is read back from CSV as float.
    """
    old_rows, new_rows = _by_name(old).loc[:, common], _by_name(new).loc[:, common]
    for name in common:
        a, b = old_rows[name], new_rows[name]
        if a.dtype == b.dtype:
            continue
        if _is_number(a) and _is_number(b):
            old_rows[name] = a.astype(np.float64)
            new_rows[name] = b.astype(np.float64)
        else:
            old_rows[name] = a.astype(object)
            new_rows[name] = b.astype(object)
    return old_rows, new_rows


def _by_name(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with string column names, keeping the first of any duplicated name."""
    named = df.set_axis([str(c) for c in df.columns], axis=1)
    return named.loc[:, ~named.columns.duplicated()]


def _is_number(s: pd.Series[Any]) -> bool:
    return ptypes.is_numeric_dtype(s.dtype) and not ptypes.is_bool_dtype(s.dtype)


def _stat(p: ColumnProfile, stat: str) -> float | None:
    value = getattr(p, stat)
    return None if value is None else float(value)


def _changed(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is not b
    return abs(b - a) > SHIFT_TOLERANCE * max(abs(a), abs(b))
