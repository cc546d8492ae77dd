"""Deleting what was recorded, archiving runs, and `assay gc`: on both metadata backends,
a local store and an S3-compatible one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.config import Settings
from assay.data.service import DataService
from assay.errors import ConflictError, NotFoundError
from assay.store.objects import LocalObjectStore
from assay.workspace import Workspace, init_workspace


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def objects(ws: Workspace) -> set[str]:
    return {o.digest for o in ws.store.iter_objects()}


def test_a_deleted_data_version_is_gone_its_number_retired_and_its_bytes_collected(
    ws: Workspace, tmp_path: Path
) -> None:
    shared = os.urandom(300_000)  # a file of its own (large), kept by the other version
    one = tree(tmp_path / "one", {"shared.bin": shared, "only-one.bin": os.urandom(400_000)})
    ws.data.commit("raw", one)
    two = tree(tmp_path / "two", {"shared.bin": shared, "small.txt": b"tiny"})
    ws.data.commit("raw", two)
    before = objects(ws)

    deleted = ws.lifecycle.delete_data("raw@1")
    assert deleted.what == ("raw@1",)
    assert deleted.broke == ()
    with pytest.raises(NotFoundError, match=r"raw@1 was deleted on .* by tester"):
        ws.data.resolve("raw@1")
    assert [v.number for v in ws.data.log("raw")] == [2]
    assert ws.lifecycle.collect(grace_s=3600).removed == 0  # young: a commit may need it

    dry = ws.lifecycle.collect(dry_run=True, grace_s=0)
    assert dry.removed == 2
    assert dry.removed_bytes > 400_000
    assert objects(ws) == before
    done = ws.lifecycle.collect(grace_s=0)
    assert (done.removed, done.removed_bytes) == (dry.removed, dry.removed_bytes)
    assert len(objects(ws)) == len(before) - 2
    assert ws.data.verify().ok
    restored = ws.data.checkout("raw@2", tmp_path / "out")
    assert restored.ref == "raw@2"
    assert (tmp_path / "out" / "shared.bin").read_bytes() == shared

    three = ws.data.commit("raw", tree(tmp_path / "three", {"new.txt": b"new"})).version
    assert three.ref == "raw@3"  # 1 is never given out again
    ws.lifecycle.delete_data("raw@3")
    assert ws.data.commit("raw", tmp_path / "three").version.ref == "raw@4"


def test_deleting_what_others_depend_on_is_refused_unless_forced(
    ws: Workspace, tmp_path: Path
) -> None:
    ws.data.commit("raw", tree(tmp_path / "d", {"a.txt": b"a"}))
    ws.data.tag("raw@1", "gold")
    with _open(ws, "raw@1") as run_id:
        pass
    with pytest.raises(ConflictError, match=r"run .*, tag raw@gold depend\(s\) on it"):
        ws.lifecycle.delete_data("raw@1")
    assert ws.data.resolve("raw@1").number == 1  # untouched
    forced = ws.lifecycle.delete_data("raw@1", force=True)
    assert f"run {run_id[:8]}" in forced.broke
    assert "tag raw@gold" in forced.broke
    with pytest.raises(NotFoundError, match="no tag 'gold'"):
        ws.data.resolve("raw@gold")


class _open:
    """A finished tracked run on `data`, yielding its id."""

    def __init__(self, ws: Workspace, data: str) -> None:
        self.ws, self.data = ws, data

    def __enter__(self) -> str:
        self.run = self.ws.runs.begin("e", data=self.data)
        return self.run.id

    def __exit__(self, *exc: object) -> None:
        self.ws.runs.finish_here(self.run.id, "succeeded", None, 0.1, 0.1)


def test_a_model_version_in_use_is_kept_unless_forced_and_its_bundle_collected(
    ws: Workspace, tmp_path: Path
) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    mv = ws.registry.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), "iris")
    ws.registry.alias(mv.ref, "champion")
    with pytest.raises(ConflictError, match="alias iris@champion depend"):
        ws.lifecycle.delete_model("iris@1")
    gone = ws.lifecycle.delete_model("iris@1", force=True)
    assert gone.broke == ("alias iris@champion",)
    with pytest.raises(NotFoundError, match="iris@1 was deleted"):
        ws.registry.resolve("iris@1")
    with pytest.raises(NotFoundError, match="no alias 'champion'"):
        ws.registry.resolve("iris@champion")
    assert ws.store.has(mv.bundle)  # its objects go at the next collection
    ws.lifecycle.collect(grace_s=0)
    assert not ws.store.has(mv.bundle)
    again = ws.registry.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), "iris")
    assert again.ref == "iris@2"


def test_runs_delete_with_their_children_and_records_and_archive_hides_them(
    ws: Workspace, tmp_path: Path
) -> None:
    from assay.runs.entities import Candidate

    parent = ws.runs.begin("grid")
    ws.runs.add_children(parent.id, [Candidate({"C": 1}, {"score": 0.5})] * 3)
    log = tmp_path / "notes.txt"
    log.write_bytes(os.urandom(1000))
    ws.runs.add_artifacts(parent.id, {"notes.txt": log})
    ws.runs.finish_here(parent.id, "succeeded", None, 1.0, 1.0)
    other = ws.runs.begin("grid")
    ws.runs.finish_here(other.id, "succeeded", None, 1.0, 1.0)

    ws.runs.archive([other.id])
    assert {r.id for r in ws.runs.search(filter="parent_id is null")} == {parent.id}
    assert len(ws.runs.search(filter="parent_id is null", archived=True)) == 2
    ws.runs.archive([other.id], restore=True)
    ws.runs.archive_experiment("grid")
    assert ws.runs.search() == []
    assert len(ws.runs.search(experiment="grid")) == 5
    ws.runs.archive_experiment("grid", restore=True)

    deleted = ws.lifecycle.delete_runs([parent.id[:8]])
    assert len(deleted.what) == 4
    assert parent.id in deleted.what
    assert [r.id for r in ws.runs.search()] == [other.id]
    with pytest.raises(NotFoundError):
        ws.runs.get(parent.id)
    assert ws.runs.artifacts(other.id) == []  # the notes were the parent's, not the other's
    before = objects(ws)
    removed = ws.lifecycle.collect(grace_s=0)
    assert removed.removed >= 1
    assert not (objects(ws) - before)


def test_the_names_runs_use_are_listed_and_go_with_the_last_run_that_used_them(
    ws: Workspace,
) -> None:
    """`runs.keys()` (the dashboard's column choosers) reads the names kept apart from the
    values (migration 0014): every name logged by any path, none twice, and a name no run
    has any more is gone after a delete."""
    from assay.runs.entities import Candidate

    first = ws.runs.begin("names", params={"C": 1, "model": {"depth": 3}})
    ws.runs.log_points(first.id, [("acc", 0.9, 1, None), ("loss", 0.1, 1, None)])
    ws.runs.log_params(first.id, {"extra": "x"})
    ws.runs.finish_here(first.id, "succeeded", None, 1.0, 1.0)
    second = ws.runs.begin("names", params={"C": 2})
    ws.runs.add_children(second.id, [Candidate({"C": 3, "kernel": "rbf"}, {"acc": 0.5, "f1": 1})])
    ws.runs.log_points(second.id, [("acc", 0.8, 1, None)])
    ws.runs.finish_here(second.id, "succeeded", None, 1.0, 1.0)
    assert ws.runs.keys() == (["C", "extra", "kernel", "model.depth"], ["acc", "f1", "loss"])

    ws.lifecycle.delete_runs([first.id])
    assert ws.runs.keys() == (["C", "kernel"], ["acc", "f1"])
    ws.lifecycle.delete_runs([second.id])  # and its child
    assert ws.runs.keys() == ([], [])


def test_a_run_name_is_never_given_twice_even_after_a_delete(ws: Workspace) -> None:
    """Runs are named `<experiment>-<n>` by the experiment's count of runs made (migration
    0015), which a delete does not take back: counting the runs left named the next run
    as the one deleted."""
    first = ws.runs.begin("named")
    second = ws.runs.begin("named")
    assert (first.name, second.name) == ("named-1", "named-2")
    ws.runs.finish_here(second.id, "succeeded", None, 0.1, 0.1)
    ws.lifecycle.delete_runs([second.id])
    third = ws.runs.begin("named")
    assert third.name == "named-3"
    assert ws.runs.begin("other").name == "other-1"
    # A search's candidates are runs made in the experiment, numbered past as before.
    from assay.runs.entities import Candidate

    ws.runs.add_children(third.id, [Candidate({"C": 1}, {"acc": 0.5})] * 2)
    assert ws.runs.begin("named").name == "named-6"


def test_a_run_a_model_came_from_is_kept_unless_forced(ws: Workspace) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    run = ws.runs.begin("m")
    ws.runs.finish_here(run.id, "succeeded", None, 0.1, 0.1)
    ws.registry.log_model(DecisionTreeClassifier().fit(X, y), "m", run=run.id)
    with pytest.raises(ConflictError, match=r"model m@1 \(its lineage\) depend"):
        ws.lifecycle.delete_runs([run.id])
    assert ws.lifecycle.delete_runs([run.id], force=True).broke == ("model m@1 (its lineage)",)
    assert ws.registry.lineage("m@1")["model"] == "m@1"  # still readable


@pytest.mark.one_backend
def test_gc_removes_temporaries_of_killed_writers_and_expired_uploads(
    ws: Workspace, tmp_path: Path
) -> None:
    store = ws.store
    assert isinstance(store, LocalObjectStore)
    tmp = store.root / ".tmp"
    tmp.mkdir(exist_ok=True)
    (tmp / "stale").write_bytes(b"half an object")
    (tmp / "fresh").write_bytes(b"a write in flight")
    past = time.time() - 7200
    os.utime(tmp / "stale", (past, past))
    upload = ws.uploads.start()
    os.utime(ws.uploads.root / upload, (past - 86400, past - 86400))
    found = ws.lifecycle.collect(dry_run=True)
    assert (found.temporaries, found.uploads) == (1, 1)
    assert (tmp / "stale").exists()
    done = ws.lifecycle.collect()
    assert (done.temporaries, done.uploads) == (1, 1)
    assert not (tmp / "stale").exists()
    assert (tmp / "fresh").exists()
    assert not (ws.uploads.root / upload).exists()


# ---- a commit racing a collection ----------------------------------------------------------


def race(ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Commit content whose objects exist (unreferenced, old) when the commit starts, and
    run a collection after it found them and before it makes its version."""
    big = os.urandom(500_000)
    small = b"a small file, packed"
    ws.data.commit("raw", tree(tmp_path / "a", {"big.bin": big, "small.txt": small}))
    ws.lifecycle.delete_data("raw@1")  # now its objects are garbage

    record = DataService._record
    collected: list[int] = []

    def interleaved(self: DataService, *args: Any, **kwargs: Any) -> Any:
        if not collected:  # once: the retry must not race again
            collected.append(ws.lifecycle.collect(grace_s=0).removed)
        return record(self, *args, **kwargs)

    monkeypatch.setattr(DataService, "_record", interleaved)
    # The same content again, elsewhere (no stat cache): every object is found stored.
    again = ws.data.commit("raw", tree(tmp_path / "b", {"big.bin": big, "small.txt": small}))
    assert collected
    assert collected[0] >= 3
    assert again.version.ref == "raw@2"
    assert ws.data.verify().ok
    out = ws.data.checkout("raw@2", tmp_path / "out")
    assert out.ref == "raw@2"
    assert (tmp_path / "out" / "big.bin").read_bytes() == big
    assert (tmp_path / "out" / "small.txt").read_bytes() == small


