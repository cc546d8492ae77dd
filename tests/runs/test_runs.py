"""Runs end to end through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.runs.entities import Run
from assay.runs.params import apply_overrides, load_params, params_text
from assay.runs.split import split as assay_split
from assay.workspace import Workspace

PIPELINE = """
import assay

@assay.step
def load(data):
    return [int(x) for x in (data / "numbers.txt").read_text().split()]

@assay.step
def scale(load, params):
    return [x * params["factor"] for x in load]

@assay.step
def train(scale, params):
    for i, x in enumerate(scale):
        assay.log_metric("running", x, step=i)
    return {"total": sum(scale) + params["bias"]}

@assay.step
def evaluate(train, params):
    print("evaluating", train["total"])
    return {"score": train["total"] / 10, "bias_seen": params["bias"]}

pipeline = assay.Pipeline("numbers", [load, scale, train, evaluate])
"""


@pytest.fixture
def project(ws: Workspace, tmp_path: Path) -> Path:
    src = tmp_path / "project"
    src.mkdir()
    (src / "pipeline.py").write_text(PIPELINE)
    (src / "numbers.txt").write_text("1 2 3 4")
    (src / "params.json").write_text(json.dumps({"factor": 2, "bias": 0.5, "seed": 3}))
    ws.data.commit("numbers", src / "numbers.txt")
    ws.pipelines.register(src / "pipeline.py")
    return src


def run(
    ws: Workspace, project: Path, *overrides: str, force: bool = False, cache: bool = True
) -> Run:
    queued = ws.runs.prepare(
        "numbers",
        data="numbers@1",
        params_file=project / "params.json",
        overrides=list(overrides),
        force=force,
    )
    assert queued.status == "queued"
    return ws.runs.execute(queued.id, use_cache=cache)


def test_a_run_records_inputs_metrics_steps_model_and_resources(
    ws: Workspace, project: Path
) -> None:
    r = run(ws, project)
    assert r.status == "succeeded", r.error
    assert (r.pipeline_ref, r.data_ref, r.params_ref) == (
        "numbers@1",
        "numbers@1",
        "params/numbers@1",
    )
    assert r.params == {"factor": 2, "bias": 0.5, "seed": 3}
    assert r.metrics["score"] == pytest.approx(2.05)
    assert r.metrics["running"] == 8  # the last point of the series
    series = ws.runs.series(r.id, "running")
    assert [(v, s) for _, v, s, _ in series] == [(2, 0), (4, 1), (6, 2), (8, 3)]
    assert [s.name for s in r.steps] == ["load", "scale", "train", "evaluate"]
    assert all(s.status == "succeeded" and not s.cached for s in r.steps)
    assert r.model is not None
    assert r.model_flavor == "python"
    assert r.resources["wall_s"] > 0
    assert r.resources["peak_rss_bytes"] > 0
    assert r.resources["cost"] >= 0
    assert r.environment["python"]
    assert r.environment["package_count"] > 10
    assert "sqlalchemy" in {k.lower() for k in ws.runs.packages(r)}
    params_file = ws.data.read_file(ws.data.resolve("params/numbers@1"), "params.json")
    assert json.loads(params_file) == r.params


def test_same_inputs_again_point_at_the_earlier_run(ws: Workspace, project: Path) -> None:
    first = run(ws, project)
    with pytest.raises(ConflictError, match=f"already ran: run {first.id[:8]}"):
        run(ws, project)
    again = run(ws, project, force=True)
    assert again.status == "succeeded"


def test_identical_params_reuse_their_version(ws: Workspace, project: Path) -> None:
    run(ws, project)
    run(ws, project, "bias=1.5")
    third = run(ws, project, force=True)  # the first params again, after other params
    assert third.params_ref == "params/numbers@1"


def test_unchanged_steps_are_cached_and_their_metrics_replayed(
    ws: Workspace, project: Path
) -> None:
    run(ws, project)
    r = run(ws, project, "bias=2.5")  # only train and evaluate read bias
    cached = {s.name: s.cached for s in r.steps}
    assert cached == {"load": True, "scale": True, "train": False, "evaluate": False}
    r3 = run(ws, project, "factor=3")
    assert {s.name: s.cached for s in r3.steps}["load"] is True
    assert {s.name: s.cached for s in r3.steps}["scale"] is False
    r4 = run(ws, project, force=True)  # everything cached, metrics still complete
    assert all(s.cached for s in r4.steps)
    assert r4.metrics["running"] == 8
    assert r4.metrics["score"] == pytest.approx(2.05)


def test_no_cache_runs_every_step(ws: Workspace, project: Path) -> None:
    run(ws, project)
    r = run(ws, project, force=True, cache=False)
    assert not any(s.cached for s in r.steps)


def test_a_failing_step_fails_the_run_and_keeps_earlier_outputs(
    ws: Workspace, project: Path
) -> None:
    (project / "pipeline.py").write_text(
        PIPELINE.replace('return {"total"', 'x = 1 / 0\n    return {"total"')
    )
    ws.pipelines.register(project / "pipeline.py")
    queued = ws.runs.prepare("numbers@2", data="numbers@1", params_file=project / "params.json")
    r = ws.runs.execute(queued.id)
    assert r.status == "failed"
    assert r.error is not None
    assert "ZeroDivisionError" in r.error
    status = {s.name: s.status for s in r.steps}
    assert status == {
        "load": "succeeded",
        "scale": "succeeded",
        "train": "failed",
        "evaluate": "pending",
    }
    assert next(s for s in r.steps if s.name == "scale").output is not None


def test_a_run_executes_the_stored_snapshot_not_the_working_copy(
    ws: Workspace, project: Path
) -> None:
    (project / "pipeline.py").write_text(PIPELINE.replace("x * params", "x * 100 * params"))
    r = run(ws, project)  # pipeline "numbers" is still version 1
    assert r.metrics["score"] == pytest.approx(2.05)


def test_logs_capture_what_steps_print_in_the_runner_process(
    ws: Workspace, project: Path, env: dict[str, str]
) -> None:
    import os

    from assay.executors.local import LocalExecutor

    queued = ws.runs.prepare("numbers", data="numbers@1", params_file=project / "params.json")
    handle = LocalExecutor(ws.settings.root or Path("."), {**os.environ, **env}).launch(queued.id)
    events = [e["event"] for e in handle.events()]
    assert handle.wait() == 0
    assert events[0] == "start"
    assert events[-1] == "end"
    assert events.count("step_done") == 4
    assert ws.runs.get(queued.id).status == "succeeded"
    assert "evaluating 20.5" in ws.runs.logs(queued.id)


def test_rerun_queues_the_same_inputs(ws: Workspace, project: Path) -> None:
    first = run(ws, project)
    again = ws.runs.execute(ws.runs.rerun(first.id[:6]).id)
    assert again.rerun_of == first.id
    assert (again.pipeline_ref, again.data_ref, again.params_ref) == (
        first.pipeline_ref,
        first.data_ref,
        first.params_ref,
    )
    assert again.metrics == first.metrics


def test_search_filters_and_sorts(ws: Workspace, project: Path) -> None:
    for bias in (0.5, 1.5, 2.5):
        run(ws, project, f"bias={bias}")
    found = ws.runs.search(filter="params.bias > 1", sort="metrics.score desc")
    assert [r.params["bias"] for r in found] == [2.5, 1.5]
    assert ws.runs.search(experiment="numbers", filter="status = 'failed'") == []
    with pytest.raises(NotFoundError, match="No experiment named 'nope'"):
        ws.runs.search(experiment="nope")


def test_unknown_inputs_are_clear_errors(ws: Workspace, project: Path) -> None:
    with pytest.raises(NotFoundError, match="numbers"):
        ws.runs.prepare("numbers@9", data="numbers@1", params_file=project / "params.json")
    with pytest.raises(NotFoundError, match="no version 4"):
        ws.runs.prepare("numbers", data="numbers@4", params_file=project / "params.json")
    with pytest.raises(NotFoundError, match="No run"):
        ws.runs.get("abcdef12")
    with pytest.raises(InvalidArgumentError, match="not a run id"):
        ws.runs.get("not-an-id")
    assert ws.runs.search() == []  # nothing was queued by the failures


def test_params_files_and_overrides_keep_types(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"C": 1.0, "n": 3, "on": true, "name": "x", "model": {"depth": 2}}')
    params = load_params(path)
    out = apply_overrides(
        params, ["C=0.5", "n=7", "on=false", "name=y", "model.depth=5", "new=[1, 2]", "word=hello"]
    )
    assert out == {
        "C": 0.5,
        "n": 7,
        "on": False,
        "name": "y",
        "model": {"depth": 5},
        "new": [1, 2],
        "word": "hello",
    }
    assert params["n"] == 3  # the input is not modified


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("n=abc", "n is an integer"),
        ("C=x", "C is a number"),
        ("on=maybe", "on is a boolean"),
        ("novalue", "KEY=VALUE"),
        ("=3", "KEY=VALUE"),
        ("model=5", "an object"),
    ],
)
def test_an_override_of_the_wrong_type_is_refused(
    tmp_path: Path, override: str, message: str
) -> None:
    params = {"C": 1.0, "n": 3, "on": True, "model": {"depth": 2}}
    with pytest.raises(InvalidArgumentError, match=message):
        apply_overrides(params, [override])


@given(
    st.dictionaries(
        st.text(max_size=12),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=12)
        | st.lists(st.integers(), max_size=3)
        | st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
        max_size=8,
    )
)
def test_the_params_file_is_json_dumps_byte_for_byte(params: dict[str, object]) -> None:
    """Runs with equal params share a version by the file's hash: the fast spelling of
    flat params must be exactly what `json.dumps(indent=2, sort_keys=True)` writes, as
    every earlier version was."""
    want = (json.dumps(params, indent=2, sort_keys=True) + "\n").encode()
    assert params_text(params) == want


@pytest.mark.parametrize(
    ("text", "message"),
    [("{bad json", "not valid JSON"), ("[1, 2]", "JSON object"), ("", "not valid JSON")],
)
def test_a_malformed_params_file_is_one_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(InvalidArgumentError, match=message):
        load_params(path)
    with pytest.raises(NotFoundError, match="does not exist"):
        load_params(tmp_path / "missing.json")


CUSTOM = """
import assay

