"""Declarative checks on tables: parse a checks file, run it on a frame, report.

A checks file is YAML (or JSON, which YAML reads too)::

    files: "*.csv"                 # optional glob; default: every tabular file
    row_count: {min: 100, max: 1000000}
    columns:
      age:
        type: integer              # integer | float | number | string | boolean | datetime
        required: true             # default: the column must be present
        not_null: true
        min: 0
        max: 120
        unique: true
        allowed: [a, b, c]
        regex: "^[A-Z]{2}$"
        max_missing_share: 0.05

Checks describe values, not storage: a CSV integer column with one gap is read as
floats and still passes `type: integer`, and a numeric column that pandas read as text
because of one bad cell fails on that cell alone.
"""

from __future__ import annotations

import datetime as dt
import difflib
import fnmatch
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, NoReturn, cast, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml
from pandas.api import types as ptypes

from assay.data.entities import is_tabular_path as is_tabular
from assay.errors import InvalidArgumentError

CheckType = Literal["integer", "float", "number", "string", "boolean", "datetime"]
CHECK_TYPES: tuple[CheckType, ...] = get_args(CheckType)
MAX_EXAMPLES = 5
_TYPE_NOUNS: dict[CheckType, str] = {
    "integer": "integers",
    "float": "numbers",
    "number": "numbers",
    "string": "strings",
    "boolean": "booleans",
    "datetime": "datetimes",
}

Scalar = str | int | float | bool
Mask = npt.NDArray[np.bool_]

_TOP_KEYS = ("columns", "files", "row_count")
_ROW_COUNT_KEYS = ("max", "min")
_COLUMN_KEYS = (
    "allowed",
    "max",
    "max_missing_share",
    "min",
    "not_null",
    "regex",
    "required",
    "type",
    "unique",
)


@dataclass(frozen=True)
class ColumnChecks:
    """The checks on one column; None (or False) leaves a check out."""

    name: str
    type: CheckType | None = None
    required: bool = True
    not_null: bool = False
    min: float | None = None
    max: float | None = None
    unique: bool = False
    allowed: tuple[Scalar, ...] | None = None
    regex: str | None = None
    max_missing_share: float | None = None


