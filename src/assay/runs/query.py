"""The runs query language: `params.C > 1 and metrics.val_f1 >= 0.9 and status = 'succeeded'`.

`parse` turns a filter into an AST of frozen dataclasses; `compile_filter` turns it into a
condition for `select(runs).where(...)`; `compile_sort` turns `"metrics.val_f1 desc, params.C"`
into ORDER BY terms. Nothing is filtered in Python: a param or metric condition is a
correlated EXISTS on `run_params` / `run_metrics`, a sort key a correlated scalar subquery;
both look rows up by their (run_id, key) primary key.

Grammar (keywords are case-insensitive)::

    filter     := or EOF
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" or ")" | comparison
    comparison := field op value                       op: = == != <> < <= > >=
                | field ["not"] ("like" | "ilike") string
                | field ["not"] "in" "(" value ("," value)* [","] ")"
                | field "is" ["not"] "null"
    field      := params.NAME | metrics.NAME | ATTRIBUTE   NAME may hold dots and dashes;
                                                           `backticks` quote anything
    value      := number | 'string' | "string" | true | false | null

    sort       := [key ("," key)*] EOF
    key        := ["-"] field ["asc" | "desc"]

Meaning:

- `params.C > 1` holds for runs that have param C with a numeric value above 1. A number
  (or true/false, stored as 1/0) compares with a param's numeric value, a string with its
  string value; a string param compared with a number never matches, and vice versa.
- `!=`, `not in` and `not like` also need the param or metric to be present: `params.C != 1`
  skips runs without C, where `not params.C = 1` includes them. Likewise a run attribute
  that is unset (no pipeline, not yet started) matches no comparison.
- `is null` / `is not null` on a param or metric: the key is absent / present; `= null` and
  `!= null` mean the same.
- `like` and `ilike` take SQL patterns (`%`, `_`, `\\` escapes); `like` is case-sensitive on
  every backend, `ilike` is not.
- Times (`created_at`, `started_at`, `ended_at`) are given as ISO strings, e.g.
  `created_at >= '2026-11-01'`; a time without a zone is UTC.
- Sorting puts runs that lack the key last in either direction, and breaks ties by
  `created_at` descending, then `id`. A param sorts numbers before strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from assay.errors import InvalidArgumentError
from assay.runs.repository import experiments, run_metrics, run_params, runs

__all__ = [
    "ATTRIBUTES",
    "And",
    "Compare",
    "CompareOp",
    "Expr",
    "Field",
    "In",
    "IsNull",
    "Not",
    "Or",
    "SortKey",
    "compile_filter",
    "compile_sort",
    "fields_of",
    "parse",
    "parse_sort",
]

# ---- the AST -------------------------------------------------------------------------------

Scalar = int | float | str | bool | datetime
CompareOp = Literal["=", "!=", "<", "<=", ">", ">=", "like", "ilike", "not like", "not ilike"]

_AttrType = Literal["text", "number", "time"]
ATTRIBUTES: dict[str, _AttrType] = {
    "created_at": "time",
    "data_version": "number",
    "dataset": "text",
    "ended_at": "time",
    "experiment": "text",
    "id": "text",
    "name": "text",
    "pipeline": "text",
    "pipeline_version": "number",
    "started_at": "time",
    "status": "text",
}


@dataclass(frozen=True)
class Field:
    """`params.NAME`, `metrics.NAME` or a run attribute (`kind="run"`)."""

    kind: Literal["params", "metrics", "run"]
    name: str

    def __str__(self) -> str:
        return self.name if self.kind == "run" else f"{self.kind}.{self.name}"


@dataclass(frozen=True)
class Compare:
    """`field op value`; a time attribute's value is an aware UTC `datetime`."""

    field: Field
    op: CompareOp
    value: Scalar


@dataclass(frozen=True)
class In:
    """`field in (values)`, or `not in` when `negated`."""

    field: Field
    values: tuple[Scalar, ...]
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    """`field is null` (a param or metric is absent), or `is not null` when `negated`."""

    field: Field
    negated: bool = False


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


Expr = Compare | In | IsNull | And | Or | Not


@dataclass(frozen=True)
class SortKey:
    field: Field
    descending: bool = False


# ---- the tokenizer -------------------------------------------------------------------------

