"""A model version made ready to answer: input checks, the predict call, JSON out.

`prepare` turns a loaded bundle into a `ServedModel` and warms it up; the app's routes
hand it request bodies and get response bodies back. Nothing here knows about HTTP
beyond status codes carried by the errors it raises.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from assay.errors import (
    InvalidArgumentError,
    ModelError,
)
from assay.serving.inputs import (
    InputSchema,
    json_type,
    twin_agrees,
    without_feature_names,
)
from assay.serving.metrics import Metrics, ModelMetrics
from assay.serving.tensors import binary_of, datatype_of, read_binary, read_inputs, v2_input

if TYPE_CHECKING:
    from assay.registry.bundle import LoadedBundle
    from assay.registry.entities import Signature
    from assay.serving.predlog import PredictionLog

log = logging.getLogger("assay.serving")

_V2_DATATYPES = {"float": "FP64", "int": "INT64", "bool": "BOOL", "str": "BYTES"}


# ---- JSON out ---------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """`value` with every non-finite float as None and numpy scalars as Python ones."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def _plain(out: Any) -> Any:
    """A model's output as JSON-ready Python values: NaN and infinities become None."""
    arr = np.asarray(out)
    kind = arr.dtype.kind
    if kind == "f":
        finite = np.isfinite(arr)
        if finite.all():
            return arr.tolist()
        held = arr.astype(object)
        held[~finite] = None
        return held.tolist()
    if kind in "iubU":
        return arr.tolist()
    return _clean(arr.tolist())


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return _clean(value.item())
    return str(value)


def dumps(value: Any) -> bytes:
    # allow_nan=False: a NaN that slipped through must fail here, never make invalid JSON.
    return json.dumps(value, allow_nan=False, separators=(",", ":"), default=_default).encode()


# What `v2` and `answer` return: the body and, when binary outputs follow the JSON, the
# JSON's length (the Inference-Header-Content-Length of the response).
Answer = tuple[bytes, int | None]


def parse_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidArgumentError(
            f"The request body is not valid JSON ({exc}); send a JSON object.",
            field="body",
        ) from None
    if not isinstance(payload, dict):
        raise InvalidArgumentError(
            f"The request body must be a JSON object, not {json_type(payload)}.",
            field="body",
        )
    return payload


