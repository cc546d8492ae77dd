"""`Client`: a server's workspace through its REST API, shaped like `Workspace`."""

from __future__ import annotations

from assay.client.abtests import ABTestsClient
from assay.client.admin import LifecycleClient, TokensClient
from assay.client.data import DataClient
from assay.client.http import Http
from assay.client.models import ModelsClient
from assay.client.monitoring import MonitoringClient
from assay.client.pipelines import PipelinesClient
from assay.client.runs import RunsClient
from assay.client.services import ServicesClient
from assay.client.sweeps import SweepsClient


class Client:
    """Talk to an Assay server: one sub-client per concept, with the verbs, parameters,
    defaults and entities of the workspace's services (`assay.api.Assay`).

    >>> client = Client("http://assay.internal:8000", token=os.environ["ASSAY_TOKEN"])
    >>> client.runs.search(filter="metrics.val_f1 > 0.9")
    >>> client.models.alias("churn@4", "champion")
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 120.0) -> None:
        self.http = Http(url, token, timeout=timeout)
        self.url = self.http.url
        self.data = DataClient(self.http)
        self.pipelines = PipelinesClient(self.http)
        self.runs = RunsClient(self.http)
        self.models = ModelsClient(self.http)
        self.services = ServicesClient(self.http)
        self.abtests = ABTestsClient(self.http)
        self.sweeps = SweepsClient(self.http, self.pipelines)
        self.monitoring = MonitoringClient(self.http)
        self.tokens = TokensClient(self.http)
        self.lifecycle = LifecycleClient(self.http, self.data, self.models)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
