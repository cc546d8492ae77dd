"""Checks files: the declarative checks on tables, and how to read them.

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

`load_checks` parses and validates one into `Checks`; `assay.data.validation` runs them.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
from dataclasses import dataclass, replace
from typing import Any, Literal, NoReturn, cast, get_args

import yaml

from assay.data.entities import is_tabular_path as is_tabular
from assay.errors import InvalidArgumentError
from assay.limits import too_deep

CheckType = Literal["integer", "float", "number", "string", "boolean", "datetime"]
CHECK_TYPES: tuple[CheckType, ...] = get_args(CheckType)

Scalar = str | int | float | bool

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
    except RecursionError:  # nested a thousand levels deep: no checks file is
        raise too_deep(f"Checks file {source!r}") from None
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


def dump_checks(checks: Checks) -> str:
    """The checks file text that `load_checks` reads back as `checks` (how the SDK sends
    parsed checks to a server)."""
    columns: dict[str, dict[str, Any]] = {}
    for c in checks.columns:
        spec: dict[str, Any] = {"required": c.required}
        for key in ("type", "min", "max", "allowed", "regex", "max_missing_share"):
            value = getattr(c, key)
            if value is not None:
                spec[key] = list(value) if key == "allowed" else value
        for key in ("not_null", "unique"):
            if getattr(c, key):
                spec[key] = True
        columns[c.name] = spec
    doc: dict[str, Any] = {}
    if checks.files:
        doc["files"] = list(checks.files)
    row_count = {"min": checks.row_count_min, "max": checks.row_count_max}
    if any(v is not None for v in row_count.values()):
        doc["row_count"] = {k: v for k, v in row_count.items() if v is not None}
    if columns:
        doc["columns"] = columns
    # safe_dump quotes whatever YAML 1.1 would read as another type (NO, 2024-01-31).
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True) if doc else ""


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
