"""The Python SDK over the server's REST API: `assay.Client(url, token=...)`.

One sub-client per concept (`client.data`, `client.runs`, `client.models`, …) with the
same verbs, parameters and defaults as the workspace's services (each implements the
concept's contract, `assay.<concept>.api`), returning the same entity classes (`Run`,
`DataVersion`, `ModelVersion`, …) and raising the same errors (`NotFoundError`,
`ConflictError`, `UnauthorizedError`, …) the server reports.
"""

from assay.client.abtests import ABTestsClient
from assay.client.admin import LifecycleClient, TokensClient
from assay.client.data import DataClient
from assay.client.models import ModelsClient
from assay.client.monitoring import MonitoringClient
from assay.client.pipelines import PipelinesClient
from assay.client.runs import RunsClient
from assay.client.services import ServicesClient
from assay.client.sweeps import SweepsClient
from assay.client.workspace import Client

__all__ = [
    "ABTestsClient",
    "Client",
    "DataClient",
    "LifecycleClient",
    "ModelsClient",
    "MonitoringClient",
    "PipelinesClient",
    "RunsClient",
    "ServicesClient",
    "SweepsClient",
    "TokensClient",
]
