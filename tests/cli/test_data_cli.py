"""`assay init` and `assay data …` end to end through the CLI, on both metadata backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

CLI = Callable[..., Result]


@pytest.fixture
def inited(cli: CLI) -> CLI:
    result = cli("init")
    assert result.exit_code == 0, result.output
    return cli


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_init_creates_the_workspace_and_is_idempotent(cli: CLI, tmp_path: Path) -> None:
    first = cli("init")
    assert first.exit_code == 0
    assert "Created Assay workspace" in first.output
    assert (tmp_path / ".assay" / "objects").is_dir()
    again = cli("init", "--json")
    assert json.loads(again.output)["created"] is False


def test_commands_outside_a_workspace_say_so_in_one_line(cli: CLI) -> None:
    result = cli("data", "list")
    assert result.exit_code == 1
    assert "No Assay workspace" in result.output
    assert "assay init" in result.output
    assert "Traceback" not in result.output


def test_commands_find_the_workspace_from_a_subfolder(
    inited: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "d" / "a.txt", "x")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "deep" / "er")
    result = inited("data", "commit", "raw", tmp_path / "d")
    assert result.exit_code == 0, result.output
    assert "Committed raw@1" in result.output


def test_commit_log_show_and_json(inited: CLI, tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.txt", "alpha")
    out = inited("data", "commit", "raw", "d", "-m", "first cut", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["created"] is True
    assert doc["version"]["ref"] == "raw@1"
    again = inited("data", "commit", "raw", "d")
    assert "Nothing changed: raw@1" in again.output

    log = inited("data", "log", "raw")
    assert "@1" in log.output
    assert "first cut" in log.output
    assert "tester" in log.output
    show = json.loads(inited("data", "show", "raw@1", "--json").output)
    assert show["files"][0]["path"] == "a.txt"
    assert show["files"][0]["size"] == 5
    assert len(show["files"][0]["hash"]) == 64
    text = inited("data", "show", "raw@latest").output
    for word in ("first cut", "tester", "a.txt", "5 B", show["files"][0]["hash"][:16]):
        assert word in text
    listing = json.loads(inited("data", "list", "--json").output)
    assert listing[0]["name"] == "raw"
    assert listing[0]["versions"] == 1


def test_checkout_diff_and_tag(inited: CLI, tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.txt", "one")
    inited("data", "commit", "raw", "d")
    write(tmp_path / "d" / "b.txt", "two")
    inited("data", "commit", "raw", "d")
    assert inited("data", "tag", "raw@1", "baseline").exit_code == 0
    diff = json.loads(inited("data", "diff", "raw@baseline", "raw@2", "--json").output)
    assert [f["path"] for f in diff["added"]] == ["b.txt"]
    assert "1 added, 0 removed, 0 changed" in inited("data", "diff", "raw@1", "raw@2").output

    assert inited("data", "checkout", "raw@baseline", "out").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt"]
    refused = inited("data", "checkout", "raw@2", "out")
    assert refused.exit_code == 1
    assert "--force" in refused.output
    assert inited("data", "checkout", "raw@2", "out", "--force").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "show", "nope@1"), "No dataset named 'nope'"),
        (("data", "show", "raw@7"), "no version 7"),
        (("data", "log", "nope"), "No dataset named 'nope'"),
        (("data", "commit", "raw", "missing-dir"), "does not exist"),
        (("data", "commit", "../x", "d"), "not valid"),
        (("data", "tag", "raw@1", "latest"), "not valid"),
        (("data", "checkout", "raw@9", "out"), "no version 9"),
        (("data", "diff", "raw@1", "raw@5"), "no version 5"),
        (("data", "validate", "raw@1", "--checks", "nope.yaml"), "does not exist"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_one(
    inited: CLI, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    write(tmp_path / "d" / "a.txt", "x")
    inited("data", "commit", "raw", "d")
    result = inited(*args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")


def test_usage_errors_exit_two(inited: CLI) -> None:
    assert inited("data", "commit").exit_code == 2
    assert inited("data", "frobnicate").exit_code == 2


def test_verify_exits_nonzero_naming_a_corrupt_object(inited: CLI, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "big.bin").write_bytes(os.urandom(512 * 1024))  # stored loose, not packed
    inited("data", "commit", "raw", "d")
    assert "all intact" in inited("data", "verify").output
    digest = json.loads(inited("data", "show", "raw@1", "--json").output)["files"][0]["hash"]
    obj = tmp_path / ".assay" / "objects" / digest[:2] / digest[2:]
    obj.write_bytes(b"rot")
    result = inited("data", "verify")
    assert result.exit_code == 1
    assert digest in result.output
    doc = json.loads(inited("data", "verify", "--json").output)
    assert doc["corrupt"] == [digest]


def test_the_installed_assay_script_runs_a_real_process(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("assay")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    run = lambda *a: subprocess.run(  # noqa: E731
        [str(script), *a], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert run("init").returncode == 0
    write(tmp_path / "d" / "a.txt", "alpha")
    done = run("data", "commit", "raw", "d", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"]["ref"] == "raw@1"
    bad = run("data", "show", "raw@3")
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error:")
    assert "Traceback" not in bad.stderr


PEOPLE = "id,age,city\n1,34,Oslo\n2,51,Rome\n3,28,Oslo\n"


def test_profile_prints_a_table_with_a_histogram(inited: CLI, tmp_path: Path) -> None:
    write(tmp_path / "people.csv", PEOPLE)
    inited("data", "commit", "people", "people.csv")
    result = inited("data", "profile", "people@1")
    assert result.exit_code == 0, result.output
    assert "3 rows x 3 columns" in result.output
    assert "integer" in result.output
    assert "Oslo (2)" in result.output
    assert any(ch in result.output for ch in "▁▂▃▄▅▆▇█")
    doc = json.loads(inited("data", "profile", "people@1", "--json").output)
    assert doc["tables"]["people.csv"]["rows"] == 3


def test_commit_gate_refuses_bad_data_and_shows_the_failures(inited: CLI, tmp_path: Path) -> None:
    write(tmp_path / "people.csv", PEOPLE)
    write(tmp_path / "checks.yaml", "columns:\n  age: {max: 40}\n")
    refused = inited("data", "commit", "people", "people.csv", "--checks", "checks.yaml")
    assert refused.exit_code == 1
    assert "nothing was committed" in refused.output
    assert "row 1: 51" in refused.output
    assert "No datasets yet" in inited("data", "list").output
    allowed = inited(
        "data", "commit", "people", "people.csv", "--checks", "checks.yaml", "--allow-invalid"
    )
    assert allowed.exit_code == 0
    assert "validation failed" in allowed.output
    assert "failed" in inited("data", "log", "people").output


def test_commit_gate_holds_for_content_that_is_already_committed(
    inited: CLI, tmp_path: Path
) -> None:
    write(tmp_path / "people.csv", PEOPLE)
    write(tmp_path / "checks.yaml", "columns:\n  age: {max: 40}\n")
    assert inited("data", "commit", "people", "people.csv").exit_code == 0
    refused = inited("data", "commit", "people", "people.csv", "--checks", "checks.yaml")
    assert refused.exit_code == 1, refused.output
    assert "row 1: 51" in refused.output
    assert "people@1 already holds this content" in refused.output
    kept = inited(
        "data", "commit", "people", "people.csv", "--checks", "checks.yaml", "--allow-invalid"
    )
    assert kept.exit_code == 0
    assert "Nothing changed: people@1 already holds this content (validation failed)" in (
        kept.output
    )
    as_json = inited("data", "commit", "people", "people.csv", "--checks", "checks.yaml", "--json")
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc == {"committed": False, "validation": doc["validation"]}
    assert doc["validation"]["passed"] is False


def test_validate_exits_one_on_failure_and_zero_on_success(inited: CLI, tmp_path: Path) -> None:
    write(tmp_path / "people.csv", PEOPLE)
    inited("data", "commit", "people", "people.csv")
    write(tmp_path / "bad.yaml", "columns:\n  city: {allowed: [Oslo]}\n")
    write(tmp_path / "good.yaml", "row_count: {min: 3, max: 3}\n")
    bad = inited("data", "validate", "people@1", "--checks", "bad.yaml")
    assert bad.exit_code == 1
    assert "1 of" in bad.output
    assert "'Rome'" in bad.output
    good = inited("data", "validate", "people@1", "--checks", "good.yaml")
    assert good.exit_code == 0
    assert "checks passed" in good.output


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ("columns: [", "checks.yaml"),
        ("colums:\n  a: {min: 1}\n", "colums"),
        ("columns:\n  age: {min: ten}\n", "columns.age.min"),
        ("columns:\n  age: {type: int64}\n", "int64"),
    ],
)
def test_malformed_checks_file_is_one_clear_line(
    inited: CLI, tmp_path: Path, checks: str, message: str
) -> None:
    write(tmp_path / "people.csv", PEOPLE)
    inited("data", "commit", "people", "people.csv")
    write(tmp_path / "checks.yaml", checks)
    result = inited("data", "validate", "people@1", "--checks", "checks.yaml")
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_file_that_is_no_table_commits_and_its_profile_says_why(
    inited: CLI, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "broken.csv").write_bytes(b"\x00\x01garbage\xff\x00\x02")
    write(tmp_path / "d" / "people.csv", PEOPLE)
    committed = inited("data", "commit", "broken", "d")
    assert committed.exit_code == 0
    assert "Committed broken@1: 2 file(s)" in committed.output
    profile = inited("data", "profile", "broken@1")
    assert profile.exit_code == 0
    assert (
        "broken@1:broken.csv  not readable as a table: it holds NUL bytes: it is binary, not "
        "text. Its bytes are versioned as they are."
    ) in profile.output
    assert "broken@1:people.csv  3 rows x 3 columns" in profile.output
    doc = json.loads(inited("data", "profile", "broken@1", "--json").output)
    assert doc["tables"]["broken.csv"]["error"] == "it holds NUL bytes: it is binary, not text"


def test_profile_shows_what_a_person_would_notice(inited: CLI, tmp_path: Path) -> None:
    levels = [str(i) for i in range(1, 66)] + ["high"] * 6
    rows = [f'{i};{v};"first line\nsecond";;{i}' for i, v in enumerate(levels)]
    text = "id;level;note;comment;id\n" + "\n".join(rows) + "\n"
    (tmp_path / "survey.csv").write_bytes(text.encode("latin-1"))
    inited("data", "commit", "survey", "survey.csv")
    out = inited("data", "profile", "survey@1").output
    lines = out.splitlines()
    assert lines[0] == "survey@1:survey.csv  71 rows x 5 columns  (semicolon-separated)"
    assert lines[1].startswith("  ! Column name 'id' appears 2 times (columns 1, 5)")
    level = next(line for line in lines if line.startswith(" level "))
    assert "text, 92% numbers" in level
    assert "other: high (6)" in level
    note = next(line for line in lines if line.startswith(" note "))
    assert "first line⏎second (71)" in note  # a multi-line cell, shown on one line
    assert "empty" in next(line for line in lines if line.startswith(" comment "))
    table = [line for line in lines if line.startswith(" ") and not line.startswith("  !")]
    assert len(table) == 6  # a header and 5 columns, one line each


def test_diff_reports_rows_added_removed_and_changed(inited: CLI, tmp_path: Path) -> None:
    write(tmp_path / "people.csv", PEOPLE)
    inited("data", "commit", "people", "people.csv")
    write(tmp_path / "people.csv", PEOPLE.replace("2,51,Rome", "2,52,Rome") + "4,60,Lima\n")
    inited("data", "commit", "people", "people.csv")
    out = inited("data", "diff", "people@1", "people@2").output
    assert "people.csv  rows 3 -> 4: 2 unchanged, 1 changed, 1 added" in out
    assert "rows matched by id" in out
    assert "changed columns: age (1)" in out
    assert "id=2  age  51 -> 52" in " ".join(out.split("   "))
    assert "added: id=4" in out
    doc = json.loads(inited("data", "diff", "people@1", "people@2", "--json").output)
    table = doc["tables"]["people.csv"]
    assert (table["rows_changed"], table["rows_added"], table["key"]) == (1, 1, "id")
    by_age = inited("data", "diff", "people@1", "people@2", "--key", "age", "--json")
    assert json.loads(by_age.output)["tables"]["people.csv"]["rows_removed"] == 1


@pytest.mark.one_backend
def test_a_full_disk_is_one_line_for_commit_and_checkout(
    inited: CLI, tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (tmp_path / "many").mkdir()
    for i in range(3000):  # small files travel in packs
        (tmp_path / "many" / f"{i}.bin").write_bytes(os.urandom(1024))
    assert inited("data", "commit", "big", "big.bin").exit_code == 0
    checkout = inited("data", "checkout", "big@1", small_disk / "out")
    assert checkout.exit_code == 1
    assert checkout.output.startswith("error: No space left on device while writing")
    assert "The destination is as it was" in checkout.output
    assert len(checkout.output.strip().splitlines()) == 1, checkout.output
    assert not (small_disk / "out").exists()

    monkeypatch.setenv("ASSAY_STORE_URL", str(small_disk / "objects"))
    for what in ("big.bin", "many"):
        result = inited("data", "commit", "on-small-disk", what)
        assert result.exit_code == 1
        assert result.output.startswith("error: No space left on device"), result.output
        assert "Nothing was committed" in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_data_list_shows_params_datasets_only_with_all(inited: CLI, tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.txt", "alpha")
    write(tmp_path / "params.json", "{}")
    inited("data", "commit", "raw", "d")
    inited("data", "commit", "params/train", "params.json")
    assert [d["name"] for d in json.loads(inited("data", "list", "--json").output)] == ["raw"]
    everything = inited("data", "list", "--all")
    assert "params/train" in everything.output
    assert "raw" in everything.output
    assert "params/train" not in inited("data", "list").output
