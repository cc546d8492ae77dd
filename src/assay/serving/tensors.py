"""Open Inference Protocol V2 tensors: a request's inputs checked against their declared
datatype and shape and turned into the model's input, and outputs as binary data.

Tensor data comes as JSON (`"data"`, flat in row-major order or nested by the shape) or,
with the binary tensor data extension that Triton and KServe implement, as raw bytes
after the JSON. A request with an `Inference-Header-Content-Length` header carries that
many bytes of JSON, then the data of each input whose `parameters.binary_data_size` is
set, in the order of `inputs`: little-endian and row-major, BOOL one byte each, BYTES
each element a 4-byte little-endian length and its bytes. Binary numbers reach the model
through `np.frombuffer`: no per-value walk, and no copy at all for FP64.

A JSON value must fit its tensor's datatype: 300 is no UINT8, 0.09 no INT64, 2 no BOOL.
`null` passes here as a missing value; the column's own check decides whether the model
takes one.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from assay.errors import InvalidArgumentError
from assay.serving.inputs import EXPECTED, InputSchema, described, json_type

__all__ = [
    "DATATYPES",
    "Tensor",
    "binary_of",
    "check_values",
    "datatype_of",
    "read_binary",
    "read_inputs",
    "v2_input",
]

# Each datatype's numpy dtype, little-endian as the binary extension sends it.
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_INTEGERS = {
    name: (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
    for name, dt in DATATYPES.items()
    if dt.kind in "iu"
}
_FLOATS = {name: float(np.finfo(dt).max) for name, dt in DATATYPES.items() if dt.kind == "f"}
_NUMERIC = frozenset(_INTEGERS) | frozenset(_FLOATS)
# The datatypes a column of each kind may be sent as.
_KINDS: dict[str, frozenset[str]] = {
    "float": _NUMERIC,
    "int": _NUMERIC,
    "bool": frozenset(("BOOL",)),
    "str": frozenset(("BYTES",)),
}
_NONE: type = type(None)
_INT_VALUES: frozenset[type] = frozenset((int, _NONE))
_FLOAT_VALUES: frozenset[type] = frozenset((int, float, _NONE))
_NUMBERS: frozenset[type] = frozenset((int, float))
_JSON_VALUES: dict[str, frozenset[type]] = {
    "BOOL": frozenset((bool, _NONE)),
    "BYTES": frozenset((str, _NONE)),
    **dict.fromkeys(_INTEGERS, _INT_VALUES),
    **dict.fromkeys(_FLOATS, _FLOAT_VALUES),
}
_WANTED = {"BOOL": "true or false", "BYTES": "strings"} | dict.fromkeys(_INTEGERS, "integers")
_LENGTH = struct.Struct("<I")


@dataclass(slots=True)
class Tensor:
    """One input tensor, its values flat in row-major order: JSON values in `data`, or
    binary ones in `array`."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    array: np.ndarray[Any, Any] | None = None

    def values(self) -> list[Any]:
        """The values as Python objects, wherever they came from."""
        if self.data is not None:
            return self.data
        assert self.array is not None
        values: list[Any] = self.array.tolist()
        return values


# ---- reading a request ------------------------------------------------------------------------


def read_inputs(inputs: Any, body: bytes | None = None, offset: int = 0) -> list[Tensor]:
    """The tensors of a V2 request's `inputs`. `body` is the whole request body when
    binary data follows its first `offset` bytes of JSON (else None).

    Raises:
        InvalidArgumentError: naming the tensor and the problem.
    """
    if not isinstance(inputs, list) or not inputs:
        raise InvalidArgumentError(
            "'inputs' must be a non-empty list of tensors "
            '({"name", "shape", "datatype", "data"}).',
            field="inputs",
        )
    tensors = []
    cursor = offset
    for k, t in enumerate(inputs):
        tensor, cursor = _tensor(t, k, body, cursor)
        tensors.append(tensor)
    if body is not None and cursor != len(body):
        raise InvalidArgumentError(
            f"The body has {len(body) - cursor} bytes after the inputs' binary data (their "
            f"binary_data_size add up to {cursor - offset}); check each input's "
            "binary_data_size and the Inference-Header-Content-Length header.",
            field="binary_data_size",
        )
    return tensors