def test_a_commit_that_races_gc_stores_again_what_was_collected(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    race(ws, monkeypatch, tmp_path)


@pytest.fixture
def s3_ws(tmp_path: Path, env: dict[str, str], s3_url: str) -> Iterator[Workspace]:
    settings, _ = init_workspace(Settings.at(tmp_path, {**env, "ASSAY_STORE_URL": s3_url}))
    workspace = Workspace(settings)
    yield workspace
    workspace.close()


@pytest.mark.one_backend
def test_a_commit_that_races_gc_on_s3_stores_again_what_was_collected(
    s3_ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    race(s3_ws, monkeypatch, tmp_path)


# ---- the CLI and the server ----------------------------------------------------------------


def test_the_cli_deletes_in_one_line_and_gc_says_what_it_would_remove(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    assert cli("init").exit_code == 0
    tree(tmp_path / "d", {"a.bin": os.urandom(300_000)})
    assert cli("data", "commit", "raw", "d").exit_code == 0
    assert cli("data", "tag", "raw@1", "gold").exit_code == 0
    refused = cli("data", "delete", "raw@1")
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        "error: Cannot delete data raw@1: tag raw@gold depend(s) on it. Pass --force to "
        "delete it anyway (they will name something deleted)."
    ]
    done = cli("data", "delete", "raw@1", "--force")
    assert done.exit_code == 0
    assert "now names something deleted: tag raw@gold" in done.stdout
    dry = cli("gc", "--dry-run", "--grace-minutes", "0")
    assert "Would remove 2 of 2 object(s), 293.1 KB" in dry.stdout
    assert cli("gc", "--grace-minutes", "0").stdout.startswith("Removed 2 of 2 object(s)")
