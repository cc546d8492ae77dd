"""Run checks on a table and report: one result per check, with offending rows.

The checks come from a checks file (see `assay.data.checks`). Checks describe values,
not storage: a CSV integer column with one gap is read as floats and still passes
`type: integer`, and a numeric column that pandas read as text because of one bad cell
fails on that cell alone.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes

from assay.data.checks import Checks, CheckType, ColumnChecks

MAX_EXAMPLES = 5
_TYPE_NOUNS: dict[CheckType, str] = {
    "integer": "integers",
    "float": "numbers",
    "number": "numbers",
    "string": "strings",
    "boolean": "booleans",
    "datetime": "datetimes",
}

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one file.

    `column` is None for table-wide checks (`row_count`). `failed_count` is the number
    of offending rows, or 1 for a failed table-wide check. `examples` holds up to five
    offending rows as {"row": 0-based position in the table, "value": JSON-ready value}.
    """

    file: str
    column: str | None
    check: str
    passed: bool
    failed_count: int
    message: str
    examples: tuple[dict[str, object], ...] = ()


@dataclass(frozen=True)
class ValidationReport:
    """Every check result of a validation; `passed` when none failed."""

    passed: bool
    results: tuple[CheckResult, ...]

    @classmethod
    def from_results(cls, results: Iterable[CheckResult]) -> ValidationReport:
        """A report over `results`, passed when every one of them passed."""
        kept = tuple(results)
        return cls(passed=all(r.passed for r in kept), results=kept)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The results that did not pass, in order."""
        return tuple(r for r in self.results if not r.passed)


# --- validating -----------------------------------------------------------------------


def validate_table(df: pd.DataFrame, checks: Checks, file: str) -> tuple[CheckResult, ...]:
    """Run `checks` on the table `df` read from `file`; one result per check run.

    Does not consult `checks.matches(file)`: the caller picks the files. A missing
    column fails its `required` check and its other checks are skipped; a missing
    optional column gives no results.
    """
    results: list[CheckResult] = []
    rows = len(df)
    low, high = checks.row_count_min, checks.row_count_max
    if low is not None or high is not None:
        ok = (low is None or rows >= low) and (high is None or rows <= high)
        bounds = _bounds(low, high)
        message = f"{rows} rows, {bounds}." if ok else f"{rows} rows, expected {bounds}."
        results.append(CheckResult(file, None, "row_count", ok, 0 if ok else 1, message))
    names = [str(c) for c in df.columns]
    for spec in checks.columns:
        if spec.name not in names:
            if spec.required:
                results.append(
                    CheckResult(
                        file,
                        spec.name,
                        "required",
                        False,
                        1,
                        f"Column {spec.name!r} is missing; the table has {_list(names)}.",
                    )
                )
            continue
        s = df.iloc[:, names.index(spec.name)]
        results.extend(_ColumnRun(file, spec, s).results())
    return tuple(results)


class _ColumnRun:
    """The checks of one column over one series, sharing the work they have in common."""

    def __init__(self, file: str, spec: ColumnChecks, s: pd.Series[Any]) -> None:
        self.file, self.spec, self.s = file, spec, s
        self.missing: Mask = s.isna().to_numpy(dtype=np.bool_)
        self._numbers: tuple[npt.NDArray[np.float64], Mask] | None = None

    def results(self) -> list[CheckResult]:
        spec = self.spec
        out: list[CheckResult] = []
        if spec.required:
            out.append(self.result("required", self.none(), "is present", ""))
        if spec.type is not None:
            noun = _TYPE_NOUNS[spec.type]
            bad = ~self.missing & ~self.of_type(spec.type)
            out.append(self.result("type", bad, f"all values are {noun}", f"not {noun}"))
        if spec.not_null:
            out.append(self.result("not_null", self.missing, "no values are missing", "missing"))
        if spec.max_missing_share is not None:
            out.append(self.missing_share(spec.max_missing_share))
        if spec.min is not None:
            values, not_number = self.numbers()
            below = ~self.missing & ~not_number & (values < spec.min)
            out.append(self.bound("min", below, not_number, f"below {spec.min}"))
        if spec.max is not None:
            values, not_number = self.numbers()
            above = ~self.missing & ~not_number & (values > spec.max)
            out.append(self.bound("max", above, not_number, f"above {spec.max}"))
        if spec.unique:
            repeated = self.s.duplicated(keep=False).to_numpy(dtype=np.bool_) & ~self.missing
            out.append(self.result("unique", repeated, "all values are unique", "repeated"))
        if spec.allowed is not None:
            listed = self.s.isin(list(spec.allowed)).to_numpy(dtype=np.bool_)
            bad = ~self.missing & ~listed
            allowed = f"the allowed values ({_list(spec.allowed)})"
            out.append(self.result("allowed", bad, f"all values are {allowed}", f"not {allowed}"))
        if spec.regex is not None:
            out.append(self.pattern(spec.regex))
        return out

    # Each check gives a mask of offending rows; result() turns it into a report.

    def result(self, check: str, bad: Mask, passed: str, failed: str) -> CheckResult:
        """`passed` says what holds; `failed` what is wrong with the offending rows."""
        count = int(bad.sum())
        name = self.spec.name
        if count == 0:
            sep = " " if check == "required" else ": "
            message = f"Column {name!r}{sep}{passed}."
            return CheckResult(self.file, name, check, True, 0, message)
        message = f"Column {name!r}: {failed} in {_rows(count)}."
        return CheckResult(self.file, name, check, False, count, message, self.examples(bad))

    def bound(self, check: str, out_of_range: Mask, not_number: Mask, what: str) -> CheckResult:
        # A value that is not a number cannot satisfy a bound. The type check may say the
        # same, but a checks file with only `min:` should not pass a column of text.
        bad = out_of_range | not_number
        if not bad.any():
            return self.result(check, bad, f"no values are {what}", "")
        parts = []
        if out_of_range.any():
            parts.append(f"{what} in {_rows(int(out_of_range.sum()))}")
        if not_number.any():
            parts.append(f"not a number in {_rows(int(not_number.sum()))}")
        name = self.spec.name
        message = f"Column {name!r}: {', '.join(parts)}."
        count = int(bad.sum())
        return CheckResult(self.file, name, check, False, count, message, self.examples(bad))

    def missing_share(self, limit: float) -> CheckResult:
        count = int(self.missing.sum())
        rows = len(self.missing)
        share = count / rows if rows else 0.0
        name = self.spec.name
        ok = share <= limit
        message = (
            f"Column {name!r}: {share:.1%} of values missing ({count} of {rows}), "
            f"{'within' if ok else 'over'} the limit of {limit:.1%}."
        )
        if ok:
            return CheckResult(self.file, name, "max_missing_share", True, 0, message)
        examples = self.examples(self.missing)
        return CheckResult(self.file, name, "max_missing_share", False, count, message, examples)

    def pattern(self, regex: str) -> CheckResult:
        present = ~self.missing
        text = self.s[present].astype(str).astype(object)
        # Python's re on object strings: the pyarrow-backed str dtype would run RE2, which
        # rejects lookarounds and backreferences that load_checks accepted.
        found = text.str.contains(regex, regex=True).to_numpy(dtype=np.bool_)
        bad = np.zeros(len(present), dtype=np.bool_)
        bad[np.flatnonzero(present)] = ~found
        return self.result("regex", bad, f"all values match {regex!r}", f"no match for {regex!r}")

    def examples(self, bad: Mask) -> tuple[dict[str, object], ...]:
        at = np.flatnonzero(bad)[:MAX_EXAMPLES]
        picked = self.s.iloc[at].tolist()
        return tuple(
            {"row": int(i), "value": _jsonable(v)} for i, v in zip(at, picked, strict=True)
        )

    def none(self) -> Mask:
        return np.zeros(len(self.missing), dtype=np.bool_)

    # Value classification, vectorised per dtype; object columns fall back to values.

    def numbers(self) -> tuple[npt.NDArray[np.float64], Mask]:
        """Values as float64 (NaN where missing or not a number), and which present
        values are not numbers. Text that parses as a number counts as that number.
        """
        if self._numbers is None:
            self._numbers = _as_numbers(self.s, self.missing)
        return self._numbers

    def of_type(self, expected: CheckType) -> Mask:
        s, dtype = self.s, self.s.dtype
        if expected in ("integer", "float", "number"):
            values, not_number = self.numbers()
            if expected != "integer":
                return ~not_number
            if ptypes.is_integer_dtype(dtype):
                return ~self.none()
            with np.errstate(invalid="ignore"):
                whole: Mask = ~not_number & np.isfinite(values) & (np.floor(values) == values)
            return whole
        if expected == "boolean":
            if ptypes.is_bool_dtype(dtype):
                return ~self.none()
            return _per_value(s, (bool, np.bool_)) if ptypes.is_object_dtype(dtype) else self.none()
        if expected == "string":
            if isinstance(dtype, pd.CategoricalDtype):
                return _per_value(s.astype(object), (str,))
            if ptypes.is_string_dtype(dtype) and not ptypes.is_object_dtype(dtype):
                return ~self.none()
            return _per_value(s, (str,)) if ptypes.is_object_dtype(dtype) else self.none()
        # datetime
        if ptypes.is_datetime64_any_dtype(dtype):
            return ~self.none()
        if isinstance(dtype, pd.CategoricalDtype):
            s, dtype = s.astype(object), np.dtype(object)
        if ptypes.is_object_dtype(dtype):
            stamps = _per_value(s, (dt.date, np.datetime64))  # datetime is a date
            # Only text is parsed: pandas would read numbers as epochs, with a warning.
            text = s.where(_per_value(s, (str,)))
            return stamps | _iso_datetimes(text)
        if ptypes.is_string_dtype(dtype):
            return _iso_datetimes(s)
        return self.none()


def _as_numbers(s: pd.Series[Any], missing: Mask) -> tuple[npt.NDArray[np.float64], Mask]:
    dtype = s.dtype
    nan = np.full(len(s), np.nan)
    if ptypes.is_bool_dtype(dtype) or ptypes.is_datetime64_any_dtype(dtype):
        return nan, ~missing
    if ptypes.is_numeric_dtype(dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(s), dtype=np.bool_)
    if not (ptypes.is_object_dtype(dtype) or ptypes.is_string_dtype(dtype)):
        return nan, ~missing
    values = s.astype(object)
    if ptypes.is_object_dtype(dtype) and ptypes.infer_dtype(values, skipna=True) != "string":
        # Python booleans would parse as 1 and 0; they are not numbers here.
        values = values.mask(_per_value(values, (bool, np.bool_)))
    parsed = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    # NaN after parsing where the value was present: text that is not a number (or a
    # boolean masked above). A literal "nan" string counts as not a number, too.
    return parsed, ~missing & np.isnan(parsed)


# What every present value is, for infer_dtype answers that settle it.
_UNIFORM: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "date": (dt.date,),
    "datetime": (dt.datetime,),
}


def _iso_datetimes(s: pd.Series[Any]) -> Mask:
    parsed = pd.to_datetime(s, errors="coerce", format="ISO8601", utc=True)
    return parsed.notna().to_numpy(dtype=np.bool_)


def _per_value(s: pd.Series[Any], kinds: tuple[type, ...]) -> Mask:
    """Which values of an object column are instances of `kinds` (missing ones are not)."""
    inferred = ptypes.infer_dtype(s, skipna=True)
    uniform = _UNIFORM.get(inferred)
    if uniform is not None:
        # infer_dtype scans in C; a column of one kind needs no Python-level pass.
        same = any(issubclass(k, kinds) for k in uniform)
        return ~s.isna().to_numpy(dtype=np.bool_) if same else np.zeros(len(s), dtype=np.bool_)
    # Mixed object columns have no dtype to test, so each value is looked at.
    return np.fromiter((isinstance(v, kinds) for v in s), dtype=np.bool_, count=len(s))


def _jsonable(v: object) -> object:
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return v if math.isfinite(v) else str(v)
    if isinstance(v, bool | int | str):
        return v
    if isinstance(v, dt.date | dt.datetime | pd.Timestamp):
        return v.isoformat()
    return str(v)


def _rows(n: int) -> str:
    return "1 row" if n == 1 else f"{n} rows"


def _list(items: Iterable[object], limit: int = 10) -> str:
    shown = [repr(i) for i in items]
    if not shown:
        return "no columns"
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def _bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"
