"""The data repository's commit, read and checkout paths, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.workspace import Workspace

Damage = Callable[[Workspace, str], None]


def make_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_first_commit_makes_version_one_with_every_file(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {"a.txt": "alpha", "sub/b.txt": "beta"})
    result = ws.data.commit("raw", tree, "first")
    assert result.created
    v = result.version
    assert (v.dataset, v.number, v.parent, v.message, v.author) == (
        "raw",
        1,
        None,
        "first",
        "tester",
    )
    files = ws.data.files(v)
    assert [(f.path, f.size) for f in files] == [("a.txt", 5), ("sub/b.txt", 4)]
    assert ws.data.read_file(v, "sub/b.txt") == b"beta"


def test_commit_of_unchanged_tree_makes_no_version(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {"a.txt": "alpha"})
    ws.data.commit("raw", tree)
    again = ws.data.commit("raw", tree, "again")
    assert not again.created
    assert again.version.number == 1
    assert [v.number for v in ws.data.log("raw")] == [1]


def test_recommit_hashes_only_the_changed_file(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {f"f{i}.txt": f"file {i}" for i in range(50)})
    old = tmp_path.stat().st_mtime - 10
    for p in tree.iterdir():  # older than the racy window, so the stat cache may trust them
        os.utime(p, (old, old))
    first = ws.data.commit("raw", tree)
    assert first.files_hashed == 50
    (tree / "f7.txt").write_text("changed")
    second = ws.data.commit("raw", tree)
    assert second.created
    assert (second.files_hashed, second.files_cached) == (1, 49)
    assert second.version.parent == 1
    assert ws.data.read_file(second.version, "f7.txt") == b"changed"


def test_stat_cache_never_hides_a_change_of_content(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {"a.txt": "aaaa"})
    ws.data.commit("raw", tree)
    (tree / "a.txt").write_text("bbbb")  # same size, written within the racy window
    result = ws.data.commit("raw", tree)
    assert result.created
    assert ws.data.read_file(result.version, "a.txt") == b"bbbb"


def test_identical_files_are_stored_once_across_versions_and_datasets(
    ws: Workspace, tmp_path: Path
) -> None:
    shared = "x" * 1000
    make_tree(tmp_path / "d1", {"a.txt": shared, "b.txt": "one"})
    make_tree(tmp_path / "d2", {"copy.txt": shared, "c.txt": "two"})
    ws.data.commit("one", tmp_path / "d1")
    ws.data.commit("two", tmp_path / "d2")
    members = ws.data.blobs.pack_members()
    packed = [h for ms in members.values() for h, _, _ in ms]
    assert len(packed) == len(set(packed)) == 3  # shared, one, two: each once
    # two packs and two manifests, nothing else
    assert len(set(ws.store.iter_digests())) == 4


def test_small_files_travel_in_one_pack_per_commit(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {f"f{i}.txt": f"file {i}" for i in range(300)})
    tree.joinpath("big.bin").write_bytes(os.urandom(300 * 1024))
    v = ws.data.commit("raw", tree).version
    packs = ws.data.blobs.pack_members()
    assert len(packs) == 1
    assert len(next(iter(packs.values()))) == 300
    big = next(f for f in ws.data.files(v) if f.path == "big.bin")
    assert ws.store.has(big.hash)  # large files are objects of their own
    assert ws.data.read_file(v, "f42.txt") == b"file 42"


def test_single_file_becomes_a_version_holding_that_file(ws: Workspace, tmp_path: Path) -> None:
    path = make_tree(tmp_path, {"iris.csv": "a,b\n1,2\n"}) / "iris.csv"
    v = ws.data.commit("iris", path).version
    assert [f.path for f in ws.data.files(v)] == ["iris.csv"]


def test_large_file_round_trips_through_checkout(ws: Workspace, tmp_path: Path) -> None:
    blob = os.urandom(9 * 1024 * 1024)
    path = tmp_path / "in" / "big.bin"
    path.parent.mkdir()
    path.write_bytes(blob)
    ws.data.commit("big", path)
    ws.data.checkout("big@1", tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == blob


def test_checkout_restores_a_version_byte_for_byte(ws: Workspace, tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {"a.txt": b"alpha", "deep/er/b.bin": os.urandom(3000), "c": b""}
    tree = make_tree(tmp_path / "d", files)
    ws.data.commit("raw", tree)
    (tree / "a.txt").write_text("edited")
    ws.data.commit("raw", tree)
    ws.data.checkout("raw@1", tmp_path / "out")
    for rel, content in files.items():
        assert (tmp_path / "out" / rel).read_bytes() == content
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == [
        "a.txt",
        "b.bin",
        "c",
    ]


def test_checkout_refuses_a_non_empty_destination_without_force(
    ws: Workspace, tmp_path: Path
) -> None:
    ws.data.commit("raw", make_tree(tmp_path / "d", {"a.txt": "alpha"}))
    dest = make_tree(tmp_path / "out", {"keep.txt": "mine"})
    with pytest.raises(ConflictError, match="not empty; use --force"):
        ws.data.checkout("raw@1", dest)
    assert (dest / "keep.txt").read_text() == "mine"
    ws.data.checkout("raw@1", dest, force=True)
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt"]


def test_checkout_into_an_empty_folder_is_allowed(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("raw", make_tree(tmp_path / "d", {"a.txt": "alpha"}))
    (tmp_path / "empty").mkdir()
    ws.data.checkout("raw@latest", tmp_path / "empty")
    assert (tmp_path / "empty" / "a.txt").read_text() == "alpha"


def test_latest_and_tags_resolve(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {"a.txt": "1"})
    ws.data.commit("raw", tree)
    (tree / "a.txt").write_text("2")
    ws.data.commit("raw", tree)
    assert ws.data.resolve("raw@latest").number == 2
    assert ws.data.resolve("raw").number == 2
    ws.data.tag("raw@1", "golden")
    assert ws.data.resolve("raw@golden").number == 1
    assert ws.data.log("raw")[1].tags == ("golden",)


def test_moving_a_tag_needs_force(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {"a.txt": "1"})
    ws.data.commit("raw", tree)
    (tree / "a.txt").write_text("2")
    ws.data.commit("raw", tree)
    ws.data.tag("raw@1", "golden")
    with pytest.raises(ConflictError, match="already points at raw@1"):
        ws.data.tag("raw@2", "golden")
    ws.data.tag("raw@2", "golden", force=True)
    assert ws.data.resolve("raw@golden").number == 2


def test_log_lists_versions_newest_first_and_list_counts_them(
    ws: Workspace, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "d", {"a.txt": "1"})
    for i in range(3):
        (tree / "a.txt").write_text(str(i))
        ws.data.commit("raw", tree, f"v{i}")
    assert [(v.number, v.message) for v in ws.data.log("raw")] == [(3, "v2"), (2, "v1"), (1, "v0")]
    [ds] = ws.data.datasets()
    assert (ds.name, ds.versions, ds.latest) == ("raw", 3, 3)


def test_diff_lists_added_removed_and_changed_files(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {"keep.txt": "k", "gone.txt": "g", "edit.txt": "e1"})
    ws.data.commit("raw", tree)
    (tree / "gone.txt").unlink()
    (tree / "edit.txt").write_text("e2!")
    (tree / "new.txt").write_text("n")
    ws.data.commit("raw", tree)
    d = ws.data.diff("raw@1", "raw@2")
    assert [f.path for f in d.added] == ["new.txt"]
    assert [f.path for f in d.removed] == ["gone.txt"]
    assert [(c.path, c.old_size, c.new_size) for c in d.changed] == [("edit.txt", 2, 3)]
    assert ws.data.diff("raw@1", "raw@1").unchanged


def test_names_with_parts_are_allowed_for_params_datasets(ws: Workspace, tmp_path: Path) -> None:
    path = make_tree(tmp_path, {"params.json": '{"C": 1}'}) / "params.json"
    assert ws.data.commit("params/churn-train", path).version.ref == "params/churn-train@1"


@pytest.mark.parametrize("name", ["../evil", "a/../b", "/abs", "has space", "", "x" * 300, "a\\b"])
def test_bad_dataset_names_are_refused(ws: Workspace, tmp_path: Path, name: str) -> None:
    path = make_tree(tmp_path, {"a.txt": "x"}) / "a.txt"
    with pytest.raises(InvalidArgumentError, match="not valid"):
        ws.data.commit(name, path)


def test_missing_path_is_a_clear_error(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        ws.data.commit("raw", tmp_path / "nope")


def test_empty_folder_has_nothing_to_commit(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="nothing to commit"):
        ws.data.commit("raw", tmp_path / "empty")


@pytest.mark.parametrize("size", [100, 300 * 1024], ids=["packed", "stored-whole"])
def test_a_file_that_vanishes_mid_commit_is_named_and_nothing_is_committed(
    ws: Workspace, tmp_path: Path, size: int
) -> None:
    tree = make_tree(tmp_path / "d", {"keep.txt": "k", "gone.bin": os.urandom(size)})

    def delete_after_the_scan(done: int, total: int) -> None:
        (tree / "gone.bin").unlink(missing_ok=True)

    with pytest.raises(ConflictError, match=r"gone\.bin disappeared during the commit"):
        ws.data.commit("raw", tree, progress=delete_after_the_scan)
    assert ws.data.datasets() == []


@pytest.mark.one_backend
def test_a_dangling_symlink_is_named(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {"a.txt": "a"})
    (tree / "link.csv").symlink_to(tmp_path / "nowhere.csv")
    with pytest.raises(InvalidArgumentError, match=r"link\.csv is a symbolic link to nothing"):
        ws.data.commit("raw", tree)


@pytest.mark.one_backend
def test_devices_and_pipes_inside_a_folder_are_skipped(ws: Workspace, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "d", {"a.txt": "a"})
    os.mkfifo(tree / "pipe")  # opening it would block: it must never be read
    result = ws.data.commit("raw", tree)
    assert [f.path for f in ws.data.files(result.version)] == ["a.txt"]


@pytest.mark.one_backend
def test_a_named_pipe_given_as_the_path_is_refused(ws: Workspace, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InvalidArgumentError, match="is a named pipe, not a file or a folder"):
        ws.data.commit("raw", tmp_path / "pipe")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope@1", "No dataset named 'nope'"),
        ("raw@9", "no version 9"),
        ("raw@missing-tag", "no tag 'missing-tag'"),
        ("raw@", "nothing after '@'"),
    ],
)
def test_unknown_references_name_the_problem(
    ws: Workspace, tmp_path: Path, ref: str, message: str
) -> None:
    ws.data.commit("raw", make_tree(tmp_path / "d", {"a.txt": "x"}))
    with pytest.raises((NotFoundError, InvalidArgumentError), match=message):
        ws.data.resolve(ref)


def test_verify_reports_corrupt_and_missing_objects(
    ws: Workspace, tmp_path: Path, damage: Damage, remove: Damage
) -> None:
    tree = make_tree(tmp_path / "d", {"a.txt": "alpha"})
    (tree / "b.bin").write_bytes(os.urandom(400 * 1024))
    v = ws.data.commit("raw", tree).version
    assert ws.data.verify().ok
    a, b = ws.data.files(v)
    damage(ws, a.hash)
    remove(ws, b.hash)
    report = ws.data.verify()
    assert not report.ok
    assert a.hash in report.corrupt
    assert report.missing == ((b.hash, "raw@1:b.bin"),)


def test_reading_a_corrupt_object_fails_loudly(
    ws: Workspace, tmp_path: Path, damage: Damage
) -> None:
    from assay.errors import CorruptObjectError

    v = ws.data.commit("raw", make_tree(tmp_path / "d", {"a.txt": "alpha"})).version
    [a] = ws.data.files(v)
    damage(ws, a.hash)
    with pytest.raises(CorruptObjectError, match="corrupt"):
        ws.data.checkout("raw@1", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(CorruptObjectError, match="corrupt"):
        ws.data.read_file(v, "a.txt")


def test_a_folder_of_small_files_with_a_table_commits_and_profiles(
    ws: Workspace, tmp_path: Path
) -> None:
    # Small files are packed; the new table is profiled before the pack is indexed.
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (folder / "b.txt").write_text("hello")
    result = ws.data.commit("mixed", folder, "two small files")
    assert result.created
    assert result.version.file_count == 2
    _, tables = ws.data.profile("mixed@1")
    assert tables["a.csv"].rows == 2


def test_params_datasets_are_listed_only_when_asked(ws: Workspace, tmp_path: Path) -> None:
    ws.data.commit("raw", make_tree(tmp_path / "d", {"a.txt": "a"}))
    ws.data.commit("params/train", make_tree(tmp_path / "p", {"params.json": "{}"}))
    assert [d.name for d in ws.data.datasets()] == ["raw"]
    assert [d.name for d in ws.data.datasets(include_params=True)] == ["params/train", "raw"]
