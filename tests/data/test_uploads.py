"""The upload staging area on its own: parts at offsets, batches of small files, clashes,
hash checks, discard, and the expiry of abandoned uploads."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from assay.data.uploads import UploadService
from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.store.objects import hash_bytes
from assay.workspace import Workspace

pytestmark = pytest.mark.one_backend  # files on disk; the database is not involved


@pytest.fixture
def uploads(ws: Workspace) -> UploadService:
    return ws.uploads


def test_the_workspace_stages_uploads_in_its_cache(ws: Workspace) -> None:
    upload = ws.uploads.start()
    assert (ws.settings.cache_dir / "uploads" / upload).is_dir()
    assert ws.uploads.files(upload) == {}


def test_parts_append_where_the_file_ends(uploads: UploadService) -> None:
    upload = uploads.start()
    assert uploads.write(upload, "a/b.csv", 0, [b"x,y\n", b"1,2\n"]) == 8
    assert uploads.write(upload, "a/b.csv", 8, iter([b"3,4\n"])) == 12
    assert uploads.write(upload, "c.txt", 0, []) == 0
    assert uploads.files(upload) == {"a/b.csv": 12, "c.txt": 0}
    staged = uploads.verified(
        upload, {"a/b.csv": hash_bytes(b"x,y\n1,2\n3,4\n"), "c.txt": hash_bytes(b"")}
    )
    assert (staged.root / "a" / "b.csv").read_bytes() == b"x,y\n1,2\n3,4\n"


def test_a_part_at_the_wrong_offset_is_refused_and_changes_nothing(
    uploads: UploadService,
) -> None:
    upload = uploads.start()
    uploads.write(upload, "f.bin", 0, [b"0123456789"])
    for offset in (0, 5, 11):
        with pytest.raises(ConflictError, match=r"has 10 bytes so far.*\(offset=10\)") as err:
            uploads.write(upload, "f.bin", offset, [b"more"])
        assert err.value.details == {"received": 10}
    with pytest.raises(ConflictError, match="offset=0"):
        uploads.write(upload, "new.bin", 3, [b"x"])
    assert uploads.files(upload) == {"f.bin": 10}


def test_a_part_may_be_written_through_an_open_file(uploads: UploadService) -> None:
    upload = uploads.start()
    with uploads.open_part(upload, "f.bin", 0) as out:
        out.write(b"abc")
    with uploads.open_part(upload, "f.bin", 3) as out:
        out.write(b"def")
    assert uploads.files(upload) == {"f.bin": 6}


def test_a_file_and_a_folder_of_the_same_name_clash(uploads: UploadService) -> None:
    upload = uploads.start()
    uploads.write(upload, "d/e", 0, [b"1"])
    with pytest.raises(ConflictError, match="'d' is a folder of this upload"):
        uploads.write(upload, "d", 0, [b"1"])
    with pytest.raises(ConflictError, match="a file cannot also be a folder"):
        uploads.write(upload, "d/e/f", 0, [b"1"])
    assert uploads.files(upload) == {"d/e": 1}


@pytest.mark.parametrize(
    "path", ["../x", "a/../../x", "/etc/passwd", "a\\b", "C:x", "a//b", "./a", "", "a\x00b"]
)
def test_paths_that_leave_the_upload_are_refused(uploads: UploadService, path: str) -> None:
    upload = uploads.start()
    with pytest.raises(InvalidArgumentError, match="is not allowed") as err:
        uploads.write(upload, path, 0, [b"pwned"])
    assert err.value.details == {"path": path}
    assert uploads.files(upload) == {}


def test_a_symlink_out_of_the_upload_is_not_written_through(
    uploads: UploadService, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    upload = uploads.start()
    (uploads.root / upload / "files" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidArgumentError, match="leads outside its folder"):
        uploads.write(upload, "link/new.txt", 0, [b"pwned"])
    assert list(outside.iterdir()) == []


def test_verified_names_a_damaged_file_and_keeps_the_upload(uploads: UploadService) -> None:
    upload = uploads.start()
    uploads.write(upload, "a.txt", 0, [b"sent"])
    with pytest.raises(InvalidArgumentError, match=r"'a\.txt' arrived with hash .* damaged") as err:
        uploads.verified(upload, {"a.txt": hash_bytes(b"meant")})
    assert err.value.details == {"path": "a.txt"}
    assert uploads.files(upload) == {"a.txt": 4}


def test_verified_refuses_a_missing_or_an_extra_file(uploads: UploadService) -> None:
    upload = uploads.start()
    uploads.write(upload, "a.txt", 0, [b"a"])
    good = hash_bytes(b"a")
    with pytest.raises(ConflictError, match=r"\(never sent: 'b.txt'\); send them again"):
        uploads.verified(upload, {"a.txt": good, "b.txt": good})
    with pytest.raises(ConflictError, match=r"\(not named: 'a.txt'\)"):
        uploads.verified(upload, {})
    assert uploads.verified(upload, {"a.txt": good}).root == uploads.root / upload / "files"


def test_verified_refuses_an_empty_upload(uploads: UploadService) -> None:
    upload = uploads.start()
    with pytest.raises(ConflictError, match="Nothing was uploaded; send the files first"):
        uploads.verified(upload, {"a.txt": hash_bytes(b"a")})


def test_discard_deletes_the_upload_and_is_idempotent(uploads: UploadService) -> None:
    upload = uploads.start()
    uploads.write(upload, "a/b.txt", 0, [b"1"])
    uploads.discard(upload)
    assert not (uploads.root / upload).exists()
    uploads.discard(upload)
    with pytest.raises(NotFoundError, match="start one with POST /api/v1/uploads"):
        uploads.files(upload)


@pytest.mark.parametrize("upload", ["0" * 32, "nothex", "../" + "0" * 32, "A" * 32])
def test_an_unknown_or_malformed_upload_is_not_found(uploads: UploadService, upload: str) -> None:
    with pytest.raises(NotFoundError, match=re.escape(f"No upload {upload!r}")):
        uploads.files(upload)
    with pytest.raises(NotFoundError):
        uploads.write(upload, "a", 0, [b"1"])
    with pytest.raises(NotFoundError):
        uploads.verified(upload, {})


def test_discard_never_reaches_outside_the_staging_root(uploads: UploadService) -> None:
    keep = uploads.root.parent / "keep"
    keep.mkdir(parents=True)
    with pytest.raises(NotFoundError):
        uploads.discard("../keep")
    assert keep.is_dir()


# ---- batches of small files ---------------------------------------------------------------


def batch(files: dict[str, bytes], hashes: dict[str, str] | None = None) -> bytes:
    """A batch body: a JSON line of [path, BLAKE3, size], then the files' bytes in order."""
    hashes = hashes or {}
    index = [[p, hashes.get(p, hash_bytes(d)), len(d)] for p, d in files.items()]
    return json.dumps(index).encode() + b"\n" + b"".join(files.values())


