"""Tokens through the API: nothing but health without one; scopes; stored hashed."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from assay import httpclient
from assay.auth.repository import tokens
from assay.workspace import Workspace

from .conftest import Serve, assert_error, listing

# HTTP behaviour, not the database: one metadata backend is enough.
pytestmark = pytest.mark.one_backend

Client = Callable[[str], httpx.Client]


def test_health_needs_no_token(client: httpx.Client) -> None:
    answer = client.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_every_route_but_health_is_401_without_a_token(
    client: httpx.Client, api: httpx.Client
) -> None:
    doc = api.get("/api/v1/openapi.json").json()
    checked = 0
    for path, operations in doc["paths"].items():
        if path == "/api/v1/health":
            continue
        url = re.sub(r"\{[^}]+\}", "a1", path)  # a name, a run id, a version, an alias
        for method in operations:
            answer = client.request(method.upper(), url, params={"ref": "d@1", "path": "a"})
            error = assert_error(answer, 401)
            assert error["type"] == "UnauthorizedError", (method, url)
            assert answer.headers["www-authenticate"] == "Bearer", (method, url)
            checked += 1
    assert checked >= 45  # the document lists them all


def test_no_token_with_a_body_is_401_too(client: httpx.Client) -> None:
    for method, url, body in (
        ("GET", "/api/v1/runs", None),
        ("POST", "/api/v1/experiments/e/runs", {"params": {}}),
        ("POST", "/api/v1/tokens", {"name": "t", "scope": "read"}),
        ("POST", "/api/v1/uploads", None),
        ("PUT", "/api/v1/uploads/" + "0" * 32 + "?path=a", None),
    ):
        answer = client.request(method, url, json=body)
        assert_error(answer, 401)
        assert answer.headers["www-authenticate"] == "Bearer"


def test_unknown_or_malformed_credentials_are_401(client: httpx.Client) -> None:
    for header in (
        "Bearer assay_nope",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "assay_nope",
        "Bearer x y",
        "bearer assay_" + "A" * 43,
    ):
        answer = client.get("/api/v1/runs", headers={"Authorization": header})
        assert_error(answer, 401)
        assert answer.headers["www-authenticate"] == "Bearer"
    # A real secret in the wrong place is no token either.
    assert_error(client.get("/api/v1/runs", params={"token": "assay_x"}), 401)


def test_a_revoked_token_is_401(
    ws: Workspace, as_: Client, secrets: dict[str, str], api: httpx.Client
) -> None:
    reader = as_(secrets["read"])
    assert reader.get("/api/v1/runs").status_code == 200
    revoked = api.delete("/api/v1/tokens/read")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    error = assert_error(reader.get("/api/v1/runs"), 401)
    assert "revoked" in str(error["message"])
    assert ws.tokens.tokens()[2].revoked_at is not None


def test_a_token_revoked_by_another_process_stops_working_within_a_second(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server trusts a token it checked for RECHECK_S; a revocation made elsewhere (a
    CLI on the same database, another worker) is seen once that has passed."""
    from assay.auth import service as auth
    from assay.errors import UnauthorizedError

    _, secret = ws.tokens.create("elsewhere", "read")
    server = auth.TokenService(ws.db, author="server")
    now = [1000.0]
    monkeypatch.setattr(auth, "_clock", lambda: now[0])
    assert server.check(secret, "read").name == "elsewhere"
    ws.tokens.revoke("elsewhere")  # not through `server`
    assert server.check(secret, "read").name == "elsewhere"
    now[0] += auth.RECHECK_S + 0.01
    with pytest.raises(UnauthorizedError, match="revoked"):
        server.check(secret, "read")


def test_read_reads_and_may_not_write(as_: Client, secrets: dict[str, str]) -> None:
    reader = as_(secrets["read"])
    for url in (
        "/api/v1/runs",
        "/api/v1/experiments",
        "/api/v1/datasets",
        "/api/v1/pipelines",
        "/api/v1/models",
        "/api/v1/sweeps",
        "/api/v1/services",
        "/api/v1/abtests",
    ):
        assert reader.get(url).status_code == 200, url
    for method, url, body in (
        ("POST", "/api/v1/tokens", {"name": "t", "scope": "read"}),
        ("GET", "/api/v1/tokens", None),
        ("POST", "/api/v1/experiments/e/runs", {"params": {}}),
        ("POST", "/api/v1/uploads", None),
        ("POST", "/api/v1/pipelines", {"files": {"p.py": ""}, "entry": "p.py"}),
    ):
        error = assert_error(reader.request(method, url, json=body), 403)
        assert error["type"] == "ForbiddenError"
        assert "'read'" in str(error["message"])


