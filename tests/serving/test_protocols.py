"""What the clients people already have send and expect: the binary tensor extension, the
V2 error shape, V2 datatypes, KServe V1 `inputs`, and KServe's `GET /`."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

from assay.registry.bundle import LoadedBundle

from .conftest import IRIS_ROW, MIXED, MIXED_ROW, ClientFor, Columns, TestClient, make_bundle

ROWS = [list(IRIS_ROW.values()), [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture
def iris_client(client_for: ClientFor, iris: LoadedBundle) -> TestClient:
    return client_for(iris)


def binary_body(doc: dict[str, Any], *blobs: bytes) -> tuple[bytes, dict[str, str]]:
    """A body as tritonclient sends it: the JSON, then the tensors' bytes; and its header."""
    head = json.dumps(doc).encode()
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}


def split(resp: Any) -> tuple[dict[str, Any], bytes]:
    """An answer's JSON and the binary data after it."""
    length = int(resp.headers["Inference-Header-Content-Length"])
    return json.loads(resp.content[:length]), resp.content[length:]


def rows_tensor(rows: list[list[float]], dtype: Any = np.float32) -> tuple[dict[str, Any], bytes]:
    blob = np.asarray(rows, dtype=dtype).tobytes()
    datatype = {np.float32: "FP32", np.float64: "FP64"}[dtype]
    return {
        "name": "x",
        "shape": [len(rows), 4],
        "datatype": datatype,
        "parameters": {"binary_data_size": len(blob)},
    }, blob


# ---- binary tensor data -----------------------------------------------------------------------


def test_binary_inputs_and_outputs_travel_after_the_json(iris_client: TestClient) -> None:
    tensor, blob = rows_tensor(ROWS)
    body, headers = binary_body(
        {
            "id": "r1",
            "inputs": [tensor],
            "outputs": [
                {"name": "predict", "parameters": {"binary_data": True}},
                {"name": "predict_proba", "parameters": {"binary_data": True}},
            ],
        },
        blob,
    )
    resp = iris_client.post("/v2/models/iris/infer", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["X-Assay-Model"] == "iris"
    doc, data = split(resp)
    assert (doc["model_name"], doc["model_version"], doc["id"]) == ("iris", "3", "r1")
    predict, proba = doc["outputs"]
    assert predict["datatype"] == "BYTES"
    assert predict["shape"] == [2]
    assert proba["datatype"] == "FP64"
    assert proba["shape"] == [2, 3]
    n = predict["parameters"]["binary_data_size"]
    assert n + proba["parameters"]["binary_data_size"] == len(data)
    # BYTES: each element's length (4 bytes, little-endian), then its bytes.
    assert data[:n] == struct.pack("<I", 6) + b"setosa" + struct.pack("<I", 9) + b"virginica"
    p = np.frombuffer(data[n:], "<f8").reshape(2, 3)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0].argmax() == 0


def test_binary_data_output_asks_for_every_output_as_binary_unless_one_says_not(
    iris_client: TestClient,
) -> None:
    tensor, blob = rows_tensor(ROWS, np.float64)
    body, headers = binary_body(
        {"inputs": [tensor], "parameters": {"binary_data_output": True}}, blob
    )
    resp = iris_client.post("/v2/models/iris/infer", content=body, headers=headers)
    doc, data = split(resp)
    [predict] = doc["outputs"]
    assert predict["parameters"] == {"binary_data_size": len(data)}
    assert "data" not in predict

    body, headers = binary_body(
        {
            "inputs": [tensor],
            "outputs": [{"name": "predict", "parameters": {"binary_data": False}}],
            "parameters": {"binary_data_output": True},
        },
        blob,
    )
    resp = iris_client.post("/v2/models/iris/infer", content=body, headers=headers)
    # Nothing binary in the answer: plain JSON, as Triton answers.
    assert "Inference-Header-Content-Length" not in resp.headers
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["outputs"][0]["data"] == ["setosa", "virginica"]


def test_json_inputs_may_ask_for_binary_outputs(iris_client: TestClient) -> None:
    resp = iris_client.post(
        "/v2/models/iris/infer",
        json={
            "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": ROWS}],
            "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}],
        },
    )
    doc, data = split(resp)
    assert doc["outputs"][0]["shape"] == [2, 3]
    assert len(data) == 2 * 3 * 8


