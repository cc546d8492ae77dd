"""Requests' rows, checked against the model's signature and turned into what it takes.

A request is refused here, before the model sees it, with a message that names the row,
the column and the problem. The common case (every column a number) stays cheap: one
list comprehension puts the values in signature order, one `set(map(type, ...))` checks
their JSON types, and numpy checks for NaN; the per-value walk that finds *which* value
is wrong only runs once something is.

pandas is imported only for a model that needs a DataFrame.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from assay.errors import InvalidArgumentError
from assay.registry.entities import ColumnSpec, Signature

__all__ = [
    "EXPECTED",
    "InputSchema",
    "described",
    "json_type",
    "twin_agrees",
    "without_feature_names",
]

# JSON value types each column kind accepts (bool is not an int, though Python says so).
_NUMBER = frozenset((int, float))
_ACCEPTS: dict[str, frozenset[type]] = {
    "float": _NUMBER,
    "int": _NUMBER,  # a float is checked to be integral
    "bool": frozenset((bool,)),
    "str": frozenset((str,)),
}
EXPECTED = {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string"}
_JSON_NAMES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    list: "array",
    dict: "object",
}

_FLOAT_MAX = int(np.finfo(np.float64).max)


def _json_name(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def json_type(value: Any) -> str:
    """What `value` is in JSON's words, with its article: "an array", "a string", "null"."""
    name = _json_name(value)
    if name == "null":
        return name
    return ("an " if name[0] in "aeiou" else "a ") + name


def described(value: Any) -> str:
    """A value for an error message: its JSON type and, for a scalar, the value itself."""
    if value is None or isinstance(value, dict | list):
        return json_type(value)
    text = repr(value)
    return f"{_json_name(value)} {text if len(text) <= 40 else text[:37] + '...'}"