class Doubler:
    def __init__(self, k):
        self.k = k

    def predict(self, xs):
        return [x * self.k for x in xs]

@assay.step
def load(data):
    return [1, 2, 3]

@assay.step
def train(load, params):
    import helpers  # a sibling module, imported when the step runs
    return Doubler(helpers.factor(params["factor"]))

@assay.step
def evaluate(train, load):
    return {"sum": float(sum(train.predict(load)))}

pipeline = assay.Pipeline("custom", [load, train, evaluate])
"""


def test_a_model_of_the_pipelines_own_class_is_stored_and_siblings_import(
    ws: Workspace, project: Path
) -> None:
    folder = project / "custom"
    folder.mkdir()
    (folder / "pipeline.py").write_text(CUSTOM)
    (folder / "helpers.py").write_text("def factor(f):\n    return f * 10\n")
    ws.pipelines.register(folder / "pipeline.py")
    queued = ws.runs.prepare("custom", data="numbers@1", params_file=project / "params.json")
    r = ws.runs.execute(queued.id)
    assert r.status == "succeeded", r.error
    assert r.metrics["sum"] == 120.0
    assert r.model is not None
    assert r.model_flavor == "python"


SPLITTING = """
import assay
import pandas as pd

@assay.step
def load(data):
    rows = [{"x": i % 40, "y": i % 2} for i in range(100)]  # 60 duplicated rows
    return pd.DataFrame(rows)

