from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from assay.data.checks import Checks, ColumnChecks, dump_checks, load_checks
from assay.data.reading import read_table
from assay.data.validation import CheckResult, ValidationReport, validate_table
from assay.errors import InvalidArgumentError
from assay.serialize import dump, load


def _checks(text: str) -> Checks:
    return load_checks(textwrap.dedent(text), "checks.yaml")


def _result(df: pd.DataFrame, column: str, spec: str, check: str) -> CheckResult:
    """The one result for `check` on `column` under the inline column spec `spec`."""
    checks = load_checks(f"columns: {{{column!r}: {spec}}}", "checks.yaml")
    found = [r for r in validate_table(df, checks, "t.csv") if r.check == check]
    assert len(found) == 1
    return found[0]


# --- load_checks ----------------------------------------------------------------------


def test_load_checks_reads_every_key_of_the_format() -> None:
    checks = _checks(
        """
        files: "*.csv"
        row_count: {min: 100, max: 1000000}
        columns:
          age:
            type: integer
            required: true
            not_null: true
            min: 0
            max: 120
            unique: true
            allowed: [1, 2, 3]
            regex: "^[0-9]+$"
            max_missing_share: 0.05
          note:
        """
    )

    assert checks.files == ("*.csv",)
    assert (checks.row_count_min, checks.row_count_max) == (100, 1_000_000)
    assert checks.columns == (
        ColumnChecks(
            name="age",
            type="integer",
            required=True,
            not_null=True,
            min=0,
            max=120,
            unique=True,
            allowed=(1, 2, 3),
            regex="^[0-9]+$",
            max_missing_share=0.05,
        ),
        ColumnChecks(name="note"),
    )


def test_load_checks_accepts_json() -> None:
    checks = load_checks('{"columns": {"id": {"unique": true, "type": "string"}}}', "c.json")

    assert checks.columns == (ColumnChecks(name="id", type="string", unique=True),)


def test_empty_checks_file_checks_nothing() -> None:
    checks = load_checks("", "checks.yaml")

    assert checks == Checks(source="checks.yaml")
    assert validate_table(pd.DataFrame({"a": [1]}), checks, "t.csv") == ()


def test_yes_no_and_dates_stay_text_in_checks_files() -> None:
    checks = _checks(
        """
        columns:
          country: {allowed: [NO, SE, yes, 2024-01-31, true]}
          yes: {}
        """
    )

    assert checks.columns[0].allowed == ("NO", "SE", "yes", "2024-01-31", True)
    assert checks.columns[1].name == "yes"


@pytest.mark.parametrize(
    "text",
    [
        "",
        'files: ["*.csv", raw/*.parquet]\nrow_count: {max: 10}',
        "columns: {b: {min: 0.00001, max: 1.0e+3}, a: {required: false, not_null: true}}",
        "columns: {c: {allowed: [NO, 2024-01-31, true, 1, 2.5, 'x: y'], regex: '^[A-Z]'}}",
        "columns: {d: {type: datetime, unique: true, max_missing_share: 0}, yes: {}}",
    ],
)
def test_dump_checks_reads_back_as_the_same_checks(text: str) -> None:
    checks = load_checks(text, "checks.yaml")

    assert load_checks(dump_checks(checks), "checks.yaml") == checks


