"""Experiments and runs: one data version + one pipeline version + one params version.

The package is also callable, for notebooks: `assay.runs(experiment="wine",
filter="metrics.val_f1 > 0.9")` returns the runs as a pandas DataFrame (see
`assay.sdk.runs`). The SDK is loaded on that first call only.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _RunsPackage(types.ModuleType):
    def __call__(
        self,
        experiment: str | None = None,
        *,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = 1000,
    ) -> Any:
        """Runs as a pandas DataFrame, with `params.*` and `metrics.*` columns."""
        sdk = importlib.import_module("assay.sdk")
        return sdk.runs(experiment, filter=filter, sort=sort, limit=limit)


sys.modules[__name__].__class__ = _RunsPackage
