"""The OpenAPI document describes every route, and the live server keeps to it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

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
    signed_in = httpx.Client(
        base_url=str(client.base_url), cookies={"assay_token": secrets["read"]}
    )
    with signed_in:
        assert signed_in.get("/api/v1/docs").status_code == 200
        assert signed_in.get("/api/v1/openapi.json").json()["info"]["title"] == "Assay"
    predict_only = {"Authorization": f"Bearer {secrets['predict']}"}
    assert_error(client.get("/api/v1/openapi.json", headers=predict_only), 403)


# ---- schemathesis against the live server ------------------------------------------------

CHECKED_WRITES = {("POST", "/api/v1/tokens"), ("POST", "/api/v1/experiments/{experiment}/runs")}


def test_schemathesis_finds_no_server_errors(
    ws: Workspace, api: httpx.Client, base_url: str, secrets: dict[str, str]
) -> None:
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")
    from hypothesis import HealthCheck, Phase, given, settings

    # Something to read: a dataset version and a tracked run with metrics.
    from .test_data_api import upload_dataset

    upload_dataset(api, "d", {"a.txt": b"hello"})
    rid = api.post("/api/v1/experiments/e/runs", json={"params": {"k": 1}}).json()["id"]
    api.post(f"/api/v1/runs/{rid}/metrics", json={"metrics": [{"key": "loss", "value": 0.5}]})

    schema = schemathesis.openapi.from_dict(api.get("/api/v1/openapi.json").json())
    auth = {"Authorization": f"Bearer {secrets['admin']}"}
    failures: list[str] = []
    checked = 0
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        method = operation.method.upper()
        if method != "GET" and (method, operation.path) not in CHECKED_WRITES:
            continue
        checked += 1
        writes = method != "GET"

        @settings(
            max_examples=20 if writes else 8,
            deadline=None,
            derandomize=True,  # the same examples every run: no flaky finds
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=base_url, headers=auth)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} -> "
                    f"{response.status_code} {response.text[:200]}"
                )
            elif response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error"}, (case.path, response.text)

        check()
    assert checked >= 25
    assert calls >= 4 * checked  # it did generate, not just look
    assert not failures, "\n".join(failures)
