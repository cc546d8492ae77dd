"""What the server refuses: paths that leave their folder, oversized and malformed bodies,
names with path characters; and what a failure looks like from outside."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from assay import httpclient
from assay.store.objects import hash_bytes
from assay.workspace import Workspace

from .conftest import Serve, assert_error
from .test_data_api import RAW, put, start_upload, upload_dataset

# HTTP behaviour, not the database: one metadata backend is enough.
pytestmark = pytest.mark.one_backend

JOURNALS = ("-wal", "-shm", "-journal")


def tree(root: Path) -> set[str]:
    """Every path under `root`, but SQLite's journals (they come and go by themselves)."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not any(str(p).endswith(j) for j in JOURNALS)
    }


BAD_PATHS = [
    "../x",
    "a/../../x",
    "../../../../../../tmp/assay-escape",
    "/etc/passwd",
    "/tmp/assay-escape",
    "C:\\x",
    "c:x",
    "a\\..\\x",
    "..\\x",
    "a//b",
    "./a",
    "a/./b",
    "a/",
    "..",
    ".",
    "",
    "a\x00b",
    "a\nb",
]


def test_upload_paths_that_leave_the_folder_are_refused(ws: Workspace, api: httpx.Client) -> None:
    upload = start_upload(api)
    root = ws.settings.root
    assert root is not None
    before = tree(root)
    for path in BAD_PATHS:
        # The document's pattern for a relative path refuses it before the route runs.
        error = assert_error(put(api, upload, path, b"pwned"), 422)
        assert error["type"] == "InvalidArgumentError", path
        assert error["details"]["problems"][0]["where"] == "query.path", path
        # The same path in a batch of small files.
        index = json.dumps([[path, hash_bytes(b"pwned"), 5]]).encode()
        answer = api.post(
            f"/api/v1/uploads/{upload}/batch",
            content=index + b"\n" + b"pwned",
            headers={"Content-Type": "application/octet-stream"},
        )
        error = assert_error(answer, 400)
        assert error["type"] == "InvalidArgumentError", path
        assert error["details"] == {"path": path}
    assert tree(root) == before
    staged = ws.settings.cache_dir / "uploads" / upload
    assert not [p for p in staged.rglob("*") if not p.is_dir()]
    assert not Path("/tmp/assay-escape").exists()
    assert api.get(f"/api/v1/uploads/{upload}").json()["files"] == {}


def test_encoded_dots_are_decoded_once_and_refused(ws: Workspace, api: httpx.Client) -> None:
    root = ws.settings.root
    assert root is not None
    upload = start_upload(api)
    url = f"/api/v1/uploads/{upload}"
    before = tree(root)
    # Percent-encoded in the query string exactly as written: the server reads "../x".
    for query in ("path=%2e%2e/x", "path=%2E%2E%2Fx", "path=..%2fx", "path=a%2f..%2f..%2fx"):
        answer = api.put(httpx.URL(f"{url}?{query}"), content=b"pwned", headers=RAW)
        error = assert_error(answer, 422)
        assert ".." in str(error["message"]), query
    assert tree(root) == before
    # Encoded twice, it arrives as the literal name "%2e%2e/x": harmless, and it stays inside.
    answer = api.put(httpx.URL(f"{url}?path=%252e%252e/x"), content=b"ok", headers=RAW)
    if answer.status_code == 200:
        staged = ws.settings.cache_dir / "uploads" / upload / "files" / "%2e%2e" / "x"
        assert staged.read_bytes() == b"ok"
        assert answer.json() == {"id": upload, "path": "%2e%2e/x", "size": 2}
    else:
        assert_error(answer, 400)
    assert tree(root) - before <= {
        str(p.relative_to(root)) for p in (ws.settings.cache_dir / "uploads" / upload).rglob("*")
    }
    assert not (ws.settings.cache_dir / "uploads" / "x").exists()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "secret.txt").write_text("keep me")
    return target