@dataclass(frozen=True)
class Checks:
    """A parsed checks file: which files it applies to and what must hold in them."""

    source: str
    files: tuple[str, ...] = ()
    row_count_min: int | None = None
    row_count_max: int | None = None
    columns: tuple[ColumnChecks, ...] = ()

    def matches(self, path: str) -> bool:
        """Whether these checks apply to the tabular file at `path`.

        `path` is relative to the dataset root. A glob matches the whole POSIX path or
        just the file name, so `*.csv` and `raw/*.csv` both do what they look like; as in
        fnmatch, `*` also matches `/`. Without `files`, every tabular file matches.
        """
        if not is_tabular(path):
            return False
        if not self.files:
            return True
        posix = path.replace("\\", "/").removeprefix("./")
        base = posix.rsplit("/", 1)[-1]
        return any(
            fnmatch.fnmatchcase(posix, pattern) or fnmatch.fnmatchcase(base, pattern)
            for pattern in self.files
        )


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` reverses it exactly."""
        return {
            "file": self.file,
            "column": self.column,
            "check": self.check,
            "passed": self.passed,
            "failed_count": self.failed_count,
            "message": self.message,
            "examples": [dict(e) for e in self.examples],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckResult:
        """Rebuild from `to_dict()` output."""
        column = d.get("column")
        return cls(
            file=str(d["file"]),
            column=None if column is None else str(column),
            check=str(d["check"]),
            passed=bool(d["passed"]),
            failed_count=int(d["failed_count"]),
            message=str(d["message"]),
            examples=tuple(dict(e) for e in d.get("examples") or ()),
        )


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` reverses it exactly."""
        return {"passed": self.passed, "results": [r.to_dict() for r in self.results]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ValidationReport:
        """Rebuild from `to_dict()` output."""
        return cls(
            passed=bool(d["passed"]),
            results=tuple(CheckResult.from_dict(r) for r in d["results"]),
        )


# --- loading --------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.2 scalars: only true/false are booleans and dates stay strings.

    PyYAML follows YAML 1.1, where `allowed: [NO, SE]` reads Norway as False and an
    unquoted 2024-01-31 becomes a date; in a checks file both are meant as text.
    """


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_checks(text: str, source: str) -> Checks:
    """Parse and validate a checks file; `source` names it in error messages.

    Raises:
        InvalidArgumentError: the text is not YAML, or a key is unknown, a value has the
            wrong type or range, a regex does not compile, or a min exceeds its max.
    """
    try:
        doc = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(
            f"Checks file {source!r} is not valid YAML: {_yaml_problem(exc)}. "
            "Fix the syntax; JSON is accepted too.",
            source=source,
        ) from exc
    if doc is None:
        return Checks(source=source)
    p = _Parser(source)
    top = p.mapping(doc, "", _TOP_KEYS)
    checks = Checks(source=source)
    if "files" in top:
        checks = replace(checks, files=p.globs(top["files"], "files"))
    if "row_count" in top:
        rc = p.mapping(top["row_count"], "row_count", _ROW_COUNT_KEYS)
        low = p.count(rc.get("min"), "row_count.min")
        high = p.count(rc.get("max"), "row_count.max")
        p.ordered(low, high, "row_count")
        checks = replace(checks, row_count_min=low, row_count_max=high)
    if "columns" in top:
        columns = top["columns"]
        if not isinstance(columns, dict):
            p.fail(
                "columns",
                f"must be a mapping of column name to checks, got {_got(columns)}",
                "Write each column name as a key under `columns:`.",
            )
        checks = replace(
            checks, columns=tuple(p.column(name, spec) for name, spec in columns.items())
        )
    return checks


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class _Parser:
    """Validators for one checks file; each names the key path of what it rejects."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str, hint: str) -> NoReturn:
        where = f"{path} " if path else "the top level "
        raise InvalidArgumentError(
            f"Checks file {self.source!r}: {where}{problem}. {hint}",
            source=self.source,
            key=path,
        )

    def mapping(self, value: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(
                path,
                f"must be a mapping with keys {', '.join(keys)}, got {_got(value)}",
                "Write it as `key: value` lines, indented under its parent.",
            )
        for key in value:
            if key not in keys:
                name = f"{path}.{key}" if path else str(key)
                close = difflib.get_close_matches(str(key), keys, n=1)
                hint = f"Did you mean {close[0]!r}? " if close else ""
                raise InvalidArgumentError(
                    f"Checks file {self.source!r}: unknown key {name!r}. "
                    f"{hint}Valid keys here: {', '.join(keys)}.",
                    source=self.source,
                    key=name,
                )
        return cast(dict[str, Any], value)

    def column(self, name: Any, spec: Any) -> ColumnChecks:
        if not isinstance(name, str):
            self.fail(
                f"columns.{name}",
                f"names a column with {_got(name)}, not text",
                f"Quote the column name: '{name}'.",
            )
        path = f"columns.{name}"
        spec = self.mapping({} if spec is None else spec, path, _COLUMN_KEYS)
        low = self.number(spec.get("min"), f"{path}.min")
        high = self.number(spec.get("max"), f"{path}.max")
        self.ordered(low, high, path)
        share = self.number(spec.get("max_missing_share"), f"{path}.max_missing_share")
        if share is not None and not 0 <= share <= 1:
            self.fail(
                f"{path}.max_missing_share",
                f"must be between 0 and 1, got {share}",
                "Write a share, such as 0.05 for 5%.",
            )
        return ColumnChecks(
            name=name,
            type=self.check_type(spec.get("type"), f"{path}.type"),
            required=self.flag(spec.get("required", True), f"{path}.required"),
            not_null=self.flag(spec.get("not_null", False), f"{path}.not_null"),
            min=low,
            max=high,
            unique=self.flag(spec.get("unique", False), f"{path}.unique"),
            allowed=self.allowed(spec.get("allowed"), f"{path}.allowed"),
            regex=self.regex(spec.get("regex"), f"{path}.regex"),
            max_missing_share=share,
        )

    def globs(self, value: Any, path: str) -> tuple[str, ...]:
        patterns = [value] if isinstance(value, str) else value
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            self.fail(
                path,
                f"must be a glob or a list of globs, got {_got(value)}",
                'Write it as in `files: "*.csv"`.',
            )
        return tuple(patterns)

    def number(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"must be a number, got {_got(value)}", "Write it as in `min: 0`.")
        if not math.isfinite(value):
            self.fail(path, f"must be a finite number, got {value}", "Leave the bound out instead.")
        return float(value) if isinstance(value, float) else value

    def count(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(
                path,
                f"must be a whole number of rows, 0 or more, got {_got(value)}",
                "Write it as in `row_count: {min: 1}`.",
            )
        return value

    def ordered(self, low: float | None, high: float | None, path: str) -> None:
        if low is not None and high is not None and low > high:
            self.fail(
                f"{path}.min",
                f"({low}) is greater than {path}.max ({high})",
                "Swap them or fix one.",
            )

    def flag(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {_got(value)}", "Write true or false.")
        return value

    def check_type(self, value: Any, path: str) -> CheckType | None:
        if value is None:
            return None
        if value not in CHECK_TYPES:
            self.fail(
                path,
                f"must be one of {', '.join(CHECK_TYPES)}, got {_got(value)}",
                "Use one of those names.",
            )
        return cast(CheckType, value)

    def allowed(self, value: Any, path: str) -> tuple[Scalar, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            self.fail(
                path,
                f"must be a non-empty list of values, got {_got(value)}",
                "Write it as in `allowed: [a, b]`.",
            )
        for i, item in enumerate(value):
            if not isinstance(item, str | int | float):  # bool is an int
                self.fail(
                    f"{path}[{i}]",
                    f"must be a string, number or boolean, got {_got(item)}",
                    "Missing values are checked by `not_null`.",
                )
        return tuple(value)

    def regex(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(
                path,
                f"must be a regular expression in quotes, got {_got(value)}",
                "Quote the pattern.",
            )
        try:
            re.compile(value)
        except re.error as exc:
            self.fail(path, f"is not a valid regular expression: {exc}", "Fix the pattern.")
        return value


def _got(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


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