class InputSchema:
    """A model's input columns, and how rows in a request become its input.

    `order` is the column order the model takes (a fitted sklearn model's
    `feature_names_in_`); it defaults to the signature's. `frame` asks for a pandas
    DataFrame rather than a numpy array.
    """

    def __init__(
        self,
        signature: Signature | None,
        model_name: str,
        *,
        order: Sequence[str] | None = None,
        frame: bool = False,
    ) -> None:
        self.signature = signature
        self.model_name = model_name
        self.frame = frame
        specs: tuple[ColumnSpec, ...] = signature.inputs if signature is not None else ()
        if order is not None and signature is not None:
            by_name = {c.name: c for c in specs}
            specs = tuple(by_name[n] for n in order)
        self.specs = specs
        self.names = [c.name for c in specs]
        self.index = {n: j for j, n in enumerate(self.names)}
        self.width = len(specs)
        self.kinds = [c.kind for c in specs]
        self.objects_allowed = signature is None or signature.tabular
        # The fast path: every column a number, so one float64 matrix holds the rows.
        self.numeric = bool(specs) and all(k in ("float", "int") for k in self.kinds)
        self._int_columns = np.array([j for j, k in enumerate(self.kinds) if k == "int"], int)
        # A float matrix can hold bools (0/1) too; strings need an object array or a frame.
        self._float_matrix = all(k in ("float", "int", "bool") for k in self.kinds)

    @property
    def hint(self) -> str:
        return f"GET /v2/models/{self.model_name} lists the model's {self.width} columns"

    # ---- rows -------------------------------------------------------------------------------

    def convert(self, instances: Any, noun: str = "instance", field: str = "instances") -> Any:
        """The model's input for `instances` (rows as objects or as arrays in column
        order): a 2-D float64 array, an object array, or a DataFrame (`frame`).

        Raises:
            InvalidArgumentError: naming the row, the column and the problem.
        """
        rows = self.rows(instances, noun, field)
        if self.signature is None:
            return _untyped(rows)
        if self.numeric:
            values = chain.from_iterable(rows)
            if set(map(type, values)) <= _NUMBER:
                try:
                    matrix = np.array(rows, dtype=float)
                except OverflowError:  # an integer past float64: the column check says which
                    pass
                else:
                    if np.isfinite(matrix).all() and self._integral(matrix):
                        return self._model_input(matrix)
        return self._model_input_by_column(rows, noun)

    def rows(
        self, instances: Any, noun: str = "instance", field: str = "instances"
    ) -> list[list[Any]]:
        """`instances` as lists of values in column order, shapes checked (not values)."""
        if not isinstance(instances, list):
            raise InvalidArgumentError(
                f"{field!r} must be a list of rows (objects or arrays), "
                f"not {json_type(instances)}.",
                field=field,
            )
        if not instances:
            raise InvalidArgumentError(f"{field!r} is empty; send at least one row.", field=field)
        shapes = set(map(type, instances))
        if shapes == {dict} and self.signature is not None:
            return self._rows_from_objects(instances, noun, field)
        if shapes == {list}:
            width = self.width if self.signature is not None else len(instances[0])
            if set(map(len, instances)) != {width}:
                self._explain_lengths(instances, width, noun)
            rows: list[list[Any]] = instances
            return rows
        self._explain_shapes(instances, noun, field)
        raise AssertionError("unreachable")  # _explain_shapes always raises

    def convert_inputs(self, inputs: Any) -> Any:
        """The model's input for a KServe V1 / TF-Serving `inputs` field: rows as
        `instances` takes them (objects, or arrays in column order), KServe's list of
        record lists, or TF-Serving's columnar form `{"column": [value per row, ...]}`.

        Raises:
            InvalidArgumentError: naming the row, the column and the problem.
        """
        if isinstance(inputs, dict):
            return self.convert(self._rows_from_columns(inputs), "row", "inputs")
        if not isinstance(inputs, list):
            raise InvalidArgumentError(
                "'inputs' must be a list of rows (objects or arrays) or an object of columns "
                f"(each an array of values), not {json_type(inputs)}.",
                field="inputs",
            )
        if (
            inputs
            and all(type(r) is list for r in inputs)
            and any(r and type(r[0]) is dict for r in inputs)
        ):
            inputs = list(chain.from_iterable(inputs))  # each instance a list of records
        return self.convert(inputs, "row", "inputs")

    def convert_array(self, matrix: np.ndarray[Any, Any], noun: str = "row") -> Any:
        """The model's input for a 2-D array in column order (binary tensor data).

        Numbers go to the model as float64 with no per-value walk (and no copy when they
        are float64 already); anything else (bools, text, a NaN, a fraction where the
        model takes integers) is checked column by column as JSON values are.
        """
        if self.signature is None:
            if matrix.dtype.kind in "fiub":
                return matrix.astype(np.float64, copy=False)
            return _untyped(matrix.tolist())
        if self.numeric and matrix.dtype.kind in "fiu":
            floats = matrix.astype(np.float64, copy=False)
            if np.isfinite(floats).all() and self._integral(floats):
                return self._model_input(floats)
        return self._model_input_by_column(matrix.tolist(), noun)

    def _rows_from_columns(self, columns: dict[str, Any]) -> list[list[Any]]:
        if self.signature is None or not self.objects_allowed:
            raise InvalidArgumentError(
                f"Model {self.model_name!r} was trained on unnamed columns: send 'inputs' "
                f"as rows, each an array of its {self.width or 'N'} values in column order, "
                "not as an object of columns.",
                field="inputs",
            )
        extra = [k for k in columns if k not in self.index]
        if extra:
            raise InvalidArgumentError(
                f"'inputs' has a column the model does not take: {extra[0]!r}; remove it "
                f"({self.hint}).",
                column=extra[0],
                extra=extra,
            )
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise InvalidArgumentError(
                f"'inputs' has no column {missing[0]!r}"
                + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
                + f"; send every column ({self.hint}).",
                column=missing[0],
                missing=missing,
            )
        values: list[list[Any]] = []
        for name in self.names:
            column = columns[name]
            if not isinstance(column, list):
                raise InvalidArgumentError(
                    f"'inputs' column {name!r} must be an array of its values, one per row, "
                    f"not {json_type(column)}.",
                    column=name,
                )
            if (
                column
                and type(column[0]) is list
                and all(type(v) is list and len(v) == 1 for v in column)
            ):
                column = [v[0] for v in column]  # shape [N, 1]
            if values and len(column) != len(values[0]):
                raise InvalidArgumentError(
                    f"'inputs' column {name!r} has {len(column)} values but column "
                    f"{self.names[0]!r} has {len(values[0])}; send one value per row in "
                    "every column.",
                    column=name,
                    expected=len(values[0]),
                    got=len(column),
                )
            values.append(column)
        if not values or not values[0]:
            raise InvalidArgumentError(
                "'inputs' has no rows; send at least one value per column.", field="inputs"
            )
        return [list(row) for row in zip(*values, strict=True)]

    def _rows_from_objects(self, instances: list[Any], noun: str, field: str) -> list[list[Any]]:
        if not self.objects_allowed:
            raise InvalidArgumentError(
                f"Model {self.model_name!r} was trained on unnamed columns: send each "
                f"{noun} as an array of its {self.width} values in column order, not as "
                "an object.",
                field=field,
            )
        names = self.names
        try:
            rows = [[row[n] for n in names] for row in instances]
        except KeyError:
            for i, row in enumerate(instances):
                missing = [n for n in names if n not in row]
                if missing:
                    raise InvalidArgumentError(
                        f"{noun.capitalize()} {i} has no column {missing[0]!r}"
                        + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
                        + f"; send every column ({self.hint}).",
                        instance=i,
                        column=missing[0],
                        missing=missing,
                    ) from None
            raise
        if sum(map(len, instances)) != self.width * len(instances):
            index = self.index
            for i, row in enumerate(instances):
                extra = [k for k in row if k not in index]
                if extra:
                    raise InvalidArgumentError(
                        f"{noun.capitalize()} {i} has a column the model does not take: "
                        f"{extra[0]!r}; remove it ({self.hint}).",
                        instance=i,
                        column=extra[0],
                        extra=extra,
                    )
        return rows

    def _explain_shapes(self, instances: list[Any], noun: str, field: str) -> None:
        first = type(instances[0])
        for i, row in enumerate(instances):
            if type(row) not in (dict, list):
                raise InvalidArgumentError(
                    f"{noun.capitalize()} {i} is {json_type(row)}; send each {noun} as an "
                    "object of column values or as an array in column order.",
                    instance=i,
                )
            if type(row) is not first:
                raise InvalidArgumentError(
                    f"{noun.capitalize()} {i} is {json_type(row)} but {noun} 0 is "
                    f"{json_type(instances[0])}; send every {noun} the same way.",
                    instance=i,
                )
        # Only objects, but the model has no signature to name their columns.
        raise InvalidArgumentError(
            f"Model {self.model_name!r} has no signature naming its columns: send each "
            f"{noun} as an array of values in the order the model was trained on.",
            field=field,
        )

    def _explain_lengths(self, instances: list[list[Any]], width: int, noun: str) -> None:
        for i, row in enumerate(instances):
            if len(row) != width:
                order = ", ".join(self.names[:5]) + (", ..." if self.width > 5 else "")
                raise InvalidArgumentError(
                    f"{noun.capitalize()} {i} has {len(row)} values; the model takes "
                    f"{width}"
                    + (f", in this order: {order}" if self.names else "")
                    + f" ({self.hint}).",
                    instance=i,
                    expected=width,
                    got=len(row),
                )

    # ---- values -----------------------------------------------------------------------------

    def _integral(self, matrix: np.ndarray[Any, Any]) -> bool:
        if not len(self._int_columns):
            return True
        ints = matrix[:, self._int_columns]
        return bool((ints == np.floor(ints)).all())

    def _model_input(self, matrix: np.ndarray[Any, Any]) -> Any:
        if not self.frame:
            return matrix
        import pandas as pd

        frame = pd.DataFrame(matrix, columns=self.names)
        if len(self._int_columns):  # integral already: give them their training dtype
            frame = frame.astype({self.names[j]: np.int64 for j in self._int_columns})
        return frame

    def _model_input_by_column(self, rows: list[list[Any]], noun: str) -> Any:
        columns = [self._column(j, [row[j] for row in rows], noun) for j in range(self.width)]
        if self.frame:
            import pandas as pd

            return pd.DataFrame(dict(zip(self.names, columns, strict=True)), columns=self.names)
        if self._float_matrix:
            return np.column_stack([np.asarray(c, dtype=float) for c in columns])
        matrix = np.empty((len(rows), self.width), dtype=object)
        for j, c in enumerate(columns):
            matrix[:, j] = c
        return matrix

    def _column(self, j: int, values: list[Any], noun: str) -> Any:
        """One column's values checked against its kind: a numpy array (NaN for a missing
        number), or a list (None for a missing string or bool)."""
        spec = self.specs[j]
        kind = spec.kind
        accepts = _ACCEPTS.get(kind, _ACCEPTS["str"])
        if set(map(type, values)) <= accepts:
            if kind == "bool":
                return np.array(values, dtype=bool)
            if kind == "str":
                return values
            try:
                arr = np.array(values, dtype=float)
            except OverflowError:
                return self._column_by_value(spec, values, noun)
            if np.isfinite(arr).all() and (kind == "float" or (arr == np.floor(arr)).all()):
                return arr.astype(np.int64) if kind == "int" and self.frame else arr
        return self._column_by_value(spec, values, noun)

    def _column_by_value(self, spec: ColumnSpec, values: list[Any], noun: str) -> Any:
        kind = spec.kind
        accepts = _ACCEPTS.get(kind, _ACCEPTS["str"])
        out: list[Any] = []
        missing = math.nan if kind in ("float", "int") else None
        for i, value in enumerate(values):
            is_nan = type(value) is float and math.isnan(value)
            if value is None or is_nan:
                if not spec.nullable:
                    raise InvalidArgumentError(
                        f"{noun.capitalize()} {i}, column {spec.name!r}: missing value "
                        f"({'NaN' if is_nan else 'null'}), but the model was trained without "
                        f"missing values in this column; send {EXPECTED[kind]}.",
                        instance=i,
                        column=spec.name,
                        expected=kind,
                        got="NaN" if is_nan else "null",
                    )
                out.append(missing)
                continue
            if type(value) not in accepts:
                raise InvalidArgumentError(
                    f"{noun.capitalize()} {i}, column {spec.name!r}: expected "
                    f"{EXPECTED[kind]}, got {described(value)}.",
                    instance=i,
                    column=spec.name,
                    expected=kind,
                    got=_json_name(value),
                )
            if type(value) is int and kind in ("float", "int") and abs(value) > _FLOAT_MAX:
                raise InvalidArgumentError(
                    f"{noun.capitalize()} {i}, column {spec.name!r}: {described(value)} is too "
                    "large for a number the model can take.",
                    instance=i,
                    column=spec.name,
                    expected=kind,
                    got="integer",
                )
            if type(value) is float and not math.isfinite(value):
                raise InvalidArgumentError(
                    f"{noun.capitalize()} {i}, column {spec.name!r}: {value} is not a finite "
                    "number; send a finite one.",
                    instance=i,
                    column=spec.name,
                    expected=kind,
                    got=str(value),
                )
            if kind == "int" and type(value) is float and not value.is_integer():
                raise InvalidArgumentError(
                    f"{noun.capitalize()} {i}, column {spec.name!r}: expected an integer, "
                    f"got {value!r}.",
                    instance=i,
                    column=spec.name,
                    expected=kind,
                    got="number",
                )
            out.append(value)
        if kind in ("float", "int"):
            return np.array(out, dtype=float)
        return out


