"""Step outputs as stored bytes: Parquet for frames, .npy for arrays, JSON, else pickle.

Pickle is used only for values no safer format can hold (fitted models, custom
objects), and such bytes are only ever loaded back from this workspace's own
content-addressed store, where the name is the hash checked on every read.
"""

from __future__ import annotations

import io
import json
import pickle
from typing import Any


def dump(value: Any) -> tuple[bytes, str]:
    """Bytes and a format name for `value`."""
    kind = type(value).__module__.split(".")[0]
    if kind == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame) and all(isinstance(c, str) for c in value.columns):
            buf = io.BytesIO()
            try:
                value.to_parquet(buf)
                return buf.getvalue(), "parquet"
            except (ValueError, TypeError, ImportError):
                pass  # mixed object columns and the like: fall through to pickle
    if kind == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray) and value.dtype != object:
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=False)
            return buf.getvalue(), "npy"
    if _jsonable(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode(), "json"
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), "pickle"


def load(data: bytes, fmt: str) -> Any:
    if fmt == "parquet":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))
    if fmt == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt == "json":
        return json.loads(data)
    if fmt == "pickle":
        return pickle.loads(data)
    raise ValueError(f"unknown output format {fmt!r}")


def _jsonable(value: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(_jsonable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v, depth + 1) for k, v in value.items())
    return False