def test_unknown_key_in_checks_file_is_named() -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"Checks file 'checks\.yaml': unknown key 'columns\.age\.maxx'\. "
            r"Did you mean 'max'\? Valid keys here: allowed, max, max_missing_share, min, "
            r"not_null, regex, required, type, unique\."
        ),
    ):
        _checks("columns: {age: {maxx: 3}}")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colums: {}", "colums"),
        ("row_count: {minimum: 3}", "row_count.minimum"),
    ],
)
def test_unknown_keys_at_other_levels_are_named_with_their_path(text: str, key: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"unknown key '{key}'"):
        _checks(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("columns: {age: {min: ten}}", "columns.age.min must be a number, got 'ten'"),
        ("columns: {age: {max: true}}", "columns.age.max must be a number, got true"),
        ("columns: {age: {not_null: 'yes'}}", "columns.age.not_null must be true or false"),
        ("columns: {age: {type: int}}", "columns.age.type must be one of integer, float, number"),
        ("columns: {age: {allowed: a}}", "columns.age.allowed must be a non-empty list"),
        ("columns: {age: {allowed: [a, null]}}", r"columns.age.allowed\[1\] must be a string"),
        ("columns: {age: {regex: 5}}", "columns.age.regex must be a regular expression"),
        (
            "columns: {age: {max_missing_share: 1.5}}",
            "columns.age.max_missing_share must be between 0 and 1, got 1.5",
        ),
        ("columns: {age: [1]}", "columns.age must be a mapping with keys allowed"),
        ("columns: [age]", "columns must be a mapping of column name to checks, got a list"),
        ("columns: {7: {}}", "columns.7 names a column with 7, not text"),
        ("row_count: {min: 1.5}", "row_count.min must be a whole number of rows"),
        ("row_count: 10", "row_count must be a mapping with keys max, min, got 10"),
        ("files: {a: 1}", "files must be a glob or a list of globs, got a mapping"),
        ("[1, 2]", "the top level must be a mapping with keys columns, files, row_count"),
    ],
)
def test_wrong_value_in_checks_file_names_the_key_path(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=rf"^Checks file 'checks\.yaml': {problem}"):
        _checks(text)


def test_min_above_max_is_rejected() -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=r"columns\.age\.min \(10\) is greater than columns\.age\.max \(5\)",
    ):
        _checks("columns: {age: {min: 10, max: 5}}")
    with pytest.raises(InvalidArgumentError, match=r"row_count\.min \(9\) is greater than"):
        _checks("row_count: {min: 9, max: 2}")


def test_invalid_regex_is_rejected_when_loading() -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=r"columns\.code\.regex is not a valid regular expression: missing \)",
    ):
        _checks("columns: {code: {regex: '([A-Z]'}}")


def test_yaml_syntax_error_names_the_file_and_line() -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"Checks file 'checks\.yaml' is not valid YAML: "
    ) as info:
        _checks("columns:\n  age: {min: 1\n")

    assert "line 3" in str(info.value)
    assert str(info.value).endswith("Fix the syntax; JSON is accepted too.")


def test_a_checks_file_nested_a_thousand_levels_is_an_error_not_a_crash() -> None:
    for text in (
        "x: " + "[" * 5000 + "]" * 5000,
        "columns:\n  a: " + "{b: " * 5000 + "1" + "}" * 5000,
    ):
        with pytest.raises(InvalidArgumentError, match=r"Checks file 'c\.yaml': more than 32"):
            load_checks(text, "c.yaml")


# --- matches --------------------------------------------------------------------------


def test_checks_without_files_match_every_tabular_file() -> None:
    checks = _checks("columns: {}")

    assert checks.matches("a.csv")
    assert checks.matches("deep/down/b.parquet")
    assert not checks.matches("README.md")


def test_files_glob_matches_the_path_or_the_file_name() -> None:
    checks = _checks('files: "raw/*.csv"')
    by_name = _checks('files: ["train.csv", "*.tsv"]')

    assert checks.matches("raw/a.csv")
    assert not checks.matches("clean/a.csv")
    assert by_name.matches("splits/2024/train.csv")
    assert by_name.matches("x.tsv")
    assert not by_name.matches("test.csv")
    assert not _checks('files: "*"').matches("notes.txt")  # only tables are checked


# --- validate_table: one passing and one failing case per check ------------------------


def test_row_count_check_passes_within_bounds_and_fails_outside() -> None:
    df = pd.DataFrame({"a": range(5)})

    inside = validate_table(df, _checks("row_count: {min: 5, max: 5}"), "t.csv")
    below = validate_table(df, _checks("row_count: {min: 6}"), "t.csv")

    assert inside == (CheckResult("t.csv", None, "row_count", True, 0, "5 rows, between 5 and 5."),)
    assert below == (
        CheckResult("t.csv", None, "row_count", False, 1, "5 rows, expected at least 6."),
    )