def _untyped(rows: list[list[Any]]) -> np.ndarray[Any, Any]:
    """Rows for a model without a signature: whatever numpy makes of them."""
    try:
        return np.asarray(rows, dtype=float)
    except (TypeError, ValueError):
        return np.asarray(rows, dtype=object)


# ---- sklearn models fitted on a DataFrame ---------------------------------------------------


def without_feature_names(model: Any) -> Any | None:
    """A twin of a fitted sklearn model that takes a numpy array in `feature_names_in_`
    order without warning, or None when this function cannot make one.

    sklearn checks a DataFrame column by column before it predicts, which costs about
    0.4 ms a request (twice the prediction itself); the serving app checks the columns
    of every request against the signature already. The twin is a shallow copy whose
    estimator that receives the raw input forgets the names; nothing else is copied or
    changed. The caller must check that the twin answers as the model does (see
    `twin_agrees`), since a step that selects columns by name needs the real DataFrame.
    """
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps and isinstance(steps[0], tuple):
        first_name, first = steps[0]
        if first is None or isinstance(first, str):  # "passthrough"
            return None
        stripped = without_feature_names(first)
        if stripped is None:
            return None
        twin = copy.copy(model)
        twin.steps = [(first_name, stripped), *steps[1:]]
        return twin
    if "feature_names_in_" in getattr(model, "__dict__", {}):
        twin = copy.copy(model)
        del twin.feature_names_in_
        return twin
    return None


def twin_agrees(model: Any, twin: Any, frame: Any, matrix: np.ndarray[Any, Any]) -> bool:
    """Whether `twin` predicts on `matrix` exactly what `model` predicts on `frame`, with
    no warning (a nested estimator that still knows the names would warn)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours = np.asarray(twin.predict(matrix))
            if callable(getattr(model, "predict_proba", None)):
                ours_p = np.asarray(twin.predict_proba(matrix))
        if caught:
            return False
        theirs = np.asarray(model.predict(frame))
        if not np.array_equal(ours, theirs):
            return False
        if callable(getattr(model, "predict_proba", None)):
            return bool(np.allclose(ours_p, np.asarray(model.predict_proba(frame))))
        return True
    except Exception:  # the twin cannot stand in for the model; the DataFrame path will
        return False