def chunked(body: bytes, size: int = 7) -> list[bytes]:
    """The body as a transport might deliver it: in small pieces, cut anywhere."""
    return [body[i : i + size] for i in range(0, len(body), size)]


def test_a_batch_of_small_files_arrives_whole_and_commits_as_a_folder_would(
    ws: Workspace, uploads: UploadService, tmp_path: Path
) -> None:
    files = {f"d/{i:03}.txt": f"row {i}\n".encode() for i in range(50)}
    files["empty"] = b""
    upload = uploads.start()
    assert uploads.write_batch(upload, chunked(batch(dict(list(files.items())[:20])))) == (
        20,
        sum(len(d) for d in list(files.values())[:20]),
    )
    assert uploads.write_batch(upload, [batch(dict(list(files.items())[20:]))])[0] == 31
    uploads.write(upload, "big.bin", 0, [b"x" * 1000])  # a part, beside the batches
    files["big.bin"] = b"x" * 1000
    assert uploads.files(upload) == {p: len(d) for p, d in files.items()}

    staged = uploads.verified(upload, {p: hash_bytes(d) for p, d in files.items()})
    remote = ws.data.commit_staged("viaupload", staged, "through an upload")
    local_dir = tmp_path / "local"
    for rel, data in files.items():
        (local_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (local_dir / rel).write_bytes(data)
    local = ws.data.commit("locally", local_dir)
    assert remote.version.manifest == local.version.manifest
    assert remote.version.file_count == len(files)
    out = tmp_path / "out"
    ws.data.checkout(remote.version.ref, out)
    assert {p: (out / p).read_bytes() for p in files} == files


def test_a_batch_with_a_damaged_file_is_refused_whole(uploads: UploadService) -> None:
    upload = uploads.start()
    files = {"a.txt": b"a", "b.txt": b"b"}
    body = batch(files, {"b.txt": hash_bytes(b"not b")})
    with pytest.raises(InvalidArgumentError, match=r"'b\.txt' arrived with hash .* damaged") as err:
        uploads.write_batch(upload, chunked(body))
    assert err.value.details == {"path": "b.txt"}
    assert uploads.files(upload) == {}  # not even a.txt


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'[["a", "' + b"0" * 64 + b'", 5]]\nabc', "ended after 3 of its 5 bytes"),
        (b'[["a", "' + b"0" * 64 + b'", 1]]\nabc', "more bytes than it names"),
        (b"not json\nabc", "starts with a JSON line"),
        (b'[["a", "xyz", 1]]\na', "starts with a JSON line"),
        (b'[["../x", "' + b"0" * 64 + b'", 1]]\na', "is not allowed"),
        (b"[]", "starts with a JSON line"),
    ],
)
def test_a_malformed_batch_is_refused_and_keeps_nothing(
    uploads: UploadService, body: bytes, message: str
) -> None:
    upload = uploads.start()
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        uploads.write_batch(upload, chunked(body, 3))
    assert uploads.files(upload) == {}
    assert list((uploads.root / upload / "batches").iterdir()) == []


