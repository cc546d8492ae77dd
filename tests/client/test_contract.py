"""The local services and the SDK's sub-clients keep one contract per concept.

mypy checks the types (`assay/api.py`); it does not compare defaults. This does: every
operation of a contract takes, in both implementations, the parameters the protocol
names, in its order, of its kind and with its default, so that leaving an option out
means the same thing locally and against a server.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from assay.abtests.api import ABTestsAPI
from assay.abtests.service import ABTestService
from assay.api import Assay
from assay.auth.api import TokensAPI
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
from assay.data.api import DataAPI
from assay.data.service import DataService
from assay.lifecycle.api import LifecycleAPI
from assay.lifecycle.service import LifecycleService
from assay.monitoring.api import MonitoringAPI
from assay.monitoring.service import MonitoringService
from assay.pipelines.api import PipelinesAPI
from assay.pipelines.service import PipelineService
from assay.registry.api import ModelsAPI
from assay.registry.service import RegistryService
from assay.runs.api import RunsAPI
from assay.runs.service import RunService
from assay.serving.api import ServicesAPI
from assay.serving.service import ServingService
from assay.sweeps.api import SweepsAPI
from assay.sweeps.service import SweepService
from assay.workspace import Workspace

CONTRACTS: list[tuple[type[Any], type[Any], type[Any]]] = [
    (DataAPI, DataService, DataClient),
    (PipelinesAPI, PipelineService, PipelinesClient),
    (RunsAPI, RunService, RunsClient),
    (ModelsAPI, RegistryService, ModelsClient),
    (ServicesAPI, ServingService, ServicesClient),
    (ABTestsAPI, ABTestService, ABTestsClient),
    (SweepsAPI, SweepService, SweepsClient),
    (MonitoringAPI, MonitoringService, MonitoringClient),
    (TokensAPI, TokenService, TokensClient),
    (LifecycleAPI, LifecycleService, LifecycleClient),
]


def _operations(protocol: type[Any]) -> list[str]:
    return sorted(
        name
        for name, value in vars(protocol).items()
        if not name.startswith("_") and inspect.isfunction(value)
    )


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    found = list(inspect.signature(fn).parameters.values())[1:]  # without self
    return [(p.name, p.kind, p.default) for p in found]


@pytest.mark.parametrize(
    ("protocol", "service", "client"), CONTRACTS, ids=[c[0].__name__ for c in CONTRACTS]
)
def test_both_sides_take_the_contracts_parameters_with_its_defaults(
    protocol: type[Any], service: type[Any], client: type[Any]
) -> None:
    assert _operations(protocol)
    for name in _operations(protocol):
        wanted = _params(getattr(protocol, name))
        for side in (service, client):
            got = _params(getattr(side, name))
            where = f"{side.__name__}.{name}"
            # Positional parameters as the contract orders them; keyword-only ones in
            # any order. A side may add optional ones of its own (a local launcher).
            positional = [p for p in wanted if p[1] is not inspect.Parameter.KEYWORD_ONLY]
            assert got[: len(positional)] == positional, where
            keywords = {p[0]: p for p in got}
            for param in wanted[len(positional) :]:
                assert keywords.get(param[0]) == param, f"{where}: {param[0]}"
            named = {p[0] for p in wanted}
            extra = [p for p in got[len(positional) :] if p[0] not in named]
            assert all(default is not inspect.Parameter.empty for _, _, default in extra), (
                f"{where} needs more than the contract gives"
            )


def test_the_client_and_the_workspace_offer_every_concept() -> None:
    concepts = {n for n, v in vars(Assay).items() if isinstance(v, property)}
    assert concepts == {
        "data", "pipelines", "runs", "models", "services", "abtests", "sweeps", "monitoring",
        "tokens", "lifecycle",
    }  # fmt: skip
    with Client("http://127.0.0.1:9") as client:
        for concept in concepts:
            kind = type(getattr(client, concept))
            assert any(kind is c for _, _, c in CONTRACTS), concept
    for concept in concepts:
        assert hasattr(Workspace, concept), concept
