"""Profiles, table diffs and validation as the data repository uses them, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.data.checks import load_checks
from assay.errors import InvalidArgumentError, ValidationFailedError
from assay.serialize import dump
from assay.workspace import Workspace

CSV_V1 = "id,age,city\n1,34,Oslo\n2,51,Rome\n3,28,Oslo\n4,45,Lima\n"
CSV_V2 = "id,age,city,score\n1,34,Oslo,0.5\n2,51,Rome,0.7\n5,19,Kiev,0.1\n"


def csv(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_commit_profiles_each_table_once_per_content(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("people", csv(tmp_path, CSV_V1))
    _, profiles = ws.data.profile("people@1")
    prof = profiles["people.csv"]
    assert prof.rows == 4
    by_name = {c.name: c for c in prof.columns}
    assert by_name["age"].type == "integer"
    assert (by_name["age"].min, by_name["age"].max) == (28, 51)
    assert by_name["city"].distinct == 3
    assert by_name["city"].top[0] == ("Oslo", 2)


def test_profile_of_a_version_without_tables_is_a_clear_error(
    ws: Workspace, tmp_path: Path
) -> None:
    ws.data.commit("notes", csv(tmp_path, "hello", name="notes.txt"))
    with pytest.raises(InvalidArgumentError, match="no tabular files"):
        ws.data.profile("notes@1")


def test_diff_of_tables_counts_rows_and_columns(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("people", csv(tmp_path, CSV_V1))
    ws.data.commit("people", csv(tmp_path, CSV_V2))
    d = ws.data.diff("people@1", "people@2")
    td = d.tables["people.csv"]
    assert (td.rows_old, td.rows_new) == (4, 3)
    assert (td.rows_added, td.rows_removed) == (1, 2)
    assert td.columns_added == ("score",)
    assert td.columns_removed == ()
    shifted = {(s.column, s.stat) for s in td.stat_shifts}
    assert ("age", "mean") in shifted


def test_retyped_column_is_reported(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("t", csv(tmp_path, "a,b\n1,x\n2,y\n", "t.csv"))
    ws.data.commit("t", csv(tmp_path, "a,b\n1.5,x\n2.5,y\n", "t.csv"))
    td = ws.data.diff("t@1", "t@2").tables["t.csv"]
    assert td.columns_retyped == (("a", "integer", "float"),)


MESSY = {
    "semicolons.csv": b"city;price\nOslo;1,5\nRome;2,25\n",
    "latin1.csv": "nom,ville\nMüller,Zürich\nFrançois,Besançon\n".encode("latin-1"),
    "empty.csv": b"",
    "ragged.csv": b"a,b\n1,2\n3,4,5\n",
    "junk.csv": b"\x00\x01\x02\xff" * 300,
}


def messy(tmp_path: Path) -> Path:
    folder = tmp_path / "messy"
    folder.mkdir()
    for name, data in MESSY.items():
        (folder / name).write_bytes(data)
    return folder


def test_any_file_commits_and_its_profile_says_what_it_is(ws: Workspace, tmp_path: Path) -> None:
    result = ws.data.commit("messy", messy(tmp_path))
    assert result.created
    assert result.version.file_count == 5
    _, profiles = ws.data.profile("messy@1")

    semi = profiles["semicolons.csv"]
    assert ([c.name for c in semi.columns], semi.rows, semi.delimiter) == (
        ["city", "price"],
        2,
        ";",
    )
    latin = profiles["latin1.csv"]
    assert latin.encoding == "cp1252"
    assert {v for v, _ in latin.columns[0].top} == {"Müller", "François"}
    assert (profiles["empty.csv"].rows, profiles["empty.csv"].columns) == (0, ())
    assert profiles["empty.csv"].error is None
    assert "Expected 2 fields in line 3, saw 3" in str(profiles["ragged.csv"].error)
    assert "binary, not text" in str(profiles["junk.csv"].error)
    assert ws.data.read_file(result.version, "junk.csv") == MESSY["junk.csv"]


def test_a_commit_stores_bytes_and_profiles_nothing(ws: Workspace, tmp_path: Path) -> None:
    from assay.data.repository import DataRepository

    version = ws.data.commit("people", csv(tmp_path, CSV_V1)).version
    [entry] = ws.data.files(version)
    with ws.data.db.read() as s:
        assert DataRepository(s).profile(entry.hash) is None  # made when first asked for
    ws.data.profile("people@1")
    with ws.data.db.read() as s:
        assert DataRepository(s).profile(entry.hash) is not None


def test_a_profile_of_an_older_format_is_made_again(ws: Workspace, tmp_path: Path) -> None:
    from assay.data.repository import DataRepository

    version = ws.data.commit("t", csv(tmp_path, "a,b\n1,\n2,\n", "t.csv")).version
    [entry] = ws.data.files(version)
    old = {"rows": 2, "columns": [{"name": "b", "type": "float", "missing": 2,
                                    "missing_share": 1.0, "distinct": 0}]}  # fmt: skip
    with ws.data.db.session() as s:
        DataRepository(s).put_profile(entry.hash, old)
    profile = ws.data.profile("t@1")[1]["t.csv"]
    assert [c.type for c in profile.columns] == ["integer", "empty"]


def test_checks_on_a_file_that_is_no_table_fail_on_that(ws: Workspace, tmp_path: Path) -> None:
    checks = load_checks('files: "ragged.csv"\nrow_count: {min: 1}\n', "checks.yaml")
    with pytest.raises(ValidationFailedError) as info:
        ws.data.commit("messy", messy(tmp_path), checks=checks)
    [failure] = [r for r in info.value.details["report"]["results"] if not r["passed"]]
    assert (failure["file"], failure["check"]) == ("ragged.csv", "readable")
    assert "Expected 2 fields" in failure["message"]


def test_a_diff_names_a_changed_file_that_is_no_table(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("t", csv(tmp_path, "a,b\n1,2\n", "t.csv"))
    ws.data.commit("t", csv(tmp_path, "a,b\n1,2\n3,4,5\n", "t.csv"))
    d = ws.data.diff("t@1", "t@2")
    assert d.tables == {}
    assert "Expected 2 fields" in d.unreadable["t.csv"]


def test_diff_pairs_rows_by_id_or_the_key_given(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("people", csv(tmp_path, CSV_V1))
    ws.data.commit("people", csv(tmp_path, CSV_V1.replace("2,51,Rome", "2,52,Rome")))
    td = ws.data.diff("people@1", "people@2").tables["people.csv"]
    assert (td.key, td.rows_unchanged, td.rows_changed) == ("id", 3, 1)
    assert dump(td.examples[0]) == {"row": "id=2", "column": "age", "old": "51", "new": "52"}
    by_age = ws.data.diff("people@1", "people@2", key="age").tables["people.csv"]
    assert (by_age.rows_added, by_age.rows_removed) == (1, 1)
    with pytest.raises(InvalidArgumentError, match="'Oslo' appears more than once"):
        ws.data.diff("people@1", "people@2", key="city")
    with pytest.raises(InvalidArgumentError, match="No changed table has a column 'nope'"):
        ws.data.diff("people@1", "people@2", key="nope")


CHECKS = """
columns:
  age: {type: integer, min: 18, max: 50}
  city: {allowed: [Oslo, Rome, Lima]}