def test_predict_reaches_only_predictions(as_: Client, secrets: dict[str, str]) -> None:
    predictor = as_(secrets["predict"])
    assert_error(predictor.get("/api/v1/runs"), 403)
    assert_error(predictor.get("/api/v1/services"), 403)
    # Allowed through the gate; then there is no such service.
    answer = predictor.post("/api/v1/services/nope/predict", json={"instances": [[1]]})
    assert_error(answer, 404)
    assert_error(predictor.post("/api/v1/abtests/nope/predict", json={}), 404)


def test_write_cannot_manage_tokens_and_admin_can(
    as_: Client, secrets: dict[str, str], api: httpx.Client
) -> None:
    writer = as_(secrets["write"])
    assert writer.post("/api/v1/experiments/e/runs", json={}).status_code == 201
    assert_error(writer.get("/api/v1/tokens"), 403)
    assert_error(writer.post("/api/v1/tokens", json={"name": "t", "scope": "read"}), 403)
    assert_error(writer.delete("/api/v1/tokens/read"), 403)

    created = api.post("/api/v1/tokens", json={"name": "ci", "scope": "write"})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("assay_")
    assert created.json()["token"]["scope"] == "write"
    listed = listing(api, "/api/v1/tokens")
    assert [t["name"] for t in listed] == ["admin", "write", "read", "predict", "ci"]
    assert secret not in api.get("/api/v1/tokens").text
    assert as_(secret).post("/api/v1/experiments/e/runs", json={}).status_code == 201
    assert_error(api.post("/api/v1/tokens", json={"name": "ci", "scope": "read"}), 409)
    assert_error(api.post("/api/v1/tokens", json={"name": "x", "scope": "root"}), 422)
    assert_error(api.delete("/api/v1/tokens/nope"), 404)


def test_secrets_are_stored_hashed(
    ws: Workspace, secrets: dict[str, str], api: httpx.Client
) -> None:
    more = api.post("/api/v1/tokens", json={"name": "later", "scope": "read"}).json()["secret"]
    assert api.get("/api/v1/runs").status_code == 200  # last_used_at is written, not the secret
    with ws.db.read() as conn:
        rows = [tuple(str(v) for v in row) for row in conn.execute(select(tokens))]
    assert len(rows) == 5
    dump = repr(rows)
    for secret in [*secrets.values(), more]:
        assert secret.startswith("assay_")
        assert secret not in dump
        assert secret[len("assay_") :] not in dump


def test_with_auth_off_no_token_is_needed(ws: Workspace, serve: Serve) -> None:
    with serve(ws, auth=False) as url, httpclient.client(base_url=url) as anyone:
        assert anyone.get("/api/v1/runs").status_code == 200
        assert anyone.post("/api/v1/experiments/e/runs", json={}).status_code == 201
        assert anyone.post("/api/v1/tokens", json={"name": "t", "scope": "read"}).status_code == 201


def test_what_a_request_records_names_its_token(
    ws: Workspace, as_: Client, secrets: dict[str, str]
) -> None:
    """A server acts for many people: versions and tokens made through it carry the
    caller's token name, not the server's own ASSAY_AUTHOR."""
    writer = as_(secrets["write"])  # the token named "write"
    run = writer.post("/api/v1/experiments/who/runs", json={"params": {"k": 1}}).json()
    params = ws.data.resolve(f"{run['params_dataset']}@{run['params_version']}")
    assert params.author == "write"
    source = "import assay\n\n@assay.step\ndef load(data):\n    return 1\n\n"
    source += 'pipeline = assay.Pipeline("who", [load])\n'
    body = {"files": {"pipeline.py": source}, "entry": "pipeline.py"}
    registered = writer.post("/api/v1/pipelines", json=body)
    assert registered.status_code == 201, registered.text
    assert registered.json()["version"]["author"] == "write"
    assert ws.pipelines.resolve("who@1").author == "write"
    made = as_(secrets["admin"]).post("/api/v1/tokens", json={"name": "ci", "scope": "read"})
    assert made.status_code == 201, made.text
    assert next(t for t in ws.tokens.tokens() if t.name == "ci").created_by == "admin"
    # and the process's own work is still the process's
    assert ws.data.resolve(f"{run['params_dataset']}@1").author == "write"
    assert ws.tokens.create("local", "read")[0].created_by == ws.settings.author


def test_a_token_cannot_revoke_itself(
    api: httpx.Client, as_: Callable[[str], httpx.Client], secrets: dict[str, str]
) -> None:
    """The caller would lock itself out mid-session; another admin token can revoke it."""
    error = assert_error(api.delete("/api/v1/tokens/admin"), 409)
    assert "another admin token" in str(error["message"])
    assert api.get("/api/v1/tokens").status_code == 200  # still in
    created = api.post("/api/v1/tokens", json={"name": "second", "scope": "admin"}).json()
    assert as_(created["secret"]).delete("/api/v1/tokens/admin").status_code == 200
    assert_error(api.get("/api/v1/tokens"), 401)