class ServedModel:
    """One loaded model version made ready to answer: its input schema, the callables
    that predict, and its response headers and metric children, built once.

    `v1` and `v2` run in a predict thread: parse, check, convert, predict, encode.
    Given a `request_id` and a prediction `log` (set by the worker), they record the
    rows and the answer in it (its own sampling draw decides).
    """

    def __init__(
        self,
        bundle: LoadedBundle,
        schema: InputSchema,
        predict: Callable[[Any], Any],
        predict_proba: Callable[[Any], Any] | None,
        metrics: ModelMetrics,
    ) -> None:
        self.bundle = bundle
        self.name = bundle.name
        self.version = bundle.version
        self.ref = bundle.ref
        self.schema = schema
        self.metrics = metrics
        self._predict = predict
        self._proba = predict_proba
        self.output_datatype = _output_datatype(bundle)
        self.classes = _classes(bundle)
        self.headers = [
            (b"content-type", b"application/json"),
            (b"x-assay-model", self.name.encode()),
            (b"x-assay-model-version", str(self.version).encode()),
        ]
        # The end of every V1 answer, encoded once: only the predictions are new.
        self._v1_tail = f',"model":{json.dumps(self.name)},"version":{self.version}}}'.encode()
        classes = f',"classes":{dumps(self.classes).decode()}' if self.classes else ""
        self._v1_proba_tail = f"{classes}{self._v1_tail.decode()}".encode()
        self._v2_head = {"model_name": self.name, "model_version": str(self.version)}
        self.log: PredictionLog | None = None
        self.variant: str | None = None  # the A/B test's label for this model, if any
        self._names = tuple(schema.names)

    @property
    def has_proba(self) -> bool:
        return self._proba is not None

    def v1(self, body: bytes, proba: bool = False, request_id: str | None = None) -> bytes:
        """Answer a KServe V1 body (`{"instances": ...}` or `{"inputs": ...}`) with
        `{"predictions", "model", "version"}` (and "classes" for probabilities)."""
        return self._v1(parse_body(body), proba, request_id)

    def _record(self, request_id: str | None, X: Any, out: Any, proba: bool = False) -> None:
        log = self.log
        if request_id is None or log is None or not log.wants():
            return
        if proba:  # the class it would have predicted
            out = np.asarray(out)
            best = out.argmax(axis=1) if out.ndim == 2 else out
            out = np.asarray(self.classes, dtype=object)[best] if self.classes else best
        log.record(request_id, self.name, self.version, self.variant, self._names, X, out)

    def _v1(self, payload: dict[str, Any], proba: bool, request_id: str | None = None) -> bytes:
        if "instances" in payload:
            if "inputs" in payload:
                raise InvalidArgumentError(
                    "The body has both 'instances' and 'inputs'; send the rows in one of them.",
                    field="inputs",
                )
            X = self.schema.convert(payload["instances"])
        elif "inputs" in payload:
            if _are_tensors(payload["inputs"]):
                raise InvalidArgumentError(
                    "'inputs' holds Open Inference Protocol V2 tensors; send them to "
                    f"POST /v2/models/{self.name}/infer, or rows to this route.",
                    field="inputs",
                )
            X = self.schema.convert_inputs(payload["inputs"])
        else:
            raise InvalidArgumentError(
                "The body has no 'instances': send {\"instances\": [row, ...]}, each row an "
                "object of column values or an array in column order (or the same rows, or "
                "an object of columns, as 'inputs').",
                field="instances",
            )
        if proba:
            raw = self._call(self._proba_fn(), X)
            self._record(request_id, X, raw, proba=True)
            return b'{"predictions":' + dumps(_plain(raw)) + self._v1_proba_tail
        raw = self._call(self._predict, X)
        self._record(request_id, X, raw)
        return b'{"predictions":' + dumps(_plain(raw)) + self._v1_tail

    def v2(
        self, body: bytes, json_length: int | None = None, request_id: str | None = None
    ) -> Answer:
        """Answer an Open Inference Protocol V2 inference request body; with
        `json_length` (the Inference-Header-Content-Length header), binary tensor data
        follows that many bytes of JSON."""
        if json_length is None:
            return self._v2(parse_body(body), None, 0, request_id)
        return self._v2(parse_body(body[:json_length]), body, json_length, request_id)

    def answer(
        self, body: bytes, json_length: int | None = None, request_id: str | None = None
    ) -> Answer:
        """Answer a body of either protocol (an A/B test's one predict route takes both):
        V2 when it has binary data or its `inputs` are tensors, else V1."""
        if json_length is not None:
            return self.v2(body, json_length, request_id)
        payload = parse_body(body)
        if "instances" not in payload and _are_tensors(payload.get("inputs")):
            return self._v2(payload, None, 0, request_id)
        return self._v1(payload, False, request_id), None

    def _v2(
        self,
        payload: dict[str, Any],
        body: bytes | None,
        offset: int,
        request_id: str | None = None,
    ) -> Answer:
        body_id = payload.get("id")
        if body_id is not None and not isinstance(body_id, str):
            raise InvalidArgumentError("'id' must be a string.", field="id")
        X = v2_input(self.schema, read_inputs(payload.get("inputs"), body, offset))
        binary = _binary_output(payload.get("parameters"))
        outputs = []
        blobs: list[bytes] = []
        logged = False
        for name, as_binary in self._requested_outputs(payload.get("outputs"), binary):
            fn = self._predict if name == "predict" else self._proba_fn()
            arr = np.asarray(self._call(fn, X))
            if not logged:
                self._record(request_id, X, arr, proba=name != "predict")
                logged = True
            datatype = datatype_of(arr)
            output: dict[str, Any] = {"name": name, "shape": list(arr.shape), "datatype": datatype}
            if as_binary:
                blob = binary_of(arr, datatype)
                output["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                output["data"] = _plain(arr.reshape(-1))
            outputs.append(output)
        doc: dict[str, Any] = dict(self._v2_head)
        if body_id is not None:
            doc["id"] = body_id
        doc["outputs"] = outputs
        head = dumps(doc)
        if not blobs:
            return head, None
        return b"".join((head, *blobs)), len(head)

    def _requested_outputs(self, outputs: Any, binary: bool) -> list[tuple[str, bool]]:
        """The outputs asked for, each with whether it goes back as binary data."""
        if outputs is None:
            return [("predict", binary)]
        if (
            not isinstance(outputs, list)
            or not outputs
            or not all(isinstance(o, dict) for o in outputs)
        ):
            raise InvalidArgumentError(
                "'outputs' must be a list of {\"name\": ...}; the outputs are predict and "
                "predict_proba.",
                field="outputs",
            )
        requested = []
        for k, o in enumerate(outputs):
            name = o.get("name")
            if name not in ("predict", "predict_proba"):
                raise InvalidArgumentError(
                    f"Unknown output {name!r}; this model's outputs are predict"
                    + (" and predict_proba." if self.has_proba else "."),
                    field="outputs",
                    output=name,
                )
            params = o.get("parameters")
            as_binary = binary
            if params is not None:
                if not isinstance(params, dict):
                    raise InvalidArgumentError(
                        f"outputs[{k}].parameters must be an object, not {json_type(params)}.",
                        field=f"outputs[{k}].parameters",
                    )
                if params.get("classification"):
                    raise InvalidArgumentError(
                        f"Output {name!r}: the classification extension is not supported; "
                        "ask for predict_proba to get each class's probability.",
                        field=f"outputs[{k}].parameters.classification",
                    )
                as_binary = params.get("binary_data", binary)
                if type(as_binary) is not bool:
                    raise InvalidArgumentError(
                        f"outputs[{k}].parameters.binary_data must be true or false, not "
                        f"{json_type(as_binary)}.",
                        field=f"outputs[{k}].parameters.binary_data",
                    )
            requested.append((str(name), as_binary))
        return requested

    def _proba_fn(self) -> Callable[[Any], Any]:
        if self._proba is None:
            raise InvalidArgumentError(
                f"Model {self.ref} has no probabilities (it has no predict_proba); "
                f"use POST /v1/models/{self.name}:predict.",
                model=self.name,
                version=self.version,
            )
        return self._proba

    def _call(self, fn: Callable[[Any], Any], X: Any) -> Any:
        try:
            return fn(X)
        except Exception as exc:  # the model's own failure, whatever its type
            error_id = uuid.uuid4().hex[:12]
            log.exception("error_id=%s model %s raised while predicting", error_id, self.ref)
            text = f"{type(exc).__name__}: {exc}"
            raise ModelError(
                f"Model {self.ref} failed on this request ({text[:200]}). Quote error_id "
                f"{error_id} to the service's operator; its log has the details.",
                error_id=error_id,
                model=self.name,
                version=self.version,
            ) from None

    def warm_up(self) -> None:
        """Answer the bundle's input example once (and its probabilities, if any), so
        the first real request finds everything loaded and the model known to work."""
        example = self.bundle.input_example or probe_rows(self.bundle.signature)
        if not example:
            return
        body = dumps({"instances": example})
        self.v1(body)
        if self.has_proba:
            self.v1(body, proba=True)

    def metadata(self) -> dict[str, Any]:
        """The Open Inference Protocol's model metadata."""
        inputs = [
            {"name": c.name, "datatype": _V2_DATATYPES.get(c.kind, "BYTES"), "shape": [-1]}
            for c in self.schema.specs
        ]
        outputs: list[dict[str, Any]] = [
            {"name": "predict", "datatype": self.output_datatype, "shape": [-1]}
        ]
        if self.has_proba:
            width = len(self.classes) if self.classes else -1
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, width]})
        return {
            "name": self.name,
            "versions": [str(self.version)],
            "platform": self.bundle.flavor,
            "inputs": inputs,
            "outputs": outputs,
        }


