"""The content-addressed object store, on a local folder and on a real (moto) S3 server.

Every behaviour test runs on both stores. Atomicity is checked by killing a real writer
process with SIGKILL; a full disk is a real 2 MiB tmpfs where mounting is allowed, and a
real RLIMIT_FSIZE limit (EFBIG from the kernel) everywhere.
"""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from blake3 import blake3

from assay.errors import AssayError, CorruptObjectError, NotFoundError, StorageError
from assay.store.objects import (
    PARALLEL_HASH_MIN,
    FsspecObjectStore,
    LocalObjectStore,
    ObjectStore,
    hash_bytes,
)

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return ObjectStore.open(str(tmp_path / "objects"))
    return ObjectStore.open(request.getfixturevalue("s3_url"))


Plant = Callable[[str, bytes], None]


@pytest.fixture
def plant(store: ObjectStore, request: pytest.FixtureRequest) -> Plant:
    """Write raw bytes at a path relative to the store's root, behind the store's back."""
    if isinstance(store, LocalObjectStore):
        root = store.root

        def plant_local(rel: str, data: bytes) -> None:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

        return plant_local

    assert isinstance(store, FsspecObjectStore)
    client = boto3.client("s3", endpoint_url=request.getfixturevalue("s3_server"))
    bucket, _, prefix = store.url.removeprefix("s3://").partition("/")

    def plant_s3(rel: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=data)

    return plant_s3


def object_rel(digest: str) -> str:
    return f"{digest[:2]}/{digest[2:]}"


def b3(data: bytes) -> str:
    return str(blake3(data).hexdigest())


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def uuid_hex() -> str:
    return uuid.uuid4().hex


# ---- naming and deduplication ---------------------------------------------------------------


def test_put_bytes_returns_blake3_hex_of_content(store: ObjectStore) -> None:
    data = b"hello, assay\n"
    digest = store.put_bytes(data)
    assert digest == b3(data)
    assert len(digest) == 64
    assert store.has(digest)
    assert store.size(digest) == len(data)


def test_put_bytes_is_idempotent(store: ObjectStore) -> None:
    data = payload(10_000)
    first = store.put_bytes(data)
    second = store.put_bytes(data)
    assert first == second == b3(data)
    assert list(store.iter_digests()) == [first]
    assert store.get_bytes(first) == data


def test_identical_bytes_are_stored_once(store: ObjectStore, tmp_path: Path) -> None:
    data = payload(5_000, seed=1)
    src_a, src_b = tmp_path / "a.bin", tmp_path / "b.bin"
    src_a.write_bytes(data)
    src_b.write_bytes(data)

    digests = {store.put_bytes(data), store.ingest_file(src_a)[0], store.ingest_file(src_b)[0]}
    other = store.put_bytes(data + b"!")

    assert digests == {b3(data)}
    assert sorted(store.iter_digests()) == sorted([b3(data), other])


@pytest.mark.parametrize(
    "size",
    [0, 1_000, PARALLEL_HASH_MIN - 1, PARALLEL_HASH_MIN, PARALLEL_HASH_MIN + 12_345],
    ids=["empty", "small", "just-below-parallel", "parallel-threshold", "large"],
)
def test_ingest_file_returns_blake3_and_size_of_its_bytes(
    store: ObjectStore, tmp_path: Path, size: int
) -> None:
    data = payload(size, seed=size)
    src = tmp_path / "data.bin"
    src.write_bytes(data)

    digest, stored_size = store.ingest_file(src)

    assert (digest, stored_size) == (b3(data), size)
    assert store.size(digest) == size
    assert store.get_bytes(digest) == data
    assert src.read_bytes() == data, "the source file must be left as it was"


