"""A commit killed at any moment leaves the store as it was; concurrent commits both land."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assay.workspace import Workspace


def _assay() -> str:
    return str(Path(sys.executable).with_name("assay"))


def _any_file(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def _packed(store: Path, big: str) -> bool:
    """A pack of the small files is stored (an object that is not the large file)."""
    return any(p.is_file() and p.parent.name + p.name != big for p in store.glob("??/*"))


# Where the commit is when it is killed, each a state it leaves on disk: the large file
# being copied in, a pack of the small files stored, the large file stored.
PHASES = {
    "copying": lambda store, big: _any_file(store / ".tmp"),
    "packed": _packed,
    "stored": lambda store, big: (store / big[:2] / big[2:]).exists(),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_commit_killed_with_sigkill_leaves_no_partial_version(
    ws: Workspace, tmp_path: Path, env: dict[str, str], phase: str
) -> None:
    from assay.store.objects import LocalObjectStore, hash_file

    tree = tmp_path / "d"
    for i in range(1500):
        sub = tree / f"{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.bin").write_bytes(os.urandom(2048))
    (tree / "big.bin").write_bytes(os.urandom(64 * 1024 * 1024))
    big = hash_file(tree / "big.bin")
    assert isinstance(ws.store, LocalObjectStore)
    store = ws.store.root

    proc = subprocess.Popen(
        [_assay(), "data", "commit", "raw", str(tree)],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    reached = PHASES[phase]
    deadline = time.monotonic() + 60
    while not reached(store, big) and proc.poll() is None:
        assert time.monotonic() < deadline, f"the commit never reached {phase}"
        time.sleep(0.001)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Killed mid-commit, not before it started nor after it finished (but for the last
    # phase, after which only the version's own row is left to write).
    assert running or phase == "stored", f"the commit finished before {phase} was seen"

    versions = ws.data.log("raw") if ws.data.datasets() else []
    for v in versions:  # whatever landed is complete
        assert v.file_count == 1501
        assert len(ws.data.files(v)) == 1501
    report = ws.data.verify()
    assert report.corrupt == ()
    assert report.missing == ()

    again = ws.data.commit("raw", tree, "after the crash")
    assert again.version.file_count == 1501
    assert ws.data.verify().ok
    ws.data.checkout(again.version.ref, tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == (tree / "big.bin").read_bytes()


def test_two_concurrent_commits_to_one_dataset_both_land(ws: Workspace, tmp_path: Path) -> None:
    trees = []
    for n in range(2):
        tree = tmp_path / f"d{n}"
        tree.mkdir()
        for i in range(200):
            (tree / f"f{i}.txt").write_text(f"tree {n} file {i}")
        for i in range(200):  # the same content in both: both packs hold it, one is indexed
            (tree / f"shared{i}.txt").write_text(f"shared file {i}")
        trees.append(tree)
    errors: list[BaseException] = []

    def commit(tree: Path) -> None:
        try:
            ws.data.commit("shared", tree)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(t,)) for t in trees]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(v.number for v in ws.data.log("shared")) == [1, 2]
    for v in ws.data.log("shared"):
        assert ws.data.read_file(v, "shared7.txt") == b"shared file 7"
    assert ws.data.verify().ok


def test_a_disk_that_fills_during_commit_leaves_files_and_store_intact(
    tmp_path: Path, env: dict[str, str], small_disk: Path
) -> None:
    from assay.config import Settings
    from assay.errors import StorageError
    from assay.workspace import init_workspace

    settings, _ = init_workspace(
        Settings.at(tmp_path, {**env, "ASSAY_STORE_URL": str(small_disk / "objects")})
    )
    ws = Workspace(settings)
    tree = tmp_path / "d"
    tree.mkdir()
    (tree / "small.txt").write_text("fits")
    ws.data.commit("raw", tree)
    originals = {}
    for i in range(3):
        blob = os.urandom(1024 * 1024)
        (tree / f"big{i}.bin").write_bytes(blob)
        originals[f"big{i}.bin"] = blob
    with pytest.raises(StorageError, match="No space left on device"):
        ws.data.commit("raw", tree)
    for name, blob in originals.items():  # the user's files are untouched
        assert (tree / name).read_bytes() == blob
    assert [v.number for v in ws.data.log("raw")] == [1]
    assert ws.data.verify().ok
    ws.close()
