"""The runner as a real process: kill -9, Ctrl-C, two runs at once, notebook tracking."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

import assay
from assay.config import Settings
from assay.executors.local import LocalExecutor
from assay.workspace import Workspace

SLOW = """
import time
import assay

@assay.step
def load(data):
    return 1

@assay.step
def wait(load, params):
    for i in range(params["seconds"] * 10):
        assay.log_metric("tick", i, step=i)
        time.sleep(0.1)
    return {"done": 1.0}

pipeline = assay.Pipeline("slow", [load, wait], metrics="wait")
"""


@pytest.fixture
def slow(ws: Workspace, tmp_path: Path) -> Path:
    (tmp_path / "slow.py").write_text(SLOW)
    (tmp_path / "x.txt").write_text("x")
    ws.data.commit("x", tmp_path / "x.txt")
    ws.pipelines.register(tmp_path / "slow.py")
    return tmp_path


def launch(ws: Workspace, env: dict[str, str], seconds: int, **extra: str):  # type: ignore[no-untyped-def]
    params = ws.settings.root / f"p{seconds}-{time.monotonic_ns()}.json"  # type: ignore[operator]
    params.write_text(json.dumps({"seconds": seconds}))
    queued = ws.runs.prepare("slow", data="x@1", params_file=params, force=True)
    run_env = {**os.environ, **env, **extra}
    return queued, LocalExecutor(ws.settings.root or Path("."), run_env).launch(queued.id)


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_runner_killed_with_sigkill_leaves_its_run_detectably_dead(
    ws: Workspace, slow: Path, env: dict[str, str]
) -> None:
    queued, handle = launch(ws, env, 30, ASSAY_HEARTBEAT_S="0.2")
    wait_for(lambda: ws.runs.get(queued.id).status == "running")
    handle.process.send_signal(signal.SIGKILL)
    handle.wait()
    fast = Workspace(Settings.at(ws.settings.root, {**env, "ASSAY_HEARTBEAT_S": "0.2"}))
    try:
        wait_for(lambda: fast.runs.get(queued.id).status != "running", timeout=10)
        dead = fast.runs.get(queued.id)
    finally:
        fast.close()
    assert dead.status == "killed"
    assert dead.error is not None
    assert "heartbeats" in dead.error


def test_ctrl_c_marks_the_run_killed(ws: Workspace, slow: Path, env: dict[str, str]) -> None:
    queued, handle = launch(ws, env, 30)
    wait_for(lambda: ws.runs.get(queued.id).metrics.get("tick") is not None)
    handle.process.send_signal(signal.SIGINT)
    assert handle.wait() == 0
    r = ws.runs.get(queued.id)
    assert r.status == "killed"
    assert r.metrics["tick"] is not None  # what was logged before the interrupt is kept


def test_two_runs_at_once_both_succeed(ws: Workspace, slow: Path, env: dict[str, str]) -> None:
    first = launch(ws, env, 1)
    second = launch(ws, env, 2)
    assert first[1].wait() == 0
    assert second[1].wait() == 0
    for queued, _ in (first, second):
        r = ws.runs.get(queued.id)
        assert r.status == "succeeded", r.error
        assert r.metrics["done"] == 1.0
        assert len(ws.runs.series(r.id, "tick")) == 10 * int(r.params["seconds"])


def test_notebook_runs_record_params_metrics_and_failures(
    ws: Workspace, slow: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    monkeypatch.chdir(ws.settings.root or ".")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with assay.start_run(experiment="notebook", data="x@1", params={"lr": 0.1}) as run:
        for i in range(10_000):
            assay.log_metric("loss", 1 / (i + 1), step=i)
        assay.log_metrics({"acc": 0.9, "f1": 0.8})
        assay.log_param("extra", "yes")
    r = ws.runs.get(run.id)
    assert r.status == "succeeded"
    assert r.data_ref == "x@1"
    assert r.params_ref == "params/notebook@1"
    assert r.params == {"lr": 0.1, "extra": "yes"}
    assert r.metrics["acc"] == 0.9
    assert r.metrics["loss"] == pytest.approx(1 / 10_000)
    assert len(ws.runs.series(r.id, "loss")) == 10_000  # nothing buffered is lost

    opened: list[str] = []

    def fail_in_a_run() -> None:
        with assay.start_run(experiment="notebook") as failing:
            opened.append(failing.id)
            assay.log_metric("loss", 3.0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_in_a_run()
    r = ws.runs.get(opened[0])
    assert r.status == "failed"
    assert r.error is not None
    assert "boom" in r.error
    assert r.metrics["loss"] == 3.0


def test_logging_outside_a_run_says_how_to_start_one() -> None:
    from assay.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="start_run"):
        assay.log_metric("x", 1.0)


def test_a_metric_that_is_not_a_number_is_refused(
    ws: Workspace, slow: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    from assay.errors import InvalidArgumentError

    monkeypatch.chdir(ws.settings.root or ".")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with assay.start_run(experiment="nb"):
        with pytest.raises(InvalidArgumentError, match="must be a number"):
            assay.log_metric("x", "high")  # type: ignore[arg-type]
        assay.log_metric("nan", float("nan"))  # stored as null, not as an invalid number


def test_params_of_every_json_type_read_back_as_logged(
    ws: Workspace, slow: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    monkeypatch.chdir(ws.settings.root or ".")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    params = {
        "s": "text",
        "digits": "42",
        "b": True,
        "i": 3,
        "f": 0.5,
        "l": [1, "a"],
        "none": None,
        "nested": {"depth": 2},
    }
    with assay.start_run(experiment="types", params=params) as run:
        pass
    expected = {**{k: v for k, v in params.items() if k != "nested"}, "nested.depth": 2}
    assert ws.runs.search(experiment="types")[0].params == expected
    assert ws.runs.get(run.id).params == expected


def test_notebook_runs_opened_concurrently_all_get_their_params_versions(
    ws: Workspace, slow: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    import threading

    monkeypatch.chdir(ws.settings.root or ".")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    errors: list[BaseException] = []

    def open_runs(worker: int) -> None:
        try:
            for i in range(15):
                with assay.start_run(experiment="race", params={"w": worker, "i": i}):
                    assay.log_metric("x", float(i))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_runs, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found = ws.runs.search(experiment="race", limit=None)
    assert len(found) == 45
    assert len({r.params_ref for r in found}) == 45  # one params version each
    assert {r.status for r in found} == {"succeeded"}
    # each thread's metrics went to its own run
    assert all(r.metrics["x"] == float(r.params["i"]) for r in found)


def test_points_a_failed_flush_could_not_write_are_kept_for_the_next(
    ws: Workspace, slow: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    from assay.runs import repository, tracking

    run = ws.runs.begin("flaky")
    recorder = tracking.RunRecorder(run.id, ws.db, ws.store)
    for i in range(5):
        recorder.log_metric("m", float(i), step=i)
    real = repository.RunRepository.add_points
    calls = {"n": 0}

    def fail_once(self: repository.RunRepository, run_id: str, points: list) -> None:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the database went away for a moment")
        real(self, run_id, points)

    monkeypatch.setattr(repository.RunRepository, "add_points", fail_once)
    with pytest.raises(RuntimeError):
        recorder.flush()
    recorder.log_metric("m", 5.0, step=5)
    recorder.close()
    assert [s for _, _, s, _ in ws.runs.series(run.id, "m")] == [0, 1, 2, 3, 4, 5]
