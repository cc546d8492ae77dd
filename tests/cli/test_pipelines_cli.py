"""`assay pipelines …` end to end through the CLI, on both metadata backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

CLI = Callable[..., Result]

PIPELINE = """\
from assay.pipelines.dsl import Pipeline, step

from helpers import scale


@step
def load(data):
    return (data / "values.txt").read_text().split()


@step
def clean(load):
    return [float(x) for x in load]


@step
def train(clean, params):
    return scale(sum(clean), params.get("factor", 1))


@step(name="evaluate")
def score(train, clean):
    return {"mean": train / len(clean)}


@step
def report(evaluate):
    return str(evaluate)


pipeline = Pipeline("cancer", [load, clean, train, score, report])
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def inited(cli: CLI, tmp_path: Path) -> CLI:
    result = cli("init")
    assert result.exit_code == 0, result.output
    write(tmp_path / "proj" / "pipeline.py", PIPELINE)
    write(tmp_path / "proj" / "helpers.py", "def scale(x, factor):\n    return x * factor\n")
    write(tmp_path / "proj" / "requirements.txt", "numpy\n")
    return cli


def test_register_then_register_unchanged(inited: CLI) -> None:
    first = inited("pipelines", "register", "proj/pipeline.py", "-m", "first cut")
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "Registered cancer@1 (5 steps, 3 files)"
    again = inited("pipelines", "register", "proj")
    assert again.exit_code == 0, again.output
    assert again.output.strip() == "Unchanged: cancer@1 already holds this source."


def test_register_json_and_a_new_version_after_an_edit(inited: CLI, tmp_path: Path) -> None:
    doc = json.loads(inited("pipelines", "register", "proj", "--json").output)
    assert doc["created"] is True
    assert doc["files"] == 3
    assert doc["version"]["ref"] == "cancer@1"
    assert [s["name"] for s in doc["version"]["steps"]] == [
        "load",
        "clean",
        "train",
        "evaluate",
        "report",
    ]
    write(tmp_path / "proj" / "pipeline.py", PIPELINE.replace("float(x)", "abs(float(x))"))
    second = json.loads(inited("pipelines", "register", "proj", "--json").output)
    assert second["created"] is True
    assert second["version"]["ref"] == "cancer@2"
    same = json.loads(inited("pipelines", "register", "proj", "--json").output)
    assert same["created"] is False
    assert same["version"]["number"] == 2


def test_register_under_another_name(inited: CLI) -> None:
    result = inited("pipelines", "register", "proj", "--name", "cancer-prod")
    assert result.output.strip() == "Registered cancer-prod@1 (5 steps, 3 files)"


def test_list_and_log(inited: CLI, tmp_path: Path) -> None:
    assert "No pipelines yet" in inited("pipelines", "list").output
    inited("pipelines", "register", "proj", "-m", "first cut")
    write(tmp_path / "proj" / "pipeline.py", PIPELINE + "\n# tweak\n")
    inited("pipelines", "register", "proj", "-m", "tweak")
    listing = inited("pipelines", "list")
    assert listing.exit_code == 0
    assert "cancer" in listing.output
    assert "@2" in listing.output
    doc = json.loads(inited("pipelines", "list", "--json").output)
    assert [(p["name"], p["versions"], p["latest"]) for p in doc] == [("cancer", 2, 2)]
    log = inited("pipelines", "log", "cancer")
    assert log.exit_code == 0
    lines = log.output.splitlines()
    assert "@2" in lines[1]
    assert "tweak" in lines[1]
    assert "tester" in lines[1]
    assert "@1" in lines[2]
    assert "first cut" in lines[2]
    versions = json.loads(inited("pipelines", "log", "cancer", "--json").output)
    assert [v["number"] for v in versions] == [2, 1]


