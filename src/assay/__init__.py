"""Assay: version data and pipelines, run experiments, serve and A/B test models.

The SDK surface. Everything a user imports comes from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay.errors import (
    AssayError,
    AssayWarning,
    ConflictError,
    CorruptObjectError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    UnauthorizedError,
    UnreachableError,
    ValidationFailedError,
    WorkspaceNotFoundError,
)

if TYPE_CHECKING:  # what the lazy attributes below are, for type checkers and editors
    from assay.client import Client
    from assay.pipelines.dsl import Pipeline, step
    from assay.runs.split import Split, split
    from assay.sdk import (
        ActiveRun,
        active_run,
        autolog,
        compare,
        get_run,
        load_model,
        log_artifact,
        log_metric,
        log_metrics,
        log_model,
        log_param,
        log_params,
        start_run,
    )

__version__ = "0.1.0"

# The tracking and pipeline API loads on first use, so `import assay` stays light.
_LAZY = {
    "ActiveRun": "assay.sdk",
    "Client": "assay.client",
    "active_run": "assay.sdk",
    "autolog": "assay.sdk",
    "compare": "assay.sdk",
    "get_run": "assay.sdk",
    "load_model": "assay.sdk",
    "log_model": "assay.sdk",
    "Pipeline": "assay.pipelines.dsl",
    "Split": "assay.runs.split",
    "log_artifact": "assay.sdk",
    "log_metric": "assay.sdk",
    "log_metrics": "assay.sdk",
    "log_param": "assay.sdk",
    "log_params": "assay.sdk",
    "split": "assay.runs.split",
    "start_run": "assay.sdk",
    "step": "assay.pipelines.dsl",
}


def __getattr__(name: str) -> object:
    if name in ("data", "runs"):  # the concept packages; `assay.runs(...)` is callable
        import importlib

        return importlib.import_module(f"assay.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assay' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ActiveRun",
    "AssayError",
    "AssayWarning",
    "Client",
    "ConflictError",
    "CorruptObjectError",
    "ForbiddenError",
    "InvalidArgumentError",
    "NotFoundError",
    "Pipeline",
    "Split",
    "StorageError",
    "UnauthorizedError",
    "UnreachableError",
    "ValidationFailedError",
    "WorkspaceNotFoundError",
    "__version__",
    "active_run",
    "autolog",
    "compare",
    "data",
    "get_run",
    "load_model",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "runs",
    "split",
    "start_run",
    "step",
]