def test_missing_required_column_fails_and_skips_its_other_checks() -> None:
    df = pd.DataFrame({"a": [1], "b": [2]})
    checks = _checks("columns: {age: {not_null: true, min: 0}, a: {}}")

    results = validate_table(df, checks, "t.csv")

    assert [(r.column, r.check, r.passed) for r in results] == [
        ("age", "required", False),
        ("a", "required", True),
    ]
    assert results[0].message == "Column 'age' is missing; the table has 'a', 'b'."
    assert results[1].message == "Column 'a' is present."


def test_missing_optional_column_gives_no_results() -> None:
    checks = _checks("columns: {age: {required: false, min: 0}}")

    assert validate_table(pd.DataFrame({"a": [1]}), checks, "t.csv") == ()


def test_not_null_check() -> None:
    ok = _result(pd.DataFrame({"a": [1, 2]}), "a", "{not_null: true}", "not_null")
    bad = _result(pd.DataFrame({"a": [1.0, np.nan, None]}), "a", "{not_null: true}", "not_null")

    assert (ok.passed, ok.failed_count, ok.message) == (
        True,
        0,
        "Column 'a': no values are missing.",
    )
    assert (bad.passed, bad.failed_count) == (False, 2)
    assert bad.message == "Column 'a': missing in 2 rows."
    assert bad.examples == ({"row": 1, "value": None}, {"row": 2, "value": None})


def test_min_check() -> None:
    ok = _result(pd.DataFrame({"age": [0, 5, 120]}), "age", "{min: 0}", "min")
    bad = _result(pd.DataFrame({"age": [3, -1, np.nan, -2.5]}), "age", "{min: 0}", "min")

    assert (ok.passed, ok.message) == (True, "Column 'age': no values are below 0.")
    assert (bad.passed, bad.failed_count, bad.message) == (
        False,
        2,
        "Column 'age': below 0 in 2 rows.",
    )
    assert bad.examples == ({"row": 1, "value": -1.0}, {"row": 3, "value": -2.5})


def test_max_check() -> None:
    ok = _result(pd.DataFrame({"age": [0, 120]}), "age", "{max: 120}", "max")
    bad = _result(pd.DataFrame({"age": [121, 5]}), "age", "{max: 120}", "max")

    assert ok.passed
    assert (bad.passed, bad.failed_count, bad.examples) == (False, 1, ({"row": 0, "value": 121},))


def test_bounds_count_text_that_is_not_a_number_as_failing() -> None:
    df = pd.DataFrame({"age": ["4", "unknown", "200", None]})

    result = _result(df, "age", "{max: 120}", "max")

    assert (result.passed, result.failed_count) == (False, 2)
    assert result.message == "Column 'age': above 120 in 1 row, not a number in 1 row."
    assert result.examples == ({"row": 1, "value": "unknown"}, {"row": 2, "value": "200"})


def test_unique_check() -> None:
    ok = _result(pd.DataFrame({"id": [1, 2, np.nan, np.nan]}), "id", "{unique: true}", "unique")
    bad = _result(pd.DataFrame({"id": ["a", "b", "a", "c", "a"]}), "id", "{unique: true}", "unique")

    assert (ok.passed, ok.message) == (True, "Column 'id': all values are unique.")
    assert (bad.passed, bad.failed_count, bad.message) == (
        False,
        3,
        "Column 'id': repeated in 3 rows.",
    )
    assert [e["row"] for e in bad.examples] == [0, 2, 4]


def test_allowed_check() -> None:
    spec = "{allowed: [NO, SE, DK]}"
    ok = _result(pd.DataFrame({"c": ["NO", "SE", None]}), "c", spec, "allowed")
    bad = _result(pd.DataFrame({"c": ["NO", "FI", "se"]}), "c", spec, "allowed")

    assert (ok.passed, ok.message) == (
        True,
        "Column 'c': all values are the allowed values ('NO', 'SE', 'DK').",
    )
    assert (bad.passed, bad.failed_count) == (False, 2)
    assert bad.message == "Column 'c': not the allowed values ('NO', 'SE', 'DK') in 2 rows."
    assert bad.examples == ({"row": 1, "value": "FI"}, {"row": 2, "value": "se"})