def _are_tensors(inputs: Any) -> bool:
    """Whether V1 or V2 `inputs` are V2 tensors: V1 rows are values or objects of column
    values, and V2 tensors name their shape and datatype."""
    return (
        isinstance(inputs, list)
        and bool(inputs)
        and all(type(t) is dict and "datatype" in t and "shape" in t for t in inputs)
    )


def _binary_output(parameters: Any) -> bool:
    """The request's `binary_data_output` parameter: every output as binary data, unless
    an output says otherwise."""
    if parameters is None:
        return False
    if not isinstance(parameters, dict):
        raise InvalidArgumentError(
            f"'parameters' must be an object, not {json_type(parameters)}.", field="parameters"
        )
    binary = parameters.get("binary_data_output", False)
    if type(binary) is not bool:
        raise InvalidArgumentError(
            f"parameters.binary_data_output must be true or false, not {json_type(binary)}.",
            field="parameters.binary_data_output",
        )
    return binary


def first_output(answer: bytes, json_length: int | None) -> Any:
    """The values of a V2 answer's first output, as JSON-ready Python values, whether
    they came as JSON or as binary data after `json_length` bytes of it."""
    doc = json.loads(answer if json_length is None else answer[:json_length])
    outputs = doc.get("outputs") or []
    if not outputs:
        return None
    first = outputs[0]
    if "data" in first:
        return first["data"]
    nbytes = first["parameters"]["binary_data_size"]
    values = read_binary(
        first["name"], first["datatype"], first["shape"], answer, json_length or 0, nbytes
    )
    return _plain(values)