def _tensor(t: Any, k: int, body: bytes | None, cursor: int) -> tuple[Tensor, int]:
    if not isinstance(t, dict):
        raise InvalidArgumentError(
            f"inputs[{k}] must be a tensor object, not {json_type(t)}.", field=f"inputs[{k}]"
        )
    for key in ("name", "shape", "datatype"):
        if key not in t:
            raise InvalidArgumentError(
                f"inputs[{k}] has no {key!r}; a tensor needs name, shape, datatype and data.",
                field=f"inputs[{k}].{key}",
            )
    name, shape, datatype = t["name"], t["shape"], t["datatype"]
    if not isinstance(name, str):
        raise InvalidArgumentError(f"inputs[{k}].name must be a string.", field=f"inputs[{k}].name")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise InvalidArgumentError(
            f"Tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}.",
            tensor=name,
        )
    if datatype not in DATATYPES:
        raise InvalidArgumentError(
            f"Tensor {name!r}: unknown datatype {datatype!r}; use one of "
            f"{', '.join(sorted(DATATYPES))}.",
            tensor=name,
        )
    params = t.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise InvalidArgumentError(
            f"Tensor {name!r}: parameters must be an object, not {json_type(params)}.",
            tensor=name,
        )
    nbytes = params.get("binary_data_size") if params else None
    if nbytes is None:
        if "data" not in t:
            raise InvalidArgumentError(
                f"inputs[{k}] has no 'data'; a tensor needs name, shape, datatype and data "
                "(or parameters.binary_data_size, with its values after the JSON).",
                field=f"inputs[{k}].data",
            )
        return Tensor(name, shape, datatype, data=_json_data(name, t["data"], shape)), cursor
    if "data" in t:
        raise InvalidArgumentError(
            f"Tensor {name!r} has both 'data' and parameters.binary_data_size; send its "
            "values one way.",
            tensor=name,
        )
    if type(nbytes) is not int or nbytes < 0:
        raise InvalidArgumentError(
            f"Tensor {name!r}: binary_data_size must be a non-negative integer, got {nbytes!r}.",
            tensor=name,
        )
    if body is None:
        raise InvalidArgumentError(
            f"Tensor {name!r} has binary data (binary_data_size), but the request has no "
            "Inference-Header-Content-Length header saying where its JSON ends; send the "
            "header, or the values as 'data'.",
            tensor=name,
        )
    end = cursor + nbytes
    if end > len(body):
        raise InvalidArgumentError(
            f"Tensor {name!r}: binary_data_size is {nbytes} bytes but only "
            f"{len(body) - cursor} are left in the body; check each input's binary_data_size.",
            tensor=name,
        )
    return Tensor(
        name, shape, datatype, array=read_binary(name, datatype, shape, body, cursor, nbytes)
    ), end


def _json_data(name: str, data: Any, shape: list[int]) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidArgumentError(
            f"Tensor {name!r}: data must be an array, not {json_type(data)}.", tensor=name
        )
    values: list[Any] = _flatten(data) if data and isinstance(data[0], list) else data
    size = math.prod(shape)
    if len(values) != size:
        raise InvalidArgumentError(
            f"Tensor {name!r}: shape {shape} holds {size} values but data has {len(values)}.",
            tensor=name,
            shape=shape,
            got=len(values),
        )
    return values


def _flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(_flatten(v))
        else:
            out.append(v)
    return out


