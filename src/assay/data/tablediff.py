"""Two versions of a table compared: rows added, removed and changed; columns; statistics.

Rows are paired before they are compared. By a key column when there is one (given,
or a unique column named like `id`): then a row whose key is in both versions is the
same row, changed or not. Without one, rows equal in every shared column are paired
first, and the rest on the shared columns less the fewest that make rows pair one to
one (a column rescaled in every row leaves the rows matched on the others, changed in
that column, rather than all removed and all added).

Every comparison goes through one 64-bit hash per cell (`pd.util.hash_pandas_object`,
per column), combined per row, so a million-row table is compared with numpy.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes

from assay.data.profiles import ColumnProfile, TableProfile
from assay.errors import InvalidArgumentError

DIFF_STATS = ("mean", "std", "min", "max", "missing_share", "distinct")
# Stats closer than this (relative) count as unchanged, so float noise is not a shift.
SHIFT_TOLERANCE = 1e-9
EXAMPLES = 5
# Pairing rows on the shared columns less a few: at most this many left out, and only
# where the tries stay cheap (each hashes the unpaired rows once per candidate column).
MAX_LEFT_OUT = 3
MAX_COLUMNS_TO_TRY = 64
MAX_ROWS_TO_TRY = 200_000
_VALUE_CHARS = 60
_KEY_NAME = re.compile(r"^(id|key|uuid|guid)$|[_\s.-]id$|[a-z]Id$|[a-z]ID$", re.IGNORECASE)

U64 = npt.NDArray[np.uint64]
Idx = npt.NDArray[np.intp]


@dataclass(frozen=True)
class StatShift:
    """One summary statistic of a column that changed between two versions."""

    column: str
    stat: str
    old: float | None
    new: float | None


@dataclass(frozen=True)
class RowChange:
    """A changed cell, as an example: its row (`id=7`, or `row 12 (was 14)`: its 0-based
    positions in the new and old versions), column, and old and new values as text."""

    row: str
    column: str
    old: str
    new: str


@dataclass(frozen=True)
class TableDiff:
    """What changed between two versions of a table.

    Every old row is unchanged, changed or removed, and every new row unchanged,
    changed or added: `rows_old = rows_unchanged + rows_changed + rows_removed`.
    `match` says how rows were paired: "key" (by the column `key`), "columns" (equal
    rows first, the rest on the shared columns less `ignored`), or "exact" (only rows
    equal in every shared column; duplicates pair as a multiset). `changed_columns`
    holds (column, rows in which it changed), most first; `examples` a few changed
    cells, `added_rows` and `removed_rows` a few rows by key or position.
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
    rows_changed: int = 0
    rows_unchanged: int = 0
    match: str = "exact"
    key: str | None = None
    ignored: tuple[str, ...] = ()
    changed_columns: tuple[tuple[str, int], ...] = ()
    examples: tuple[RowChange, ...] = ()
    added_rows: tuple[str, ...] = ()
    removed_rows: tuple[str, ...] = ()


def diff_tables(
    old: pd.DataFrame,
    new: pd.DataFrame,
    old_profile: TableProfile,
    new_profile: TableProfile,
    *,
    key: str | None = None,
) -> TableDiff:
    """Compare two versions of a table: rows, columns, column types and summary stats.

    The profiles must be `profile_table` of `old` and `new`; they are passed in because
    the caller usually has them stored already. Rows are paired by `key` when given,
    else by a unique column named like an id when both versions have one, else by their
    values (see the module's docstring).

    Raises:
        InvalidArgumentError: `key` is not a column of both versions, or has missing
            or repeated values in one of them.
    """
    old_names = [str(c) for c in old.columns]
    new_names = [str(c) for c in new.columns]
    new_set, old_set = set(new_names), set(old_names)
    common = [c for c in dict.fromkeys(old_names) if c in new_set]
    if key is not None and key not in common:
        where = "either version" if key not in old_set and key not in new_set else (
            "the old version" if key not in old_set else "the new version"
        )  # fmt: skip
        raise InvalidArgumentError(
            f"Cannot match rows by {key!r}: {where} has no such column. "
            f"Shared columns: {', '.join(map(repr, common[:10])) or 'none'}."
        )
    rows = _pair_rows(old, new, common, key)

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
        columns_added=tuple(c for c in dict.fromkeys(new_names) if c not in old_set),
        columns_removed=tuple(c for c in dict.fromkeys(old_names) if c not in new_set),
        columns_retyped=tuple(retyped),
        stat_shifts=tuple(shifts),
        **rows,
    )


# --- pairing rows ---------------------------------------------------------------------