def test_allowed_numbers_match_a_numeric_column() -> None:
    result = _result(pd.DataFrame({"r": [1, 2, 5]}), "r", "{allowed: [1, 2, 3]}", "allowed")

    assert (result.passed, result.examples) == (False, ({"row": 2, "value": 5},))


def test_regex_check_searches_each_value() -> None:
    spec = r'{regex: "^[A-Z]{2}$"}'
    ok = _result(pd.DataFrame({"c": ["NO", "SE", None]}), "c", spec, "regex")
    bad = _result(pd.DataFrame({"c": ["NO", "Sweden", "dk", 42]}), "c", spec, "regex")

    assert (ok.passed, ok.message) == (True, "Column 'c': all values match '^[A-Z]{2}$'.")
    assert (bad.passed, bad.failed_count) == (False, 3)
    assert bad.message == "Column 'c': no match for '^[A-Z]{2}$' in 3 rows."
    assert [e["value"] for e in bad.examples] == ["Sweden", "dk", 42]


def test_regex_check_uses_python_syntax_on_pandas_string_columns() -> None:
    df = pd.DataFrame({"c": pd.Series(["ab1", "ab", "x1"], dtype="str")})

    result = _result(df, "c", r'{regex: "^(?=ab)\\w+\\d$"}', "regex")  # a lookahead

    assert (result.passed, [e["row"] for e in result.examples]) == (False, [1, 2])


def test_max_missing_share_check() -> None:
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0]})

    ok = _result(df, "a", "{max_missing_share: 0.25}", "max_missing_share")
    bad = _result(df, "a", "{max_missing_share: 0.1}", "max_missing_share")

    assert ok.passed
    assert ok.message == "Column 'a': 25.0% of values missing (1 of 4), within the limit of 25.0%."
    assert (bad.passed, bad.failed_count, bad.examples) == (False, 1, ({"row": 1, "value": None},))
    assert bad.message == "Column 'a': 25.0% of values missing (1 of 4), over the limit of 10.0%."


@pytest.mark.parametrize(
    ("type_", "good", "bad", "bad_rows"),
    [
        ("integer", [1, 2, None], [1.0, 2.5, "x"], [1, 2]),
        ("integer", pd.Series([1, 2], dtype="Int64"), [True, False], [0, 1]),
        ("float", [1.5, 2.0, np.inf], ["1.5", "abc", None], [1]),
        ("number", [1, 2.5, None], pd.Series([True, False]), [0, 1]),
        ("string", ["a", "b", None], ["a", 1, 2.5], [1, 2]),
        ("string", pd.Series(["a", "b"], dtype="category"), [1, 2], [0, 1]),
        ("boolean", [True, False, None], [True, "yes", 1], [1, 2]),
        (
            "datetime",
            pd.to_datetime(pd.Series(["2024-01-01", None])),
            ["2024-01-31", "2024-02-30", "soon", "2024-03-01T10:00:00+01:00"],
            [1, 2],
        ),
    ],
)
def test_type_check(type_: str, good: object, bad: object, bad_rows: list[int]) -> None:
    ok = _result(pd.DataFrame({"v": good}), "v", f"{{type: {type_}}}", "type")
    failed = _result(pd.DataFrame({"v": bad}), "v", f"{{type: {type_}}}", "type")

    assert ok.passed, ok.message
    assert not failed.passed
    assert failed.failed_count == len(bad_rows)
    assert [e["row"] for e in failed.examples] == bad_rows


def test_datetime_type_in_a_mixed_object_column_parses_only_text() -> None:
    values = ["2024-01-31", pd.Timestamp("2024-02-01"), 1_700_000_000, "later", None]
    df = pd.DataFrame({"v": pd.Series(values, dtype=object)})

    result = _result(df, "v", "{type: datetime}", "type")

    assert result.examples == ({"row": 2, "value": 1_700_000_000}, {"row": 3, "value": "later"})


