"""MLflow's model layout, written beside a bundle: the `MLmodel` file, the environment
files its python_function entry names, and the signature in MLflow's format, so that
`mlflow.pyfunc.load_model` reads an Assay bundle (or its export) as its own."""

from __future__ import annotations

import json
import platform
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.registry.entities import Signature

if TYPE_CHECKING:
    from assay.registry.flavors import Flavor

MLMODEL = "MLmodel"
REQUIREMENTS = "requirements.txt"
PYTHON_ENV = "python_env.yaml"
CONDA_ENV = "conda.yaml"

_MLFLOW_TYPES = {"float": "double", "int": "long", "bool": "boolean", "str": "string"}
_MLFLOW_NARROW = {"float32": "float", "int32": "integer", "int16": "integer", "int8": "integer"}


def write_mlmodel(
    folder: Path,
    flavor: Flavor,
    meta: dict[str, Any],
    signature: Signature | None,
    name: str,
    created: datetime,
    requirements: list[str],
) -> None:
    """An `MLmodel` file, and the environment files its python_function entry names."""
    import yaml

    entries = dict(flavor.mlflow_flavor(meta))
    if "python_function" in entries:
        python = platform.python_version()
        entries["python_function"] = {
            **entries["python_function"],
            "python_version": python,
            "env": {"conda": CONDA_ENV, "virtualenv": PYTHON_ENV},
        }
        python_env = {
            "python": python,
            "build_dependencies": ["pip"],
            "dependencies": [f"-r {REQUIREMENTS}"],
        }
        conda = {
            "name": "mlflow-env",
            "channels": ["conda-forge"],
            "dependencies": [f"python={python}", "pip", {"pip": ["mlflow", *requirements]}],
        }
        (folder / PYTHON_ENV).write_text(yaml.safe_dump(python_env, sort_keys=False))
        (folder / CONDA_ENV).write_text(yaml.safe_dump(conda, sort_keys=False))
    doc: dict[str, Any] = {
        "artifact_path": name,
        "flavors": entries,
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": created.strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    if signature is not None:
        doc["signature"] = mlflow_signature(signature)
    (folder / MLMODEL).write_text(yaml.safe_dump(doc, sort_keys=False))


def mlflow_signature(signature: Signature) -> dict[str, Any]:
    """The signature in MLflow's format: inputs and outputs as JSON text of a column
    list (or a tensor spec for arrays), with MLflow's type names."""
    numeric = all(c.kind != "str" for c in signature.inputs)
    inputs: list[dict[str, Any]]
    if not signature.tabular and numeric and signature.inputs:
        dtype = signature.inputs[0].dtype
        inputs = [
            {
                "type": "tensor",
                "tensor-spec": {"dtype": dtype, "shape": [-1, len(signature.inputs)]},
            }
        ]
    else:
        inputs = [
            {"type": _mlflow_type(c.kind, c.dtype), "name": c.name, "required": True}
            for c in signature.inputs
        ]
    outputs: list[dict[str, Any]] | None = None
    out = signature.output
    if out is not None and len(out.shape) > 1 and out.kind != "str":
        outputs = [
            {"type": "tensor", "tensor-spec": {"dtype": out.dtype, "shape": list(out.shape)}}
        ]
    elif out is not None:
        outputs = [{"type": _mlflow_type(out.kind, out.dtype), "required": True}]
    return {
        "inputs": json.dumps(inputs),
        "outputs": json.dumps(outputs) if outputs is not None else None,
        "params": None,
    }


def _mlflow_type(kind: str, dtype: str) -> str:
    if kind in ("float", "int") and dtype in _MLFLOW_NARROW:
        return _MLFLOW_NARROW[dtype]
    return _MLFLOW_TYPES.get(kind, "string")