def test_binary_columns_mix_with_json_ones(client_for: ClientFor) -> None:
    client = client_for(make_bundle(Columns(), MIXED, [MIXED_ROW], name="mixed"))
    city = struct.pack("<I", 4) + b"Oslo" + struct.pack("<I", 5) + b"Z\xc3\xbcri"
    flags = bytes([1, 0])
    body, headers = binary_body(
        {
            "inputs": [
                {"name": "n", "shape": [2], "datatype": "INT64", "data": [3, 4]},
                {
                    "name": "flag",
                    "shape": [2],
                    "datatype": "BOOL",
                    "parameters": {"binary_data_size": 2},
                },
                {
                    "name": "city",
                    "shape": [2, 1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(city)},
                },
                {"name": "score", "shape": [2], "datatype": "FP64", "data": [0.5, None]},
            ]
        },
        flags,
        city,
    )
    resp = client.post("/v2/models/mixed/infer", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["outputs"][0]["data"] == ["3|True|Oslo|0.5", "4|False|Züri|-"]


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"Inference-Header-Content-Length": "9999"}, 400, "the body has"),
        ({"Inference-Header-Content-Length": "ten"}, 400, "not 'ten'"),
        ({"Content-Type": "text/plain"}, 415, "Inference-Header-Content-Length"),
    ],
)
def test_a_binary_body_whose_header_does_not_fit_is_refused(
    iris_client: TestClient, headers: dict[str, str], status: int, message: str
) -> None:
    tensor, blob = rows_tensor(ROWS)
    body, sent = binary_body({"inputs": [tensor]}, blob)
    resp = iris_client.post("/v2/models/iris/infer", content=body, headers={**sent, **headers})
    assert resp.status_code == status, resp.text
    assert message in resp.json()["error"]


def test_a_binary_body_may_say_it_is_an_octet_stream(iris_client: TestClient) -> None:
    tensor, blob = rows_tensor(ROWS)
    body, headers = binary_body({"inputs": [tensor]}, blob)
    headers["Content-Type"] = "application/octet-stream"  # KServe's client says so
    resp = iris_client.post("/v2/models/iris/infer", content=body, headers=headers)
    assert resp.status_code == 200
    assert resp.json()["outputs"][0]["data"] == ["setosa", "virginica"]
    # Without the header an octet stream is still not JSON.
    del headers["Inference-Header-Content-Length"]
    assert (
        iris_client.post("/v2/models/iris/infer", content=body, headers=headers).status_code == 415
    )


def test_the_server_advertises_the_binary_extension(iris_client: TestClient) -> None:
    assert iris_client.get("/v2").json()["extensions"] == ["binary_tensor_data"]


# ---- V2 errors ----------------------------------------------------------------------------------


def test_v2_errors_are_a_message_string_with_the_type_and_details_beside_it(
    iris_client: TestClient,
) -> None:
    cases = [
        iris_client.post("/v2/models/iris/infer", json={"inputs": []}),
        iris_client.post("/v2/models/churn/infer", json={}),
        iris_client.get("/v2/models/churn/ready"),
        iris_client.get("/v2/nothing"),
        iris_client.put("/v2/models/iris/infer", json={}),
        iris_client.post("/v2/models/iris/infer", content=b"{oops"),
    ]
    for resp in cases:
        body = resp.json()
        assert resp.status_code >= 400
        assert set(body) == {"error", "type", "details"}, body
        assert isinstance(body["error"], str), body
        assert body["error"].endswith("."), body
    assert [r.json()["type"] for r in cases] == [
        "InvalidArgumentError",
        "NotFoundError",
        "NotFoundError",
        "NotFoundError",
        "MethodNotAllowedError",
        "InvalidArgumentError",
    ]
    assert cases[1].json()["details"]["served"] == "iris"
    # V1 and Assay's own routes keep Assay's shape.
    for resp in (
        iris_client.post("/v1/models/iris:predict", json={}),
        iris_client.get("/v1/nothing"),
    ):
        assert set(resp.json()["error"]) == {"type", "message", "details"}, resp.json()


def test_a_v2_route_that_is_not_ready_answers_the_v2_error_shape(iris: LoadedBundle) -> None:
    from assay.serving.app import ServingState, create_app

    with TestClient(create_app(ServingState())) as client:
        resp = client.post("/v2/models/iris/infer", json={})
        assert resp.status_code == 503
        assert resp.json()["type"] == "ModelNotReadyError"
        assert "still loading" in resp.json()["error"]
        v1 = client.post("/v1/models/iris:predict", json={})
        assert v1.json()["error"]["type"] == "ModelNotReadyError"