def read_binary(
    name: str, datatype: str, shape: list[int], body: bytes, offset: int, nbytes: int
) -> np.ndarray[Any, Any]:
    """The `nbytes` of binary tensor data at `offset` in `body` as a flat array: a view
    of the body for numbers, an object array of strings for BYTES.

    Raises:
        InvalidArgumentError: the size does not fit the shape, a BOOL byte is neither 0
            nor 1, or a BYTES element is malformed or not UTF-8.
    """
    count = math.prod(shape)
    if datatype == "BYTES":
        return _bytes_elements(name, shape, body, offset, nbytes, count)
    dtype = DATATYPES[datatype]
    if nbytes != count * dtype.itemsize:
        raise InvalidArgumentError(
            f"Tensor {name!r}: shape {shape} of {datatype} takes {count * dtype.itemsize} "
            f"bytes, but binary_data_size is {nbytes}.",
            tensor=name,
            shape=shape,
            binary_data_size=nbytes,
        )
    if count == 0:
        return np.empty(0, dtype)
    array = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    if datatype == "BOOL":
        raw = array.view(np.uint8)
        bad = np.flatnonzero(raw > 1)
        if len(bad):
            i = int(bad[0])
            raise InvalidArgumentError(
                f"Tensor {name!r} is BOOL, but byte {i} of its binary data is {raw[i]}, not "
                "0 (false) or 1 (true).",
                tensor=name,
                datatype=datatype,
                index=_index(i, shape),
            )
    return array


def _bytes_elements(
    name: str, shape: list[int], body: bytes, offset: int, nbytes: int, count: int
) -> np.ndarray[Any, Any]:
    view = memoryview(body)[offset : offset + nbytes]
    out: list[str] = []
    pos = 0
    while pos < nbytes:
        if pos + 4 > nbytes:
            raise InvalidArgumentError(
                f"Tensor {name!r}: its BYTES data ends inside element {len(out)}'s 4-byte "
                "length; check its binary_data_size.",
                tensor=name,
            )
        (length,) = _LENGTH.unpack_from(view, pos)
        pos += 4
        if pos + length > nbytes:
            raise InvalidArgumentError(
                f"Tensor {name!r}: BYTES element {len(out)} says it has {length} bytes but "
                f"only {nbytes - pos} are left; check its binary_data_size.",
                tensor=name,
            )
        try:
            out.append(str(view[pos : pos + length], "utf-8"))
        except UnicodeDecodeError:
            raise InvalidArgumentError(
                f"Tensor {name!r}: BYTES element {len(out)} is not UTF-8 text; the model "
                "takes text.",
                tensor=name,
            ) from None
        pos += length
    if len(out) != count:
        raise InvalidArgumentError(
            f"Tensor {name!r}: shape {shape} holds {count} values but its binary data has "
            f"{len(out)}.",
            tensor=name,
            shape=shape,
            got=len(out),
        )
    array = np.empty(count, dtype=object)
    array[:] = out
    return array


# ---- datatypes --------------------------------------------------------------------------------


def check_values(tensor: Tensor, columns: Sequence[str] | None = None) -> frozenset[type]:
    """Refuse a JSON value that the tensor's datatype cannot hold: 300 in UINT8, 0.09 in
    INT64, 2 in BOOL, a number in BYTES, 1e39 in FP32. `columns` names the columns of a
    tensor of shape [N, F], for the message. Binary data holds its datatype by
    construction (BOOL bytes are checked as they are read).

    Returns the types of the JSON values (none for binary data), which the caller may
    use to take a faster path.

    Raises:
        InvalidArgumentError: naming the tensor, its datatype, the value and its index.
    """
    data = tensor.data
    if not data:
        return frozenset()
    datatype = tensor.datatype
    types = frozenset(map(type, data))
    if types <= _JSON_VALUES[datatype]:
        if datatype in _INTEGERS:
            lo, hi = _INTEGERS[datatype]
            values = [v for v in data if v is not None] if _NONE in types else data
            if not values or (lo <= min(values) and max(values) <= hi):
                return types
        elif datatype in _FLOATS:
            if datatype == "FP64" and int not in types:
                return types  # every JSON float is an FP64
            values = [v for v in data if v is not None] if _NONE in types else data
            try:
                floats = np.asarray(values, dtype=np.float64)
            except OverflowError:  # an integer past float64: the walk below says which
                pass
            else:
                with np.errstate(invalid="ignore"):
                    if not (np.abs(floats) > _FLOATS[datatype]).any():
                        return types  # (inf and NaN pass: each datatype has them)
        else:
            return types
    _refuse(tensor, columns)