def test_a_symlink_in_the_staging_folder_is_not_written_through(
    ws: Workspace, api: httpx.Client, outside: Path
) -> None:
    upload = start_upload(api)
    staging = ws.settings.cache_dir / "uploads" / upload / "files"
    (staging / "dir").symlink_to(outside, target_is_directory=True)
    (staging / "file").symlink_to(outside / "secret.txt")

    for path in ("dir/secret.txt", "dir/new.txt", "file"):
        error = assert_error(put(api, upload, path, b"pwned"), 400)
        assert "outside" in str(error["message"])
    assert (outside / "secret.txt").read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_downloads_reach_only_the_versions_files(api: httpx.Client) -> None:
    upload_dataset(api, "d", {"a.txt": b"one", "sub/b.txt": b"two"})
    ok = api.get("/api/v1/files", params={"ref": "d@1", "path": "sub/b.txt"})
    assert ok.content == b"two"
    for path in (
        "nope.txt",
        "../a.txt",
        "sub/../a.txt",
        "./a.txt",
        "/a.txt",
        "sub//b.txt",
        "../../../../etc/passwd",
        "/etc/passwd",
        "..%2fa.txt",
        "",
        "sub",
    ):
        answer = api.get("/api/v1/files", params={"ref": "d@1", "path": path})
        error = assert_error(answer, 404)
        assert error["type"] == "NotFoundError", path
    for query in ("ref=d@1&path=%2e%2e/a.txt", "ref=d@1&path=%2e%2e%2f%2e%2e%2fetc%2fpasswd"):
        assert_error(api.get(httpx.URL(f"/api/v1/files?{query}")), 404)
    assert_error(api.get("/api/v1/files", params={"ref": "d@9", "path": "a.txt"}), 404)
    assert_error(api.get("/api/v1/files", params={"ref": "../d@1", "path": "a.txt"}), 422)
    assert_error(api.get("/api/v1/files", params={"ref": "d@1"}), 422)