_KEYWORDS = frozenset(
    ["and", "or", "not", "in", "is", "null", "like", "ilike", "true", "false", "asc", "desc"]
)
_OPERATORS = {
    "==": "=",
    "=": "=",
    "!=": "!=",
    "<>": "!=",
    "<=": "<=",
    ">=": ">=",
    "<": "<",
    ">": ">",
}
_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_NUMBER_START = re.compile(r"-?\.?\d")
_WORD_START = re.compile(r"[^\W\d]")
_BARE = re.compile(r"[\w.\-]+")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_HINTS = {"&": "write 'and'", "|": "write 'or'", "!": "write 'not' or '!='"}

_TokenKind = Literal["word", "number", "string", "op", "(", ")", ",", "-", "end"]
_PUNCTUATION: dict[str, _TokenKind] = {"(": "(", ")": ")", ",": ",", "-": "-"}
_LIKE_OPS: dict[tuple[str, bool], CompareOp] = {
    ("like", False): "like",
    ("like", True): "not like",
    ("ilike", False): "ilike",
    ("ilike", True): "not ilike",
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _TokenKind
    pos: int
    end: int
    value: Any = None  # number: int | float; string: str; op: the canonical op; word: segments

    @property
    def keyword(self) -> str | None:
        """The keyword this word is (`AND`, `Null`, …), if it is a bare one."""
        if self.kind != "word" or len(self.value) != 1 or self.value[0][1]:
            return None
        word = self.value[0][0].lower()
        return word if word in _KEYWORDS else None


class _Source:
    """The text being parsed, and how to say what is wrong with it."""

    def __init__(self, text: str, what: Literal["filter", "sort"]) -> None:
        self.text = text
        self.what = what

    def fail(self, pos: int, message: str) -> NoReturn:
        shown = re.sub(r"\s", " ", self.text)  # one line, same columns
        raise InvalidArgumentError(
            f'Cannot parse {self.what} "{shown}" at column {pos + 1}: {message}.',
            **{self.what: self.text, "column": pos + 1},
        )

    def shown(self, tok: _Token) -> str:
        return self.text[tok.pos : tok.end]

    def tokens(self) -> Iterator[_Token]:
        text, n = self.text, len(self.text)
        pos = self._skip_space(0)
        while pos < n:
            c = text[pos]
            if _NUMBER_START.match(text, pos):
                tok = self._number(pos)
            elif c in "'\"":
                value, end = self._quoted(pos, "string")
                tok = _Token("string", pos, end, value)
            elif c == "`" or _WORD_START.match(c):
                tok = self._word(pos)
            elif text[pos : pos + 2] in _OPERATORS:
                tok = _Token("op", pos, pos + 2, _OPERATORS[text[pos : pos + 2]])
            elif c in _OPERATORS:
                tok = _Token("op", pos, pos + 1, _OPERATORS[c])
            elif c in _PUNCTUATION:
                tok = _Token(_PUNCTUATION[c], pos, pos + 1)
            else:
                hint = f"; {_HINTS[c]}" if c in _HINTS else ""
                self.fail(pos, f"unexpected character {c!r}{hint}")
            yield tok
            pos = self._skip_space(tok.end)
        yield _Token("end", n, n)

    def _skip_space(self, pos: int) -> int:
        m = _SPACE.match(self.text, pos)
        return m.end() if m else pos

    def _number(self, pos: int) -> _Token:
        m = _NUMBER.match(self.text, pos)
        assert m is not None  # _NUMBER_START matched
        end = m.end()
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "._"):
            bad = m.group() + self._bare(end)
            self.fail(pos, f"expected a number, found {bad!r}")
        literal = m.group()
        value: int | float = float(literal) if any(c in literal for c in ".eE") else int(literal)
        return _Token("number", pos, end, value)

    def _quoted(self, pos: int, what: Literal["string", "name"]) -> tuple[str, int]:
        text, quote = self.text, self.text[pos]
        out: list[str] = []
        i = pos + 1
        while i < len(text):
            c = text[i]
            if c == quote:
                if what == "name" and text.startswith("``", i):  # `` is a literal backtick
                    out.append("`")
                    i += 2
                    continue
                return "".join(out), i + 1
            if c == "\\" and what == "string" and i + 1 < len(text):
                # Unknown escapes keep their backslash, so '50\%' reaches `like` intact.
                out.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
                continue
            out.append(c)
            i += 1
        self.fail(pos, f"unterminated {what}: expected a closing {quote} to end it")

    def _word(self, pos: int) -> _Token:
        """A field or keyword: bare runs of letters, digits, `_.-` and `backticked` runs."""
        segments: list[tuple[str, bool]] = []
        end = pos
        while end < len(self.text):
            if self.text[end] == "`":
                value, end = self._quoted(end, "name")
                segments.append((value, True))
            elif bare := self._bare(end):
                segments.append((bare, False))
                end += len(bare)
            else:
                break
        return _Token("word", pos, end, tuple(segments))

    def _bare(self, pos: int) -> str:
        m = _BARE.match(self.text, pos)
        return m.group() if m else ""