def test_show_prints_header_steps_and_source(inited: CLI) -> None:
    doc = json.loads(inited("pipelines", "register", "proj", "-m", "first cut", "--json").output)
    hashes = {s["name"]: s["code_hash"] for s in doc["version"]["steps"]}
    result = inited("pipelines", "show", "cancer@1")
    assert result.exit_code == 0, result.output
    out = result.output
    for word in ("cancer@1", "pipeline.py", doc["version"]["manifest"][:16], "tester", "first cut"):
        assert word in out
    names = ["load", "clean", "train", "evaluate", "report"]
    step_lines = {
        words[1]: line
        for line in out.splitlines()
        if len(words := line.split()) >= 4 and words[0].isdigit() and words[1] in names
    }
    assert [line.split()[0] for line in step_lines.values()] == ["1", "2", "3", "4", "5"]
    assert "clean, params" in step_lines["train"]
    assert "model" in step_lines["train"]
    assert "metrics" in step_lines["evaluate"]
    assert hashes["clean"][:12] in step_lines["clean"]
    assert "def train(clean, params):" in out
    assert 'pipeline = Pipeline("cancer"' in out


def test_show_json_has_steps_files_and_source(inited: CLI) -> None:
    inited("pipelines", "register", "proj")
    doc = json.loads(inited("pipelines", "show", "cancer", "--json").output)
    assert doc["ref"] == "cancer@1"
    assert (doc["model_step"], doc["metrics_step"]) == ("train", "evaluate")
    assert [f["path"] for f in doc["files"]] == ["helpers.py", "pipeline.py", "requirements.txt"]
    assert doc["source"] == PIPELINE


def test_diff_prints_a_unified_diff_or_no_differences(inited: CLI, tmp_path: Path) -> None:
    inited("pipelines", "register", "proj")
    same = inited("pipelines", "diff", "cancer@1", "cancer@latest")
    assert same.exit_code == 0
    assert "No differences." in same.output
    write(tmp_path / "proj" / "pipeline.py", PIPELINE.replace("float(x)", "abs(float(x))"))
    inited("pipelines", "register", "proj")
    result = inited("pipelines", "diff", "cancer@1", "cancer@2")
    assert result.exit_code == 0, result.output
    assert "--- a/cancer@1/pipeline.py" in result.output
    assert "+++ b/cancer@2/pipeline.py" in result.output
    assert "-    return [float(x) for x in load]" in result.output
    assert "+    return [abs(float(x)) for x in load]" in result.output
    doc = json.loads(inited("pipelines", "diff", "cancer@1", "cancer@2", "--json").output)
    assert (doc["old"], doc["new"], doc["identical"]) == ("cancer@1", "cancer@2", False)
    assert doc["diff"].startswith("--- a/cancer@1/pipeline.py\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pipelines", "show", "nope@1"), "No pipeline named 'nope'"),
        (("pipelines", "show", "cancer@7"), "no version 7"),
        (("pipelines", "show", "cancer@best"), "is not valid"),
        (("pipelines", "log", "nope"), "No pipeline named 'nope'"),
        (("pipelines", "diff", "cancer@1", "cancer@5"), "no version 5"),
        (("pipelines", "register", "missing-dir"), "does not exist"),
        (("pipelines", "register", "proj/requirements.txt"), "not a Python file"),
        (("pipelines", "register", "broken"), "Cannot import pipeline.py: ZeroDivisionError"),
        (("pipelines", "register", "empty"), "defines no assay Pipeline"),
        (("pipelines", "register", "proj", "--name", "a b"), "not valid"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_one(
    inited: CLI, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    inited("pipelines", "register", "proj")
    write(tmp_path / "broken" / "pipeline.py", "import os\n\nRATE = 1 / 0\n")
    write(tmp_path / "empty" / "pipeline.py", "X = 1\n")
    result = inited(*args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")


def test_usage_errors_exit_two(inited: CLI) -> None:
    assert inited("pipelines", "register").exit_code == 2
    assert inited("pipelines", "diff", "cancer@1").exit_code == 2
    assert inited("pipelines", "frobnicate").exit_code == 2