def test_ingest_of_missing_file_raises_assay_error(
    store: ObjectStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with pytest.raises(AssayError, match=r"nope\.bin"):
        store.ingest_file(tmp_path / "nope.bin")
    assert list(store.iter_digests()) == []


# ---- reading --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"\x00\xff" * 100, payload(3 * MiB, seed=7)], ids=["empty", "binary", "3MiB"]
)
def test_get_bytes_round_trips(store: ObjectStore, data: bytes) -> None:
    assert store.get_bytes(store.put_bytes(data)) == data


@pytest.mark.parametrize("size", [100, PARALLEL_HASH_MIN + 1], ids=["small", "large"])
def test_copy_to_writes_identical_file_creating_parent_folders(
    store: ObjectStore, tmp_path: Path, size: int
) -> None:
    data = payload(size, seed=3)
    digest = store.put_bytes(data)
    dest = tmp_path / "out" / "deep" / "er" / "file.bin"

    store.copy_to(digest, dest)

    assert dest.read_bytes() == data
    assert list(dest.parent.iterdir()) == [dest], "no temporary file may be left beside it"


def test_copy_to_replaces_an_existing_file(store: ObjectStore, tmp_path: Path) -> None:
    dest = tmp_path / "file.txt"
    dest.write_bytes(b"old content that is longer than the new")
    digest = store.put_bytes(b"new")
    store.copy_to(digest, dest)
    assert dest.read_bytes() == b"new"


def test_missing_object_raises_not_found_naming_its_hash(
    store: ObjectStore, tmp_path: Path
) -> None:
    digest = b3(b"never stored")
    dest = tmp_path / "out" / "file.bin"

    with pytest.raises(NotFoundError, match=digest[:12]):
        store.get_bytes(digest)
    with pytest.raises(NotFoundError, match=digest[:12]):
        store.copy_to(digest, dest)
    with pytest.raises(NotFoundError, match=digest[:12]):
        store.size(digest)
    assert not store.has(digest)
    assert store.verify(digest) is False
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


# ---- corruption -----------------------------------------------------------------------------