def test_a_file_sent_again_in_a_batch_replaces_the_part_that_was_damaged(
    uploads: UploadService,
) -> None:
    upload = uploads.start()
    uploads.write(upload, "a.txt", 0, [b"damaged"])
    uploads.write_batch(upload, [batch({"a.txt": b"right"})])
    staged = uploads.verified(upload, {"a.txt": hash_bytes(b"right")})
    assert staged.path("a.txt").read_bytes() == b"right"


# ---- expiry -------------------------------------------------------------------------------


def test_uploads_untouched_longer_than_the_max_age_expire_when_uploads_start_or_are_read(
    tmp_path: Path,
) -> None:
    now = [time.time()]
    uploads = UploadService(tmp_path / "uploads", max_age_s=24 * 3600, clock=lambda: now[0])
    old, busy = uploads.start(), uploads.start()
    uploads.write(old, "a.txt", 0, [b"abandoned"])
    now[0] += 23 * 3600
    uploads.write(busy, "a.txt", 0, [b"still coming"])  # a part touches its upload
    os.utime(uploads.root / busy, (now[0], now[0]))  # (as the clock sees it)
    uploads.files(busy)
    assert (uploads.root / old).is_dir()  # 23 h: not yet
    now[0] += 2 * 3600
    fresh = uploads.start()
    assert not (uploads.root / old).exists()
    assert (uploads.root / busy).is_dir()
    assert (uploads.root / fresh).is_dir()
    with pytest.raises(NotFoundError):
        uploads.files(old)
    now[0] += 25 * 3600
    assert uploads.expire() == sorted([busy, fresh])
    assert list(uploads.root.iterdir()) == []
