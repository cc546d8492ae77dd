"""The one exception tree. Every error a user sees is an `AssayError`.

The message is shown to the user as it is, so it names the problem and ends
with what to do about it. `status` is the HTTP status a server answers with.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AssayError(Exception):
    """An error the user can act on; the message is shown as it is."""

    status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(AssayError):
    """A named thing (dataset, version, object, workspace) does not exist."""

    status = 404


class ConflictError(AssayError):
    """The request clashes with what is stored (a name taken, a file changed underfoot)."""

    status = 409


class InvalidArgumentError(AssayError, ValueError):
    """The user's input is malformed: a bad reference, a bad file, a bad option."""

    status = 400


class UnauthorizedError(AssayError):
    """No token, or an unknown or revoked one (the server's 401)."""

    status = 401


class ForbiddenError(AssayError):
    """The token's scope does not allow this (the server's 403)."""

    status = 403


class ValidationFailedError(AssayError):
    """Data did not pass its checks; `details["report"]` holds the full report."""

    status = 422


class WorkspaceNotFoundError(NotFoundError):
    """No `.assay/` workspace in this folder or any parent."""


class StorageError(AssayError):
    """The object store could not be written or read (disk full, permissions, network)."""

    status = 507


class UnreachableError(AssayError):
    """The Assay server (or another service) did not answer: refused, timed out, gone."""

    status = 503


class AssayWarning(UserWarning):
    """Something went wrong that must not stop the user's own work (a logging failure
    during a fit, a server that went away mid-training); it is said once."""


class CorruptObjectError(StorageError):
    """A stored object's bytes no longer match its name (its content hash)."""

    status = 500


# ---- an inference service's answers ------------------------------------------------------


class PayloadTooLargeError(AssayError):
    """The request body is larger than the service accepts."""

    status = 413


class UnsupportedMediaTypeError(AssayError):
    """The request body is not JSON."""

    status = 415


class ModelNotReadyError(AssayError):
    """The model is still loading (or the service is shutting down)."""

    status = 503


class ModelError(AssayError):
    """The model raised while predicting; `details["error_id"]` finds it in the log."""

    status = 500


class PredictTimeoutError(AssayError):
    """The model took longer than the service's predict timeout."""

    status = 504
