"""Profiles of the tables in a dataset: what a person would notice about each column.

Pure functions over pandas frames; nothing here touches the metadata store or the
object store (reading is `assay.data.reading`, diffs `assay.data.tablediff`). The
profiles themselves are `assay.data.profiles`: what reads a stored one needs no pandas.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes

from assay.data.profiles import (
    COLUMN_TYPES,
    PROFILE_FORMAT,
    ColumnProfile,
    ColumnType,
    Histogram,
    TableProfile,
)
from assay.numeric import quantile

__all__ = [
    "COLUMN_TYPES",
    "PROFILE_FORMAT",
    "ColumnProfile",
    "ColumnType",
    "Histogram",
    "TableProfile",
    "infer_column_type",
    "profile_table",
]

QUANTILES: dict[str, float] = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
HISTOGRAM_BINS = 10
TOP_VALUES = 5
# A string column with at most this many distinct values (or 5% of the rows, whichever
# is more) is a category rather than free text.
CATEGORICAL_MAX_DISTINCT = 20
CATEGORICAL_MAX_SHARE = 0.05
# A text column whose values are at least this share numbers is "mostly numeric": its
# profile names the share, the odd values and the numbers' statistics.
MOSTLY_NUMERIC_SHARE = 0.5
# Values are kept to this many characters in a profile: a stored profile stays small
# whatever a cell holds.
VALUE_MAX_CHARS = 100
# Above this many distinct values, a sample of them decides whether a column may be
# mostly numeric before every value is parsed.
_NUMERIC_PROBE = 1000


def profile_table(
    df: pd.DataFrame,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    warnings: tuple[str, ...] = (),
) -> TableProfile:
    """Profile every column of `df`: type, missing values, distinct count and stats.

    Vectorised: one sort per numeric column and one value count per other column.
    `delimiter`, `encoding` and `warnings` (from reading the file) are kept as given.
    """
    rows = len(df)
    columns = tuple(
        _profile_column(str(name), df.iloc[:, i], rows) for i, name in enumerate(df.columns)
    )
    return TableProfile(rows, columns, None, delimiter, encoding, warnings)


def infer_column_type(s: pd.Series[Any]) -> ColumnType:
    """The profile type of a column: from its dtype, or its values for object columns.

    A float column stays "float" even when every value is whole, so the type follows
    what pandas read rather than what happens to be in this version of the data. A
    column without a single value is "empty", whatever its dtype.
    """
    if len(s) and s.isna().all():
        return "empty"
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
    if rows and missing == rows:
        # A column of nothing (pandas reads it as float) has no type to speak of.
        return ColumnProfile(name, "empty", missing, share, distinct=0)
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
    top = tuple((_clip(v), int(c)) for v, c in counts.head(TOP_VALUES).items())
    profile = ColumnProfile(name, kind, missing, share, distinct=distinct, top=top)
    if kind in ("categorical", "text"):
        return _mostly_numeric(profile, counts, rows - missing)
    return profile


def _mostly_numeric(profile: ColumnProfile, counts: pd.Series[Any], present: int) -> ColumnProfile:
    """A string column that is mostly numbers: its share of them, the odd values, and the
    numbers' statistics. Parsed per distinct value, weighted by its count."""
    values = counts.index.to_series()
    if len(values) > _NUMERIC_PROBE:
        probe = pd.to_numeric(values.sample(_NUMERIC_PROBE, random_state=0), errors="coerce")
        if probe.notna().mean() < MOSTLY_NUMERIC_SHARE:
            return profile  # free text: not worth parsing every value
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    is_number = ~np.isnan(numbers)
    weights = counts.to_numpy()
    numeric = int(weights[is_number].sum())
    if not present or numeric == present or numeric / present < MOSTLY_NUMERIC_SHARE:
        return profile
    odd = counts[~is_number].head(TOP_VALUES)
    stats = _numeric_profile(
        profile.name, pd.Series(np.repeat(numbers[is_number], weights[is_number])), 0, 0.0
    )
    return ColumnProfile(
        profile.name,
        profile.type,
        profile.missing,
        profile.missing_share,
        profile.distinct,
        min=stats.min,
        max=stats.max,
        mean=stats.mean,
        std=stats.std,
        quantiles=stats.quantiles,
        top=profile.top,
        histogram=stats.histogram,
        numeric_share=numeric / present,
        odd=tuple((_clip(v), int(c)) for v, c in odd.items()),
    )


def _clip(value: object) -> str:
    text = str(value)
    return text if len(text) <= VALUE_MAX_CHARS else text[: VALUE_MAX_CHARS - 1] + "…"


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
    # On the already sorted values: numpy would re-partition the array for each one.
    values = ordered.tolist()
    return {key: quantile(values, q) for key, q in QUANTILES.items()}


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
