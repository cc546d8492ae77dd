"""The data repository: versioned, content-addressed datasets.

`assay.data.load` and `assay.data.commit` are the notebook's way in (see `assay.sdk`;
it loads on first use, so the data layer itself stays free of it).
"""

from __future__ import annotations

import importlib
from typing import Any


def load(ref: str) -> Any:
    """Data version `ref` (`wine@2`, `wine@latest`, `wine`): a pandas DataFrame when it
    holds one table (CSV, TSV, Parquet), else the path of a local folder holding its
    files. The active run is linked to the version, and so are runs opened later."""
    return importlib.import_module("assay.sdk").load_data(ref)


def commit(name: str, data: Any, message: str = "", *, filename: str | None = None) -> Any:
    """A DataFrame (stored as Parquet, or CSV when `filename` ends in .csv) or a path,
    committed as the next version of dataset `name`; returns the DataVersion."""
    return importlib.import_module("assay.sdk").commit_data(name, data, message, filename=filename)