def damage(data: bytes, how: str) -> bytes:
    if how == "flipped":
        return data[:10] + bytes([data[10] ^ 0x01]) + data[11:]
    if how == "truncated":
        return data[: len(data) // 2]
    assert how == "extended"
    return data + b"\n"


@pytest.mark.parametrize("how", ["flipped", "truncated", "extended"])
def test_corrupt_object_fails_reads_and_verify(
    store: ObjectStore, plant: Plant, tmp_path: Path, how: str
) -> None:
    data = payload(64_000, seed=11)
    digest = store.put_bytes(data)
    assert store.verify(digest) is True
    if isinstance(store, LocalObjectStore):
        store.path(digest).write_bytes(damage(data, how))
    else:
        plant(object_rel(digest), damage(data, how))
    dest = tmp_path / "out" / "file.bin"

    with pytest.raises(CorruptObjectError, match=f"{digest[:12]}.*is corrupt"):
        store.get_bytes(digest)
    with pytest.raises(CorruptObjectError, match=digest[:12]):
        store.copy_to(digest, dest)
    assert store.verify(digest) is False
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == [], "no temporary file may be left behind"


def test_copy_of_corrupt_object_leaves_existing_destination_untouched(
    store: ObjectStore, plant: Plant, tmp_path: Path
) -> None:
    data = payload(1_000, seed=12)
    digest = store.put_bytes(data)
    plant(object_rel(digest), damage(data, "flipped"))
    dest = tmp_path / "checkout" / "file.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"previous version")

    with pytest.raises(CorruptObjectError):
        store.copy_to(digest, dest)

    assert dest.read_bytes() == b"previous version"
    assert list(dest.parent.iterdir()) == [dest]


# ---- listing --------------------------------------------------------------------------------


def test_iter_digests_of_empty_store_is_empty(store: ObjectStore) -> None:
    assert list(store.iter_digests()) == []


def test_iter_digests_lists_exactly_what_was_put(store: ObjectStore, tmp_path: Path) -> None:
    expected = {store.put_bytes(payload(100 + i, seed=i)) for i in range(20)}
    src = tmp_path / "f.bin"
    src.write_bytes(b"ingested")
    expected.add(store.ingest_file(src)[0])

    listed = list(store.iter_digests())

    assert len(listed) == len(set(listed)) == 21
    assert set(listed) == expected


def test_iter_digests_ignores_temporaries_and_stray_files(store: ObjectStore, plant: Plant) -> None:
    digest = store.put_bytes(b"the only object")
    fake = b3(b"not an object of this store")
    plant(f".tmp/{fake}", b"a temporary named like a hash")
    plant(f".tmp/{uuid_hex()}", b"a temporary")
    plant("README.txt", b"hello")
    plant(f"zz/{fake[2:]}", b"fan-out folder that is not hex")
    plant(f"{digest[:2]}/notes.txt", b"stray file in a real fan-out folder")
    plant(f"{digest[:2]}/{fake[2:]}.partial", b"stray file with a suffix")
    plant(f"{digest[:2]}/{fake[3:]}", b"name one character short")

    assert list(store.iter_digests()) == [digest]


def test_iter_digests_ignores_hash_shaped_files_below_the_fan_out(
    store: ObjectStore, plant: Plant, request: pytest.FixtureRequest
) -> None:
    """Only `root/ab/cdef…` is an object; `root/x/ab/cdef…` (say, a nested store) is not."""
    digest = store.put_bytes(b"the only object")
    fake = b3(b"an object of a nested store")
    plant(f"nested/{object_rel(fake)}", b"an object of a nested store")
    plant(f".tmp/{object_rel(fake)}", b"hash-shaped file in the temp folder")

    listed = list(store.iter_digests())

    assert listed == [digest]
    assert all(store.has(d) for d in listed)


def test_s3_iter_digests_ignores_sibling_prefixes(s3_url: str, s3_server: str) -> None:
    store = ObjectStore.open(s3_url)
    digest = store.put_bytes(b"mine")
    other = b3(b"theirs")
    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=s3_server)
    client.put_object(Bucket=bucket, Key=f"{prefix}-old/{object_rel(other)}", Body=b"theirs")
    client.put_object(Bucket=bucket, Key=f"{prefix}x/{object_rel(other)}", Body=b"theirs")

    assert list(store.iter_digests()) == [digest]


# ---- opening --------------------------------------------------------------------------------


def test_open_picks_local_store_for_path_and_file_url(tmp_path: Path) -> None:
    for url in (str(tmp_path / "objects"), f"file://{tmp_path / 'objects'}"):
        store = ObjectStore.open(url)
        assert isinstance(store, LocalObjectStore), url
        assert store.root == tmp_path / "objects"


def test_open_picks_fsspec_store_for_s3_url(s3_url: str) -> None:
    store = ObjectStore.open(s3_url)
    assert isinstance(store, FsspecObjectStore)
    assert store.url == s3_url
    assert "s3" in store.fs.protocol


# ---- atomicity: a writer killed with SIGKILL ------------------------------------------------

WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from assay.store.objects import LocalObjectStore

    store = LocalObjectStore(Path(sys.argv[1]))
    src_dir = Path(sys.argv[2])
    base = os.urandom(3 * 1024 * 1024)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        head = os.urandom(16)
        src = src_dir / f"{i}.bin"
        # 3, 6, 9 and 12 MiB: the larger ones take the parallel (mmap) hashing path.
        src.write_bytes(head + base * (1 + i % 4))
        store.ingest_file(src)
        src.unlink()
        store.put_bytes(head + b"put" + base * (1 + (i + 2) % 4))
    """
)


def test_writer_killed_mid_way_leaves_no_damaged_object(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    tmp_dir = root / ".tmp"
    rng = random.Random(20261123)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    delays: list[float] = []
    # Kill at random moments until one kill has landed mid-write (a temporary is left),
    # and at least a few times; about half the kills do, so this ends quickly.
    while len(delays) < 4 or (not any(tmp_dir.glob("*")) and len(delays) < 40):
        delay = rng.uniform(0.0, 0.4)
        delays.append(delay)
        src_dir = tmp_path / f"src{len(delays)}"
        src_dir.mkdir()
        with subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(src_dir)],
            stdout=subprocess.PIPE,
            env=env,
        ) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            time.sleep(delay)
            proc.kill()
            assert proc.wait() == -9, f"the writer died on its own (delay {delay:.3f}s)"
    assert any(tmp_dir.glob("*")), f"no kill in {len(delays)} landed mid-write: nothing tested"

    store = LocalObjectStore(root)
    digests = set(store.iter_digests())
    assert digests, f"the writer stored nothing in {len(delays)} runs: nothing was tested"
    damaged = sorted(d for d in digests if not store.verify(d))
    assert damaged == [], f"damaged objects after SIGKILL (delays {delays})"
    for path in root.rglob("*"):
        if path.is_dir():
            continue
        rel = path.relative_to(root)
        in_tmp = rel.parts[0] == ".tmp" and len(rel.parts) == 2
        assert in_tmp or "".join(rel.parts) in digests, f"unexpected file {rel}"

    leftovers = list(tmp_dir.iterdir())
    assert store.clean_temporaries(older_than_s=0) == len(leftovers)
    assert list(tmp_dir.iterdir()) == []
    assert set(store.iter_digests()) == digests
    assert all(store.verify(d) for d in digests)


def test_clean_temporaries_removes_only_old_temporaries(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    digest = store.put_bytes(b"keep me")
    tmp_dir = store.root / ".tmp"
    old, fresh = tmp_dir / "old", tmp_dir / "fresh"
    old.write_bytes(b"left by a killed writer")
    fresh.write_bytes(b"being written right now")
    an_hour_ago = time.time() - 2 * 3600
    os.utime(old, (an_hour_ago, an_hour_ago))

    assert store.clean_temporaries() == 1
    assert sorted(tmp_dir.iterdir()) == [fresh]
    assert store.clean_temporaries(older_than_s=0) == 1
    assert list(tmp_dir.iterdir()) == []
    assert list(store.iter_digests()) == [digest]
    assert store.get_bytes(digest) == b"keep me"


def test_clean_temporaries_of_a_store_never_written_is_zero(tmp_path: Path) -> None:
    assert LocalObjectStore(tmp_path / "objects").clean_temporaries(older_than_s=0) == 0


# ---- a full disk ----------------------------------------------------------------------------


def assert_no_partial_object(store: LocalObjectStore, expected: list[str]) -> None:
    assert list(store.iter_digests()) == expected
    tmp_dir = store.root / ".tmp"
    assert not tmp_dir.is_dir() or list(tmp_dir.iterdir()) == []


def test_put_bytes_on_full_disk_raises_no_space_and_stores_nothing(small_disk: Path) -> None:
    store = LocalObjectStore(small_disk / "objects")
    kept = store.put_bytes(payload(MiB, seed=1))
    too_big = payload(3 * MiB // 2, seed=2)

    with pytest.raises(StorageError, match="No space left") as info:
        store.put_bytes(too_big)

    assert info.value.details["errno"] == errno.ENOSPC
    assert not store.has(b3(too_big))
    assert_no_partial_object(store, [kept])
    assert store.verify(kept)
    # The failed write gave its space back: a smaller object fits.
    store.put_bytes(payload(MiB // 2, seed=3))


def test_ingest_file_on_full_disk_raises_no_space_and_stores_nothing(
    small_disk: Path, tmp_path: Path
) -> None:
    store = LocalObjectStore(small_disk / "objects")
    src = tmp_path / "big.bin"
    src.write_bytes(payload(3 * MiB, seed=4))

    with pytest.raises(StorageError, match="No space left"):
        store.ingest_file(src)

    assert_no_partial_object(store, [])
    assert src.read_bytes() == payload(3 * MiB, seed=4)


def test_copy_to_full_disk_raises_no_space_and_leaves_no_file(
    small_disk: Path, tmp_path: Path
) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    digest = store.put_bytes(payload(3 * MiB, seed=5))
    dest = small_disk / "checkout" / "big.bin"

    with pytest.raises(StorageError, match="No space left"):
        store.copy_to(digest, dest)

    assert list(dest.parent.iterdir()) == []


FSIZE_WRITER = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    from assay.errors import StorageError
    from assay.store.objects import LocalObjectStore

    store = LocalObjectStore(Path(sys.argv[1]))
    src = Path(sys.argv[2])
    limit = int(sys.argv[3])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the kernel answers EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    out = {}
    for name, write in [("put_bytes", lambda: store.put_bytes(b"x" * (2 * limit))),
                        ("ingest_file", lambda: store.ingest_file(src))]:
        try:
            write()
            out[name] = None
        except StorageError as exc:
            out[name] = [exc.details.get("errno"), str(exc)]
    print(json.dumps(out))
    """
)


