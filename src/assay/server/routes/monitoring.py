"""Monitors: check a service or A/B test for drift, their state over time, snapshots of
live traffic as data versions, and retrains on them (executed on the server)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from assay.monitoring.entities import Monitor, MonitorCheck, MonitorReport, Retrain, Snapshot
from assay.server.deps import READ, WRITE, WS
from assay.server.schemas import ERRORS, Limit, Page, documented, page_of
from assay.workspace import Workspace

router = APIRouter(tags=["monitoring"], responses=ERRORS)

_LAST = "The last N requests (5000), or a duration (30m, 1h, 1d)"


class WindowIn(BaseModel):
    last: str | None = Field(default=None, max_length=32, description=_LAST)
    start: str | None = Field(default=None, max_length=64, description="ISO 8601 (UTC)")
    end: str | None = Field(default=None, max_length=64, description="ISO 8601 (UTC)")


class CheckIn(WindowIn):
    reference: str | None = Field(default=None, description="DATASET@V instead of training's")


class ConfigIn(BaseModel):
    config: str = Field(max_length=256 * 1024, description="The monitor config, YAML")


class SnapshotIn(WindowIn):
    dataset: str = Field(description="The dataset whose next version the window becomes")
    labeled_only: bool = False
    message: str | None = Field(default=None, max_length=4096)


class RetrainIn(BaseModel):
    model: str = Field(description="MODEL@VERSION to retrain")
    data: str = Field(description="DATASET@VERSION of live data")
    alone: bool = Field(default=False, description="Train on the new data only")
    challenge: str | None = Field(
        default=None, description="Start an A/B test against the champion with this strategy"
    )
    label: str | None = None


def _window(body: WindowIn | None = None, **query: str | None) -> Any:
    from assay.monitoring.entities import Window

    spec = body.model_dump() if body is not None else query
    if not any(spec.get(k) for k in ("last", "start", "end")):
        return None
    return Window.parse(spec.get("last"), spec.get("start"), spec.get("end"))


def _launcher(ws: Workspace) -> Any:
    from assay.server.launch import launch

    return lambda run, done: launch(ws, run.id, then=done)


@router.get("/monitors", response_model=Page[Monitor], dependencies=READ)
def list_monitors(ws: WS, limit: Limit = 100, page_token: str | None = None) -> Page[Monitor]:
    return page_of(ws.monitoring.monitors(), limit, page_token)


@router.get("/monitors/{name}", response_model=Monitor, dependencies=READ)
def get_monitor(name: str, ws: WS) -> Monitor:
    return ws.monitoring.get(name)


@router.put(
    "/monitors/{name}/config", response_model=Monitor, dependencies=WRITE,
    summary="Set the monitor's config: thresholds, window, schedule, webhook, on_drift",
)  # fmt: skip
def set_config(name: str, body: ConfigIn, ws: WS) -> Monitor:
    return ws.monitoring.configure(name, body.config)


@router.get(
    "/monitors/{name}/report", response_model=documented(MonitorReport), dependencies=READ,
    summary="Compare a window of the logged traffic with the training data (nothing recorded)",
)  # fmt: skip
def report(
    name: str,
    ws: WS,
    last: Annotated[str | None, Query(max_length=32, description=_LAST)] = None,
    start: Annotated[str | None, Query(max_length=64)] = None,
    end: Annotated[str | None, Query(max_length=64)] = None,
    reference: str | None = None,
) -> MonitorReport:
    window = _window(last=last, start=start, end=end)
    return ws.monitoring.check(name, window=window, reference=reference, record=False)


@router.post(
    "/monitors/{name}/checks", response_model=documented(MonitorReport), dependencies=WRITE,
    summary="Check and record the state (webhook and on_drift as the config says)",
)  # fmt: skip
def check(name: str, body: CheckIn, ws: WS) -> MonitorReport:
    return ws.monitoring.check(
        name, window=_window(body), reference=body.reference, launch=_launcher(ws)
    )


@router.get("/monitors/{name}/checks", response_model=list[MonitorCheck], dependencies=READ)
def history(
    name: str, ws: WS, limit: Annotated[int, Query(ge=1, le=10_000)] = 200
) -> list[MonitorCheck]:
    return ws.monitoring.history(name, limit=limit)


@router.post(
    "/monitors/{name}/snapshots", response_model=Snapshot, status_code=201, dependencies=WRITE,
    summary="Commit a window of logged traffic, labels joined, as a data version",
)  # fmt: skip
def snapshot(name: str, body: SnapshotIn, ws: WS) -> Snapshot:
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