def _refuse(tensor: Tensor, columns: Sequence[str] | None) -> NoReturn:
    datatype = tensor.datatype
    assert tensor.data is not None
    for i, value in enumerate(tensor.data):
        why = _misfit(datatype, value)
        if why is None:
            continue
        index = _index(i, tensor.shape)
        where = f"at {index}"
        if columns and len(tensor.shape) == 2:
            where += f" (row {index[0]}, column {columns[index[1]]!r})"
        if why.startswith("outside"):
            fix = f"send values that fit {datatype}, or declare a wider datatype"
        else:
            fix = f"send {_WANTED.get(datatype, 'numbers')}, or declare the values' datatype"
        raise InvalidArgumentError(
            f"Tensor {tensor.name!r} is {datatype}, but it holds {described(value)} {where}, "
            f"{why}; {fix}.",
            tensor=tensor.name,
            datatype=datatype,
            index=index,
        )
    raise AssertionError("check_values found a misfit that _refuse did not")


def _misfit(datatype: str, value: Any) -> str | None:
    """Why `value` does not fit `datatype`, or None when it does."""
    kind = type(value)
    if value is None:
        return None
    if datatype == "BOOL":
        return None if kind is bool else "which is not true or false"
    if datatype == "BYTES":
        return None if kind is str else "which is not a string"
    if datatype in _INTEGERS:
        if kind is not int:
            return "which is not an integer"
        lo, hi = _INTEGERS[datatype]
        return None if lo <= value <= hi else f"outside {datatype}'s range {lo} to {hi}"
    if kind is not int and kind is not float:
        return "which is not a number"
    limit = _FLOATS[datatype]
    if kind is float and not math.isfinite(value):
        return None
    return None if abs(value) <= limit else f"outside {datatype}'s range of ±{limit:.8g}"


def _index(i: int, shape: list[int]) -> list[int]:
    return [int(d) for d in np.unravel_index(i, shape)] if shape else [i]


# ---- the model's input ------------------------------------------------------------------------


def v2_input(schema: InputSchema, tensors: list[Tensor]) -> Any:
    """The model's input from V2 tensors: one tensor of shape [N, F] in column order, or
    one tensor per column, named after it, of shape [N] or [N, 1].

    Raises:
        InvalidArgumentError: naming the tensor, the row, the column and the problem.
    """
    if len(tensors) == 1 and _is_matrix(schema, tensors[0]):
        return _matrix_input(schema, tensors[0])
    return _column_input(schema, tensors)


def _is_matrix(schema: InputSchema, tensor: Tensor) -> bool:
    if schema.signature is None:
        return True
    shape = tensor.shape
    if len(shape) == 2 and shape[1] == schema.width and schema.width > 1:
        return True
    return tensor.name not in schema.index


def _matrix_input(schema: InputSchema, tensor: Tensor) -> Any:
    name, shape = tensor.name, tensor.shape
    typed = schema.signature is not None
    width = schema.width if typed else shape[-1]
    if len(shape) != 2 or shape[1] != width:
        raise InvalidArgumentError(
            f"Tensor {name!r} has shape {shape}; send one tensor of shape [N, {width}] "
            f"(columns in signature order), or one tensor per column named after it "
            f"({schema.hint}).",
            tensor=name,
            shape=shape,
        )
    n = shape[0]
    if n == 0:
        raise InvalidArgumentError(f"Tensor {name!r} has no rows; send at least one.")
    types = check_values(tensor, schema.names if typed else None)
    if tensor.array is not None:
        return schema.convert_array(tensor.array.reshape(n, width))
    flat = tensor.values()
    if schema.numeric and types <= _NUMBERS:
        # Numbers that fit their datatype fit a float64 matrix: one flat conversion, the
        # value checks after it only when something is off (a NaN, a fraction for an int).
        return schema.convert_array(np.array(flat, dtype=np.float64).reshape(n, width))
    return schema.convert([flat[i * width : (i + 1) * width] for i in range(n)], noun="row")