# ---- V2 datatypes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            {"name": "n", "shape": [1], "datatype": "UINT8", "data": [300]},
            "Tensor 'n' is UINT8, but it holds integer 300 at [0], outside UINT8's range",
        ),
        (
            {"name": "n", "shape": [1], "datatype": "INT64", "data": [0.09]},
            "Tensor 'n' is INT64, but it holds number 0.09 at [0], which is not an integer",
        ),
        (
            {"name": "flag", "shape": [1], "datatype": "BOOL", "data": [2]},
            "Tensor 'flag' is BOOL, but it holds integer 2 at [0], which is not true or false",
        ),
        (
            {"name": "n", "shape": [2], "datatype": "INT64", "data": [3]},
            "Tensor 'n': shape [2] holds 2 values but data has 1.",
        ),
    ],
)
def test_a_declared_datatype_is_checked_against_the_data(
    client_for: ClientFor, tensor: dict[str, Any], message: str
) -> None:
    client = client_for(make_bundle(Columns(), MIXED, [MIXED_ROW], name="mixed"))
    good = {
        "n": {"name": "n", "shape": [1], "datatype": "INT64", "data": [3]},
        "flag": {"name": "flag", "shape": [1], "datatype": "BOOL", "data": [True]},
        "city": {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["Oslo"]},
        "score": {"name": "score", "shape": [1], "datatype": "FP32", "data": [0.5]},
    }
    ok = client.post("/v2/models/mixed/infer", json={"inputs": list(good.values())})
    assert ok.status_code == 200
    assert ok.json()["outputs"][0]["data"] == ["3|True|Oslo|0.5"]
    inputs = list({**good, tensor["name"]: tensor}.values())
    resp = client.post("/v2/models/mixed/infer", json={"inputs": inputs})
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]


# ---- KServe V1 `inputs` -----------------------------------------------------------------------


def test_v1_takes_inputs_as_rows_arrays_columns_or_record_lists(iris_client: TestClient) -> None:
    columns = {name: [row[k] for row in ROWS] for k, name in enumerate(IRIS_ROW)}
    forms = [
        [dict(zip(IRIS_ROW, row, strict=True)) for row in ROWS],  # rows as objects
        ROWS,  # rows as arrays in column order
        columns,  # TF-Serving's columnar form
        {name: [[v] for v in values] for name, values in columns.items()},  # shape [N, 1]
        [[dict(zip(IRIS_ROW, row, strict=True))] for row in ROWS],  # KServe's record lists
    ]
    for inputs in forms:
        resp = iris_client.post("/v1/models/iris:predict", json={"inputs": inputs})
        assert resp.status_code == 200, (inputs, resp.text)
        assert resp.json() == {
            "predictions": ["setosa", "virginica"],
            "model": "iris",
            "version": 3,
        }
    proba = iris_client.post("/v1/models/iris:predict_proba", json={"inputs": columns}).json()
    assert proba["classes"] == ["setosa", "versicolor", "virginica"]
    assert len(proba["predictions"]) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": ROWS, "inputs": ROWS}, "both 'instances' and 'inputs'"),
        ({"inputs": 3}, "'inputs' must be a list of rows (objects or arrays) or an object"),
        ({"inputs": []}, "'inputs' is empty"),
        ({"inputs": {"sepal length (cm)": [1.0]}}, "'inputs' has no column 'sepal width (cm)'"),
        ({"inputs": {**IRIS_ROW, "colour": [1]}}, "a column the model does not take: 'colour'"),
        (
            {"inputs": {**{k: [v, v] for k, v in IRIS_ROW.items()}, "petal width (cm)": [0.2]}},
            "column 'petal width (cm)' has 1 values but column 'sepal length (cm)' has 2",
        ),
        ({"inputs": {k: v for k, v in IRIS_ROW.items()}}, "must be an array of its values"),
        (
            {"inputs": {**{k: [v] for k, v in IRIS_ROW.items()}, "petal width (cm)": ["x"]}},
            "Row 0, column 'petal width (cm)': expected a number, got string 'x'",
        ),
        ({"inputs": [[1.0, 2.0]]}, "Row 0 has 2 values; the model takes 4"),
        ({"rows": ROWS}, "or an object of columns, as 'inputs'"),
        (
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROWS[0]}]},
            "'inputs' holds Open Inference Protocol V2 tensors; send them to POST /v2/models/iris",
        ),
    ],
)
def test_v1_inputs_are_checked_as_instances_are(
    iris_client: TestClient, body: dict[str, Any], message: str
) -> None:
    resp = iris_client.post("/v1/models/iris:predict", json=body)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]["message"]


# ---- GET / --------------------------------------------------------------------------------------


def test_the_root_answers_alive_as_kserve_does(iris_client: TestClient) -> None:
    resp = iris_client.get("/")
    assert resp.status_code == 200
    assert resp.json() == {"status": "alive"}
