"""The upload staging area on its own: parts at offsets, clashes, hash checks, discard."""

from __future__ import annotations

import re
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
    root = uploads.verified(
        upload, {"a/b.csv": hash_bytes(b"x,y\n1,2\n3,4\n"), "c.txt": hash_bytes(b"")}
    )
    assert (root / "a" / "b.csv").read_bytes() == b"x,y\n1,2\n3,4\n"


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
    (uploads.root / upload / "link").symlink_to(outside, target_is_directory=True)
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
    with pytest.raises(InvalidArgumentError, match=r"\(never sent: 'b.txt'\); send them again"):
        uploads.verified(upload, {"a.txt": good, "b.txt": good})
    with pytest.raises(InvalidArgumentError, match=r"\(not named: 'a.txt'\)"):
        uploads.verified(upload, {})
    assert uploads.verified(upload, {"a.txt": good}) == uploads.root / upload


def test_verified_refuses_an_empty_upload(uploads: UploadService) -> None:
    upload = uploads.start()
    with pytest.raises(InvalidArgumentError, match="Nothing was uploaded; send the files first"):
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