def _pair_rows(
    old: pd.DataFrame, new: pd.DataFrame, common: list[str], key: str | None
) -> dict[str, Any]:
    """The TableDiff fields about rows: counts, how they were paired, and examples."""
    if not common:
        # Over no columns every row is the same empty row; only the counts differ.
        return {
            "rows_added": max(len(new) - len(old), 0),
            "rows_removed": max(len(old) - len(new), 0),
            "rows_unchanged": min(len(old), len(new)),
        }
    old_rows, new_rows = _comparable(old, new, common)
    a = {c: _cell_hashes(old_rows[c]) for c in common}
    b = {c: _cell_hashes(new_rows[c]) for c in common}
    if key is not None:
        _check_key(key, old_rows[key], a[key], "old")
        _check_key(key, new_rows[key], b[key], "new")
    else:
        key = _find_key(common, old_rows, new_rows, a, b)
    ignored: tuple[str, ...] = ()
    if key is not None:
        ia, ib = _intersect(a[key], b[key])
        match = "key"
    else:
        ia, ib = _intersect(*(_ranked(_row_hash(h, common)) for h in (a, b)))
        match, ignored = "exact", ()
        more = _pair_on_fewer_columns(a, b, common, ia, ib)
        if more is not None:
            ignored, ja, jb = more
            ia, ib = np.concatenate([ia, ja]), np.concatenate([ib, jb])
            match = "columns"

    in_order = np.argsort(ib)  # examples in the new version's row order (ib is unique)
    ia, ib = ia[in_order], ib[in_order]
    changed = np.zeros(len(ia), dtype=bool)
    by_column: list[tuple[str, int]] = []
    per_column: dict[str, npt.NDArray[np.bool_]] = {}
    for c in common:
        differs = a[c][ia] != b[c][ib]
        if differs.any():
            per_column[c] = differs
            by_column.append((c, int(differs.sum())))
            changed |= differs
    by_column.sort(key=lambda item: -item[1])

    # Values are shown as they were read, not as made comparable (625, not 625.0).
    shown_old, shown_new = _by_name(old), _by_name(new)

    def label(frame: pd.DataFrame, i: int, was: int | None = None) -> str:
        if key is not None:
            return f"{key}={_text(frame[key].iat[i])}"
        return f"row {i}" if was in (None, i) else f"row {i} (was {was})"

    examples: list[RowChange] = []
    for at in np.flatnonzero(changed)[:EXAMPLES]:
        column = next(c for c, _ in by_column if per_column[c][at])
        examples.append(
            RowChange(
                label(shown_new, int(ib[at]), was=int(ia[at])),
                column,
                _text(shown_old[column].iat[int(ia[at])]),
                _text(shown_new[column].iat[int(ib[at])]),
            )
        )
    added = np.setdiff1d(np.arange(len(new)), ib, assume_unique=True)
    removed = np.setdiff1d(np.arange(len(old)), ia, assume_unique=True)
    n_changed = int(changed.sum())
    return {
        "rows_added": len(added),
        "rows_removed": len(removed),
        "rows_changed": n_changed,
        "rows_unchanged": len(ia) - n_changed,
        "match": match,
        "key": key,
        "ignored": ignored,
        "changed_columns": tuple(by_column),
        "examples": tuple(examples),
        "added_rows": tuple(label(shown_new, int(i)) for i in added[:EXAMPLES]),
        "removed_rows": tuple(label(shown_old, int(i)) for i in removed[:EXAMPLES]),
    }


def _check_key(key: str, s: pd.Series[Any], hashes: U64, which: str) -> None:
    if s.isna().any():
        raise InvalidArgumentError(
            f"Cannot match rows by {key!r}: it is empty in {int(s.isna().sum()):,} row(s) of "
            f"the {which} version. Pick a column with a value in every row."
        )
    repeated = _repeated(hashes)
    if repeated.any():
        first = int(np.flatnonzero(repeated)[0])
        raise InvalidArgumentError(
            f"Cannot match rows by {key!r}: {_text(s.iat[first])!r} appears more than once "
            f"in the {which} version. Pick a column whose values are unique."
        )


def _find_key(
    common: list[str],
    old_rows: pd.DataFrame,
    new_rows: pd.DataFrame,
    a: dict[str, U64],
    b: dict[str, U64],
) -> str | None:
    """A shared column named like an id, of integers or text, unique and never empty in
    both versions; None if there is none."""
    for c in common:
        if not _KEY_NAME.search(c):
            continue
        if not all(_is_key_kind(rows[c]) for rows in (old_rows, new_rows)):
            continue
        if old_rows[c].isna().any() or new_rows[c].isna().any():
            continue
        if not _repeated(a[c]).any() and not _repeated(b[c]).any():
            return c
    return None