def _output_datatype(bundle: LoadedBundle) -> str:
    out = bundle.signature.output if bundle.signature is not None else None
    if out is None:
        return "FP64"
    try:
        return datatype_of(np.empty(0, dtype=out.dtype))
    except TypeError:
        return _V2_DATATYPES.get(out.kind, "BYTES")


def _classes(bundle: LoadedBundle) -> list[Any] | None:
    classes = getattr(bundle.model, "classes_", None)
    if classes is not None:
        plain = _plain(classes)
        return plain if isinstance(plain, list) else None
    out = bundle.signature.output if bundle.signature is not None else None
    return list(out.classes) if out is not None and out.classes is not None else None


def probe_rows(signature: Signature | None, n: int = 16) -> list[dict[str, Any]]:
    """Made-up rows that fit the signature, for a model registered without an example
    (a file trained elsewhere): enough to warm it up and to check that its names-free
    twin computes what it does. Empty when a column is text (no sensible value to make)."""
    if signature is None or not signature.tabular or not signature.inputs:
        return []
    if any(c.kind == "str" for c in signature.inputs):
        return []
    rng = np.random.default_rng(0)
    columns: dict[str, list[Any]] = {}
    for c in signature.inputs:
        if c.kind == "float":
            columns[c.name] = [float(x) for x in rng.normal(0.0, 1.0, n)]
        elif c.kind == "int":
            columns[c.name] = [int(x) for x in rng.integers(0, 10, n)]
        else:
            columns[c.name] = [bool(x) for x in rng.integers(0, 2, n)]
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def prepare(bundle: LoadedBundle, metrics: Metrics) -> ServedModel:
    """Make `bundle` ready to serve, and answer its input example once.

    An sklearn model fitted on a DataFrame gets numpy arrays anyway when a names-free
    twin of it answers the example exactly as it does (see `without_feature_names`);
    otherwise it gets a DataFrame, as does a non-sklearn model trained on one.

    Raises whatever loading or the warm-up raises (`ModelError` when the model fails on
    its own example).
    """
    model, signature, name = bundle.model, bundle.signature, bundle.name
    predict: Callable[[Any], Any] = model.predict
    proba: Callable[[Any], Any] | None = getattr(model, "predict_proba", None)
    order: list[str] | None = None
    frame = False
    names_in = getattr(model, "feature_names_in_", None)
    if signature is not None:
        if names_in is not None:
            frame = True
            fitted = [str(n) for n in names_in]
            # The twin takes columns by position, so only when the model's names are
            # the signature's (in the model's order) can the twin stand in.
            same_columns = sorted(fitted) == sorted(signature.names)
            order = fitted if same_columns else None
            twin = without_feature_names(model) if same_columns else None
            example = bundle.input_example or probe_rows(signature)
            if twin is not None and example:
                try:
                    matrix = InputSchema(signature, name, order=order).convert(example)
                    df = InputSchema(signature, name, order=order, frame=True).convert(example)
                except InvalidArgumentError:
                    pass  # the warm-up below says what is wrong with the example
                else:
                    if twin_agrees(model, twin, df, matrix):
                        frame = False
                        predict = twin.predict
                        proba = getattr(twin, "predict_proba", None)
        elif getattr(model, "n_features_in_", None) is None:
            # Not an sklearn model fitted on arrays: give it what it was trained on.
            frame = signature.tabular
    schema = InputSchema(signature, name, order=order, frame=frame)
    served = ServedModel(
        bundle,
        schema,
        predict,
        proba if callable(proba) else None,
        metrics.for_model(name, bundle.version),
    )
    served.warm_up()
    return served
