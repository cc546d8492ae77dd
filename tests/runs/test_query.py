"""The runs query language: filters and sorts, compiled to SQL and run on each backend."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select

from assay.errors import InvalidArgumentError
from assay.runs.query import (
    And,
    Compare,
    Field,
    In,
    IsNull,
    Not,
    Or,
    SortKey,
    compile_filter,
    compile_sort,
    fields_of,
    parse,
    parse_sort,
)
from assay.runs.tables import experiments, run_metrics, run_params, runs
from assay.store.db import Database

# ---- a realistic set of runs ---------------------------------------------------------------


@dataclass
class R:
    id: str
    experiment: str
    name: str
    status: str
    created_at: str
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    pipeline: str | None = "train"
    pipeline_version: int | None = 1


RUNS = [
    R("r1", "baseline", "lr-small", "succeeded", "2026-10-01T10:00",
      {"C": 0.5, "kernel": "rbf", "model.C": 1, "early_stop": True, "my key": "x"},
      {"val_f1": 0.81, "loss": 0.40}),
    R("r2", "baseline", "lr-big", "succeeded", "2026-10-02T10:00",
      {"C": 2, "kernel": "linear", "model.C": 10, "early_stop": False},
      {"val_f1": 0.92, "loss": 0.20}, pipeline_version=2),
    R("r3", "tuning", "svm-1", "failed", "2026-11-01T00:00",
      {"C": 5, "kernel": "rbf", "lr-decay": 0.1}, {"loss": 0.90}),
    R("r4", "tuning", "svm-2", "succeeded", "2026-11-02T10:00",
      {"C": "auto", "kernel": "poly"}, {"val_f1": 0.95}),
    R("r5", "tuning", "SVM-3", "running", "2026-11-03T10:00", pipeline=None, pipeline_version=None),
    R("r6", "tuning", "svm_4", "succeeded", "2026-11-04T10:00",
      {"C": 1, "kernel": "RBF", "early_stop": True}, {"val_f1": 0.90, "loss": 0.30}),
    R("r7", "baseline", "50%-run", "succeeded", "2026-11-05T10:00",
      {"C": 1.5, "kernel": "50%"}, {"val_f1": 0.92, "loss": None}),
]  # fmt: skip
ALL = {r.id for r in RUNS}


def param_row(run_id: str, key: str, value: Any) -> dict[str, Any]:
    """A `run_params` row: the JSON value and its numeric or string shadow."""
    is_num = isinstance(value, bool | int | float)
    return {
        "run_id": run_id,
        "key": key,
        "value": value,
        "value_num": float(value) if is_num else None,
        "value_str": value if isinstance(value, str) else None,
    }


def insert_runs(conn: Connection, rows: list[R]) -> None:
    names = sorted({r.experiment for r in rows})
    exp_ids = {name: i for i, name in enumerate(names, 1)}
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    exp_rows = [{"id": i, "name": name, "created_at": t0} for name, i in exp_ids.items()]
    conn.execute(insert(experiments), exp_rows)
    run_rows, param_rows, metric_rows = [], [], []
    for r in rows:
        created = datetime.fromisoformat(r.created_at).replace(tzinfo=UTC)
        run_rows.append({
            "id": r.id, "experiment_id": exp_ids[r.experiment], "name": r.name, "status": r.status,
            "pipeline": r.pipeline, "pipeline_version": r.pipeline_version,
            "created_at": created, "started_at": None if r.status == "running" else created,
        })  # fmt: skip
        param_rows += [param_row(r.id, k, v) for k, v in r.params.items()]
        metric_rows += [
            {"run_id": r.id, "key": k, "value": v, "step": 1} for k, v in r.metrics.items()
        ]
    conn.execute(insert(runs), run_rows)
    if param_rows:
        conn.execute(insert(run_params), param_rows)
    if metric_rows:
        conn.execute(insert(run_metrics), metric_rows)


@pytest.fixture
def empty_db(db_url: str) -> Iterator[Database]:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db = Database(db_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def db(empty_db: Database) -> Database:
    with empty_db.session() as conn:
        insert_runs(conn, RUNS)
    return empty_db


def ids(db: Database, filter: str) -> set[str]:
    with db.read() as conn:
        return set(conn.scalars(select(runs.c.id).where(compile_filter(filter))))


def order(
    db: Database, sort: str, filter: str | None = None, limit: int | None = None
) -> list[str]:
    q = select(runs.c.id).order_by(*compile_sort(sort)).limit(limit)
    if filter is not None:
        q = q.where(compile_filter(filter))
    with db.read() as conn:
        return list(conn.scalars(q))


def check(db: Database, cases: Mapping[str, set[str]]) -> None:
    got = {f: ids(db, f) for f in cases}
    assert got == dict(cases)


# ---- filters -------------------------------------------------------------------------------


def test_number_comparisons_on_params_skip_string_values_and_missing_keys(db: Database) -> None:
    check(db, {
        "params.C > 1": {"r2", "r3", "r7"},
        "params.C >= 1": {"r2", "r3", "r6", "r7"},
        "params.C < 1": {"r1"},
        "params.C <= 1": {"r1", "r6"},
        "params.C = 1": {"r6"},
        "params.C == 1.0": {"r6"},
        "params.C > -1e1": {"r1", "r2", "r3", "r6", "r7"},
        "params.C < 2.5E0": {"r1", "r2", "r6", "r7"},
        "params.C>1.5": {"r2", "r3"},
        "params.C>=.5": {"r1", "r2", "r3", "r6", "r7"},
    })  # fmt: skip


def test_not_equal_requires_the_param_or_metric_to_be_present(db: Database) -> None:
    check(db, {
        "params.C != 1": {"r1", "r2", "r3", "r7"},
        "params.C <> 1": {"r1", "r2", "r3", "r7"},
        "not params.C = 1": ALL - {"r6"},
        "metrics.val_f1 != 0.92": {"r1", "r4", "r6"},
        "params.kernel != 'rbf'": {"r2", "r4", "r6", "r7"},
    })  # fmt: skip


def test_string_comparisons_on_params_skip_number_values(db: Database) -> None:
    check(db, {
        "params.kernel = 'rbf'": {"r1", "r3"},
        'params.kernel = "rbf"': {"r1", "r3"},
        "params.C = 'auto'": {"r4"},
        "params.C > 'a'": {"r4"},
        # Only case-free ranges: how "RBF" and "rbf" order depends on the database's collation.
        "params.kernel >= 'l' and params.kernel < 'q'": {"r2", "r4"},
        "params.kernel <= '6'": {"r7"},
        "params.kernel = 'it\\'s'": set(),
    })  # fmt: skip


def test_like_is_case_sensitive_and_ilike_is_not(db: Database) -> None:
    check(db, {
        "params.kernel like 'r%'": {"r1", "r3"},
        "params.kernel ilike 'r%'": {"r1", "r3", "r6"},
        "params.kernel LIKE 'R_F'": {"r6"},
        "params.kernel not like 'r%'": {"r2", "r4", "r6", "r7"},
        "params.kernel not ilike 'R%'": {"r2", "r4", "r7"},
        "name like 'svm_%'": {"r3", "r4", "r6"},
        "name ilike 'svm-%'": {"r3", "r4", "r5"},
        "name like '%-%'": {"r1", "r2", "r3", "r4", "r5", "r7"},
        "params.C like 'a%'": {"r4"},
    })  # fmt: skip


def test_like_patterns_escape_wildcards_with_a_backslash(db: Database) -> None:
    check(db, {
        "name like 'svm\\_%'": {"r6"},
        "params.kernel like '50\\%'": {"r7"},
        "params.kernel like '5_\\%'": {"r7"},
        "name like '50\\%%'": {"r7"},
        "name ilike '%\\%%'": {"r7"},
        # GLOB's wildcards (SQLite runs `like` as a GLOB) are plain characters here.
        "name like 'svm*'": set(),
        "name like 'svm[_]4'": set(),
        "name like 'svm?4'": set(),
    })  # fmt: skip


def test_booleans_compare_as_one_and_zero(db: Database) -> None:
    check(db, {
        "params.early_stop = true": {"r1", "r6"},
        "params.early_stop = FALSE": {"r2"},
        "params.early_stop != true": {"r2"},
        "params.early_stop in (true)": {"r1", "r6"},
        "params.early_stop = 1": {"r1", "r6"},
    })  # fmt: skip


def test_metric_comparisons(db: Database) -> None:
    check(db, {
        "metrics.val_f1 >= 0.9": {"r2", "r4", "r6", "r7"},
        "metrics.val_f1 < 0.9": {"r1"},
        "metrics.val_f1 = 0.92": {"r2", "r7"},
        "metrics.loss <= 0.3": {"r2", "r6"},
        "metrics.loss > 0": {"r1", "r2", "r3", "r6"},
    })  # fmt: skip


def test_is_null_means_the_key_is_absent(db: Database) -> None:
    check(db, {
        "params.C is null": {"r5"},
        "params.C is not null": ALL - {"r5"},
        "params.early_stop IS NULL": {"r3", "r4", "r5", "r7"},
        "metrics.val_f1 is null": {"r3", "r5"},
        "metrics.val_f1 = null": {"r3", "r5"},
        "metrics.val_f1 != null": ALL - {"r3", "r5"},
        # r7's loss was logged without a value (NaN): it is present, and matches no comparison.
        "metrics.loss is not null": {"r1", "r2", "r3", "r6", "r7"},
        "metrics.loss >= 0": {"r1", "r2", "r3", "r6"},
    })  # fmt: skip


def test_in_and_not_in(db: Database) -> None:
    check(db, {
        "params.kernel in ('rbf', 'poly')": {"r1", "r3", "r4"},
        "params.C in (1, 2, 'auto')": {"r2", "r4", "r6"},
        "params.C in (1, 2,)": {"r2", "r6"},
        "params.C not in (1, 2)": {"r1", "r3", "r7"},
        "params.C not in (1, 'auto')": {"r1", "r2", "r3", "r7"},
        "params.C NOT IN ('auto')": set(),
        "metrics.val_f1 in (0.92, 0.95)": {"r2", "r4", "r7"},
        "metrics.val_f1 not in (0.92)": {"r1", "r4", "r6"},
        "status in ('failed', 'running')": {"r3", "r5"},
        "status not in ('failed', 'running')": {"r1", "r2", "r4", "r6", "r7"},
        "experiment in ('baseline', 'nope')": {"r1", "r2", "r7"},
    })  # fmt: skip


def test_attributes(db: Database) -> None:
    check(db, {
        "status = 'succeeded'": {"r1", "r2", "r4", "r6", "r7"},
        "STATUS != 'succeeded'": {"r3", "r5"},
        "id = 'r3'": {"r3"},
        "name = 'SVM-3'": {"r5"},
        "experiment = 'tuning'": {"r3", "r4", "r5", "r6"},
        "experiment != 'tuning'": {"r1", "r2", "r7"},
        "experiment like 'base%'": {"r1", "r2", "r7"},
        "experiment is not null": ALL,
        "pipeline = 'train'": ALL - {"r5"},
        "pipeline != 'train'": set(),  # r5 has no pipeline: it matches no comparison
        "pipeline is null": {"r5"},
        "pipeline_version = 2": {"r2"},
        "pipeline_version < 2": ALL - {"r2", "r5"},
        "dataset is null": ALL,
        "started_at is null": {"r5"},
    })  # fmt: skip


def test_times_compare_as_iso_strings_in_utc(db: Database) -> None:
    check(db, {
        "created_at >= '2026-11-01'": {"r3", "r4", "r5", "r6", "r7"},
        "created_at > '2026-11-01'": {"r4", "r5", "r6", "r7"},
        "created_at = '2026-11-01T00:00:00Z'": {"r3"},
        "created_at < '2026-10-02 10:00'": {"r1"},
        "created_at > '2026-11-01T01:00:00+02:00'": {"r3", "r4", "r5", "r6", "r7"},
        "created_at in ('2026-10-01T10:00Z', '2026-11-05T10:00Z')": {"r1", "r7"},
        "started_at < '2026-10-02'": {"r1"},
        "ended_at is null": ALL,
    })  # fmt: skip


def test_not_binds_tighter_than_and_which_binds_tighter_than_or(db: Database) -> None:
    check(db, {
        "params.C > 1 or status = 'failed' and metrics.val_f1 > 0.9": {"r2", "r3", "r7"},
        "(params.C > 1 or status = 'running') and metrics.val_f1 > 0.9": {"r2", "r7"},
        "not params.C > 1": {"r1", "r4", "r5", "r6"},
        "not params.C > 1 and status = 'succeeded'": {"r1", "r4", "r6"},
        "NOT (params.C > 1 AND status = 'succeeded')": {"r1", "r3", "r4", "r5", "r6"},
        "not not params.C > 1": {"r2", "r3", "r7"},
        "status = 'failed' or status = 'running' or params.C = 1": {"r3", "r5", "r6"},
        "((params.C >= 1)) and (metrics.val_f1 >= 0.9 or metrics.loss >= 0.9)":
            {"r2", "r3", "r6", "r7"},
    })  # fmt: skip


def test_the_example_filter(db: Database) -> None:
    example = "params.C > 1 and metrics.val_f1 >= 0.9 and status = 'succeeded'"
    assert ids(db, example) == {"r2", "r7"}


def test_dotted_dashed_and_backticked_names(db: Database) -> None:
    check(db, {
        "params.model.C >= 10": {"r2"},
        "params.`model.C` = 1": {"r1"},
        "params.model.`C` = 1": {"r1"},
        "params.lr-decay = 0.1": {"r3"},
        "params.`my key` = 'x'": {"r1"},
        "params.`my key` is null": ALL - {"r1"},
        "PARAMS.C = 1": {"r6"},
        "params.c = 1": set(),  # names are case-sensitive
    })  # fmt: skip


def test_compile_filter_takes_a_parsed_expression(db: Database) -> None:
    expr = Or((Compare(Field("params", "C"), ">", 4), Not(IsNull(Field("metrics", "val_f1")))))
    with db.read() as conn:
        got = set(conn.scalars(select(runs.c.id).where(compile_filter(expr))))
    assert got == {"r1", "r2", "r3", "r4", "r6", "r7"}


# ---- sorting -------------------------------------------------------------------------------


def test_sort_by_metric_puts_missing_keys_last_in_both_directions(db: Database) -> None:
    # r2 and r7 tie on val_f1 = 0.92: the newer (r7) comes first either way.
    assert order(db, "metrics.val_f1") == ["r1", "r6", "r7", "r2", "r4", "r5", "r3"]
    assert order(db, "metrics.val_f1 asc") == ["r1", "r6", "r7", "r2", "r4", "r5", "r3"]
    assert order(db, "metrics.val_f1 desc") == ["r4", "r7", "r2", "r6", "r1", "r5", "r3"]
    assert order(db, "-metrics.val_f1") == ["r4", "r7", "r2", "r6", "r1", "r5", "r3"]


def test_sort_by_param_puts_numbers_before_strings_before_missing(db: Database) -> None:
    assert order(db, "params.C") == ["r1", "r6", "r7", "r2", "r3", "r4", "r5"]
    assert order(db, "params.C DESC") == ["r3", "r2", "r7", "r6", "r1", "r4", "r5"]
    lowercase = "params.kernel in ('rbf', 'linear', 'poly')"  # collations differ on case
    assert order(db, "params.kernel", lowercase) == ["r2", "r4", "r3", "r1"]
    assert order(db, "-params.kernel", lowercase) == ["r3", "r1", "r4", "r2"]


def test_sort_by_attributes(db: Database) -> None:
    assert order(db, "") == ["r7", "r6", "r5", "r4", "r3", "r2", "r1"]
    assert order(db, "created_at") == ["r1", "r2", "r3", "r4", "r5", "r6", "r7"]
    assert order(db, "id desc") == ["r7", "r6", "r5", "r4", "r3", "r2", "r1"]
    assert order(db, "status") == ["r3", "r5", "r7", "r6", "r4", "r2", "r1"]
    assert order(db, "-pipeline_version") == ["r2", "r7", "r6", "r4", "r3", "r1", "r5"]
    assert order(db, "pipeline_version") == ["r7", "r6", "r4", "r3", "r1", "r2", "r5"]
    assert order(db, "experiment desc") == ["r6", "r5", "r4", "r3", "r7", "r2", "r1"]


def test_sort_by_several_keys(db: Database) -> None:
    assert order(db, "status, -metrics.val_f1") == ["r3", "r5", "r4", "r7", "r2", "r6", "r1"]
    assert order(db, "experiment, params.C desc") == ["r2", "r7", "r1", "r3", "r6", "r4", "r5"]


def test_sort_with_filter_and_limit(db: Database) -> None:
    assert order(db, "-metrics.val_f1", "status = 'succeeded'", limit=3) == ["r4", "r7", "r2"]


def test_parse_sort_reads_directions() -> None:
    assert parse_sort(" metrics.val_f1 DESC , -params.`a b`, name asc") == (
        SortKey(Field("metrics", "val_f1"), descending=True),
        SortKey(Field("params", "a b"), descending=True),
        SortKey(Field("run", "name")),
    )
    assert parse_sort("") == ()


# ---- the AST -------------------------------------------------------------------------------


def test_parse_builds_the_ast() -> None:
    assert parse("params.C > 1 and not (metrics.f1 in (1, 2) or status is not null)") == And((
        Compare(Field("params", "C"), ">", 1),
        Not(Or((
            In(Field("metrics", "f1"), (1, 2)),
            IsNull(Field("run", "status"), negated=True),
        ))),
    ))  # fmt: skip
    assert parse("created_at >= '2026-11-01T02:00+02:00'") == Compare(
        Field("run", "created_at"), ">=", datetime(2026, 11, 1, tzinfo=UTC)
    )
    assert parse("params.x not like 'a\\'b'") == Compare(Field("params", "x"), "not like", "a'b")
    assert parse("params.x = null") == IsNull(Field("params", "x"))
    assert parse("params.x != null") == IsNull(Field("params", "x"), negated=True)


def test_fields_of_lists_every_field_once() -> None:
    expr = parse(
        "params.C > 1 and metrics.val_f1 >= 0.9 and status = 'succeeded' "
        "or not (params.C < 0 or params.`my key` is null)"
    )
    assert fields_of(expr) == {"params.C", "metrics.val_f1", "status", "params.my key"}


# ---- errors --------------------------------------------------------------------------------

ATTRIBUTES = (
    "code, created_at, data_version, dataset, ended_at, experiment, id, name, parent_id, "
    "pipeline, pipeline_version, started_at, status"
)
FIELDS = f"params.NAME, metrics.NAME or a run attribute ({ATTRIBUTES})"
OPERATORS = "(=, !=, <, <=, >, >=, like, ilike, in, not in, is null or is not null)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("params.C >", "at column 11: expected a value after '>'."),
        ("", f"at column 1: expected a field: {FIELDS}."),
        ("params.C", f"at column 9: expected an operator after 'params.C' {OPERATORS}."),
        ("params.C 1",
         f"at column 10: expected an operator after 'params.C' {OPERATORS}, found '1'."),
        ("params.C > 1 and", f"at column 17: expected a field: {FIELDS}."),
        ("and = 1", f"at column 1: expected a field: {FIELDS}, found 'and'."),
        ("5 > params.C", f"at column 1: expected a field: {FIELDS}, found '5'."),
        ("foo = 1", f"at column 1: unknown field 'foo'; expected {FIELDS}."),
        ("param.C = 1", f"at column 1: unknown field 'param.C'; expected {FIELDS}."),
        ("params. = 1", "at column 8: expected a name after 'params.'."),
        ("params.C = 'abc", "at column 12: unterminated string: expected a closing ' to end it."),
        ('name = "abc\\"', 'at column 8: unterminated string: expected a closing " to end it.'),
        ("params.`abc = 1", "at column 8: unterminated name: expected a closing ` to end it."),
        ("params.C in ()", "at column 14: expected at least one value in 'in ()'."),
        ("params.C in 1", "at column 13: expected '(' after 'in', found '1'."),
        ("params.C in (1 2)",
         "at column 16: expected ',' or ')' in the list opened at column 13, found '2'."),
        ("params.C in (1,", "at column 16: expected a value in the list after 'in'."),
        ("params.C in (null)", "at column 14: null cannot be in a list; use 'is null'."),
        ("params.C like 5",
         "at column 15: expected a quoted pattern after 'like', such as '%adam%'."),
        ("metrics.acc like 'a%'",
         "at column 13: expected a text field before 'like': metrics are numbers."),
        ("created_at ilike '2026%'",
         "at column 12: expected a text field before 'ilike': created_at is a time."),
        ("metrics.acc = 'high'", "at column 15: expected a number after '=': metrics are numbers."),
        ("metrics.acc in (1, true)",
         "at column 20: expected a number in the list after 'in': metrics are numbers."),
        ("status = succeeded",
         "at column 10: expected a value after '=', found 'succeeded'; quote text: 'succeeded'."),
        ("status = 1", "at column 10: expected a quoted string after '=': status is text."),
        ("pipeline_version = '2'",
         "at column 20: expected a number after '=': pipeline_version is a number."),
        ("created_at > 5",
         "at column 14: expected a time in quotes after '>', such as '2026-11-01'."),
        ("created_at > 'yesterday'",
         "at column 14: expected an ISO time such as '2026-11-01' or '2026-11-01T12:30:00Z' "
         "after '>', found 'yesterday'."),
        ("(params.C > 1", "at column 14: expected ')' to close the '(' at column 1."),
        ("params.C > 1)",
         "at column 13: expected 'and', 'or' or the end of the filter, found ')'."),
        ("params.C > 1 status = 'x'",
         "at column 14: expected 'and', 'or' or the end of the filter, found 'status'."),
        ("params.C > 1 && status = 'x'", "at column 14: unexpected character '&'; write 'and'."),
        ("params.C = 1;", "at column 13: unexpected character ';'."),
        ("params.C < null",
         "at column 12: expected a number or a string after '<'; "
         "test for a missing value with 'is null'."),
        ("params.C < true",
         "at column 12: expected a number or a string after '<'; "
         "true and false compare only with =, != and in."),
        ("params.C = 1abc", "at column 12: expected a number, found '1abc'."),
        ("params.C = 1.2.3", "at column 12: expected a number, found '1.2.3'."),
        ("params.C > -x", "at column 12: expected a value after '>', found '-'."),
        ("params.C not = 1",
         "at column 14: expected 'in', 'like' or 'ilike' after 'not', found '='."),
        ("params.C is 1", "at column 13: expected 'null' or 'not null' after 'is', found '1'."),
        ("params.C is not 1", "at column 17: expected 'null' after 'is not', found '1'."),
    ],
)  # fmt: skip
def test_malformed_filter_is_refused_with_its_column(text: str, message: str) -> None:
    whole = f'Cannot parse filter "{text}" {message}'
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(whole)}$") as exc:
        compile_filter(text)
    column = int(message.split()[2].rstrip(":"))
    assert exc.value.details == {"filter": text, "column": column}


def test_a_multiline_filter_is_quoted_on_one_line() -> None:
    whole = "Cannot parse filter \"params.C =  \" at column 13: expected a value after '='."
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(whole)}$"):
        parse("params.C =\n ")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("metrics.x,", f"at column 11: expected a field: {FIELDS}."),
        ("metrics.x up",
         "at column 11: expected 'asc', 'desc', ',' or the end of the sort, found 'up'."),
        ("metrics.x asc desc",
         "at column 15: expected ',' or the end of the sort, found 'desc'."),
        ("-metrics.x desc",
         "at column 12: expected ',' or the end of the sort: "
         "the '-' already sorts metrics.x descending."),
        ("loss", f"at column 1: unknown field 'loss'; expected {FIELDS}."),
        ("-", f"at column 2: expected a field: {FIELDS}."),
    ],
)  # fmt: skip
def test_malformed_sort_is_refused_with_its_column(spec: str, message: str) -> None:
    whole = f'Cannot parse sort "{spec}" {message}'
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(whole)}$"):
        compile_sort(spec)


# ---- at scale ------------------------------------------------------------------------------


def test_filter_sort_and_limit_over_two_thousand_runs(empty_db: Database) -> None:
    rnd = random.Random(7)
    t0 = datetime(2026, 6, 1)
    rows = []
    for i in range(2000):
        params: dict[str, Any] = {f"p{k}": round(rnd.uniform(0, 10), 3) for k in range(16)}
        params |= {f"s{k}": rnd.choice(["adam", "sgd", "rmsprop"]) for k in range(3)}
        params["flag"] = rnd.random() < 0.5
        metrics = {f"m{k}": rnd.random() for k in range(5) if rnd.random() < 0.9}
        status = rnd.choice(["succeeded"] * 4 + ["failed"])
        created = (t0 + timedelta(minutes=i)).isoformat()
        rows.append(R(f"run{i:05d}", f"exp{i % 4}", f"run-{i}", status, created, params, metrics))
    with empty_db.session() as conn:
        insert_runs(conn, rows)

    got = order(
        empty_db,
        "-metrics.m0, params.p1",
        "params.p0 > 2.5 and params.s0 in ('adam', 'sgd') "
        "and (metrics.m1 >= 0.2 or params.flag = true) "
        "and status = 'succeeded' and experiment != 'exp3'",
        limit=100,
    )

    def keep(r: R) -> bool:
        return (
            r.params["p0"] > 2.5
            and r.params["s0"] in ("adam", "sgd")
            and ((r.metrics.get("m1") or -1.0) >= 0.2 or r.params["flag"] is True)
            and r.status == "succeeded"
            and r.experiment != "exp3"
        )

    def rank(r: R) -> tuple[Any, ...]:
        m0 = r.metrics.get("m0")
        created = datetime.fromisoformat(r.created_at).timestamp()
        return (m0 is None, -(m0 or 0.0), r.params["p1"], -created, r.id)

    expected = [r.id for r in sorted(filter(keep, rows), key=rank)[:100]]
    assert len(expected) == 100
    assert got == expected
