"""The inference app over real fitted models: both protocols, every refusal, metrics."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from assay.errors import ModelError
from assay.registry.bundle import LoadedBundle
from assay.registry.entities import ColumnSpec, Signature
from assay.serving.app import ServingState, create_app
from assay.serving.metrics import summarize
from assay.serving.served import prepare

from .conftest import (
    IRIS_ROW,
    MIXED,
    MIXED_ROW,
    TWO,
    TWO_EXAMPLE,
    ClientFor,
    Columns,
    Exploding,
    NonFinite,
    Sleepy,
    TestClient,
    make_bundle,
)


def rows_of(X: pd.DataFrame, n: int = 2) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in X.iloc[:n].to_dict(orient="records")]


def error_of(resp: Any) -> dict[str, Any]:
    """A response's error as {"type", "message", "details"}, its shape pinned: Assay's
    on V1 and Assay's own routes, the protocol's (`error` a string) on V2 routes."""
    body = resp.json()
    if resp.request.url.path.startswith("/v2"):
        assert set(body) == {"error", "type", "details"}, body
        assert isinstance(body["error"], str), body
        return {"type": body["type"], "message": body["error"], "details": body["details"]}
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "message", "details"}, body
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
def cancer_client(client_for: ClientFor, cancer: LoadedBundle) -> TestClient:
    return client_for(cancer)


@pytest.fixture
def cancer_X(cancer_data: tuple[pd.DataFrame, Any]) -> pd.DataFrame:
    return cancer_data[0]


# ---- KServe V1 ----------------------------------------------------------------------------------


def test_v1_predicts_rows_given_as_objects_or_as_arrays(
    cancer_client: TestClient, cancer: LoadedBundle, cancer_X: pd.DataFrame
) -> None:
    expected = cancer.model.predict(cancer_X.iloc[:5]).tolist()
    as_objects = cancer_client.post(
        "/v1/models/cancer:predict", json={"instances": rows_of(cancer_X, 5)}
    )
    as_arrays = cancer_client.post(
        "/v1/models/cancer:predict", json={"instances": cancer_X.iloc[:5].to_numpy().tolist()}
    )
    for resp in (as_objects, as_arrays):
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"predictions": expected, "model": "cancer", "version": 1}
        assert resp.headers["X-Assay-Model"] == "cancer"
        assert resp.headers["X-Assay-Model-Version"] == "1"
        assert resp.headers["content-type"] == "application/json"


def test_v1_object_rows_may_list_their_columns_in_any_order(
    cancer_client: TestClient, cancer: LoadedBundle, cancer_X: pd.DataFrame
) -> None:
    row = rows_of(cancer_X, 1)[0]
    shuffled = dict(reversed(list(row.items())))
    resp = cancer_client.post("/v1/models/cancer:predict", json={"instances": [shuffled]})
    assert resp.json()["predictions"] == cancer.model.predict(cancer_X.iloc[:1]).tolist()


def test_predict_proba_gives_each_class_probability_with_the_class_names(
    client_for: ClientFor, iris: LoadedBundle
) -> None:
    client = client_for(iris)
    resp = client.post("/v1/models/iris:predict_proba", json={"instances": [IRIS_ROW] * 2})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    assert (body["model"], body["version"]) == ("iris", 3)
    assert len(body["predictions"]) == 2
    assert all(abs(sum(p) - 1.0) < 1e-9 and len(p) == 3 for p in body["predictions"])
    assert max(range(3), key=lambda k: body["predictions"][0][k]) == 0  # setosa
    assert resp.headers["X-Assay-Model-Version"] == "3"


def test_a_classifier_answers_its_class_labels(client_for: ClientFor, iris: LoadedBundle) -> None:
    resp = client_for(iris).post("/v1/models/iris:predict", json={"instances": [IRIS_ROW]})
    assert resp.json()["predictions"] == ["setosa"]


def test_probabilities_of_a_model_without_them_are_refused(client_for: ClientFor) -> None:
    client = client_for(make_bundle(Exploding(), TWO, TWO_EXAMPLE))
    resp = client.post("/v1/models/m:predict_proba", json={"instances": [[1, 2]]})
    assert resp.status_code == 400
    assert "has no probabilities" in error_of(resp)["message"]
    assert ":predict" in error_of(resp)["message"]


# ---- Open Inference Protocol V2 -------------------------------------------------------------


def test_v2_infers_from_one_tensor_of_rows_and_echoes_the_request_id(
    cancer_client: TestClient, cancer: LoadedBundle, cancer_X: pd.DataFrame
) -> None:
    X = cancer_X.iloc[:3].to_numpy()
    expected = cancer.model.predict(cancer_X.iloc[:3]).tolist()
    for data in (X.ravel().tolist(), X.tolist()):  # flat (row-major) or nested
        resp = cancer_client.post(
            "/v2/models/cancer/infer",
            json={
                "id": "req-7",
                "inputs": [{"name": "x", "shape": [3, 30], "datatype": "FP64", "data": data}],
            },
        )
        assert resp.status_code == 200, resp.text
        assert resp.json() == {
            "model_name": "cancer",
            "model_version": "1",
            "id": "req-7",
            "outputs": [{"name": "predict", "shape": [3], "datatype": "INT64", "data": expected}],
        }
        assert resp.headers["X-Assay-Model-Version"] == "1"


def test_v2_infers_from_one_tensor_per_column(client_for: ClientFor, iris: LoadedBundle) -> None:
    client = client_for(iris)
    inputs = [
        {"name": name, "shape": [2] if k % 2 else [2, 1], "datatype": "FP64", "data": [v, v]}
        for k, (name, v) in enumerate(IRIS_ROW.items())
    ]
    resp = client.post("/v2/models/iris/infer", json={"inputs": inputs})
    assert resp.status_code == 200, resp.text
    [output] = resp.json()["outputs"]
    assert output == {
        "name": "predict",
        "shape": [2],
        "datatype": "BYTES",
        "data": ["setosa", "setosa"],
    }
    assert "id" not in resp.json()


def test_v2_gives_probabilities_when_asked_for_that_output(
    client_for: ClientFor, iris: LoadedBundle
) -> None:
    resp = client_for(iris).post(
        "/v2/models/iris/infer",
        json={
            "inputs": [
                {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": list(IRIS_ROW.values())}
            ],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        },
    )
    predict, proba = resp.json()["outputs"]
    assert predict["data"] == ["setosa"]
    assert (proba["name"], proba["shape"], proba["datatype"]) == ("predict_proba", [1, 3], "FP64")
    assert abs(sum(proba["data"]) - 1.0) < 1e-9


def test_v2_answers_on_the_served_versions_path_only(
    cancer_client: TestClient, cancer_X: pd.DataFrame
) -> None:
    body = {
        "inputs": [
            {
                "name": "x",
                "shape": [1, 30],
                "datatype": "FP64",
                "data": cancer_X.iloc[0].tolist(),
            }
        ]
    }
    assert cancer_client.post("/v2/models/cancer/versions/1/infer", json=body).status_code == 200
    resp = cancer_client.post("/v2/models/cancer/versions/2/infer", json=body)
    assert resp.status_code == 404
    assert "serves version 1" in error_of(resp)["message"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "non-empty list of tensors"),
        ([{"name": "x", "shape": [1, 4], "data": [1, 2, 3, 4]}], "has no 'datatype'"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [1] * 4}], "unknown datatype"),
        ([{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1] * 4}], "holds 8 values"),
        ([{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1] * 3}], r"shape \[N, 4\]"),
        (
            [{"name": "petal width (cm)", "shape": [1], "datatype": "FP64", "data": [1]}],
            "No tensor for column 'sepal length \\(cm\\)' \\(nor 2 more\\)",
        ),
        (
            [
                {"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]}
                for n in [*IRIS_ROW, "colour"]
            ],
            "Tensor 'colour' is not a column the model takes",
        ),
        (
            [
                {"name": n, "shape": [1], "datatype": "BYTES" if k == 0 else "FP64", "data": [1]}
                for k, n in enumerate(IRIS_ROW)
            ],
            "is BYTES, but column 'sepal length \\(cm\\)' holds a number",
        ),
        (
            [
                {
                    "name": n,
                    "shape": [1 + (k == 1)],
                    "datatype": "FP64",
                    "data": [1.0] * (1 + (k == 1)),
                }
                for k, n in enumerate(IRIS_ROW)
            ],
            "has 2 rows but the first tensor has 1",
        ),
        (
            [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, "three", 4]}],
            r"Tensor 'x' is FP64, but it holds string 'three' at \[0, 2\] "
            r"\(row 0, column 'petal length \(cm\)'\), which is not a number",
        ),
    ],
)
def test_v2_refuses_malformed_tensors_naming_the_problem(
    client_for: ClientFor, iris: LoadedBundle, inputs: list[Any], message: str
) -> None:
    resp = client_for(iris).post("/v2/models/iris/infer", json={"inputs": inputs})
    assert resp.status_code == 400, resp.text
    assert error_of(resp)["type"] == "InvalidArgumentError"
    assert re.search(message, error_of(resp)["message"]), error_of(resp)["message"]


def test_v2_describes_the_model_and_the_server(client_for: ClientFor, iris: LoadedBundle) -> None:
    client = client_for(iris)
    meta = client.get("/v2/models/iris").json()
    assert meta["name"] == "iris"
    assert meta["versions"] == ["3"]
    assert meta["platform"] == "sklearn"
    assert meta["inputs"][0] == {"name": "sepal length (cm)", "datatype": "FP64", "shape": [-1]}
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert meta["outputs"][0]["datatype"] == "BYTES"
    assert meta["outputs"][1]["shape"] == [-1, 3]
    assert client.get("/v2/models/iris/versions/3").json() == meta
    assert client.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    server = client.get("/v2").json()
    assert server["name"] == "assay"
    assert "version" in server
    assert client.get("/v1/models/iris").json() == {"name": "iris", "ready": True}
    assert client.get("/v1/models").json() == {"models": ["iris"]}


# ---- refusals ---------------------------------------------------------------------------------


def test_a_wrong_model_name_is_404_naming_the_served_model(
    cancer_client: TestClient, cancer_X: pd.DataFrame
) -> None:
    for path in (
        "/v1/models/churn:predict",
        "/v1/models/churn:predict_proba",
        "/v2/models/churn/infer",
    ):
        resp = cancer_client.post(path, json={"instances": rows_of(cancer_X, 1)})
        assert resp.status_code == 404, path
        error = error_of(resp)
        assert error["type"] == "NotFoundError"
        assert "'churn' is not served here" in error["message"]
        assert "serves 'cancer' (version 1)" in error["message"]
        assert error["details"]["served"] == "cancer"
    assert cancer_client.get("/v2/models/churn").status_code == 404
    assert cancer_client.get("/v1/models/churn").status_code == 404


A = {"a": 1.0, "b": 2.0}


@pytest.mark.parametrize(
    ("body", "message", "details"),
    [
        ({"instances": [A, {"a": 1.0}]}, "Instance 1 has no column 'b'", {"column": "b"}),
        (
            {"instances": [{**A, "c": 3}]},
            "Instance 0 has a column the model does not take: 'c'",
            {"column": "c"},
        ),
        (
            {"instances": [A, {"a": "1.0", "b": 2}]},
            "Instance 1, column 'a': expected a number, got string '1.0'",
            {"instance": 1, "column": "a", "expected": "float", "got": "string"},
        ),
        (
            {"instances": [{"a": True, "b": 2}]},
            "column 'a': expected a number, got boolean True",
            {"got": "boolean"},
        ),
        (
            {"instances": [{"a": 1, "b": None}]},
            "Instance 0, column 'b': missing value \\(null\\), but the model was trained "
            "without missing values",
            {"column": "b", "got": "null"},
        ),
        ({"instances": []}, "'instances' is empty", {}),
        ({"instances": {"a": 1}}, "'instances' must be a list of rows", {}),
        ({"instances": [A, [1.0, 2.0]]}, "Instance 1 is an array but instance 0 is an object", {}),
        ({"instances": [[1.0, 2.0], [1.0]]}, "Instance 1 has 1 values; the model takes 2", {}),
        ({"instances": [A, 7]}, "Instance 1 is an integer", {}),
        ({"rows": [A]}, "The body has no 'instances'", {}),
        ([A], "request body must be a JSON object, not an array", {}),
    ],
)
def test_bad_instances_are_refused_before_the_model_sees_them(
    client_for: ClientFor, body: Any, message: str, details: dict[str, Any]
) -> None:
    model = Exploding()
    client = client_for(make_bundle(model, Signature(TWO.inputs), [A]))
    resp = client.post("/v1/models/m:predict", json=body)
    assert resp.status_code == 400, resp.text
    error = error_of(resp)
    assert error["type"] == "InvalidArgumentError"
    assert re.search(message, error["message"]), error["message"]
    assert details.items() <= error["details"].items()


def test_nan_in_json_is_a_missing_value(client_for: ClientFor) -> None:
    client = client_for(make_bundle(Exploding(), TWO, TWO_EXAMPLE))
    resp = client.post(
        "/v1/models/m:predict",
        content=b'{"instances": [[1.0, NaN]]}',
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 400
    assert "column 'b': missing value (NaN)" in error_of(resp)["message"]


def test_a_model_trained_on_unnamed_columns_takes_arrays_only(client_for: ClientFor) -> None:
    client = client_for(make_bundle(Exploding(), TWO, TWO_EXAMPLE))
    resp = client.post("/v1/models/m:predict", json={"instances": [A]})
    assert resp.status_code == 400
    assert "trained on unnamed columns" in error_of(resp)["message"]
    ok = client.post("/v1/models/m:predict", json={"instances": [[1, 2]]})
    assert ok.json()["predictions"] == [2.0]


def test_malformed_json_is_400(cancer_client: TestClient) -> None:
    resp = cancer_client.post(
        "/v1/models/cancer:predict",
        content=b'{"instances": [',
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 400
    assert "not valid JSON" in error_of(resp)["message"]


def test_a_body_that_is_not_json_is_415(cancer_client: TestClient) -> None:
    resp = cancer_client.post("/v1/models/cancer:predict", data={"instances": "1"})
    assert resp.status_code == 415
    error = error_of(resp)
    assert "application/x-www-form-urlencoded" in error["message"]
    assert "Content-Type: application/json" in error["message"]
    charset = cancer_client.post(
        "/v1/models/cancer:predict",
        content=b'{"instances": []}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 400  # past the media type check: the list is empty


def test_a_body_over_the_limit_is_413_by_its_length_or_while_it_streams(
    client_for: ClientFor,
) -> None:
    client = client_for(make_bundle(Exploding(), TWO, TWO_EXAMPLE), max_body_bytes=1000)
    big = json.dumps({"instances": [[1.0, 2.0]] * 200}).encode()
    resp = client.post(
        "/v1/models/m:predict", content=big, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413
    assert "over the service's limit of 1000 bytes" in error_of(resp)["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    streamed = client.post(
        "/v1/models/m:predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    small = client.post("/v1/models/m:predict", json={"instances": [[1.0, 2.0]]})
    assert small.status_code == 200


def test_unknown_routes_and_methods_answer_json_errors(cancer_client: TestClient) -> None:
    resp = cancer_client.get("/v1/nothing")
    assert resp.status_code == 404
    assert "No route GET /v1/nothing" in error_of(resp)["message"]
    wrong = cancer_client.get("/v1/models/cancer:predict")
    assert wrong.status_code == 405
    assert "use POST" in error_of(wrong)["message"]
    put = cancer_client.put("/v2/models/cancer/infer", json={})
    assert put.status_code == 405
    assert error_of(put)["type"] == "MethodNotAllowedError"


# ---- a model that fails, hangs or answers NaN ------------------------------------------------


def test_a_model_that_raises_is_500_with_an_error_id_in_the_log_and_the_service_goes_on(
    client_for: ClientFor, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(make_bundle(Exploding(), TWO, TWO_EXAMPLE))
    with caplog.at_level(logging.ERROR, logger="assay.serving"):
        resp = client.post("/v1/models/m:predict", json={"instances": [[-1, 2]]})
    assert resp.status_code == 500
    error = error_of(resp)
    assert error["type"] == "ModelError"
    error_id = error["details"]["error_id"]
    assert len(error_id) == 12
    assert error_id in error["message"]
    assert "ValueError: cannot take a negative a" in error["message"]
    assert "Traceback" not in resp.text
    [record] = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info is not None  # the traceback goes to the log, not the client
    assert resp.headers["X-Assay-Model"] == "m"
    again = client.post("/v1/models/m:predict", json={"instances": [[3, 2]]})
    assert again.status_code == 200
    assert again.json()["predictions"] == [6.0]


def test_a_prediction_past_the_timeout_is_504_and_the_service_goes_on(
    client_for: ClientFor,
) -> None:
    model = Sleepy(seconds=10)
    client = client_for(make_bundle(model, TWO, TWO_EXAMPLE), timeout_s=0.2)
    try:
        resp = client.post("/v1/models/m:predict", json={"instances": [[101, 0]]})
        assert resp.status_code == 504
        error = error_of(resp)
        assert error["type"] == "PredictTimeoutError"
        assert "longer than 0.2 s" in error["message"]
        fast = client.post("/v1/models/m:predict", json={"instances": [[5, 0]]})
        assert fast.status_code == 200
        assert fast.json()["predictions"] == [5.0]
    finally:
        model.released.set()


def test_nan_and_infinite_predictions_answer_null(client_for: ClientFor) -> None:
    client = client_for(make_bundle(NonFinite(), TWO, TWO_EXAMPLE))
    rows = [[1, 2]] * 4
    v1 = client.post("/v1/models/m:predict", json={"instances": rows})
    assert v1.status_code == 200
    assert v1.json()["predictions"] == [None, None, None, 1.5]
    assert "NaN" not in v1.text
    assert "Infinity" not in v1.text
    proba = client.post("/v1/models/m:predict_proba", json={"instances": rows[:1]})
    assert proba.json()["predictions"] == [[None, 1.0]]
    v2 = client.post(
        "/v2/models/m/infer",
        json={"inputs": [{"name": "x", "shape": [4, 2], "datatype": "FP64", "data": [1] * 8}]},
    )
    assert v2.json()["outputs"][0]["data"] == [None, None, None, 1.5]


# ---- input kinds and model input shapes ------------------------------------------------------


def test_columns_of_every_kind_reach_a_model_trained_on_a_dataframe(
    client_for: ClientFor,
) -> None:
    client = client_for(make_bundle(Columns(), MIXED, [MIXED_ROW]))
    rows = [MIXED_ROW, {"n": 4.0, "flag": False, "city": None, "score": None}]
    resp = client.post("/v1/models/m:predict", json={"instances": rows})
    assert resp.status_code == 200, resp.text
    assert resp.json()["predictions"] == ["3|True|Oslo|0.5", "4|False|-|-"]
    as_array = client.post("/v1/models/m:predict", json={"instances": [[3, True, "Oslo", 0.5]]})
    assert as_array.json()["predictions"] == ["3|True|Oslo|0.5"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**MIXED_ROW, "n": 3.5}, "column 'n': expected an integer, got 3.5"),
        ({**MIXED_ROW, "n": True}, "column 'n': expected an integer, got boolean True"),
        ({**MIXED_ROW, "flag": 1}, "column 'flag': expected true or false, got integer 1"),
        ({**MIXED_ROW, "city": 7}, "column 'city': expected a string, got integer 7"),
        ({**MIXED_ROW, "flag": None}, "column 'flag': missing value \\(null\\)"),
        ({**MIXED_ROW, "score": [1]}, "column 'score': expected a number, got an array"),
    ],
)
def test_each_column_kind_takes_its_json_type_only(
    client_for: ClientFor, row: dict[str, Any], message: str
) -> None:
    client = client_for(make_bundle(Columns(), MIXED, [MIXED_ROW]))
    resp = client.post("/v1/models/m:predict", json={"instances": [MIXED_ROW, row]})
    assert resp.status_code == 400
    assert re.search(f"Instance 1, {message}", error_of(resp)["message"]), resp.text


def test_an_sklearn_model_fitted_on_a_dataframe_gets_arrays_and_warns_nothing(
    cancer: LoadedBundle,
) -> None:
    served = prepare(cancer, ServingState().metrics)
    assert served.schema.frame is False  # the names-free twin agreed with the model
    assert served.schema.names == list(cancer.model.feature_names_in_)


def test_a_model_that_selects_columns_by_name_gets_a_dataframe(client_for: ClientFor) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = pd.DataFrame(
        {"size": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "city": ["a", "b", "a", "b", "a", "b"]}
    )
    y = [0, 1, 0, 1, 1, 1]
    model = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["size"]), ("cat", OneHotEncoder(), ["city"])]
        ),
        LogisticRegression(),
    ).fit(X, y)
    signature = Signature(
        (ColumnSpec("size", "float", "float64"), ColumnSpec("city", "str", "object"))
    )
    bundle = make_bundle(model, signature, X.iloc[:2].to_dict(orient="records"), flavor="sklearn")
    served = prepare(bundle, ServingState().metrics)
    assert served.schema.frame is True
    resp = client_for(bundle).post(
        "/v1/models/m:predict", json={"instances": [{"size": 1.0, "city": "a"}]}
    )
    assert resp.json()["predictions"] == model.predict(X.iloc[:1]).tolist()


# ---- readiness, swaps, metrics ----------------------------------------------------------------


def test_readiness_waits_for_the_model_and_turns_false_while_draining(
    cancer: LoadedBundle, cancer_X: pd.DataFrame
) -> None:
    state = ServingState()
    with TestClient(create_app(state)) as client:
        assert client.get("/health/live").status_code == 200
        loading = client.get("/health/ready")
        assert loading.status_code == 503
        assert loading.json()["reason"] == "loading"
        early = client.post("/v1/models/cancer:predict", json={"instances": rows_of(cancer_X)})
        assert early.status_code == 503
        assert error_of(early)["type"] == "ModelNotReadyError"
        assert client.get("/v2/health/ready").status_code == 503

        state.install(prepare(cancer, state.metrics))
        assert client.get("/health/ready").json() == {
            "ready": True,
            "model": "cancer",
            "version": 1,
        }
        state.draining = True
        draining = client.get("/health/ready")
        assert draining.status_code == 503
        assert draining.json()["reason"] == "draining"
        assert client.get("/v1/models/cancer").json()["ready"] is False
        # Draining still answers: the load balancer may not have noticed yet.
        ok = client.post("/v1/models/cancer:predict", json={"instances": rows_of(cancer_X)})
        assert ok.status_code == 200
        assert client.get("/health/live").status_code == 200


def test_an_installed_model_answers_from_the_next_request_on(
    cancer: LoadedBundle, cancer_X: pd.DataFrame
) -> None:
    from dataclasses import replace

    state = ServingState.of(cancer)
    with TestClient(create_app(state)) as client:
        body = {"instances": rows_of(cancer_X, 1)}
        assert client.post("/v1/models/cancer:predict", json=body).json()["version"] == 1
        state.install(prepare(replace(cancer, version=2), state.metrics))
        resp = client.post("/v1/models/cancer:predict", json=body)
        assert resp.json()["version"] == 2
        assert resp.headers["X-Assay-Model-Version"] == "2"
        text = client.get("/metrics").text
    assert 'assay_model_info{model="cancer",version="1"} 0.0' in text
    assert 'assay_model_info{model="cancer",version="2"} 1.0' in text
    assert summarize(text)["by_version"][2]["requests"] == 1


def test_metrics_count_requests_errors_and_latency_by_version(
    client_for: ClientFor, cancer_X: pd.DataFrame, cancer: LoadedBundle
) -> None:
    client = client_for(cancer)
    for _ in range(5):
        client.post("/v1/models/cancer:predict", json={"instances": rows_of(cancer_X)})
    client.post("/v1/models/cancer:predict", json={"instances": []})
    client.post("/v2/models/cancer/infer", json={"inputs": []})
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'assay_requests_total{code="200",model="cancer",protocol="v1",version="1"} 5.0' in text
    assert 'assay_requests_total{code="400",model="cancer",protocol="v2",version="1"} 1.0' in text
    assert 'assay_request_errors_total{kind="invalid_input",model="cancer",version="1"} 2.0' in text
    assert 'assay_request_duration_seconds_bucket{le="0.0005",model="cancer"' in text
    summary = summarize(text)
    assert (summary["requests"], summary["errors"]) == (7, 2)
    p50, p99 = summary["p50_ms"], summary["p99_ms"]
    assert p50 is not None
    assert p99 is not None
    assert 0 < p50 <= p99
    assert summary["by_version"] == {
        1: {
            "model": "cancer",
            "requests": 7,
            "errors": 2,
            "p50_ms": summary["p50_ms"],
            "p99_ms": summary["p99_ms"],
        }
    }


def test_summarize_interpolates_quantiles_within_buckets() -> None:
    text = "\n".join(
        [
            "# TYPE assay_request_duration_seconds histogram",
            'assay_request_duration_seconds_bucket{le="0.001",model="m",version="1"} 50.0',
            'assay_request_duration_seconds_bucket{le="0.002",model="m",version="1"} 90.0',
            'assay_request_duration_seconds_bucket{le="0.01",model="m",version="1"} 100.0',
            'assay_request_duration_seconds_bucket{le="+Inf",model="m",version="1"} 100.0',
            'assay_request_duration_seconds_count{model="m",version="1"} 100.0',
            'assay_request_duration_seconds_sum{model="m",version="1"} 0.2',
            'assay_request_duration_seconds_bucket{le="0.001",model="m",version="2"} 0.0',
            'assay_request_duration_seconds_bucket{le="0.002",model="m",version="2"} 0.0',
            'assay_request_duration_seconds_bucket{le="0.01",model="m",version="2"} 0.0',
            'assay_request_duration_seconds_bucket{le="+Inf",model="m",version="2"} 0.0',
            'assay_request_duration_seconds_count{model="m",version="2"} 0.0',
            'assay_request_duration_seconds_sum{model="m",version="2"} 0.0',
            "# TYPE assay_requests_total counter",
            'assay_requests_total{code="200",model="m",protocol="v1",version="1"} 97.0',
            'assay_requests_total{code="500",model="m",protocol="v1",version="1"} 3.0',
            "",
        ]
    )
    summary = summarize(text)
    assert summary["requests"] == 100
    assert summary["errors"] == 0
    assert summary["p50_ms"] == 1.0  # the 50th observation ends the first bucket
    assert summary["p99_ms"] == pytest.approx(2.0 + 8.0 * 9 / 10)
    assert summary["by_version"][2]["p50_ms"] is None  # no traffic yet
    assert summarize("") == {
        "requests": 0,
        "errors": 0,
        "p50_ms": None,
        "p99_ms": None,
        "by_version": {},
    }


def test_concurrent_requests_share_the_predict_threads(
    cancer_client: TestClient, cancer: LoadedBundle, cancer_X: pd.DataFrame
) -> None:
    expected = cancer.model.predict(cancer_X.iloc[:2]).tolist()
    bad: list[str] = []

    def send() -> None:
        for _ in range(20):
            resp = cancer_client.post(
                "/v1/models/cancer:predict", json={"instances": rows_of(cancer_X)}
            )
            if resp.status_code != 200 or resp.json()["predictions"] != expected:
                bad.append(resp.text)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert bad == []


# ---- start-up cost ---------------------------------------------------------------------------


def test_the_app_loads_no_control_plane_code() -> None:
    # What a worker imports before its first request (pandas comes later, and only for
    # a model that takes DataFrames).
    code = (
        "import sys, assay.serving.app, assay.serving.worker, assay.registry.bundle\n"
        "heavy = ('sqlalchemy', 'typer', 'rich', 'fastapi', 'pandas', 'alembic', "
        "'assay.workspace', 'assay.runs', 'assay.data', 'assay.pipelines', 'assay.store.db')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or "
        "any(m == h or m.startswith(h + '.') for h in heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_a_model_whose_example_fails_does_not_load(client_for: ClientFor) -> None:
    bundle = make_bundle(Exploding(), TWO, [[-1.0, 2.0]])
    with pytest.raises(ModelError, match="cannot take a negative a"):
        prepare(bundle, ServingState().metrics)


def test_untyped_models_take_arrays_as_sent(client_for: ClientFor) -> None:
    client = client_for(make_bundle(Exploding(), None, [[1.0, 2.0]]))
    resp = client.post("/v1/models/m:predict", json={"instances": [[4, 0, 0]]})
    assert resp.json()["predictions"] == [8.0]
    refused = client.post("/v1/models/m:predict", json={"instances": [{"a": 1}]})
    assert refused.status_code == 400
    assert "no signature" in error_of(refused)["message"]
