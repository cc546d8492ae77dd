"""Live rows as training data: the training table's own layout, labels from feedback.

A snapshot must be something the model's pipeline can read exactly as it read its
training data, so it keeps the training file's name, format and columns: each column
comes from the logged inputs (or is empty when the service never saw it), the label
column from the feedback, and integer columns stay integers (nullable, so a missing
label is an empty cell rather than a float). Pure functions over frames and files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay.errors import InvalidArgumentError
from assay.serving.predlog import INPUT_PREFIX

DEFAULT_FILE = "live.parquet"
DEFAULT_LABEL = "label"


def snapshot_frame(
    rows: pd.DataFrame, columns: list[str], label: str | None, dtypes: dict[str, Any]
) -> pd.DataFrame:
    """`rows` (a window of the log, feedback joined) as a table of `columns`."""
    out: dict[str, Any] = {}
    for name in columns:
        if name == label:
            values = pd.Series(rows["label"].to_numpy(dtype=object), dtype=object)
        elif INPUT_PREFIX + name in rows.columns:
            values = rows[INPUT_PREFIX + name].reset_index(drop=True)
        else:
            values = pd.Series([None] * len(rows), dtype=object)
        out[name] = _like(values, dtypes.get(name))
    return pd.DataFrame(out, columns=columns)


def _like(values: pd.Series[Any], dtype: Any) -> pd.Series[Any]:
    """`values` in the training column's type where they fit it (integers stay integers,
    with missing cells), as they are otherwise."""
    if dtype is None:
        return values.infer_objects()
    kind = np.dtype(dtype).kind if not isinstance(dtype, pd.api.extensions.ExtensionDtype) else ""
    try:
        if kind in "iu":
            numbers = pd.to_numeric(values, errors="raise")
            present = numbers.dropna()
            if (present == present.round()).all():
                return numbers.astype("Int64")
            return numbers
        if kind == "f":
            return pd.to_numeric(values, errors="raise").astype(float)
        if kind == "b":
            return values.astype("boolean")
    except (TypeError, ValueError):
        pass
    return values.infer_objects()


def read_file(path: Path) -> pd.DataFrame:
    from assay.data.reading import read_table

    return read_table(path, path.name)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` in the format `path`'s suffix names (CSV, TSV or Parquet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        raise InvalidArgumentError(f"Cannot write a table as {path.name!r}: not CSV or Parquet.")


def combine(training: pd.DataFrame, live: pd.DataFrame, label: str | None) -> pd.DataFrame:
    """The training rows followed by the live rows that have a label, in training's columns."""
    if label is not None and label in live.columns:
        live = live[live[label].notna()]
    missing = [c for c in training.columns if c not in live.columns]
    if missing:
        live = live.assign(**{c: None for c in missing})
    both = pd.concat([training, live[list(training.columns)]], ignore_index=True)
    for name in training.columns:  # integers stay integers (pandas widens on concat)
        if training[name].dtype.kind in "iu" and both[name].notna().all():
            both[name] = both[name].astype(training[name].dtype)
    return both


def labeled(frame: pd.DataFrame, label: str | None) -> pd.DataFrame:
    return frame if label is None or label not in frame.columns else frame[frame[label].notna()]
