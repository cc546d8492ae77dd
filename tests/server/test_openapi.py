"""The OpenAPI document describes every route, and the live server keeps to it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from assay import httpclient
from assay.workspace import Workspace

from .conftest import assert_error

# HTTP behaviour, not the database: one metadata backend is enough.
pytestmark = pytest.mark.one_backend

# Bodies that are not JSON models: file downloads, logs, model exports (a tar).
FILES = {"application/octet-stream", "text/plain", "application/x-tar"}
ERROR_CODES = {"400", "401", "403", "404", "409", "413", "415", "422"}


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_route_is_described(api: httpx.Client) -> None:
    answer = api.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "Assay"
    schemas = doc["components"]["schemas"]
    assert {"ErrorBody", "ErrorDetail", "Run", "DataVersion", "Token"} <= set(schemas)
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"

    ops = operations(doc)
    assert len(ops) >= 45
    assert all(path.startswith("/api/v1/") for _, path, _ in ops)
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    for method, path, op in ops:
        where = f"{method} {path}"
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert len(ok) == 1, where
        [(code, response)] = ok.items()
        assert code in {"200", "201", "202", "204"}, where
        assert response.get("description"), where
        if code == "204":
            assert not response.get("content"), where
            continue
        content = response["content"]
        if set(content) & FILES:
            continue
        schema = content["application/json"]["schema"]
        if "predict" in op.get("tags", []) or path.endswith("/feedback"):
            continue  # the model's answer, passed through as it is
        # A model of its own, never a free-form object.
        assert "$ref" in schema or "$ref" in schema.get("items", {}), f"{where} is untyped"
        # Errors: every route documents them with the one error body.
        if path == "/api/v1/health":
            assert "security" not in op
            continue
        assert {"HTTPBearer": []} in op["security"], where
        assert set(op["responses"]) >= ERROR_CODES, where
        for status in ERROR_CODES:
            body = op["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorBody"}, (where, status)
    # The answers the services build as documents are described field by field.
    assert schemas["LineageTree"]["properties"]["run"]["anyOf"][0] == {
        "$ref": "#/components/schemas/LineageRun"
    }
    assert {"uptime_s", "traffic", "workers_now", "model_ref"} <= set(
        schemas["ServiceStatus"]["required"]
    )
    assert {"verdict", "comparisons", "abtest"} <= set(schemas["ABReport"]["required"])
    error = schemas["ErrorBody"]["properties"]["error"]
    assert error == {"$ref": "#/components/schemas/ErrorDetail"}
    assert set(schemas["ErrorDetail"]["required"]) == {"type", "message"}


def test_the_document_and_its_page_need_a_token_or_a_sign_in(
    client: httpx.Client, api: httpx.Client, secrets: dict[str, str]
) -> None:
    assert_error(client.get("/api/v1/openapi.json"), 401)
    assert_error(client.get("/api/v1/docs"), 401)
    browser = client.get("/api/v1/docs", headers={"Accept": "text/html"})
    assert browser.status_code == 303  # to the dashboard's sign-in, and back
    assert browser.headers["location"].startswith("/login?next=%2Fapi%2Fv1%2Fdocs")

    answer = api.get("/api/v1/docs")
    assert answer.status_code == 200
    assert "/api/v1/openapi.json" in answer.text
    signed_in = httpclient.client(
        base_url=str(client.base_url), cookies={"assay_token": secrets["read"]}
    )
    with signed_in:
        assert signed_in.get("/api/v1/docs").status_code == 200
        assert signed_in.get("/api/v1/openapi.json").json()["info"]["title"] == "Assay"
    predict_only = {"Authorization": f"Bearer {secrets['predict']}"}
    assert_error(client.get("/api/v1/openapi.json", headers=predict_only), 403)


# ---- what the fuzzer found, pinned ----------------------------------------------------------


def test_a_method_a_path_lacks_is_405_naming_the_ones_it_has(api: httpx.Client) -> None:
    # Every route at the path counts, not only the first that matched it.
    answer = api.request("TRACE", "/api/v1/services")
    error = assert_error(answer, 405)
    assert answer.headers["allow"] == "GET, POST"
    assert "GET or POST" in str(error["message"])
    # A run id is hexadecimal: /runs/archive is not a run, so it has POST alone.
    answer = api.patch("/api/v1/runs/archive")
    assert_error(answer, 405)
    assert answer.headers["allow"] == "POST"
    answer = api.options("/api/v1/models/m/versions/3")
    assert_error(answer, 405)
    assert answer.headers["allow"] == "GET, DELETE"


def test_errors_are_documented_as_the_json_they_are(api: httpx.Client) -> None:
    doc = api.get("/api/v1/openapi.json").json()
    body = {"$ref": "#/components/schemas/ErrorBody"}
    logs = doc["paths"]["/api/v1/runs/{run}/logs"]["get"]["responses"]
    assert set(logs["200"]["content"]) == {"text/plain"}
    for status in ERROR_CODES:
        assert logs[status]["content"] == {"application/json": {"schema": body}}, status
    answer = api.get("/api/v1/runs/abc123/logs")
    assert_error(answer, 404)  # JSON, as documented
    predict = doc["paths"]["/api/v1/services/{name}/predict"]["post"]["responses"]
    assert {"409", "503", "504"} <= set(predict)
    assert predict["409"]["content"]["application/json"]["schema"] == body
    # No tuple is written as prefixItems, which readers of OpenAPI 3.0 take for a list.
    assert "prefixItems" not in answer.text + str(doc)


def test_the_document_states_what_the_server_checks(api: httpx.Client) -> None:
    doc = api.get("/api/v1/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert schemas["TokenIn"]["properties"]["scope"]["enum"] == [
        "admin",
        "write",
        "read",
        "predict",
    ]
    assert schemas["EndIn"]["properties"]["status"]["enum"] == ["succeeded", "failed", "killed"]
    assert schemas["SweepIn"]["properties"]["trials"]["minimum"] == 1
    [page_token] = [
        p
        for p in doc["paths"]["/api/v1/datasets"]["get"]["parameters"]
        if p["name"] == "page_token"
    ]
    assert page_token["schema"]["anyOf"][0]["pattern"] == "^[0-9]{1,15}$"
    # A name the pattern allows the server takes; one it refuses is a 422, before the route.
    [name] = doc["paths"]["/api/v1/datasets/{name}/versions"]["get"]["parameters"][:1]
    assert name["schema"]["pattern"].startswith("^(?!.*\\.\\.)")
    assert api.get("/api/v1/datasets/a.b-c_d/versions").status_code == 404
    assert_error(api.get("/api/v1/datasets/a..b/versions"), 422)
    assert_error(api.post("/api/v1/tokens", json={"name": "x", "scope": "root"}), 422)
    # Strict bodies: `false` is no number; 1.0 is an integer, as JSON Schema says.
    assert_error(api.post("/api/v1/gc", json={"grace_s": False}), 422)
    assert api.post("/api/v1/gc", json={"grace_s": 1.0, "dry_run": True}).status_code == 200


def test_every_timestamp_says_its_zone(ws: Workspace, api: httpx.Client) -> None:
    """SQLite hands timestamps back without a zone; the API still answers them in UTC, as
    runs always were (a sweep's were not)."""
    from datetime import UTC, datetime

    from assay.sweeps.repository import SweepRepository

    now = datetime.now(UTC)
    with ws.db.session() as conn:
        repo = SweepRepository(conn)
        sweep_id = repo.insert(
            {
                "name": "s", "pipeline": "p", "pipeline_version": 1, "dataset": "d",
                "data_version": 1, "base_params": {}, "space": {}, "objectives": [],
                "sampler": "tpe", "pruner": "none", "prune_on": None, "seed": 0, "trials": 1,
                "parallel": 1, "executor": "local", "budget": None, "timeout_s": None,
                "register": "none", "status": "finished", "ended_at": now,
            }
        )  # fmt: skip
        repo.add_trial(
            sweep_id,
            {"number": 0, "state": "complete", "params": {}, "distributions": {},
             "started_at": now, "ended_at": now},
        )  # fmt: skip
    sweep = api.get("/api/v1/sweeps/s").json()
    [trial] = sweep["trial_list"]
    stamps = [sweep["created_at"], sweep["ended_at"], trial["started_at"], trial["ended_at"]]
    listed = api.get("/api/v1/sweeps").json()["items"][0]
    stamps += [listed["created_at"], listed["ended_at"]]
    for stamp in stamps:
        assert stamp.endswith(("Z", "+00:00")), stamp
        assert datetime.fromisoformat(stamp).utcoffset() is not None