@pytest.fixture
def small(ws: Workspace, serve: Serve) -> Iterator[httpx.Client]:
    """A server that takes bodies up to 1000 bytes, with an admin token."""
    _, secret = ws.tokens.create("admin", "admin")
    with (
        serve(ws, max_body=1000) as url,
        httpclient.client(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as client,
    ):
        yield client


def test_bodies_over_the_limit_are_413(small: httpx.Client) -> None:
    body = json.dumps({"params": {"x": "y" * 2000}}).encode()
    sized = small.post(
        "/api/v1/experiments/e/runs", content=body, headers={"Content-Type": "application/json"}
    )
    error = assert_error(sized, 413)
    assert error["type"] == "PayloadTooLargeError"
    assert "1,000 bytes" in str(error["message"])

    # Without a token the token is checked first: nothing of the body is read at all.
    anonymous = httpclient.post(
        small.base_url.join("/api/v1/experiments/e/runs"),
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert_error(anonymous, 401)

    # Raw upload parts are bounded by the same limit.
    upload = small.post("/api/v1/uploads").json()["id"]
    assert_error(put(small, upload, "f.bin", os.urandom(2000)), 413)
    assert small.get("/api/v1/runs").json()["items"] == []  # nothing was created


def chunks(data: bytes, size: int = 100) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_a_chunked_upload_part_over_the_limit_is_413(small: httpx.Client) -> None:
    upload = small.post("/api/v1/uploads").json()["id"]
    answer = small.put(
        f"/api/v1/uploads/{upload}",
        params={"path": "f.bin"},
        content=chunks(os.urandom(5000)),
        headers=RAW,
    )
    assert "content-length" not in answer.request.headers
    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert_error(answer, 413)


def test_a_chunked_json_body_over_the_limit_is_413(small: httpx.Client) -> None:
    body = json.dumps({"params": {"x": "y" * 5000}}).encode()
    answer = small.post(
        "/api/v1/experiments/e/runs",
        content=chunks(body),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in answer.request.headers
    assert_error(answer, 413)


def test_malformed_json_wrong_type_and_wrong_shape(api: httpx.Client) -> None:
    as_json = {"Content-Type": "application/json"}
    for broken in (b"{", b'{"params": }', b"\xff\xfe", b"[1, 2", b"NaN]"):
        answer = api.post("/api/v1/experiments/e/runs", content=broken, headers=as_json)
        error = assert_error(answer, 400)
        assert "JSON" in str(error["message"])

    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        answer = api.post(
            "/api/v1/experiments/e/runs", content=b'{"params": {}}', headers={"Content-Type": ctype}
        )
        error = assert_error(answer, 415)
        assert error["type"] == "UnsupportedMediaTypeError"
    untyped = api.post("/api/v1/tokens", content=b'{"name": "t", "scope": "read"}')
    assert_error(untyped, 415)
    assert (
        api.post(
            "/api/v1/tokens",
            content=b'{"name": "t", "scope": "read"}',
            headers={"Content-Type": "application/json; charset=utf-8"},
        ).status_code
        == 201
    )

    error = assert_error(api.post("/api/v1/experiments/e/runs", json={"params": [1, 2]}), 422)
    assert "params" in str(error["message"])
    assert error["details"]["problems"][0]["where"] == "body.params"
    error = assert_error(api.post("/api/v1/tokens", json={"scope": "read"}), 422)
    assert "name" in str(error["message"])
    error = assert_error(api.post("/api/v1/tokens", json=["name", "scope"]), 422)
    rid = api.post("/api/v1/experiments/e/runs", json={}).json()["id"]
    error = assert_error(
        api.post(f"/api/v1/runs/{rid}/metrics", json={"metrics": [{"key": "", "value": 1}]}), 422
    )
    assert "key" in str(error["message"])
    error = assert_error(
        api.post(f"/api/v1/runs/{rid}/metrics", json={"metrics": [{"key": "a", "value": "x"}]}),
        422,
    )
    assert "value" in str(error["message"])


def test_names_with_path_characters_are_refused(ws: Workspace, api: httpx.Client) -> None:
    # Each is refused by the pattern the document states (422), before any route runs.
    for name in ("../x", "a/../b", "..", "/abs", "a\\b", "a\x00b", ".hidden"):
        answer = api.post("/api/v1/tokens", json={"name": name, "scope": "read"})
        assert_error(answer, 422)
    for name in ("a/../b", "../b", "..", "a/..", "/etc", "a\\..\\b"):
        answer = api.post("/api/v1/services", json={"name": name, "model": "m@1"})
        error = assert_error(answer, 422)
        assert "A name is letters" in str(error["message"])
    for name in ("../x", "a/../../x"):
        upload = start_upload(api)
        assert put(api, upload, "f.txt", b"1").status_code == 200
        answer = api.post(
            f"/api/v1/uploads/{upload}/commit",
            json={"dataset": name, "files": {"f.txt": hash_bytes(b"1")}},
        )
        assert_error(answer, 422)
    answer = api.post("/api/v1/experiments/e/runs", json={"data": "../../x"})
    assert_error(answer, 422)
    services = ws.settings.services_dir
    assert not services.exists() or not any(services.iterdir())
    assert [t.name for t in ws.tokens.tokens()] == ["admin", "write", "read", "predict"]


def test_a_token_that_is_created_can_be_revoked(api: httpx.Client, base_url: str) -> None:
    # A name with a slash would make a path its own route cannot take: refused at once.
    slashed = api.post("/api/v1/tokens", json={"name": "team/ci", "scope": "read"})
    assert "body.name" in assert_error(slashed, 422)["message"]
    created = api.post("/api/v1/tokens", json={"name": "team-ci", "scope": "read"})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    with httpclient.client(base_url=base_url, headers={"Authorization": f"Bearer {secret}"}) as ci:
        assert ci.get("/api/v1/runs").status_code == 200
        revoked = api.delete("/api/v1/tokens/team-ci")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"]
        assert_error(ci.get("/api/v1/runs"), 401)


def test_impossible_upload_paths_are_client_errors(api: httpx.Client) -> None:
    upload = start_upload(api)
    assert put(api, upload, "d/e", b"1").status_code == 200
    for path in ("a" * 300, "/".join(["a"] * 3000), "d/e/f"):
        answer = put(api, upload, path, b"1")
        assert 400 <= answer.status_code < 500, (path[:20], answer.text)


def test_an_out_of_range_step_is_a_client_error(api: httpx.Client) -> None:
    rid = api.post("/api/v1/experiments/e/runs", json={}).json()["id"]
    answer = api.post(
        f"/api/v1/runs/{rid}/metrics", json={"metrics": [{"key": "a", "value": 1, "step": 2**70}]}
    )
    assert 400 <= answer.status_code < 500, answer.text


def test_a_failure_answers_an_error_id_and_no_stack_trace(
    ws: Workspace, api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    # A real fault, no mocks: where the server stages uploads there is a file, not a folder.
    uploads = ws.settings.cache_dir / "uploads"
    uploads.parent.mkdir(parents=True, exist_ok=True)
    uploads.write_text("not a folder")
    with caplog.at_level(logging.ERROR, logger="assay.server"):
        answer = api.post("/api/v1/uploads")
    error = assert_error(answer, 500)
    assert error["type"] == "InternalError"
    error_id = error["details"]["error_id"]
    assert isinstance(error_id, str)
    assert len(error_id) == 12
    assert error_id in str(error["message"])
    assert set(answer.json()) == {"error"}
    assert set(error["details"]) == {"error_id"}
    for leak in ("Traceback", 'File "', "Errno", "uploads", str(ws.settings.root)):
        assert leak not in answer.text
    # The log has the whole story, under the same id.
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None
    uploads.unlink()
    # A new connection: uvicorn closes one on which the app raised (see the report).
    with httpclient.client(base_url=api.base_url, headers=api.headers) as fresh:
        assert fresh.post("/api/v1/uploads").status_code == 201


def test_a_database_failure_is_json_without_a_stack_trace(ws: Workspace, api: httpx.Client) -> None:
    # The metadata database loses a table under the running server.
    with ws.db.session() as conn:
        conn.execute(text("ALTER TABLE experiments RENAME TO experiments_gone"))
    try:
        answer = api.get("/api/v1/runs", headers={"Connection": "close"})
    finally:
        with ws.db.session() as conn:
            conn.execute(text("ALTER TABLE experiments_gone RENAME TO experiments"))
    assert answer.status_code in (500, 503), answer.text
    error = assert_error(answer, answer.status_code)
    assert error["type"] in ("InternalError", "DatabaseError")
    for leak in ("Traceback", 'File "', "sqlalchemy.", "[SQL:"):
        assert leak not in answer.text
    assert api.get("/api/v1/runs").status_code == 200


def test_errors_name_no_absolute_path_of_the_server(
    ws: Workspace, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline that fails to import names its file as the client sent it, not the
    server's temporary folder; paths in the workspace are relative to it; the rest of
    the server's own places (home, the Python installation) are shortened too."""
    import sys
    import tempfile

    answer = api.post(
        "/api/v1/pipelines", json={"files": {"pipes/p.py": "def broken(:\n"}, "entry": "pipes/p.py"}
    )
    error = assert_error(answer, 400)
    assert error["details"]["file"] == "p.py"  # in the snapshot's folder, pipes/
    assert tempfile.gettempdir() not in answer.text

    from assay.errors import NotFoundError
    from assay.runs.service import RunService

    root = ws.settings.root
    assert root is not None
    inside = root / ".assay" / "services" / "s" / "service.json"
    home = Path.home() / "models" / "m.skops"
    python = Path(sys.prefix) / "lib" / "thing.py"

    def missing(self: RunService, ref: str) -> None:
        raise NotFoundError(
            f"No file at {inside} (nor {home}, {python}).",
            path=str(inside),
            tried=[str(home), {"python": str(python)}],
        )

    monkeypatch.setattr(RunService, "get", missing)
    error = assert_error(api.get("/api/v1/runs/abc"), 404)
    assert error["details"] == {
        "path": ".assay/services/s/service.json",
        "tried": ["~/models/m.skops", {"python": "<python>/lib/thing.py"}],
    }
    assert error["message"] == (
        "No file at .assay/services/s/service.json (nor ~/models/m.skops, <python>/lib/thing.py)."
    )