@assay.step
def split(load, params):
    return assay.split(load, target="y", seed=params["seed"], test_size=0.25, val_size=0.25)

@assay.step
def evaluate(split):
    return {"train_rows": float(len(split.train))}

pipeline = assay.Pipeline("splitting", [load, split, evaluate])
"""


def test_split_sizes_hashes_seed_and_leakage_are_recorded(ws: Workspace, project: Path) -> None:
    folder = project / "splitting"
    folder.mkdir()
    (folder / "pipeline.py").write_text(SPLITTING)
    ws.pipelines.register(folder / "pipeline.py")
    first = ws.runs.execute(
        ws.runs.prepare("splitting", data="numbers@1", params_file=project / "params.json").id
    )
    assert first.status == "succeeded", first.error
    info = first.extra["split"]
    assert info["sizes"] == {"train": 50, "val": 25, "test": 25}
    assert info["leaked_rows"] > 0  # duplicated rows land on both sides
    assert first.extra["seed"] == 3
    again = ws.runs.execute(ws.runs.rerun(first.id).id)
    assert again.extra["split"]["hashes"] == info["hashes"]  # the same seed, the same parts


def test_split_refuses_fractions_that_leave_no_training_rows() -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": range(10)})
    with pytest.raises(InvalidArgumentError, match="leave rows for training"):
        assay_split(frame, seed=1, test_size=0.6, val_size=0.5)
    with pytest.raises(InvalidArgumentError, match="target column 'nope'"):
        assay_split(frame, seed=1, target="nope")


def test_artifacts_are_stored_with_the_run(
    ws: Workspace, project: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    import assay

    monkeypatch.chdir(ws.settings.root or ".")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (project / "report.txt").write_text("all good")
    with assay.start_run(experiment="artifacts") as run:
        digest = assay.log_artifact(project / "report.txt")
        with pytest.raises(InvalidArgumentError, match="does not exist"):
            assay.log_artifact(project / "missing.txt")
    assert ws.store.get_bytes(digest) == b"all good"
    assert ws.runs.artifacts(run.id) == [("report.txt", digest, 8)]


def test_a_run_on_a_team_setup_with_objects_on_s3(
    tmp_path: Path, env: dict[str, str], s3_url: str
) -> None:
    """Metadata on the parametrised backend (PostgreSQL included), every object on S3."""
    from assay.config import Settings
    from assay.workspace import init_workspace

    settings, _ = init_workspace(Settings.at(tmp_path, {**env, "ASSAY_STORE_URL": s3_url}))
    team = Workspace(settings)
    try:
        src = tmp_path / "src"
        src.mkdir()
        (src / "pipeline.py").write_text(PIPELINE)
        (src / "numbers.txt").write_text("1 2 3 4")
        (src / "params.json").write_text(json.dumps({"factor": 2, "bias": 0.5}))
        team.data.commit("numbers", src / "numbers.txt")
        team.pipelines.register(src / "pipeline.py")
        queued = team.runs.prepare("numbers", data="numbers@1", params_file=src / "params.json")
        r = team.runs.execute(queued.id)
        assert r.status == "succeeded", r.error
        assert r.metrics["score"] == pytest.approx(2.05)
        assert team.store.url.startswith("s3://")
        assert team.store.has(r.model or "")
        again = team.runs.execute(team.runs.rerun(r.id).id)
        assert again.metrics == r.metrics
    finally:
        team.close()


def test_metric_direction_and_reproduction_rules() -> None:
    from assay.runs.entities import lower_is_better, same_metrics

    assert lower_is_better("val_loss")
    assert lower_is_better("RMSE")
    assert not lower_is_better("f1")
    assert same_metrics({"f1": 0.9, "x": None}, {"f1": 0.9 + 1e-12, "x": None})
    assert not same_metrics({"f1": 0.9}, {"f1": 0.91})
    assert not same_metrics({"f1": 0.9}, {"f1": 0.9, "auc": 0.8})
    assert not same_metrics({"f1": None}, {"f1": 0.0})


def test_a_run_tracked_from_elsewhere_dies_of_silence_only(ws: Workspace) -> None:
    """A run opened through the server has no local process: a restarted server, or a
    reader on another machine, must not mark it dead after a few missed heartbeats."""
    from datetime import timedelta

    from assay.runs.repository import RunRepository
    from assay.store.db import utcnow

    run = ws.runs.begin("remote-nb", params={"lr": 0.1}, remote=True)
    with ws.db.session() as conn:  # a minute of silence: long for a runner, fine here
        RunRepository(conn).update(run.id, heartbeat_at=utcnow() - timedelta(minutes=1))
    assert ws.runs.get(run.id).status == "running"
    ws.runs.log_points(run.id, [("loss", 0.5, 1, None)])
    done = ws.runs.finish(run.id, "succeeded")
    assert done.status == "succeeded"
    assert done.metrics == {"loss": 0.5}
    assert set(done.resources) == {"wall_s", "cost", "cost_per_hour"}  # no server stats
    silent = ws.runs.begin("remote-nb", params={"lr": 0.2}, remote=True)
    with ws.db.session() as conn:
        RunRepository(conn).update(silent.id, heartbeat_at=utcnow() - timedelta(hours=2))
    assert ws.runs.get(silent.id).status == "killed"


def test_metric_batches_keep_each_keys_latest_step_and_refuse_a_closed_run(
    ws: Workspace,
) -> None:
    """Batches may arrive out of order: a key's final value is its latest step's (the
    newer point on a tie), never an earlier step's that arrives later."""
    run = ws.runs.begin("batches", params={"lr": 0.1}, remote=True)
    ws.runs.log_points(
        run.id, [("loss", 0.9, 1, 1.0), ("loss", 0.5, 3, 2.0), ("loss", 0.7, 2, 3.0)]
    )
    ws.runs.log_points(run.id, [("loss", 0.8, 2, 4.0), ("acc", 0.6, None, 4.0)])  # stale step
    assert ws.runs.get(run.id).metrics == {"loss": 0.5, "acc": 0.6}
    ws.runs.log_points(run.id[:10], [("loss", 0.4, 3, 5.0), ("acc", 0.7, None, 5.0)])  # tie
    assert ws.runs.get(run.id).metrics == {"loss": 0.4, "acc": 0.7}
    assert len(ws.runs.series(run.id, "loss")) == 5  # every point is kept
    ws.runs.finish(run.id, "succeeded")
    with pytest.raises(ConflictError, match="succeeded; it takes no more metrics"):
        ws.runs.log_points(run.id, [("loss", 0.1, 9, None)])
    with pytest.raises(NotFoundError):
        ws.runs.log_points("0" * 32, [("loss", 0.1, 9, None)])
    assert ws.runs.get(run.id).metrics == {"loss": 0.4, "acc": 0.7}