def _column_input(schema: InputSchema, tensors: list[Tensor]) -> Any:
    columns: dict[str, Tensor] = {}
    n: int | None = None
    for tensor in tensors:
        name, shape, datatype = tensor.name, tensor.shape, tensor.datatype
        if name not in schema.index:
            raise InvalidArgumentError(
                f"Tensor {name!r} is not a column the model takes; name each tensor after a "
                f"column ({schema.hint}), or send one tensor of shape [N, {schema.width}].",
                tensor=name,
            )
        if name in columns:
            raise InvalidArgumentError(f"Tensor {name!r} is sent twice.", tensor=name)
        kind = schema.kinds[schema.index[name]]
        allowed = _KINDS.get(kind, _KINDS["str"])
        if datatype not in allowed:
            raise InvalidArgumentError(
                f"Tensor {name!r} is {datatype}, but column {name!r} holds {EXPECTED[kind]}; "
                f"send it as {' or '.join(sorted(allowed))[:60]}.",
                tensor=name,
                datatype=datatype,
                expected=kind,
            )
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise InvalidArgumentError(
                f"Tensor {name!r} has shape {shape}; a column's tensor has shape [N] or [N, 1].",
                tensor=name,
                shape=shape,
            )
        if n is None:
            n = shape[0]
        elif shape[0] != n:
            raise InvalidArgumentError(
                f"Tensor {name!r} has {shape[0]} rows but the first tensor has {n}; send "
                "every column with the same number of rows.",
                tensor=name,
            )
        check_values(tensor)
        columns[name] = tensor
    missing = [c for c in schema.names if c not in columns]
    if missing:
        raise InvalidArgumentError(
            f"No tensor for column {missing[0]!r}"
            + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
            + f"; send one tensor per column ({schema.hint}).",
            column=missing[0],
            missing=missing,
        )
    if not n:
        raise InvalidArgumentError("The tensors have no rows; send at least one.")
    ordered = [columns[c] for c in schema.names]
    arrays = [t.array for t in ordered if t.array is not None and t.array.dtype.kind in "fiu"]
    if schema.numeric and len(arrays) == len(ordered):
        return schema.convert_array(np.column_stack(arrays))
    values = [t.values() for t in ordered]
    return schema.convert([list(row) for row in zip(*values, strict=True)], noun="row")


# ---- outputs ----------------------------------------------------------------------------------


def datatype_of(arr: np.ndarray[Any, Any]) -> str:
    """The V2 datatype of an array's values."""
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f":
        return {2: "FP16", 4: "FP32"}.get(size, "FP64")
    if kind == "i":
        return f"INT{size * 8}"
    if kind == "u":
        return f"UINT{size * 8}"
    if kind == "b":
        return "BOOL"
    return "BYTES"


def binary_of(arr: np.ndarray[Any, Any], datatype: str) -> bytes:
    """`arr`'s values as the binary extension sends them: little-endian and row-major,
    BOOL one byte each, BYTES each element's UTF-8 bytes after its 4-byte length."""
    if datatype != "BYTES":
        return np.ascontiguousarray(arr, dtype=DATATYPES[datatype]).tobytes()
    parts: list[bytes] = []
    for value in arr.reshape(-1).tolist():
        raw = value if isinstance(value, bytes) else str(value).encode()
        parts.append(_LENGTH.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)