"""


def test_failing_checks_gate_the_commit(ws: Workspace, tmp_path: Path) -> None:
    checks = load_checks(CHECKS, "checks.yaml")
    with pytest.raises(ValidationFailedError, match="nothing was committed") as info:
        ws.data.commit("people", csv(tmp_path, CSV_V1), checks=checks)
    assert ws.data.datasets() == []
    failures = [r for r in info.value.details["report"]["results"] if not r["passed"]]
    assert [(f["column"], f["check"], f["failed_count"]) for f in failures] == [("age", "max", 1)]


def test_allow_invalid_commits_and_marks_the_version_failed(ws: Workspace, tmp_path: Path) -> None:
    checks = load_checks(CHECKS, "checks.yaml")
    result = ws.data.commit("people", csv(tmp_path, CSV_V1), checks=checks, allow_invalid=True)
    assert result.created
    assert result.version.validation == "failed"
    assert ws.data.resolve("people@1").validation == "failed"


def test_passing_checks_mark_the_version_passed(ws: Workspace, tmp_path: Path) -> None:
    checks = load_checks("columns:\n  age: {min: 0}\n", "checks.yaml")
    result = ws.data.commit("people", csv(tmp_path, CSV_V1), checks=checks)
    assert result.version.validation == "passed"


def test_validate_stores_its_result_with_the_version(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("people", csv(tmp_path, CSV_V1))
    assert ws.data.resolve("people@1").validation is None
    version, report = ws.data.validate("people@1", load_checks(CHECKS, "checks.yaml"))
    assert not report.passed
    assert version.validation == "failed"
    assert ws.data.resolve("people@1").validation == "failed"
    version, report = ws.data.validate("people@1", load_checks("row_count: {min: 1}", "c.yaml"))
    assert report.passed
    assert version.validation == "passed"


def test_checks_that_match_no_file_are_a_clear_error(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("people", csv(tmp_path, CSV_V1))
    checks = load_checks('files: "*.parquet"\nrow_count: {min: 1}\n', "checks.yaml")
    with pytest.raises(InvalidArgumentError, match=r"\*\.parquet"):
        ws.data.validate("people@1", checks)


def test_parquet_files_are_profiled_too(ws: Workspace, tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "in" / "t.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"x": [1.0, 2.0, None], "y": ["a", "b", "a"]}).to_parquet(path)
    ws.data.commit("pq", path)
    prof = ws.data.profile("pq@1")[1]["t.parquet"]
    assert prof.rows == 3
    assert {c.name: c.missing for c in prof.columns} == {"x": 1, "y": 0}


def test_checks_gate_content_that_is_already_a_version(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("people", csv(tmp_path, CSV_V1))
    checks = load_checks(CHECKS, "checks.yaml")

    with pytest.raises(ValidationFailedError, match="people@1 already holds this content"):
        ws.data.commit("people", csv(tmp_path, CSV_V1), checks=checks)
    assert ws.data.resolve("people@1").validation is None  # a refused commit records nothing

    kept = ws.data.commit("people", csv(tmp_path, CSV_V1), checks=checks, allow_invalid=True)
    assert not kept.created
    assert kept.validation is not None
    assert not kept.validation.passed
    assert kept.version.validation == "failed" == ws.data.resolve("people@1").validation

    fine = load_checks("row_count: {min: 1}\n", "fine.yaml")
    passed = ws.data.commit("people", csv(tmp_path, CSV_V1), checks=fine)
    assert not passed.created
    assert passed.validation.passed
    assert [v.number for v in ws.data.log("people")] == [1]
    assert ws.data.resolve("people@1").validation == "passed"


def test_checks_gate_content_reused_from_an_older_version(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("people", csv(tmp_path, CSV_V1))
    ws.data.commit("people", csv(tmp_path, CSV_V2))
    with pytest.raises(ValidationFailedError, match="people@1 already holds this content"):
        ws.data.commit(
            "people", csv(tmp_path, CSV_V1), checks=load_checks(CHECKS, "c.yaml"), reuse=True
        )