# ---- the parser ----------------------------------------------------------------------------

_FIELD_HELP = "params.NAME, metrics.NAME or a run attribute (" + ", ".join(ATTRIBUTES) + ")"
_OPERATOR_HELP = "=, !=, <, <=, >, >=, like, ilike, in, not in, is null or is not null"


class _Parser:
    def __init__(self, text: str, what: Literal["filter", "sort"]) -> None:
        self.src = _Source(text, what)
        self.toks = list(self.src.tokens())
        self.i = 0

    def peek(self) -> _Token:
        return self.toks[self.i]

    def take(self) -> _Token:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def take_keyword(self, *words: str) -> _Token | None:
        if self.peek().keyword in words:
            return self.take()
        return None

    def expected(self, what: str, tok: _Token | None = None) -> NoReturn:
        tok = tok or self.peek()
        found = "" if tok.kind == "end" else f", found {self.src.shown(tok)!r}"
        self.src.fail(tok.pos, f"expected {what}{found}")

    # -- filters

    def filter(self) -> Expr:
        expr = self.or_()
        if self.peek().kind != "end":
            self.expected(f"'and', 'or' or the end of the {self.src.what}")
        return expr

    def or_(self) -> Expr:
        items = [self.and_()]
        while self.take_keyword("or"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Expr:
        items = [self.not_()]
        while self.take_keyword("and"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_(self) -> Expr:
        if self.take_keyword("not"):
            return Not(self.not_())
        if self.peek().kind == "(":
            opening = self.take()
            expr = self.or_()
            if self.peek().kind != ")":
                self.expected(f"')' to close the '(' at column {opening.pos + 1}")
            self.take()
            return expr
        return self.comparison()

    def comparison(self) -> Expr:
        field_tok = self.peek()
        field = self.field()
        tok = self.take()
        after = f"after {self.src.shown(field_tok)!r}"
        if tok.kind == "op":
            op = tok.value
            value_tok = self.peek()
            value = self.value(f"after {self.src.shown(tok)!r}")
            if value is None:
                if op not in ("=", "!="):
                    self.src.fail(
                        value_tok.pos,
                        f"expected a number or a string after {op!r}; "
                        "test for a missing value with 'is null'",
                    )
                return IsNull(field, negated=op == "!=")
            return Compare(field, op, self.check(field, op, value, value_tok, tok))
        negated = tok.keyword == "not"
        if negated:
            tok = self.take()
            if tok.keyword not in ("in", "like", "ilike"):
                self.expected("'in', 'like' or 'ilike' after 'not'", tok)
        if tok.keyword in ("like", "ilike"):
            kind = _kind(field)
            if kind in ("number", "time"):
                what = "metrics are numbers" if field.kind == "metrics" else f"{field} is a {kind}"
                self.src.fail(tok.pos, f"expected a text field before '{tok.keyword}': {what}")
            like = _LIKE_OPS[tok.keyword, negated]
            value_tok = self.peek()
            value = self.value(f"after {self.src.shown(tok)!r}")
            return Compare(field, like, self.check(field, like, value, value_tok, tok))
        if tok.keyword == "in":
            return In(field, self.values(field), negated)
        if tok.keyword == "is":
            is_not = self.take_keyword("not") is not None
            if not self.take_keyword("null"):
                self.expected(
                    "'null' after 'is not'" if is_not else "'null' or 'not null' after 'is'"
                )
            return IsNull(field, negated=is_not)
        self.expected(f"an operator {after} ({_OPERATOR_HELP})", tok)

    def field(self) -> Field:
        tok = self.take()
        if tok.kind != "word" or tok.keyword is not None:
            self.expected(f"a field: {_FIELD_HELP}", tok)
        first, quoted = tok.value[0]
        if not quoted:
            head, dot, rest = first.partition(".")
            if dot and head.lower() in ("params", "metrics"):
                name = rest + "".join(text for text, _ in tok.value[1:])
                if not name:
                    self.src.fail(tok.end, f"expected a name after '{head}.'")
                return Field("params" if head.lower() == "params" else "metrics", name)
        name = "".join(text for text, _ in tok.value)
        if name.lower() not in ATTRIBUTES:
            self.src.fail(tok.pos, f"unknown field {name!r}; expected {_FIELD_HELP}")
        return Field("run", name.lower())

    def value(self, where: str) -> Scalar | None:
        tok = self.take()
        if tok.kind in ("number", "string"):
            scalar: Scalar = tok.value
            return scalar
        if tok.keyword in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.keyword]
        if tok.kind == "word" and tok.keyword is None:
            word = self.src.shown(tok)
            self.src.fail(
                tok.pos, f"expected a value {where}, found {word!r}; quote text: '{word}'"
            )
        self.expected(f"a value {where}", tok)

    def values(self, field: Field) -> tuple[Scalar, ...]:
        if self.peek().kind != "(":
            self.expected("'(' after 'in'")
        opening = self.take()
        if self.peek().kind == ")":
            self.src.fail(self.peek().pos, "expected at least one value in 'in ()'")
        out: list[Scalar] = []
        while True:
            value_tok = self.peek()
            value = self.value("in the list after 'in'")
            if value is None:
                self.src.fail(value_tok.pos, "null cannot be in a list; use 'is null'")
            out.append(self.check(field, "in", value, value_tok, None))
            sep = self.take()
            if sep.kind == ",":
                if self.peek().kind == ")":  # a trailing comma
                    self.take()
                    break
                continue
            if sep.kind == ")":
                break
            self.expected(f"',' or ')' in the list opened at column {opening.pos + 1}", sep)
        return tuple(out)

    def check(
        self, field: Field, op: str, value: Scalar | None, tok: _Token, op_tok: _Token | None
    ) -> Scalar:
        """`value` if `op` can compare it with `field`; a time attribute's as a datetime."""
        fail, kind = self.src.fail, _kind(field)
        after = f"after {self.src.shown(op_tok)!r}" if op_tok else "in the list after 'in'"
        if op.endswith("like"):
            if not isinstance(value, str):
                fail(tok.pos, f"expected a quoted pattern {after}, such as '%adam%'")
            return value
        if value is None:  # the callers turn `= null` into `is null`
            fail(tok.pos, f"expected a number or a string {after}")
        if isinstance(value, bool) and op not in ("=", "!=", "in"):
            fail(
                tok.pos,
                f"expected a number or a string {after}; true and false compare "
                "only with =, != and in",
            )
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "number" and not is_number:
            what = "metrics are numbers" if field.kind == "metrics" else f"{field} is a number"
            fail(tok.pos, f"expected a number {after}: {what}")
        if kind == "text" and not isinstance(value, str):
            fail(tok.pos, f"expected a quoted string {after}: {field} is text")
        if kind == "time":
            if not isinstance(value, str):
                fail(tok.pos, f"expected a time in quotes {after}, such as '2026-11-01'")
            try:
                return _utc(datetime.fromisoformat(value))
            except ValueError:
                fail(
                    tok.pos,
                    f"expected an ISO time such as '2026-11-01' or "
                    f"'2026-11-01T12:30:00Z' {after}, found {value!r}",
                )
        return value

    # -- sorting

    def sort(self) -> tuple[SortKey, ...]:
        keys: list[SortKey] = []
        if self.peek().kind == "end":
            return ()
        while True:
            minus = self.take() if self.peek().kind == "-" else None
            field = self.field()
            direction = self.take_keyword("asc", "desc")
            if minus and direction:
                self.src.fail(
                    direction.pos,
                    f"expected ',' or the end of the sort: the '-' "
                    f"already sorts {field} descending",
                )
            descending = bool(minus) or (direction is not None and direction.keyword == "desc")
            keys.append(SortKey(field, descending))
            tok = self.take()
            if tok.kind == "end":
                return tuple(keys)
            if tok.kind != ",":
                choices = "" if minus or direction else "'asc', 'desc', "
                self.expected(f"{choices}',' or the end of the sort", tok)


def _kind(field: Field) -> Literal["any", "text", "number", "time"]:
    """What a field's values are: a param's may be anything."""
    if field.kind == "params":
        return "any"
    return "number" if field.kind == "metrics" else ATTRIBUTES[field.name]


def _utc(ts: datetime) -> datetime:
    # Everything stored is UTC; SQLite keeps the wall time only, so convert before binding.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


# ---- the public API ------------------------------------------------------------------------


def parse(text: str) -> Expr:
    """The AST of a filter such as `params.C > 1 and status = 'succeeded'`.

    Raises:
        InvalidArgumentError: the filter is malformed; the message names the column.
    """
    return _Parser(text, "filter").filter()


def parse_sort(spec: str) -> tuple[SortKey, ...]:
    """The keys of a sort such as `metrics.val_f1 desc, params.C` or `-metrics.val_f1`.

    Raises:
        InvalidArgumentError: the sort is malformed; the message names the column.
    """
    return _Parser(spec, "sort").sort()


def fields_of(expr: Expr) -> set[str]:
    """The fields a filter mentions, as written in it: `{"params.C", "status"}`."""
    if isinstance(expr, And | Or):
        return set().union(*(fields_of(item) for item in expr.items))
    if isinstance(expr, Not):
        return fields_of(expr.item)
    return {str(expr.field)}


def compile_filter(text_or_expr: str | Expr) -> ColumnElement[bool]:
    """A condition on `runs` for `select(runs).where(...)`.

    Raises:
        InvalidArgumentError: the filter is malformed.
    """
    expr = parse(text_or_expr) if isinstance(text_or_expr, str) else text_or_expr
    return _compile(expr)


def compile_sort(spec: str) -> list[ColumnElement[Any]]:
    """ORDER BY terms for a select from `runs`: the keys, then created_at desc, then id.

    Runs without a key sort last whichever the direction.

    Raises:
        InvalidArgumentError: the sort is malformed.
    """
    out: list[ColumnElement[Any]] = []
    for key in parse_sort(spec):
        for col in _sort_columns(key.field):
            out.append((col.desc() if key.descending else col.asc()).nulls_last())
    out += [runs.c.created_at.desc(), runs.c.id.asc()]
    return out


# ---- compiling -----------------------------------------------------------------------------


def _compile(expr: Expr) -> ColumnElement[bool]:
    if isinstance(expr, And):
        return and_(*(_compile(item) for item in expr.items))
    if isinstance(expr, Or):
        return or_(*(_compile(item) for item in expr.items))
    if isinstance(expr, Not):
        return not_(_compile(expr.item))
    if expr.field.kind == "run":
        return _attribute(expr)
    return _keyed(expr)


def _keyed(expr: Compare | In | IsNull) -> ColumnElement[bool]:
    """A param or metric condition: runs that have the key with a matching value."""
    field = expr.field
    table = run_params if field.kind == "params" else run_metrics
    if isinstance(expr, IsNull):
        present = _has_key(table, field.name, None)
        return present if expr.negated else not_(present)
    if field.kind == "metrics":
        return _has_key(table, field.name, _condition(run_metrics.c.value, expr, _number))
    if isinstance(expr, Compare):
        if isinstance(expr.value, str):
            cond = _condition(run_params.c.value_str, expr, str)
        else:
            cond = _condition(run_params.c.value_num, expr, _float)
        return _has_key(table, field.name, cond)
    nums = tuple(v for v in expr.values if not isinstance(v, str))
    strs = tuple(v for v in expr.values if isinstance(v, str))
    # A string param never matches a number, in `not in` too: its value_num is NULL, and
    # `NULL NOT IN (…)` is not true.
    parts = [
        _condition(run_params.c.value_num, In(field, nums, expr.negated), _float) if nums else None,
        _condition(run_params.c.value_str, In(field, strs, expr.negated), str) if strs else None,
    ]
    return _has_key(table, field.name, or_(*(p for p in parts if p is not None)))


def _has_key(table: Any, key: str, cond: ColumnElement[bool] | None) -> ColumnElement[bool]:
    # A correlated EXISTS: SQLite probes the (run_id, key) primary key once per run, so a
    # condition costs the same however many runs match it. `runs.id IN (SELECT run_id …
    # WHERE key = ? AND value > ?)` would read the (key, value) index instead: 4x faster
    # when few runs match, 2x slower when most do (10,000 runs: 3-26 ms against 10-17 ms).
    # PostgreSQL plans the two alike.
    sub: Select[Any] = select(literal_column("1")).where(
        table.c.run_id == runs.c.id, table.c.key == key
    )
    if cond is not None:
        sub = sub.where(cond)
    return sub.exists()


def _attribute(expr: Compare | In | IsNull) -> ColumnElement[bool]:
    name = expr.field.name
    if name == "experiment":
        if isinstance(expr, IsNull):  # every run has an experiment
            return true() if expr.negated else false()
        ids = select(experiments.c.id).where(_condition(experiments.c.name, expr, str))
        return runs.c.experiment_id.in_(ids)
    col = runs.c[name]
    if isinstance(expr, IsNull):
        return col.is_not(None) if expr.negated else col.is_(None)
    kind = ATTRIBUTES[name]
    converters: dict[str, Callable[[Any], object]] = {"text": str, "number": _number, "time": _time}
    convert = converters[kind]
    return _condition(col, expr, convert)


def _number(value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"Expected a number, got {value!r}.")
    return value


def _float(value: object) -> float:
    return float(value) if isinstance(value, bool) else float(_number(value))


def _time(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"Expected an ISO time such as '2026-11-01', got {value!r}.")
    return _utc(value)


def _condition(
    col: ColumnElement[Any], expr: Compare | In, convert: Callable[[Any], object]
) -> ColumnElement[bool]:
    if isinstance(expr, In):
        values = [convert(v) for v in expr.values]
        return col.not_in(values) if expr.negated else col.in_(values)
    op, value = expr.op, convert(expr.value)
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == "<":
        return col < value
    if op == "<=":
        return col <= value
    if op == ">":
        return col > value
    if op == ">=":
        return col >= value
    if not isinstance(value, str):
        raise InvalidArgumentError(f"Expected a quoted pattern after {op!r}, got {value!r}.")
    if op == "like":
        return _Like(col, *_patterns(value))
    if op == "not like":
        return not_(_Like(col, *_patterns(value)))
    pattern = _patterns(value)[0]
    return col.ilike(pattern, escape="\\") if op == "ilike" else col.not_ilike(pattern, escape="\\")


def _sort_columns(field: Field) -> list[ColumnElement[Any]]:
    if field.kind == "metrics":
        return [_scalar(run_metrics, run_metrics.c.value, field.name)]
    if field.kind == "params":
        # Numbers first, then strings; each in order.
        return [
            _scalar(run_params, run_params.c.value_num, field.name),
            _scalar(run_params, run_params.c.value_str, field.name),
        ]
    if field.name == "experiment":
        q = select(experiments.c.name).where(experiments.c.id == runs.c.experiment_id)
        return [q.scalar_subquery()]
    return [runs.c[field.name]]


def _scalar(table: Any, col: ColumnElement[Any], key: str) -> ColumnElement[Any]:
    q = select(col).where(table.c.run_id == runs.c.id, table.c.key == key)
    return q.scalar_subquery()


# ---- a case-sensitive LIKE -----------------------------------------------------------------


class _Like(FunctionElement[bool]):
    """`col LIKE pattern ESCAPE '\\'`, case-sensitive everywhere.

    SQLite's LIKE ignores ASCII case; there the same pattern runs as a GLOB.
    """

    inherit_cache = True
    name = "assay_like"


@compiles(_Like)
def _like_default(element: _Like, compiler: SQLCompiler, **kw: Any) -> str:
    col, like, _ = element.clauses
    return "(" + compiler.process(col.like(like, escape="\\"), **kw) + ")"


@compiles(_Like, "sqlite")
def _like_sqlite(element: _Like, compiler: SQLCompiler, **kw: Any) -> str:
    col, _, glob = element.clauses
    return "(" + compiler.process(col.op("GLOB")(glob), **kw) + ")"


def _patterns(pattern: str) -> tuple[str, str]:
    """A LIKE pattern (`\\` escapes `%`, `_` and itself) as (LIKE, GLOB) patterns."""
    like: list[str] = []
    glob: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):  # an escaped character is itself
            i += 1
            c = pattern[i]
            like.append("\\" + c if c in "%_\\" else c)
            glob.append(f"[{c}]" if c in "*?[" else c)
        elif c in "%_":
            like.append(c)
            glob.append("*" if c == "%" else "?")
        else:
            like.append("\\\\" if c == "\\" else c)
            glob.append(f"[{c}]" if c in "*?[" else c)
        i += 1
    return "".join(like), "".join(glob)
