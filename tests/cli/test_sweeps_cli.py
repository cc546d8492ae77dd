"""`assay sweep` and `assay sweeps …` end to end: real runner processes, both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from assay.config import Settings
from assay.workspace import Workspace

CLI = Callable[..., Result]

# One step, named `evaluate` so its dict is the run's metrics. `steps` and `pause`
# make a trial log a learning curve slowly enough to be pruned; `explode` fails it.
PIPELINE = """
import time
import assay

@assay.step
def evaluate(params):
    if params.get("model", "quad") == "quad":
        x = float(params.get("x", 0.0))
    else:
        x = float(params.get("w", 0))
    steps = params.get("steps", 1)
    for step in range(1, steps + 1):
        assay.log_metric("partial", x * step / steps, step=step)
        time.sleep(params.get("pause", 0.0))
    if params.get("explode") and x > 2:
        raise ValueError(f"x={x} is too large")
    return {"loss": (x - 2) ** 2, "gain": x}

pipeline = assay.Pipeline("toy", [evaluate])
"""

SELECTION = """
model:
  choice:
    quad: {x: {float: [-4, 4]}}
    lin: {w: {int: [0, 5]}}
"""


@pytest.fixture
def project(cli: CLI, cli_workspace: Path, tmp_path: Path) -> CLI:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "params.json").write_text('{"x": 0.0, "seed": 1}')
    (tmp_path / "space.yaml").write_text(SELECTION)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.csv").write_text("a\n1\n")
    assert cli("data", "commit", "toy", "d").exit_code == 0
    return cli


def _sweep(cli: CLI, *args: str) -> Result:
    return cli(
        "sweep", "pipeline.py", "--data", "toy", "--params", "params.json", *args
    )  # fmt: skip


def test_a_sweep_selects_an_algorithm_and_records_every_trial_as_a_run(project: CLI) -> None:
    result = _sweep(
        project, "--space", "space.yaml", "--trials", "6", "--parallel", "2",
        "--objective", "loss:min", "--sampler", "random", "--seed", "3", "--name", "sel",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Sweep sel: toy@1 on toy@1, 6 of 6 trials to go, loss:min" in result.output
    assert "finished: 6 complete" in result.output
    shown = json.loads(project("sweeps", "show", "sel", "--json").output)
    trials = shown["trial_list"]
    assert [t["state"] for t in trials] == ["complete"] * 6
    assert {t["params"]["model"] for t in trials} == {"quad", "lin"}  # both algorithms tried
    for t in trials:  # a branch's params only where it was chosen
        assert ("x" in t["params"]) == (t["params"]["model"] == "quad")
        assert ("w" in t["params"]) == (t["params"]["model"] == "lin")
    best = min(trials, key=lambda t: t["values"][0])
    assert shown["best_runs"] == [best["run_id"]]
    assert f"Best: trial {best['number']}" in result.output
    runs = json.loads(project("runs", "list", "--experiment", "sel", "--json").output)
    assert {r["id"] for r in runs} == {t["run_id"] for t in trials}
    assert all(r["status"] == "succeeded" for r in runs)
    # Each trial is an ordinary run: its own params version, with the sampled values.
    assert len({r["params_version"] for r in runs}) == 6
    assert all(r["extra"]["sweep"] == "sel" for r in runs)
    by_id = {r["id"]: r for r in runs}
    for t in trials:
        run = by_id[t["run_id"]]
        assert run["metrics"]["loss"] == pytest.approx(t["values"][0])
        assert run["params"]["model"] == t["params"]["model"]
        assert run["params"]["seed"] == 1  # from the base params file
    listed = json.loads(project("sweeps", "list", "--json").output)
    assert [(s["name"], s["status"]) for s in listed] == [("sel", "finished")]


@pytest.mark.one_backend
def test_show_ranks_trials_and_plots_are_written(project: CLI, tmp_path: Path) -> None:
    (tmp_path / "flat.yaml").write_text("x: {float: [-4, 4]}\nw: {int: [0, 5]}\n")
    result = _sweep(
        project, "--space", "flat.yaml", "--trials", "8", "--objective", "loss",
        "--sampler", "random", "--name", "flat",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = project("sweeps", "show", "flat")
    assert shown.exit_code == 0, shown.output
    assert "parameter importances" in shown.output
    assert "loss by trial" in shown.output
    doc = json.loads(project("sweeps", "show", "flat", "--json").output)
    assert set(doc["importances"]) == {"x", "w"}
    assert sum(doc["importances"].values()) == pytest.approx(1.0)
    rows = [
        ln.split() for ln in shown.output.splitlines() if ln.split()[:1] and ln.split()[0].isdigit()
    ]
    losses = [float(r[2]) for r in rows if r[1] == "complete"]
    assert losses == sorted(losses)
    assert len(losses) == 8
    plotted = project("sweeps", "plot", "flat", "--out", "plots", "--json")
    assert plotted.exit_code == 0, plotted.output
    files = [Path(f) for f in json.loads(plotted.output)["files"]]
    names = {f.name for f in files}
    assert {"flat-history.png", "flat-parallel.png", "flat.html"} <= names
    for f in files:
        if f.suffix == ".png":
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "plots" / "flat.html").read_text()
    assert "data:image/png;base64," in page
    assert "Optimization history" in page


@pytest.mark.one_backend
def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(project: CLI, tmp_path: Path) -> None:
    (tmp_path / "params.json").write_text('{"explode": true}')
    (tmp_path / "x.yaml").write_text("x: {choice: [0.5, 1.0, 3.0, 4.0]}\n")
    result = _sweep(
        project, "--space", "x.yaml", "--trials", "4", "--sampler", "grid",
        "--objective", "gain:max", "--name", "boom",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(project("sweeps", "show", "boom", "--json").output)
    states = {t["params"]["x"]: t["state"] for t in doc["trial_list"]}
    assert states == {0.5: "complete", 1.0: "complete", 3.0: "fail", 4.0: "fail"}
    failed = [t for t in doc["trial_list"] if t["state"] == "fail"]
    assert all("is too large" in t["error"] for t in failed)
    assert doc["status"] == "finished"
    best = next(t for t in doc["trial_list"] if t["params"]["x"] == 1.0)
    assert doc["best_runs"] == [best["run_id"]]


@pytest.mark.one_backend
def test_a_grid_stops_when_every_point_was_tried(project: CLI, tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text(
        "model: {choice: {quad: {x: {choice: [1.0, 2.0]}}, lin: {w: {int: [0, 2]}}}}\n"
    )
    result = _sweep(
        project, "--space", "g.yaml", "--trials", "50", "--sampler", "grid",
        "--objective", "loss", "--name", "grid", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["trials"] == 5  # 2 + 3 points: the grid caps --trials
    points = sorted(json.dumps(t["params"], sort_keys=True) for t in doc["trial_list"])
    assert len(set(points)) == 5


@pytest.mark.one_backend
def test_two_objectives_give_the_pareto_front(project: CLI, tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("x: {float: [0, 6]}\n")
    result = _sweep(
        project, "--space", "x.yaml", "--trials", "8", "--objective", "loss:min",
        "--objective", "gain:max", "--sampler", "nsga2", "--name", "front", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["pruner"] == "none"
    done = [t for t in doc["trial_list"] if t["state"] == "complete"]

    def beats(a: dict[str, Any], b: dict[str, Any]) -> bool:
        """a dominates b: loss lower or equal, gain higher or equal, one strictly."""
        (la, ga), (lb, gb) = a["values"], b["values"]
        return bool(la <= lb and ga >= gb and (la < lb or ga > gb))

    front = {t["run_id"] for t in done if not any(beats(o, t) for o in done)}
    assert set(doc["best_runs"]) == front
    assert front


@pytest.mark.one_backend
def test_pruning_stops_hopeless_trials(project: CLI, tmp_path: Path) -> None:
    (tmp_path / "params.json").write_text('{"steps": 40, "pause": 0.04}')
    (tmp_path / "x.yaml").write_text("x: {float: [0, 10]}\n")
    result = _sweep(
        project, "--space", "x.yaml", "--trials", "10", "--objective", "gain:max",
        "--prune-on", "partial", "--sampler", "random", "--seed", "5", "--name", "prune",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(project("sweeps", "show", "prune", "--json").output)
    states = [t["state"] for t in doc["trial_list"]]
    assert states.count("pruned") >= 1, states
    assert doc["status"] == "finished"
    assert len(states) == 10
    runs = {r["id"]: r for r in json.loads(project("runs", "list", "-e", "prune", "--json").output)}
    done = sorted(t["params"]["x"] for t in doc["trial_list"] if t["state"] == "complete")
    pruned = [t for t in doc["trial_list"] if t["state"] == "pruned"]
    for t in pruned:
        assert t["params"]["x"] < done[len(done) // 2]  # only below-median curves
        assert runs[t["run_id"]]["status"] == "pruned"
    # Stopped before its last step (a request landing in the last step ends the run
    # at its final metrics instead).
    assert min(len(t["intermediate"]) for t in pruned) < 40


@pytest.mark.one_backend
def test_timeout_and_budget_stop_before_the_next_trial_would_overrun(
    project: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "params.json").write_text('{"steps": 1, "pause": 0.6}')
    (tmp_path / "x.yaml").write_text("x: {float: [0, 4]}\n")
    started = time.monotonic()
    result = _sweep(
        project, "--space", "x.yaml", "--trials", "40", "--objective", "loss",
        "--timeout", "4", "--name", "clock", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["status"] == "stopped"
    assert "--timeout 4" in doc["stop_cause"]
    assert 1 <= len(doc["trial_list"]) < 40
    assert time.monotonic() - started < 40 * 0.6
    # An hour of wall time costing 3600: a trial costs its seconds.
    monkeypatch.setenv("ASSAY_COST_PER_HOUR", "3600")
    result = _sweep(
        project, "--space", "x.yaml", "--trials", "40", "--objective", "loss",
        "--budget", "2.5", "--name", "money", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["status"] == "stopped"
    assert "--budget 2.5" in doc["stop_cause"]
    runs = json.loads(project("runs", "list", "-e", "money", "--json").output)
    assert 1 <= len(runs) < 40
    assert sum(r["resources"]["cost"] for r in runs) <= 2.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--space", "bad.yaml", "--trials", "3", "--objective", "loss"), "not valid YAML"),
        (
            ("--space", "typo.yaml", "--trials", "3", "--objective", "loss"),
            "sets parameter 'xx', which neither the params file nor pipeline toy@1 reads",
        ),
        (("--space", "space.yaml", "--trials", "3"), "assay sweep needs --objective"),
        (("--space", "space.yaml", "--trials", "0", "--objective", "loss"), "--trials must be"),
        (
            ("--space", "space.yaml", "--trials", "3", "--objective", "loss:up"),
            "the direction after ':' is max or min",
        ),
        (
            ("--space", "space.yaml", "--trials", "3", "--objective", "loss", "--sampler", "bo"),
            "Unknown sampler 'bo'",
        ),
        (
            ("--space", "space.yaml", "--trials", "3", "--objective", "loss", "--sampler", "grid"),
            "'x' is a continuous float",
        ),
        (("--space", "nope.yaml", "--trials", "3", "--objective", "loss"), "does not exist"),
        (
            (
                "--space",
                "space.yaml",
                "--trials",
                "3",
                "--objective",
                "a",
                "--objective",
                "b",
                "--prune-on",
                "partial",
            ),
            "Pruning works on one objective",
        ),
        (
            ("--space", "space.yaml", "--trials", "3", "--objective", "loss", "--executor", "k8s"),
            "--executor takes local or ray, not 'k8s'",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    project: CLI, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "bad.yaml").write_text("x: {float: [0, 1]\n")
    (tmp_path / "typo.yaml").write_text("xx: {float: [0, 1]}\n")
    result = _sweep(project, *args)
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert json.loads(project("sweeps", "list", "--json").output) == []
    assert json.loads(project("runs", "list", "--json").output) == []


def test_resume_of_an_unknown_or_finished_sweep_says_so(project: CLI) -> None:
    missing = project("sweep", "resume", "ghost")
    assert missing.exit_code == 1
    assert "No sweep named 'ghost'" in missing.output
    ok = _sweep(project, "--space", "space.yaml", "--trials", "2", "--objective", "loss",
                "--name", "two")  # fmt: skip
    assert ok.exit_code == 0, ok.output
    again = project("sweeps", "resume", "two")
    assert again.exit_code == 1
    assert "has finished all its 2 trials" in again.output


def test_an_interrupted_sweep_resumes_without_repeating_finished_trials(
    project: CLI, tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "params.json").write_text('{"steps": 1, "pause": 0.8}')
    (tmp_path / "x.yaml").write_text("x: {float: [0, 4]}\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    environ.update(env)
    driver = subprocess.Popen(
        [sys.executable, "-m", "assay", "sweep", "pipeline.py", "--data", "toy",
         "--params", "params.json", "--space", "x.yaml", "--trials", "6",
         "--objective", "loss", "--name", "long"],
        cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    ws = Workspace(Settings.at(tmp_path, environ))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                sweep = ws.sweeps.get("long")
            except Exception:
                sweep = None
            if sweep is not None and sweep.counted() >= 2:
                break
            time.sleep(0.1)
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=60)
        assert driver.returncode == 130, (out, err)
        assert "Resume it with `assay sweep resume long`" in err
        before = ws.sweeps.get("long")
        assert before.status == "interrupted"
        done_before = {t.number: t.run_id for t in before.trial_list if t.state == "complete"}
        assert len(done_before) >= 2
        cut = [t for t in before.trial_list if t.state == "interrupted"]
        for t in cut:
            cut_run = ws.runs.get(t.run_id or "")
            assert cut_run.status == "killed", cut_run.error  # why it ended otherwise
    finally:
        if driver.poll() is None:
            driver.kill()
    resumed = project("sweep", "resume", "long")
    assert resumed.exit_code == 0, resumed.output
    after = ws.sweeps.get("long")
    ws.close()
    assert after.status == "finished"
    assert after.counted() == 6
    for number, run_id in done_before.items():  # finished trials kept, not run again
        assert next(t for t in after.trial_list if t.number == number).run_id == run_id
    retried = [t for t in after.trial_list if t.state == "retried"]
    assert [t.number for t in retried] == [t.number for t in cut]
    for old in retried:  # an interrupted trial's params are tried again
        assert any(
            t.params == old.params and t.state == "complete" and t.number > old.number
            for t in after.trial_list
        )
    runs = json.loads(project("runs", "list", "-e", "long", "--json").output)
    assert sum(r["status"] == "succeeded" for r in runs) == 6


@pytest.mark.one_backend
def test_a_sweep_killed_with_9_takes_its_running_trial_down_and_resumes_it(
    project: CLI, tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "params.json").write_text('{"steps": 1, "pause": 1.5}')
    (tmp_path / "x.yaml").write_text("x: {float: [0, 4]}\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    environ.update(env)
    driver = subprocess.Popen(
        [sys.executable, "-m", "assay", "sweep", "pipeline.py", "--data", "toy",
         "--params", "params.json", "--space", "x.yaml", "--trials", "3",
         "--objective", "loss", "--name", "orphan"],
        cwd=tmp_path, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ws = Workspace(Settings.at(tmp_path, environ))
    try:
        deadline = time.monotonic() + 60
        running = None
        while time.monotonic() < deadline and running is None:
            try:
                trials = ws.sweeps.get("orphan").trial_list
            except Exception:
                trials = ()
            running = next((t for t in trials if t.state == "running"), None)
            time.sleep(0.05)
        assert running is not None
        driver.kill()  # kill -9: no chance to record anything
        driver.wait()
        assert ws.sweeps.get("orphan").status == "running"
        # Its runner goes with it: the trial it had is recorded as killed, not finished
        # later with nobody watching.
        deadline = time.monotonic() + 30
        while ws.runs.get(running.run_id or "").status in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        killed = ws.runs.get(running.run_id or "")
        assert killed.status == "killed", killed.error
        assert "died" in (killed.error or ""), killed.error
    finally:
        if driver.poll() is None:
            driver.kill()
    resumed = project("sweep", "resume", "orphan")
    assert resumed.exit_code == 0, resumed.output
    after = ws.sweeps.get("orphan")
    ws.close()
    cut = next(t for t in after.trial_list if t.number == running.number)
    assert cut.state == "retried"
    assert cut.run_id == running.run_id
    assert any(t.params == cut.params and t.state == "complete" for t in after.trial_list)
    assert after.status == "finished"
    assert after.counted() == 3
