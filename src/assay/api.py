"""One contract per concept, and `Assay`: what a workspace offers, wherever it is.

Each concept writes its operations once, as a `Protocol` in `assay/<concept>/api.py`
(with the defaults, as module constants). Two things implement all of them:

- `assay.workspace.Workspace`: the services, on this machine's database and store;
- `assay.client.Client`: the same verbs over a server's REST API.

The CLI calls `Assay` and does not know which it holds (`--remote` picks the client).
mypy checks both against every contract (the block below), so an option one side drops
or spells differently fails the type check instead of being ignored at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assay.abtests.api import ABTestsAPI
    from assay.auth.api import TokensAPI
    from assay.data.api import DataAPI
    from assay.lifecycle.api import LifecycleAPI
    from assay.monitoring.api import MonitoringAPI
    from assay.pipelines.api import PipelinesAPI
    from assay.registry.api import ModelsAPI
    from assay.runs.api import RunsAPI
    from assay.serving.api import ServicesAPI
    from assay.sweeps.api import SweepsAPI


class Assay(Protocol):
    """A workspace's concepts, each behind its contract."""

    @property
    def data(self) -> DataAPI: ...

    @property
    def pipelines(self) -> PipelinesAPI: ...

    @property
    def runs(self) -> RunsAPI: ...

    @property
    def models(self) -> ModelsAPI: ...

    @property
    def services(self) -> ServicesAPI: ...

    @property
    def abtests(self) -> ABTestsAPI: ...

    @property
    def sweeps(self) -> SweepsAPI: ...

    @property
    def monitoring(self) -> MonitoringAPI: ...

    @property
    def tokens(self) -> TokensAPI: ...

    @property
    def lifecycle(self) -> LifecycleAPI: ...

    def close(self) -> None: ...


if TYPE_CHECKING:  # both implementations, checked by mypy against every contract
    from assay.abtests.service import ABTestService
    from assay.auth.service import TokenService
    from assay.client import (
        ABTestsClient,
        Client,
        DataClient,
        LifecycleClient,
        ModelsClient,
        MonitoringClient,
        PipelinesClient,
        RunsClient,
        ServicesClient,
        SweepsClient,
        TokensClient,
    )
    from assay.data.service import DataService
    from assay.lifecycle.service import LifecycleService
    from assay.monitoring.service import MonitoringService
    from assay.pipelines.service import PipelineService
    from assay.registry.service import RegistryService
    from assay.runs.service import RunService
    from assay.serving.service import ServingService
    from assay.sweeps.service import SweepService
    from assay.workspace import Workspace

    def _data(local: DataService, remote: DataClient) -> list[DataAPI]:
        return [local, remote]

    def _pipelines(local: PipelineService, remote: PipelinesClient) -> list[PipelinesAPI]:
        return [local, remote]

    def _runs(local: RunService, remote: RunsClient) -> list[RunsAPI]:
        return [local, remote]

    def _models(local: RegistryService, remote: ModelsClient) -> list[ModelsAPI]:
        return [local, remote]

    def _services(local: ServingService, remote: ServicesClient) -> list[ServicesAPI]:
        return [local, remote]

    def _abtests(local: ABTestService, remote: ABTestsClient) -> list[ABTestsAPI]:
        return [local, remote]

    def _sweeps(local: SweepService, remote: SweepsClient) -> list[SweepsAPI]:
        return [local, remote]

    def _monitoring(local: MonitoringService, remote: MonitoringClient) -> list[MonitoringAPI]:
        return [local, remote]

    def _tokens(local: TokenService, remote: TokensClient) -> list[TokensAPI]:
        return [local, remote]

    def _lifecycle(local: LifecycleService, remote: LifecycleClient) -> list[LifecycleAPI]:
        return [local, remote]

    def _workspaces(local: Workspace, remote: Client) -> list[Assay]:
        return [local, remote]
