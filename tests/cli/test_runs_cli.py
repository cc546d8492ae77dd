"""`assay run` and `assay runs …` end to end through the CLI, on both backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

CLI = Callable[..., Result]

PIPELINE = """
import assay

@assay.step
def load(data):
    return [float(x) for x in (data / "n.txt").read_text().split()]

@assay.step
def train(load, params):
    print("training with", params["k"])
    return {"w": sum(load) * params["k"]}

@assay.step
def evaluate(train, params):
    return {"score": train["w"] / 10, "loss": 1 / train["w"]}

pipeline = assay.Pipeline("tiny", [load, train, evaluate])
"""


@pytest.fixture
def project(cli: CLI, cli_workspace: Path, tmp_path: Path) -> CLI:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "n.txt").write_text("1 2 3")
    (tmp_path / "params.json").write_text('{"k": 2, "seed": 1}')
    assert cli("data", "commit", "n", "n.txt").exit_code == 0
    return cli


def test_run_from_a_path_registers_then_runs(project: CLI) -> None:
    result = project("run", "pipeline.py", "--data", "n@1", "--params", "params.json")
    assert result.exit_code == 0, result.output
    assert "pipeline tiny@1, data n@1, params params/tiny@1" in result.output
    assert "succeeded" in result.output
    assert "score=1.2" in result.output
    for step in ("load", "train", "evaluate"):
        assert step in result.output


def test_run_json_list_show_logs_compare_leaderboard(project: CLI) -> None:
    first = json.loads(
        project("run", "pipeline.py", "--data", "n@1", "--params", "params.json", "--json").output
    )
    assert first["status"] == "succeeded"
    second = project("run", "tiny", "--data", "n@latest", "--params", "params.json", "-p", "k=5")
    assert second.exit_code == 0, second.output
    assert "cached" in second.output  # load did not change

    listing = json.loads(project("runs", "list", "--json").output)
    assert [r["params"]["k"] for r in listing] == [5, 2]
    filtered = json.loads(project("runs", "list", "--filter", "params.k > 3", "--json").output)
    assert [r["params"]["k"] for r in filtered] == [5]
    table = project("runs", "list", "--sort", "metrics.score").output
    assert table.index(first["id"][:8]) < table.index(listing[0]["id"][:8])

    show = project("runs", "show", first["id"][:8]).output
    for text in ("tiny@1", "n@1", "params/tiny@1", "score", "load", "resources", "Python"):
        assert text in show
    assert "training with 2" in project("runs", "logs", first["id"]).output

    compare = project("runs", "compare", first["id"][:8], listing[0]["id"][:8]).output
    assert "params.k" in compare
    assert "metrics.score" in compare
    assert "★" in compare
    board = project("runs", "leaderboard", "-e", "tiny", "-m", "loss").output
    assert board.index(listing[0]["id"][:8]) < board.index(first["id"][:8])  # lower loss first
    assert "tiny" in project("runs", "experiments").output


def test_rerun_reports_whether_metrics_reproduced(project: CLI) -> None:
    first = json.loads(
        project("run", "pipeline.py", "--data", "n@1", "--params", "params.json", "--json").output
    )
    result = project("runs", "rerun", first["id"][:8])
    assert result.exit_code == 0, result.output
    assert "Reproduced" in result.output


def test_same_inputs_are_refused_unless_forced(project: CLI) -> None:
    project("run", "pipeline.py", "--data", "n@1", "--params", "params.json")
    again = project("run", "tiny", "--data", "n@1", "--params", "params.json")
    assert again.exit_code == 1
    assert "already ran" in again.output
    assert "--force" in again.output
    forced = project("run", "tiny", "--data", "n@1", "--params", "params.json", "--force")
    assert forced.exit_code == 0


def test_a_failed_run_marks_its_step_and_shows_the_users_own_frames(
    project: CLI, tmp_path: Path
) -> None:
    (tmp_path / "pipeline.py").write_text(PIPELINE.replace('params["k"])', 'params["nope"])'))
    result = project("run", "pipeline.py", "--data", "n@1", "--params", "params.json")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    failed = next(i for i, line in enumerate(lines) if "✗" in line)
    step = lines[failed].split()[1]
    assert f"Step {step!r} failed: KeyError: 'nope'" in result.output
    assert 'File "pipeline.py", line' in result.output
    assert 'params["nope"]' in result.output
    assert "/site-packages/" not in result.output
    assert "assay/runs/" not in result.output
    assert "(the whole traceback: `assay runs logs" in result.output
    run_id = result.output.split("Run ", 1)[1].split()[0]
    logs = project("runs", "logs", run_id).output
    assert "Traceback (most recent call last)" in logs
    assert "engine.py" in logs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("run", "tiny", "--data", "n@1", "--params", "params.json", "-p", "k=abc"),
            "k is an integer",
        ),
        (("run", "tiny", "--data", "n@1", "--params", "bad.json"), "not valid JSON"),
        (("run", "tiny", "--data", "n@1", "--params", "missing.json"), "does not exist"),
        (("run", "tiny", "--data", "nope@1", "--params", "params.json"), "No dataset"),
        (("run", "ghost", "--data", "n@1", "--params", "params.json"), "ghost"),
        (("runs", "show", "ffffffff"), "No run"),
        (("runs", "list", "--filter", "params.k >"), "expected"),
        (("runs", "list", "--experiment", "nope"), "No experiment"),
    ],
)
def test_bad_input_is_one_clear_line(
    project: CLI, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    project("pipelines", "register", "pipeline.py")
    (tmp_path / "bad.json").write_text("{oops")
    result = project(*args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "No runs yet" in project("runs", "list").output  # nothing ran
