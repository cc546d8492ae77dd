"""The syntax of the runs query language: its AST, and the parser that builds it.

The grammar and what each form means are in `assay.runs.query`, the public entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NoReturn

from assay.runs.query_tokens import Source, Token

# ---- the AST -------------------------------------------------------------------------------

Scalar = int | float | str | bool | datetime
CompareOp = Literal["=", "!=", "<", "<=", ">", ">=", "like", "ilike", "not like", "not ilike"]

_AttrType = Literal["text", "number", "time"]
ATTRIBUTES: dict[str, _AttrType] = {
    "code": "text",
    "created_at": "time",
    "data_version": "number",
    "dataset": "text",
    "ended_at": "time",
    "experiment": "text",
    "id": "text",
    "name": "text",
    "parent_id": "text",
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


# ---- the parser ----------------------------------------------------------------------------

_FIELD_HELP = "params.NAME, metrics.NAME or a run attribute (" + ", ".join(ATTRIBUTES) + ")"
_OPERATOR_HELP = "=, !=, <, <=, >, >=, like, ilike, in, not in, is null or is not null"
_LIKE_OPS: dict[tuple[str, bool], CompareOp] = {
    ("like", False): "like",
    ("like", True): "not like",
    ("ilike", False): "ilike",
    ("ilike", True): "not ilike",
}


class _Parser:
    def __init__(self, text: str, what: Literal["filter", "sort"]) -> None:
        self.src = Source(text, what)
        self.toks = list(self.src.tokens())
        self.i = 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def take_keyword(self, *words: str) -> Token | None:
        if self.peek().keyword in words:
            return self.take()
        return None

    def expected(self, what: str, tok: Token | None = None) -> NoReturn:
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
        self, field: Field, op: str, value: Scalar | None, tok: Token, op_tok: Token | None
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
                return as_utc(datetime.fromisoformat(value))
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


def as_utc(ts: datetime) -> datetime:
    # Everything stored is UTC; SQLite keeps the wall time only, so convert before binding.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


# ---- the public API, re-exported by assay.runs.query ---------------------------------------


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
