"""Monitors: check a service or A/B test for drift, their state over time, snapshots of
live traffic as data versions, and retrains on them (executed on the server)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from assay.monitoring.entities import Monitor, MonitorCheck, MonitorReport, Retrain, Snapshot
from assay.server.deps import READ, WRITE, WS
from assay.server.schemas import (
    ERRORS,
    Input,
    Limit,
    Name,
    NameText,
    Page,
    PageToken,
    RefText,
    documented,
    name_field,
    page_of,
    ref_field,
)
from assay.workspace import Workspace

router = APIRouter(tags=["monitoring"], responses=ERRORS)

_LAST = "The last N requests (5000), or a duration (30m, 1h, 1d)"
# Requests (at least 1) or a positive duration, as `monitoring.entities.parse_duration` reads.
LAST_PATTERN = r"^(?:[1-9][0-9]{0,8}|[1-9][0-9]{0,5}(?:\.[0-9]{1,3})?[smhdw])$"


class WindowIn(Input):
    last: str | None = Field(default=None, pattern=LAST_PATTERN, max_length=32, description=_LAST)
    # JSON has no time type: an ISO 8601 string is the strict form of one.
    start: datetime | None = Field(
        default=None, strict=False, description="ISO 8601 (UTC without a zone)"
    )
    end: datetime | None = Field(
        default=None, strict=False, description="ISO 8601 (UTC without a zone)"
    )


class CheckIn(WindowIn):
    reference: RefText | None = ref_field("DATASET@V instead of training's", default=None)


class ConfigIn(Input):
    config: str = Field(max_length=256 * 1024, description="The monitor config, YAML")


class SnapshotIn(WindowIn):
    dataset: NameText = name_field("The dataset whose next version the window becomes")
    labeled_only: bool = False
    message: str | None = Field(default=None, max_length=4096)


class RetrainIn(Input):
    model: RefText = ref_field("MODEL@VERSION to retrain")
    data: RefText = ref_field("DATASET@VERSION of live data")
    alone: bool = Field(default=False, description="Train on the new data only")
    challenge: str | None = Field(
        default=None,
        description="Start an A/B test against the champion with this strategy; `shadow` "
        "(shadow:champion) has the champion answer and the new version get copies",
    )
    label: NameText | None = name_field("The label column, if the data has several", default=None)


def _window(body: WindowIn | None = None, **query: Any) -> Any:
    from assay.monitoring.entities import Window

    spec = body.model_dump() if body is not None else query
    if not any(spec.get(k) for k in ("last", "start", "end")):
        return None
    start, end = (spec[k].isoformat() if spec.get(k) else None for k in ("start", "end"))
    return Window.parse(spec.get("last"), start, end)


def _launcher(ws: Workspace) -> Any:
    from assay.server.launch import launch

    return lambda run, done: launch(ws, run.id, then=done)


@router.get("/monitors", response_model=Page[Monitor], dependencies=READ)
def list_monitors(ws: WS, limit: Limit = 100, page_token: PageToken = None) -> Page[Monitor]:
    return page_of(ws.monitoring.monitors(), limit, page_token)


@router.get("/monitors/{name}", response_model=Monitor, dependencies=READ)
def get_monitor(name: Name, ws: WS) -> Monitor:
    return ws.monitoring.get(name)


@router.put(
    "/monitors/{name}/config", response_model=Monitor, dependencies=WRITE,
    summary="Set the monitor's config: thresholds, window, schedule, webhook, on_drift",
)  # fmt: skip
def set_config(name: Name, body: ConfigIn, ws: WS) -> Monitor:
    return ws.monitoring.configure(name, body.config)


@router.get(
    "/monitors/{name}/report", response_model=documented(MonitorReport), dependencies=READ,
    summary="Compare a window of the logged traffic with the training data (nothing recorded)",
)  # fmt: skip
def report(
    name: Name,
    ws: WS,
    last: Annotated[
        str | None, Query(pattern=LAST_PATTERN, max_length=32, description=_LAST)
    ] = None,
    start: Annotated[datetime | None, Query(description="ISO 8601 (UTC without a zone)")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 (UTC without a zone)")] = None,
    reference: Annotated[RefText | None, Query(description="DATASET@V")] = None,
) -> MonitorReport:
    ws.monitoring.get(name)  # no such monitor is the first thing to say
    window = _window(last=last, start=start, end=end)
    return ws.monitoring.check(name, window=window, reference=reference, record=False)


@router.post(
    "/monitors/{name}/checks", response_model=documented(MonitorReport), dependencies=WRITE,
    summary="Check and record the state (webhook and on_drift as the config says)",
)  # fmt: skip
def check(name: Name, body: CheckIn, ws: WS) -> MonitorReport:
    ws.monitoring.get(name)
    return ws.monitoring.check(
        name, window=_window(body), reference=body.reference, launch=_launcher(ws)
    )


@router.get("/monitors/{name}/checks", response_model=list[MonitorCheck], dependencies=READ)
def history(
    name: Name, ws: WS, limit: Annotated[int, Query(ge=1, le=10_000)] = 200
) -> list[MonitorCheck]:
    return ws.monitoring.history(name, limit=limit)


@router.post(
    "/monitors/{name}/snapshots", response_model=Snapshot, status_code=201, dependencies=WRITE,
    summary="Commit a window of logged traffic, labels joined, as a data version",
)  # fmt: skip
def snapshot(name: Name, body: SnapshotIn, ws: WS) -> Snapshot:
    ws.monitoring.get(name)
    return ws.monitoring.snapshot(
        name,
        body.dataset,
        window=_window(body),
        labeled_only=body.labeled_only,
        message=body.message,
    )


@router.get("/snapshots", response_model=list[Snapshot], dependencies=READ)
def snapshots(ws: WS, monitor: str | None = None) -> list[Snapshot]:
    return ws.monitoring.snapshots(monitor)


@router.post(
    "/retrains", response_model=Retrain, status_code=202, dependencies=WRITE,
    summary="Rerun a model's pipeline on its training data plus live data; executes on the "
    "server, registers the new version and (challenge) starts its A/B test",
)  # fmt: skip
def retrain(body: RetrainIn, ws: WS) -> Retrain:
    return ws.monitoring.retrain(
        body.model,
        body.data,
        alone=body.alone,
        challenge=body.challenge,
        label=body.label,
        launch=_launcher(ws),
    )


@router.get("/retrains", response_model=list[Retrain], dependencies=READ)
def retrains(ws: WS) -> list[Retrain]:
    return ws.monitoring.retrains()


@router.get("/retrains/{run}", response_model=Retrain, dependencies=READ)
def get_retrain(run: str, ws: WS) -> Retrain:
    return ws.monitoring.get_retrain(run)
