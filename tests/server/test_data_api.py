"""Data through the API: resumable uploads, a hash-checked commit, streamed downloads."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from assay.store.objects import hash_bytes
from assay.workspace import Workspace

from .conftest import assert_error, listing

RAW = {"Content-Type": "application/octet-stream"}


def start_upload(api: httpx.Client) -> str:
    answer = api.post("/api/v1/uploads")
    assert answer.status_code == 201, answer.text
    assert answer.json()["files"] == {}
    upload_id: str = answer.json()["id"]
    return upload_id


def put(api: httpx.Client, upload: str, path: str, data: bytes, offset: int = 0) -> httpx.Response:
    query: dict[str, Any] = {"path": path}
    if offset:
        query["offset"] = offset
    return api.put(f"/api/v1/uploads/{upload}", params=query, content=data, headers=RAW)


def upload_dataset(api: httpx.Client, name: str, files: dict[str, bytes]) -> dict[str, object]:
    """Upload and commit `files` as the next version of `name`; returns the version."""
    upload = start_upload(api)
    for path, data in files.items():
        assert put(api, upload, path, data).status_code == 200
    hashes = {path: hash_bytes(data) for path, data in files.items()}
    answer = api.post(f"/api/v1/uploads/{upload}/commit", json={"dataset": name, "files": hashes})
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] is True
    version: dict[str, object] = answer.json()["version"]
    return version


def test_upload_in_parts_commit_and_download(ws: Workspace, api: httpx.Client) -> None:
    csv = b"x,y\n" + b"".join(f"{i},{i * i}\n".encode() for i in range(1000))
    upload = start_upload(api)
    first = put(api, upload, "a/b.csv", csv[:1000])
    assert first.status_code == 200
    assert first.json() == {"id": upload, "path": "a/b.csv", "size": 1000}

    wrong = put(api, upload, "a/b.csv", csv[1000:], offset=500)
    error = assert_error(wrong, 409)
    assert "offset=1000" in str(error["message"])
    assert error["details"] == {"received": 1000}
    assert api.get(f"/api/v1/uploads/{upload}").json() == {"id": upload, "files": {"a/b.csv": 1000}}

    assert put(api, upload, "a/b.csv", csv[1000:], offset=1000).status_code == 200
    # A second file, large enough to be stored loose (two small files, one a table, hit
    # the commit bug that test_two_small_files_one_a_table_commit_through_the_api shows).
    blob = os.urandom(300 * 1024)
    assert put(api, upload, "blob.bin", blob).status_code == 200
    status = api.get(f"/api/v1/uploads/{upload}").json()
    assert status["files"] == {"a/b.csv": len(csv), "blob.bin": len(blob)}

    hashes = {"a/b.csv": hash_bytes(csv), "blob.bin": hash_bytes(blob)}
    commit = api.post(
        f"/api/v1/uploads/{upload}/commit",
        json={"dataset": "raw", "message": "first", "files": hashes},
    )
    assert commit.status_code == 200, commit.text
    assert commit.json()["created"] is True
    version = commit.json()["version"]
    assert (version["dataset"], version["number"], version["message"]) == ("raw", 1, "first")
    assert (version["file_count"], version["total_bytes"]) == (2, len(csv) + len(blob))
    assert_error(api.get(f"/api/v1/uploads/{upload}"), 404)  # the staging folder is gone
    assert not (ws.settings.cache_dir / "uploads" / upload).exists()

    detail = api.get("/api/v1/versions/raw@1").json()
    assert {f["path"]: f["hash"] for f in detail["files"]} == hashes
    assert [v["number"] for v in listing(api, "/api/v1/datasets/raw/versions")] == [1]
    assert [d["name"] for d in listing(api, "/api/v1/datasets")] == ["raw"]

    got = api.get("/api/v1/files", params={"ref": "raw@1", "path": "a/b.csv"})
    assert got.status_code == 200
    assert got.content == csv
    assert got.headers["x-assay-hash"] == hashes["a/b.csv"]
    assert got.headers["content-length"] == str(len(csv))
    assert got.headers["content-type"] == "application/octet-stream"
    assert 'filename="b.csv"' in got.headers["content-disposition"]
    latest = api.get("/api/v1/files", params={"ref": "raw@latest", "path": "blob.bin"})
    assert latest.content == blob
    assert ws.data.resolve("raw@1").file_count == 2  # the same workspace, seen directly


def test_a_wrong_hash_commits_nothing(api: httpx.Client) -> None:
    upload = start_upload(api)
    assert put(api, upload, "good.txt", b"a\n1\n").status_code == 200
    assert put(api, upload, "sub/bad.txt", b"a\n2\n").status_code == 200
    hashes = {"good.txt": hash_bytes(b"a\n1\n"), "sub/bad.txt": hash_bytes(b"a\n3\n")}
    answer = api.post(f"/api/v1/uploads/{upload}/commit", json={"dataset": "d", "files": hashes})
    error = assert_error(answer, 400)
    assert "sub/bad.txt" in str(error["message"])
    assert error["details"] == {"path": "sub/bad.txt"}
    assert listing(api, "/api/v1/datasets") == []
    assert_error(api.get("/api/v1/versions/d@1"), 404)

    # The parts are still there: fix the list and commit.
    missing = {**hashes, "extra.txt": hash_bytes(b"")}
    error = assert_error(
        api.post(f"/api/v1/uploads/{upload}/commit", json={"dataset": "d", "files": missing}), 409
    )
    assert "extra.txt" in str(error["message"])
    fewer = {"good.txt": hashes["good.txt"]}
    error = assert_error(
        api.post(f"/api/v1/uploads/{upload}/commit", json={"dataset": "d", "files": fewer}), 409
    )
    assert "sub/bad.txt" in str(error["message"])
    hashes["sub/bad.txt"] = hash_bytes(b"a\n2\n")
    answer = api.post(f"/api/v1/uploads/{upload}/commit", json={"dataset": "d", "files": hashes})
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"]["file_count"] == 2
    assert api.get("/api/v1/versions/d@1").json()["version"]["file_count"] == 2


def test_an_empty_upload_or_an_unknown_one_is_refused(api: httpx.Client) -> None:
    upload = start_upload(api)
    # No files named: the document says at least one.
    answer = api.post(f"/api/v1/uploads/{upload}/commit", json={"dataset": "d", "files": {}})
    assert "body.files" in str(assert_error(answer, 422)["message"])
    # Files named that never came: a clash with what the upload holds.
    files = {"a.txt": hash_bytes(b"a")}
    answer = api.post(f"/api/v1/uploads/{upload}/commit", json={"dataset": "d", "files": files})
    assert "Nothing was uploaded" in str(assert_error(answer, 409)["message"])
    for bad in ("0" * 32, "nothex", "../" + upload):
        assert_error(api.get(f"/api/v1/uploads/{bad}"), 404)
        assert_error(put(api, "0" * 32, "a", b"1"), 404)


def test_a_large_file_round_trips_streamed(ws: Workspace, api: httpx.Client) -> None:
    big = os.urandom(3 * 1024 * 1024 + 17)  # above 256 KiB: stored loose, served in chunks
    upload = start_upload(api)
    cut = 1024 * 1024
    assert put(api, upload, "blob.bin", big[:cut]).status_code == 200
    assert put(api, upload, "blob.bin", big[cut:], offset=cut).status_code == 200
    commit = api.post(
        f"/api/v1/uploads/{upload}/commit",
        json={"dataset": "big", "files": {"blob.bin": hash_bytes(big)}},
    )
    assert commit.status_code == 200, commit.text

    with api.stream("GET", "/api/v1/files", params={"ref": "big@1", "path": "blob.bin"}) as got:
        assert got.status_code == 200
        assert got.headers["x-assay-hash"] == hash_bytes(big)
        chunks = list(got.iter_raw())
    assert b"".join(chunks) == big
    # And the bytes are the ones a checkout gives back.
    out = ws.settings.cache_dir.parent.parent / "out"
    ws.data.checkout("big@1", out)
    assert (out / "blob.bin").read_bytes() == big


def test_a_second_commit_makes_version_two(api: httpx.Client) -> None:
    upload_dataset(api, "d", {"a.csv": b"a\n1\n"})
    second = upload_dataset(api, "d", {"a.csv": b"a\n1\n2\n"})
    assert second["number"] == 2
    assert api.get("/api/v1/files", params={"ref": "d@1", "path": "a.csv"}).content == b"a\n1\n"
    assert api.get("/api/v1/files", params={"ref": "d@2", "path": "a.csv"}).content == b"a\n1\n2\n"


def test_two_small_files_one_a_table_commit_through_the_api(api: httpx.Client) -> None:
    version = upload_dataset(api, "t", {"a.csv": b"x,y\n1,2\n", "b.txt": b"hello"})
    assert version["file_count"] == 2


def test_the_commit_route_gates_content_that_is_already_a_version(api: httpx.Client) -> None:
    table = b"age\n34\n51\n"
    upload_dataset(api, "people", {"people.csv": table})
    upload = start_upload(api)
    assert put(api, upload, "people.csv", table).status_code == 200
    body = {
        "dataset": "people",
        "files": {"people.csv": hash_bytes(table)},
        "checks": "columns:\n  age: {max: 40}\n",
    }
    refused = api.post(f"/api/v1/uploads/{upload}/commit", json=body)
    error = assert_error(refused, 422)
    assert "people@1 already holds this content" in str(error["message"])
    report: Any = error["details"]["report"]
    assert [r["check"] for r in report["results"] if not r["passed"]] == ["max"]


def test_the_datasets_listing_shows_params_datasets_only_with_all(
    api: httpx.Client, secrets: dict[str, str]
) -> None:
    upload_dataset(api, "raw", {"a.txt": b"a"})
    upload_dataset(api, "params/train", {"params.json": b"{}"})
    names = lambda **q: [d["name"] for d in listing(api, "/api/v1/datasets", **q)]  # noqa: E731
    assert names() == ["raw"]
    assert names(all="true") == ["params/train", "raw"]
    signed_in = {"Cookie": f"assay_token={secrets['read']}"}
    page = api.get("/data", headers=signed_in)
    assert page.status_code == 200
    assert "params/train" not in page.text
    assert "params/train" in api.get("/data?all=1", headers=signed_in).text


def test_the_diff_route_and_the_sdk_pair_rows_by_key(
    api: httpx.Client, base_url: str, secrets: dict[str, str]
) -> None:
    from assay.client import Client

    upload_dataset(api, "p", {"p.csv": b"sku,price\na,1\nb,2\nc,3\n"})
    upload_dataset(api, "p", {"p.csv": b"sku,price\na,1\nb,5\nd,4\n"})
    answer = api.get("/api/v1/diffs", params={"old": "p@1", "new": "p@2", "key": "sku"})
    assert answer.status_code == 200, answer.text
    table = answer.json()["tables"]["p.csv"]
    assert (table["rows_unchanged"], table["rows_changed"], table["rows_added"]) == (1, 1, 1)
    assert table["examples"] == [{"row": "sku=b", "column": "price", "old": "2", "new": "5"}]
    error = assert_error(
        api.get("/api/v1/diffs", params={"old": "p@1", "new": "p@2", "key": "x"}), 400
    )
    assert "No changed table has a column 'x'" in str(error["message"])

    with Client(base_url, secrets["read"]) as client:
        diff = client.data.diff("p@1", "p@2", key="sku")
    assert diff.tables["p.csv"].rows_changed == 1
    assert diff.tables["p.csv"].examples[0].row == "sku=b"


def test_the_dashboard_shows_why_a_file_is_no_table_and_a_diff_s_rows(
    api: httpx.Client, secrets: dict[str, str]
) -> None:
    upload_dataset(api, "m", {"junk.csv": b"\x00\x01\x02", "p.csv": b"id;v\n1;2,5\n2;3\n"})
    upload_dataset(api, "m", {"junk.csv": b"\x00\x01\x02", "p.csv": b"id;v\n1;2,5\n2;4\n3;1\n"})
    signed_in = {"Cookie": f"assay_token={secrets['read']}"}
    page = api.get("/data/m@1", headers=signed_in).text
    assert "Not readable as a table: it holds NUL bytes: it is binary, not text." in page
    assert "separated by semicolons" in page
    diff = api.get("/data-diff", params={"old": "m@1", "new": "m@2"}, headers=signed_in).text
    assert "1 unchanged" in diff
    assert "1 changed" in diff
    assert "1 added" in diff
    assert "by <code>id</code>" in diff


def batch_body(files: dict[str, bytes]) -> bytes:
    index = [[path, hash_bytes(data), len(data)] for path, data in files.items()]
    return json.dumps(index).encode() + b"\n" + b"".join(files.values())


def test_a_parts_answer_is_that_parts_alone_however_big_the_upload(api: httpx.Client) -> None:
    upload = start_upload(api)
    for i in range(30):
        answer = put(api, upload, f"f{i:02}.txt", b"x" * i)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"id": upload, "path": f"f{i:02}.txt", "size": i}
    more = put(api, upload, "f29.txt", b"yy", offset=29)
    assert more.json() == {"id": upload, "path": "f29.txt", "size": 31}


def test_small_files_travel_in_batches_and_commit_beside_parts(
    ws: Workspace, api: httpx.Client
) -> None:
    files = {f"rows/{i:04}.csv": f"a,b\n{i},{i * i}\n".encode() for i in range(500)}
    upload = start_upload(api)
    items = list(files.items())
    for start in (0, 250):
        answer = api.post(
            f"/api/v1/uploads/{upload}/batch",
            content=batch_body(dict(items[start : start + 250])),
            headers=RAW,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "id": upload,
            "files": 250,
            "bytes": sum(len(d) for _, d in items[start : start + 250]),
        }
    blob = os.urandom(300 * 1024)
    assert put(api, upload, "blob.bin", blob).status_code == 200
    files["blob.bin"] = blob
    assert api.get(f"/api/v1/uploads/{upload}").json()["files"] == {
        p: len(d) for p, d in files.items()
    }
    hashes = {p: hash_bytes(d) for p, d in files.items()}
    commit = api.post(f"/api/v1/uploads/{upload}/commit", json={"dataset": "b", "files": hashes})
    assert commit.status_code == 200, commit.text
    assert commit.json()["version"]["file_count"] == 501
    detail = api.get("/api/v1/versions/b@1").json()
    assert {f["path"]: f["hash"] for f in detail["files"]} == hashes
    got = api.get("/api/v1/files", params={"ref": "b@1", "path": "rows/0007.csv"})
    assert got.content == files["rows/0007.csv"]
    assert "rows/0007.csv" in ws.data.profile("b@1")[1]  # the tables were profiled


def test_a_damaged_file_in_a_batch_is_named_and_nothing_of_the_batch_is_kept(
    api: httpx.Client,
) -> None:
    upload = start_upload(api)
    body = batch_body({"a.txt": b"a", "b.txt": b"b"}).replace(b"\nab", b"\naB")
    error = assert_error(
        api.post(f"/api/v1/uploads/{upload}/batch", content=body, headers=RAW), 400
    )
    assert "'b.txt' arrived with hash" in error["message"]
    assert error["details"] == {"path": "b.txt"}
    assert api.get(f"/api/v1/uploads/{upload}").json()["files"] == {}


def test_a_commit_refused_by_its_checks_keeps_the_upload_for_a_retry(api: httpx.Client) -> None:
    data = b"age\n30\n200\n"
    upload = start_upload(api)
    assert put(api, upload, "people.csv", data).status_code == 200
    body = {
        "dataset": "people",
        "files": {"people.csv": hash_bytes(data)},
        "checks": "columns:\n  age: {max: 120}\n",
    }
    refused = assert_error(api.post(f"/api/v1/uploads/{upload}/commit", json=body), 422)
    assert refused["details"]["upload"] == upload
    assert api.get(f"/api/v1/uploads/{upload}").json()["files"] == {"people.csv": len(data)}
    # The retry sends no file again.
    again = api.post(f"/api/v1/uploads/{upload}/commit", json={**body, "allow_invalid": True})
    assert again.status_code == 200, again.text
    assert again.json()["version"]["validation"] == "failed"
    assert_error(api.get(f"/api/v1/uploads/{upload}"), 404)  # committed: gone


def test_the_sdk_sends_small_files_in_batches_and_big_ones_in_parts(
    ws: Workspace, base_url: str, secrets: dict[str, str], tmp_path: Path
) -> None:
    from assay.client import Client

    folder = tmp_path / "many"
    for i in range(2000):
        (folder / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{i % 7}" / f"{i}.txt").write_bytes(os.urandom(100))
    (folder / "big.bin").write_bytes(os.urandom(300 * 1024))
    sent: list[tuple[str, str]] = []
    with Client(base_url, secrets["write"]) as client:
        client.http._http.event_hooks["request"].append(
            lambda request: sent.append((request.method, request.url.path))
        )
        done = client.data.commit("many", folder)
    assert done.version.file_count == 2001
    uploads = [(m, p) for m, p in sent if "/uploads" in p]
    assert len(uploads) <= 5  # start, one batch, one part, commit: not one request a file
    assert sum(p.endswith("/batch") for _, p in uploads) == 1
    out = tmp_path / "out"
    ws.data.checkout("many@1", out)
    assert (out / "d3" / "3.txt").read_bytes() == (folder / "d3" / "3.txt").read_bytes()
    assert (out / "big.bin").read_bytes() == (folder / "big.bin").read_bytes()
