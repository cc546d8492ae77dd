"""Open Inference Protocol V2 tensors: datatypes checked, binary data read and written."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

from assay.errors import InvalidArgumentError
from assay.registry.entities import ColumnSpec, Signature
from assay.serving.inputs import InputSchema
from assay.serving.tensors import binary_of, read_binary, read_inputs, v2_input

from .conftest import floats

XY = Signature(floats("x", "y"))


def tensor(name: str, shape: list[int], datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def binary_request(*tensors: tuple[str, np.ndarray[Any, Any], str]) -> tuple[bytes, int]:
    """A body as tritonclient sends it: JSON, then each tensor's bytes; and the JSON's length."""
    inputs, blobs = [], []
    for name, arr, datatype in tensors:
        blob = binary_of(arr, datatype)
        inputs.append(
            {
                "name": name,
                "shape": list(arr.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    head = json.dumps({"inputs": inputs}).encode()
    return head + b"".join(blobs), len(head)


def from_body(schema: InputSchema, body: bytes, json_length: int) -> Any:
    inputs = json.loads(body[:json_length])["inputs"]
    return v2_input(schema, read_inputs(inputs, body, json_length))


def test_column_tensors_become_rows_in_signature_order() -> None:
    schema = InputSchema(XY, "m")
    X = v2_input(
        schema,
        read_inputs(
            [
                tensor("y", [2, 1], "INT64", [[3], [4]]),
                tensor("x", [2], "FP32", [1, 2]),
            ]
        ),
    )
    assert X.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    matrix = v2_input(schema, read_inputs([tensor("in", [2, 2], "FP64", [1, 2, 3, 4])]))
    assert matrix.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    ("datatype", "data", "value", "why"),
    [
        ("UINT8", [1, 300], "integer 300", "outside UINT8's range 0 to 255"),
        ("UINT16", [2, -1], "integer -1", "outside UINT16's range 0 to 65535"),
        ("INT8", [5, -129], "integer -129", "outside INT8's range -128 to 127"),
        ("INT64", [1, 0.09], "number 0.09", "which is not an integer"),
        ("INT32", [1, True], "boolean True", "which is not an integer"),
        ("BOOL", [True, 2], "integer 2", "which is not true or false"),
        ("BYTES", ["a", 3], "integer 3", "which is not a string"),
        ("FP64", [1.5, "2"], "string '2'", "which is not a number"),
        ("FP32", [1.5, 1e39], "number 1e+39", "outside FP32's range of ±3.4028235e+38"),
        ("FP16", [1, 70000], "integer 70000", "outside FP16's range of ±65504"),
        ("FP64", [1, 10**400], "integer 1000", "outside FP64's range"),
    ],
)
def test_a_value_that_its_datatype_cannot_hold_is_refused_naming_it(
    datatype: str, data: list[Any], value: str, why: str
) -> None:
    schema = InputSchema(XY, "m")
    with pytest.raises(InvalidArgumentError) as caught:
        v2_input(schema, read_inputs([tensor("in", [1, 2], datatype, data)]))
    message = str(caught.value)
    assert message.startswith(f"Tensor 'in' is {datatype}, but it holds {value}"), message
    assert f"at [0, 1] (row 0, column 'y'), {why}" in message, message
    assert caught.value.details == {"tensor": "in", "datatype": datatype, "index": [0, 1]}


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("UINT8", [0, 255]),
        ("INT64", [-(2**63), 2**63 - 1]),
        ("INT8", [None, -128]),  # null is a missing value: the column decides (below)
        ("FP32", [1, 3.4e38]),
        ("FP16", [65504, -65504.0]),
        ("FP64", [1, 2.5]),
    ],
)
def test_values_that_fit_their_datatype_pass(datatype: str, data: list[Any]) -> None:
    schema = InputSchema(Signature(floats("x", "y", nullable=True)), "m")
    X = v2_input(schema, read_inputs([tensor("in", [1, 2], datatype, data)]))
    assert X.shape == (1, 2)


def test_bool_and_bytes_columns_take_their_datatypes_values() -> None:
    sig = Signature((ColumnSpec("flag", "bool", "bool"), ColumnSpec("city", "str", "object")))
    schema = InputSchema(sig, "m")
    X = v2_input(
        schema,
        read_inputs(
            [
                tensor("flag", [2], "BOOL", [True, False]),
                tensor("city", [2], "BYTES", ["Oslo", "Lima"]),
            ]
        ),
    )
    assert X.tolist() == [[True, "Oslo"], [False, "Lima"]]
    with pytest.raises(InvalidArgumentError, match="Tensor 'flag' is BOOL, but it holds integer 1"):
        v2_input(
            schema,
            read_inputs([tensor("flag", [1], "BOOL", [1]), tensor("city", [1], "BYTES", ["x"])]),
        )


def test_the_shape_must_hold_as_many_values_as_the_data() -> None:
    with pytest.raises(InvalidArgumentError, match=r"shape \[2, 2\] holds 4 values but data has 3"):
        read_inputs([tensor("in", [2, 2], "FP64", [1.0, 2.0, 3.0])])
    # Nested data counts its leaves, however deep.
    [t] = read_inputs([tensor("in", [1, 2, 2], "FP64", [[[1, 2], [3, 4]]])])
    assert t.data == [1, 2, 3, 4]


# ---- binary tensor data -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arr", "datatype"),
    [
        (np.array([[1.5, -2.0], [3.25, 1e300]]), "FP64"),
        (np.array([1.5, -2.0], dtype=np.float32), "FP32"),
        (np.array([0.5, 2.0], dtype=np.float16), "FP16"),
        (np.array([[1, -(2**63)]], dtype=np.int64), "INT64"),
        (np.array([0, 255], dtype=np.uint8), "UINT8"),
        (np.array([True, False, True]), "BOOL"),
        (np.array(["Oslo", "", "Zürich"], dtype=object), "BYTES"),
    ],
)
def test_binary_data_reads_back_what_was_written(arr: np.ndarray[Any, Any], datatype: str) -> None:
    blob = binary_of(arr, datatype)
    body = b"{json}" + blob
    back = read_binary("t", datatype, list(arr.shape), body, 6, len(blob))
    assert back.tolist() == arr.reshape(-1).tolist()


def test_bytes_binary_data_is_each_elements_length_then_its_bytes() -> None:
    blob = binary_of(np.array(["ab", "Zü"], dtype=object), "BYTES")
    assert blob == struct.pack("<I", 2) + b"ab" + struct.pack("<I", 3) + "Zü".encode()


def test_binary_fp64_rows_reach_the_model_without_a_copy() -> None:
    rows = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    body, json_length = binary_request(("in", rows, "FP64"))
    X = from_body(InputSchema(XY, "m"), body, json_length)
    assert X.tolist() == rows.tolist()
    assert X.dtype == np.float64
    assert np.shares_memory(X, np.frombuffer(body, np.uint8))


def test_binary_columns_of_any_number_type_become_one_float_matrix() -> None:
    body, json_length = binary_request(
        ("y", np.array([3, 4], dtype=np.int32), "INT32"),
        ("x", np.array([[0.5], [1.5]], dtype=np.float32), "FP32"),
    )
    X = from_body(InputSchema(XY, "m"), body, json_length)
    assert X.tolist() == [[0.5, 3.0], [1.5, 4.0]]
    assert X.dtype == np.float64


def test_binary_values_are_checked_against_the_columns_as_json_ones_are() -> None:
    ints = Signature((ColumnSpec("n", "int", "int64"), ColumnSpec("m", "int", "int64")))
    body, json_length = binary_request(("in", np.array([[1.0, 2.5]]), "FP64"))
    with pytest.raises(InvalidArgumentError, match="Row 0, column 'm': expected an integer"):
        from_body(InputSchema(ints, "m"), body, json_length)
    body, json_length = binary_request(("in", np.array([[1.0, np.nan]]), "FP64"))
    with pytest.raises(InvalidArgumentError, match=r"column 'y': missing value \(NaN\)"):
        from_body(InputSchema(XY, "m"), body, json_length)


def test_malformed_binary_data_is_refused_naming_the_tensor() -> None:
    head = {"name": "in", "shape": [1, 2], "datatype": "FP32"}
    cases: list[tuple[dict[str, Any], bytes | None, str]] = [
        ({**head, "parameters": {"binary_data_size": 6}}, b"\0" * 6, "takes 8 bytes"),
        ({**head, "parameters": {"binary_data_size": 8}}, b"\0" * 4, "only 4 are left"),
        ({**head, "parameters": {"binary_data_size": 8}}, b"\0" * 12, "4 bytes after"),
        ({**head, "parameters": {"binary_data_size": 8}}, None, "no Inference-Header"),
        ({**head, "parameters": {"binary_data_size": "8"}}, b"\0" * 8, "non-negative integer"),
        (
            {**head, "parameters": {"binary_data_size": 8}, "data": [1, 2]},
            b"\0" * 8,
            "both 'data' and parameters.binary_data_size",
        ),
        ({**head, "datatype": "BOOL", "parameters": {"binary_data_size": 2}}, b"\1\2", "is 2"),
        (
            {**head, "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}},
            struct.pack("<I", 5) + b"ab",
            "says it has 5 bytes",
        ),
        (
            {**head, "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}},
            struct.pack("<I", 2) + b"\xff\xfe",
            "not UTF-8",
        ),
        (
            {**head, "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 6}},
            struct.pack("<I", 2) + b"ab",
            r"shape \[2\] holds 2 values but its binary data has 1",
        ),
    ]
    for t, data, message in cases:
        body = None if data is None else b"{}" + data
        with pytest.raises(InvalidArgumentError, match=message):
            read_inputs([t], body, 2)
