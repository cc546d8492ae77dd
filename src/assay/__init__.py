"""Assay: version data and pipelines, run experiments, serve and A/B test models.

The SDK surface. Everything a user imports comes from here.
"""

from __future__ import annotations

from assay.errors import (
    AssayError,
    ConflictError,
    CorruptObjectError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    ValidationFailedError,
    WorkspaceNotFoundError,
)

__version__ = "0.1.0"

__all__ = [
    "AssayError",
    "ConflictError",
    "CorruptObjectError",
    "InvalidArgumentError",
    "NotFoundError",
    "StorageError",
    "ValidationFailedError",
    "WorkspaceNotFoundError",
    "__version__",
]