def test_params_logged_at_once_from_two_threads_are_all_in_the_runs_document(
    ws: Workspace,
) -> None:
    """Each `log_params` adds its names to the run's params document: two at once (two
    transactions; on PostgreSQL, read committed) must not each write back a document
    without the other's names."""
    import threading

    run = ws.runs.begin("threads")
    failures: list[BaseException] = []

    def log(prefix: str) -> None:
        try:
            for i in range(25):
                ws.runs.log_params(run.id, {f"{prefix}{i}": i})
        except BaseException as exc:  # the assertion below names it
            failures.append(exc)

    threads = [threading.Thread(target=log, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    want = {f"{p}{i}": i for p in ("a", "b") for i in range(25)}
    assert ws.runs.get(run.id).params == want


def test_a_runner_stopped_as_its_run_starts_records_it_killed_with_the_reason(
    ws: Workspace, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal that stops a runner (its owner died: kill -9 of a sweep) can land just
    after the run was marked running, before its steps: the run still ends killed with
    the reason, not left running for the heartbeat check to call it a crash."""
    from assay.executors.lifeline import Terminated
    from assay.runs import tracking

    def stopped(self: tracking.RunRecorder) -> None:
        raise Terminated("The command that started it (pid 1) died; the run was stopped with it.")

    monkeypatch.setattr(tracking.RunRecorder, "start", stopped)
    queued = ws.runs.prepare("numbers", data="numbers@1", params_file=project / "params.json")
    done = ws.runs.execute(queued.id)
    assert done.status == "killed"
    assert "died" in (done.error or "")
    assert ws.runs.get(queued.id).status == "killed"