def _is_key_kind(s: pd.Series[Any]) -> bool:
    dtype = s.dtype
    integer = ptypes.is_integer_dtype(dtype) and not ptypes.is_bool_dtype(dtype)
    return integer or ptypes.is_object_dtype(dtype) or ptypes.is_string_dtype(dtype)


def _pair_on_fewer_columns(
    a: dict[str, U64], b: dict[str, U64], common: list[str], ia: Idx, ib: Idx
) -> tuple[tuple[str, ...], Idx, Idx] | None:
    """Pair the rows left unpaired on the shared columns less the fewest (at most
    MAX_LEFT_OUT, and at most half of them) that pair the most one to one.

    Returns the columns left out and the new pairs, or None if leaving columns out
    pairs nothing more (or the tries would cost too much).
    """
    n_old, n_new = len(next(iter(a.values()))), len(next(iter(b.values())))
    rest_a = np.setdiff1d(np.arange(n_old), ia, assume_unique=True)
    rest_b = np.setdiff1d(np.arange(n_new), ib, assume_unique=True)
    if not len(rest_a) or not len(rest_b) or len(common) < 2:
        return None
    if len(common) > MAX_COLUMNS_TO_TRY or len(rest_a) + len(rest_b) > MAX_ROWS_TO_TRY:
        return None
    ha = {c: h[rest_a] for c, h in a.items()}
    hb = {c: h[rest_b] for c, h in b.items()}
    left: list[str] = []
    best: tuple[Idx, Idx] | None = None
    most = 0
    while len(left) < min(MAX_LEFT_OUT, len(common) // 2):
        trial: tuple[int, str, Idx, Idx] | None = None
        for c in common:
            if c in left:
                continue
            kept = [x for x in common if x not in left and x != c]
            ja, jb = _intersect(_row_hash(ha, kept), _row_hash(hb, kept), unique_only=True)
            if trial is None or len(ja) > trial[0]:
                trial = (len(ja), c, ja, jb)
        if trial is None or trial[0] <= most:
            break
        most, column, ja, jb = trial
        left.append(column)
        best = (ja, jb)
    if best is None:
        return None
    return tuple(left), rest_a[best[0]], rest_b[best[1]]


def _cell_hashes(s: pd.Series[Any]) -> U64:
    try:
        hashed = pd.util.hash_pandas_object(s, index=False)
    except TypeError:
        # Unhashable cells (Parquet lists and structs arrive as arrays and dicts) are
        # compared by their text instead.
        hashed = pd.util.hash_pandas_object(s.astype(str), index=False)
    return np.asarray(hashed, dtype=np.uint64)


def _row_hash(hashes: dict[str, U64], columns: list[str]) -> U64:
    """One hash per row over `columns`: each column's cell hashes times an odd number of
    its own, summed (mod 2**64), so equal values in different columns do not cancel."""
    out = np.zeros(len(next(iter(hashes.values()))), dtype=np.uint64)
    for c in columns:
        out += hashes[c] * _multiplier(c)
    return out


@functools.cache
def _multiplier(column: str) -> np.uint64:
    return np.uint64(int(pd.util.hash_array(np.array([column], dtype=object))[0]) | 1)


def _ranked(h: U64) -> U64:
    """Row hashes made unique by each one's occurrence number: the k-th copy of a row in
    one version pairs with the k-th copy in the other (rows as a multiset)."""
    n = len(h)
    order = np.argsort(h, kind="stable")
    ordered = h[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.empty(n, dtype=np.uint64)
    rank[order] = (np.arange(n) - first).astype(np.uint64)
    return h ^ (rank * np.uint64(0x9E3779B97F4A7C15))


def _intersect(a: U64, b: U64, *, unique_only: bool = False) -> tuple[Idx, Idx]:
    """Positions in `a` and `b` of the values both hold, each unique on its side; with
    `unique_only`, values repeated on either side are left out first."""
    pa: Idx = np.flatnonzero(~_repeated(a)) if unique_only else np.arange(len(a))
    pb: Idx = np.flatnonzero(~_repeated(b)) if unique_only else np.arange(len(b))
    _, ia, ib = np.intersect1d(a[pa], b[pb], assume_unique=True, return_indices=True)
    return pa[ia], pb[ib]


def _repeated(h: U64) -> npt.NDArray[np.bool_]:
    """Which values occur more than once. By sorting: numpy's hash-table `unique` is
    several times slower on a million 64-bit hashes."""
    order = np.argsort(h)
    ordered = h[order]
    same = ordered[1:] == ordered[:-1]
    in_order = np.zeros(len(h), dtype=bool)
    in_order[1:] |= same
    in_order[:-1] |= same
    repeated = np.empty(len(h), dtype=bool)
    repeated[order] = in_order
    return repeated


def _text(value: object) -> str:
    """A cell as one short line of text."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "(empty)"
    text = " ".join(str(value).split())
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


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
