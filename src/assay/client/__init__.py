"""The Python SDK over the server's REST API: `assay.Client(url, token=...)`.

The same verbs as the workspace's services, returning the same entity classes
(`Run`, `DataVersion`, `ModelVersion`, …) and raising the same errors
(`NotFoundError`, `ConflictError`, `UnauthorizedError`, …) the server reports.
"""

from assay.client.http import Client

__all__ = ["Client"]