def test_integer_type_accepts_a_csv_integer_column_with_a_gap() -> None:
    df = read_table(b"age,name\n31,ann\n,bob\n47,cy\n", "people.csv")
    assert str(df["age"].dtype) == "float64"  # one gap and pandas reads floats

    result = _result(df, "age", "{type: integer}", "type")

    assert (result.passed, result.message) == (True, "Column 'age': all values are integers.")


def test_integer_type_fails_only_the_cell_that_made_a_csv_column_text() -> None:
    df = read_table(b"age\n31\nforty\n47\n", "people.csv")

    result = _result(df, "age", "{type: integer}", "type")

    assert (result.failed_count, result.examples) == (1, ({"row": 1, "value": "forty"},))
    assert result.message == "Column 'age': not integers in 1 row."


def test_examples_are_capped_at_five_and_json_friendly() -> None:
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=8, freq="h")})

    result = _result(df, "t", "{max: 0}", "max")

    assert result.failed_count == 8
    assert len(result.examples) == 5
    assert result.examples[0] == {"row": 0, "value": "2024-01-01T00:00:00"}
    json.dumps([dict(e) for e in result.examples], allow_nan=False)


def test_infinite_values_are_reported_as_text_in_examples() -> None:
    result = _result(pd.DataFrame({"x": [1.0, np.inf]}), "x", "{max: 10}", "max")

    assert result.examples == ({"row": 1, "value": "inf"},)


def test_results_come_in_file_order_of_checks() -> None:
    checks = _checks(
        """
        row_count: {min: 1}
        columns:
          a: {type: integer, not_null: true, min: 0, max: 9, unique: true}
          b: {regex: "^x", allowed: [x1, x2], max_missing_share: 0.5}
        """
    )
    df = pd.DataFrame({"a": [1, 2], "b": ["x1", "x2"]})

    results = validate_table(df, checks, "data/t.csv")

    assert [(r.column, r.check) for r in results] == [
        (None, "row_count"),
        ("a", "required"),
        ("a", "type"),
        ("a", "not_null"),
        ("a", "min"),
        ("a", "max"),
        ("a", "unique"),
        ("b", "required"),
        ("b", "max_missing_share"),
        ("b", "allowed"),
        ("b", "regex"),
    ]
    assert all(r.passed and r.file == "data/t.csv" for r in results)


def test_iris_passes_checks_on_its_measurements() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    iris: pd.DataFrame = datasets.load_iris(as_frame=True).frame
    checks = _checks(
        """
        row_count: {min: 150, max: 150}
        columns:
          sepal length (cm): {type: float, not_null: true, min: 4.3, max: 7.9}
          petal width (cm): {type: number, min: 0.1, max: 2.5}
          target: {type: integer, allowed: [0, 1, 2], unique: true}
        """
    )

    report = ValidationReport.from_results(validate_table(iris, checks, "iris.csv"))

    assert not report.passed
    assert [(r.column, r.check, r.failed_count) for r in report.failures] == [
        ("target", "unique", 150)
    ]


# --- ValidationReport -----------------------------------------------------------------


def test_report_lists_failures_and_round_trips_through_json() -> None:
    df = pd.DataFrame({"a": [1, None, 3]})
    results = validate_table(df, _checks("columns: {a: {not_null: true, min: 2}, b: {}}"), "t.csv")

    report = ValidationReport.from_results(results)
    again = load(ValidationReport, json.loads(json.dumps(dump(report), allow_nan=False)))

    assert not report.passed
    assert [(r.column, r.check) for r in report.failures] == [
        ("a", "not_null"),
        ("a", "min"),
        ("b", "required"),
    ]
    assert again == report


def test_report_of_passing_results_passes() -> None:
    results = validate_table(pd.DataFrame({"a": [1]}), _checks("columns: {a: {}}"), "t.csv")

    report = ValidationReport.from_results(results)

    assert report.passed
    assert report.failures == ()