def test_write_over_file_size_limit_raises_storage_error_and_stores_nothing(
    tmp_path: Path,
) -> None:
    """The kernel refuses the write (RLIMIT_FSIZE -> EFBIG): a real OS error mid-write."""
    store = LocalObjectStore(tmp_path / "objects")
    src = tmp_path / "big.bin"
    src.write_bytes(payload(2 * MiB, seed=6))
    done = subprocess.run(
        [sys.executable, "-c", FSIZE_WRITER, str(store.root), str(src), str(MiB)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    for name in ("put_bytes", "ingest_file"):
        assert result[name] is not None, f"{name} went past the file size limit"
        err, message = result[name]
        assert err == errno.EFBIG
        assert "File too large" in message
    assert_no_partial_object(store, [])


def test_an_object_that_cannot_be_placed_leaves_no_temporary_and_no_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails between the temporary file and its place (a full disk, a
    read-only fan-out folder) names the object, and leaves neither behind."""
    store = LocalObjectStore(tmp_path / "objects")

    def refuse(src: object, dst: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StorageError, match="storing object"):
        store.put_bytes(b"params")
    assert list((tmp_path / "objects" / ".tmp").iterdir()) == []
    assert not store.has(hash_bytes(b"params"))


def test_s3_sees_what_another_process_wrote_after_a_listing(s3_url: str, s3_server: str) -> None:
    """A long-lived process (the server, a monitor, a report being polled) lists, another
    process writes, and the first asks again: it sees the new objects and segments, not
    fsspec's cached listing (an A/B report on Ray once counted a stale list of segments)."""
    from assay.store.segments import SegmentStore

    store = ObjectStore.open(s3_url)
    first = store.put_bytes(b"first")
    assert list(store.iter_digests()) == [first]  # fills fsspec's listing cache
    segments = SegmentStore(s3_url, "abtests/t/events")
    segments.put("001-a.jsonl", b"{}\n")
    assert segments.names() == ["001-a.jsonl"]

    later = b3(b"later")
    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=s3_server)  # another process's writes
    client.put_object(Bucket=bucket, Key=f"{prefix}/{object_rel(later)}", Body=b"later")
    client.put_object(
        Bucket=bucket, Key=f"{prefix}/logs/abtests/t/events/002-b.jsonl", Body=b"{}\n"
    )

    assert store.has(later)
    assert store.size(later) == len(b"later")
    assert sorted(store.iter_digests()) == sorted([first, later])
    assert SegmentStore(s3_url, "abtests/t/events").names() == ["001-a.jsonl", "002-b.jsonl"]
    assert segments.names() == ["001-a.jsonl", "002-b.jsonl"]
