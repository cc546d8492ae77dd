"""The clients people already have, as they run them, against a real service process on
loopback: Triton's `tritonclient.http` (binary tensor data by default, and JSON) and the
KServe SDK's `InferenceRESTClient` (V1 and V2)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from .test_worker import Service

pytestmark = pytest.mark.timeout(180)

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray[Any, Any], list[int]]:
    """iris@1 as a stored bundle, five rows of its data and what the model predicts for them."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from assay.registry.bundle import write_bundle
    from assay.registry.signature import infer_signature

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    signature, example = infer_signature(X, model)
    folder = tmp_path_factory.mktemp("bundles") / "iris-1"
    write_bundle(
        model,
        folder,
        name="iris",
        version=1,
        signature=signature,
        input_example=example,
        lineage={},
        metrics={},
    )
    rows = X.iloc[[0, 50, 100, 120, 140]]
    return folder, rows.to_numpy(), model.predict(rows).tolist()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, iris: tuple[Path, Any, Any]) -> Iterator[str]:
    """One service process for the module: every client here talks to it."""
    root = tmp_path_factory.mktemp("conformance")
    service = Service(root / "svc", root)
    try:
        service.start(iris[0], "iris", drain_s=0.1)
        yield service.url
    finally:
        service.kill()
        for worker in service.workers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker["pid"], signal.SIGKILL)


# ---- tritonclient -------------------------------------------------------------------------------


def test_tritonclient_infers_with_its_defaults_binary_and_json(
    url: str, iris: tuple[Path, np.ndarray[Any, Any], list[int]]
) -> None:
    import tritonclient.http as triton

    _, rows, expected = iris
    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("iris")
        assert client.is_model_ready("iris", "1")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        meta = client.get_model_metadata("iris")
        assert meta["name"] == "iris"
        assert [i["name"] for i in meta["inputs"]] == COLUMNS

        # The defaults: binary input, and (no outputs named) every output binary.
        x = triton.InferInput("x", list(rows.shape), "FP32")
        x.set_data_from_numpy(rows.astype(np.float32))
        result = client.infer("iris", [x])
        assert result.as_numpy("predict").tolist() == expected
        assert result.get_output("predict")["parameters"]["binary_data_size"] == 5 * 8

        # Named outputs, one binary and one JSON, on the version's own path.
        result = client.infer(
            "iris",
            [x],
            model_version="1",
            request_id="r-1",
            outputs=[
                triton.InferRequestedOutput("predict"),
                triton.InferRequestedOutput("predict_proba", binary_data=False),
            ],
        )
        assert result.get_response()["id"] == "r-1"
        proba = result.as_numpy("predict_proba")
        assert proba.shape == (5, 3)
        assert proba.argmax(axis=1).tolist() == expected
        assert "data" in result.get_output("predict_proba")

        # JSON all the way, one FP64 tensor per column.
        columns = []
        for k, name in enumerate(COLUMNS):
            column = triton.InferInput(name, [len(rows)], "FP64")
            column.set_data_from_numpy(rows[:, k].copy(), binary_data=False)
            columns.append(column)
        result = client.infer(
            "iris", columns, outputs=[triton.InferRequestedOutput("predict", binary_data=False)]
        )
        assert result.as_numpy("predict").tolist() == expected

        # A refusal reaches the client as the protocol's error string.
        short = triton.InferInput("x", [1, 3], "FP32")
        short.set_data_from_numpy(rows[:1, :3].astype(np.float32))
        with pytest.raises(triton.InferenceServerException) as refused:
            client.infer("iris", [short])
        assert refused.value.status() == "400"
        assert refused.value.message().startswith("Tensor 'x' has shape [1, 3]")
        with pytest.raises(triton.InferenceServerException) as missing:
            client.get_model_metadata("churn")
        assert missing.value.status() == "404"
        assert "Model 'churn' is not served here" in missing.value.message()
    finally:
        client.close()


# ---- the KServe SDK -------------------------------------------------------------------------


def test_the_kserve_sdk_predicts_over_v1_and_checks_liveness(
    url: str, iris: tuple[Path, np.ndarray[Any, Any], list[int]]
) -> None:
    from kserve import InferenceRESTClient, RESTConfig

    _, rows, expected = iris
    columns = {name: rows[:, k].tolist() for k, name in enumerate(COLUMNS)}

    async def run() -> None:
        client = InferenceRESTClient(RESTConfig(protocol="v1"))
        try:
            assert await client.is_server_live(url) is True
            assert await client.is_model_ready(url, "iris") is True
            for body in (
                {"instances": rows.tolist()},
                {"inputs": rows.tolist()},
                {"inputs": columns},
                {"inputs": [dict(zip(COLUMNS, row, strict=True)) for row in rows.tolist()]},
            ):
                answer = await client.infer(url, body, model_name="iris")
                assert answer["predictions"] == expected, body
            with pytest.raises(httpx.HTTPStatusError, match="has 3 values; the model takes 4"):
                await client.infer(url, {"inputs": [[1.0, 2.0, 3.0]]}, model_name="iris")
        finally:
            await client.close()

    asyncio.run(run())


def test_the_kserve_sdk_infers_over_v2_binary_and_json(
    url: str, iris: tuple[Path, np.ndarray[Any, Any], list[int]]
) -> None:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput

    _, rows, expected = iris

    async def run() -> None:
        client = InferenceRESTClient(RESTConfig(protocol="v2"))
        try:
            assert await client.is_server_live(url) is True
            assert await client.is_server_ready(url) is True
            assert await client.is_model_ready(url, "iris") is True
            for binary in (True, False):
                x = InferInput("x", list(rows.shape), "FP64")
                x.set_data_from_numpy(rows, binary_data=binary)
                request = InferRequest(
                    model_name="iris",
                    infer_inputs=[x],
                    request_id="k-1",
                    request_outputs=[
                        RequestedOutput("predict", parameters={"binary_data": binary}),
                        RequestedOutput("predict_proba", parameters={"binary_data": binary}),
                    ],
                )
                answer = await client.infer(url, request, model_name="iris")
                assert (answer.model_name, answer.id) == ("iris", "k-1")
                predict, proba = answer.outputs
                assert predict.as_numpy().tolist() == expected, binary
                assert proba.as_numpy().shape == (5, 3)
            x = InferInput("x", [1, 4], "UINT8")
            x.data = [1, 2, 3, 300]  # what the client would send for a mislabelled tensor
            with pytest.raises(httpx.HTTPStatusError, match="outside UINT8's range 0 to 255"):
                await client.infer(url, InferRequest("iris", [x]), model_name="iris")
        finally:
            await client.close()

    asyncio.run(run())
