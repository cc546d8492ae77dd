"""Inference services and A/B tests: deploy, read, change, stop; and predictions through
the server (a `predict` token is enough for those).

A prediction through the server is passed to the service's (or router's) own port
on this machine and its answer returned as it is, so a client that can reach only
the server, with a token, reaches every model.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from assay.abtests import api as abtests
from assay.abtests.entities import ABReport, ABTest
from assay.limits import FEEDBACK_BODY_BYTES
from assay.server.deps import PREDICT, READ, WRITE, WS
from assay.server.schemas import (
    CEILING,
    ERRORS,
    SMALL_BODY,
    Limit,
    Page,
    body_limit,
    documented,
    page_of,
)
from assay.serving import api as serving
from assay.serving.entities import Service, ServiceStatus

router = APIRouter(responses=ERRORS)

_client = httpx.Client(timeout=60.0)

HOST_PATTERN = r"^[A-Za-z0-9:][A-Za-z0-9.:-]*$"  # a name, IPv4 or IPv6 address


class DeployIn(BaseModel):
    name: str
    model: str = Field(description="MODEL@VERSION, @ALIAS or @latest")
    port: int | None = Field(default=None, ge=1, le=65535)
    host: str = Field(
        default=serving.HOST,
        max_length=253,
        pattern=HOST_PATTERN,
        description="The address the service binds on the server's machine; beyond loopback "
        "anyone who reaches it can call it (services have no authentication)",
    )
    workers: int = Field(default=serving.WORKERS, ge=1, le=64)
    timeout_s: float = Field(
        default=serving.TIMEOUT_S, gt=0, description="Seconds a prediction may take before a 504"
    )
    max_body_bytes: int = Field(
        default=serving.MAX_BODY_BYTES,
        gt=0,
        description="Largest request body accepted (413 above)",
    )
    log_sample: float = Field(
        default=serving.LOG_SAMPLE,
        ge=0,
        le=1,
        description="Share of requests logged for monitoring (0: none)",
    )


class UpdateIn(BaseModel):
    model: str


class StopIn(BaseModel):
    timeout_s: float = Field(
        default=serving.STOP_TIMEOUT_S,
        gt=0,
        le=3600,
        description="Seconds to let in-flight requests finish before the process is killed",
    )


class ABTestIn(BaseModel):
    name: str
    variants: list[str] = Field(description="LABEL=MODEL@V or LABEL=SERVICE", min_length=2)
    strategy: str = Field(description="e.g. weighted:50,50, sticky, thompson")
    key: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    host: str = Field(
        default=abtests.HOST,
        max_length=253,
        pattern=HOST_PATTERN,
        description="The address the router binds on the server's machine",
    )
    workers: int = Field(default=abtests.WORKERS, ge=1, le=64, description="Router processes")
    baseline: float | None = Field(
        default=None, gt=0, lt=1, description="Plan: the control's expected rate (with mde)"
    )
    mde: float | None = Field(
        default=None, gt=0, lt=1, description="Plan: the smallest difference worth finding"
    )
    auto_promote: bool = False
    alias: str = abtests.ALIAS
    timeout_s: float = Field(
        default=abtests.TIMEOUT_S, gt=0, description="Seconds a prediction may take before a 504"
    )
    log_sample: float = Field(
        default=abtests.LOG_SAMPLE,
        ge=0,
        le=1,
        description="Share of requests logged for monitoring (0: none)",
    )


class ConcludeIn(BaseModel):
    winner: str
    promote: bool = Field(
        default=True, description="Move the test's alias to the winner's model version"
    )


@router.get("/services", response_model=Page[Service], dependencies=READ, tags=["services"])
def list_services(ws: WS, limit: Limit = 100, page_token: str | None = None) -> Page[Service]:
    return page_of(ws.services.services(), limit, page_token)


@router.post(
    "/services", response_model=Service, status_code=201, dependencies=WRITE, tags=["services"],
    openapi_extra=body_limit(SMALL_BODY),
    summary="Deploy a model version; returns once it answers",
)  # fmt: skip
def deploy(body: DeployIn, ws: WS) -> Service:
    return ws.services.deploy(
        body.name,
        body.model,
        port=body.port,
        host=body.host,
        workers=body.workers,
        timeout_s=body.timeout_s,
        max_body_bytes=body.max_body_bytes,
        log_sample=body.log_sample,
    )


@router.get("/services/{name}", response_model=Service, dependencies=READ, tags=["services"])
def get_service(name: str, ws: WS) -> Service:
    return ws.services.get(name)


@router.get(
    "/services/{name}/status", response_model=documented(ServiceStatus), dependencies=READ,
    tags=["services"], summary="The service with its uptime, workers and traffic",
)  # fmt: skip
def service_status(name: str, ws: WS) -> ServiceStatus:
    return ws.services.status(name)


@router.put(
    "/services/{name}", response_model=Service, dependencies=WRITE, tags=["services"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def update_service(name: str, body: UpdateIn, ws: WS) -> Service:
    return ws.services.update(name, body.model)


@router.get(
    "/services/{name}/logs", response_class=PlainTextResponse, dependencies=READ,
    tags=["services"],
)  # fmt: skip
def service_logs(name: str, ws: WS, lines: Annotated[int, Query(ge=1, le=100_000)] = 200) -> str:
    return ws.services.logs(name, lines=lines)


@router.post(
    "/services/{name}/start", response_model=Service, dependencies=WRITE, tags=["services"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def start_service(name: str, ws: WS) -> Service:
    return ws.services.start(name)


@router.post(
    "/services/{name}/stop", response_model=Service, dependencies=WRITE, tags=["services"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def stop_service(name: str, ws: WS, body: StopIn | None = None) -> Service:
    return ws.services.stop(name, timeout_s=(body or StopIn()).timeout_s)


@router.post(
    "/services/{name}/predict", dependencies=PREDICT, tags=["predict"],
    openapi_extra=body_limit(CEILING),
    summary="KServe V1 `{instances: [...]}` to the service's model",
)  # fmt: skip
async def predict(name: str, request: Request, ws: WS) -> Response:
    svc = ws.services.get(name)
    return await _forward(request, f"{svc.url}/v1/models/{svc.model}:predict")


@router.post(
    "/services/{name}/feedback", dependencies=PREDICT, tags=["predict"],
    summary="{request_id, label} or {request_id, reward} for a prediction the service logged",
)  # fmt: skip
async def feedback(name: str, request: Request, ws: WS) -> Response:
    svc = ws.services.get(name)
    return await _forward(request, f"{svc.url}/feedback")


@router.get("/abtests", response_model=Page[ABTest], dependencies=READ, tags=["abtests"])
def list_abtests(ws: WS, limit: Limit = 100, page_token: str | None = None) -> Page[ABTest]:
    return page_of(ws.abtests.tests(), limit, page_token)


@router.post(
    "/abtests", response_model=ABTest, status_code=201, dependencies=WRITE, tags=["abtests"]
)
def create_abtest(body: ABTestIn, ws: WS) -> ABTest:
    return ws.abtests.create(
        body.name,
        body.variants,
        body.strategy,
        key=body.key,
        port=body.port,
        host=body.host,
        workers=body.workers,
        baseline=body.baseline,
        mde=body.mde,
        auto_promote=body.auto_promote,
        alias=body.alias,
        timeout_s=body.timeout_s,
        log_sample=body.log_sample,
    )


@router.get("/abtests/{name}", response_model=ABTest, dependencies=READ, tags=["abtests"])
def get_abtest(name: str, ws: WS) -> ABTest:
    return ws.abtests.get(name)


@router.get(
    "/abtests/{name}/report", response_model=documented(ABReport), dependencies=READ,
    tags=["abtests"], summary="The analysis; concludes a test with auto-promotion that has decided",
)  # fmt: skip
def abtest_report(name: str, ws: WS) -> ABReport:
    return ws.abtests.report(name)


@router.post(
    "/abtests/{name}/conclude", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def conclude(name: str, body: ConcludeIn, ws: WS) -> ABTest:
    return ws.abtests.conclude(name, body.winner, promote=body.promote)


class WeightsIn(BaseModel):
    weights: list[float] = Field(min_length=2)


@router.post(
    "/abtests/{name}/pause", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def pause_abtest(name: str, ws: WS) -> ABTest:
    return ws.abtests.pause(name)


@router.post(
    "/abtests/{name}/resume", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def resume_abtest(name: str, ws: WS) -> ABTest:
    return ws.abtests.resume(name)


@router.put(
    "/abtests/{name}/weights", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def set_weights(name: str, body: WeightsIn, ws: WS) -> ABTest:
    return ws.abtests.set_weights(name, body.weights)


@router.post(
    "/abtests/{name}/start", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def start_abtest(name: str, ws: WS) -> ABTest:
    return ws.abtests.start(name)


@router.get(
    "/abtests/{name}/logs", response_class=PlainTextResponse, dependencies=READ,
    tags=["abtests"],
)  # fmt: skip
def abtest_logs(name: str, ws: WS, lines: Annotated[int, Query(ge=1, le=100_000)] = 200) -> str:
    return ws.abtests.logs(name, lines=lines)


@router.post(
    "/abtests/{name}/stop", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def stop_abtest(name: str, ws: WS) -> ABTest:
    return ws.abtests.stop(name)


@router.post(
    "/abtests/{name}/predict", dependencies=PREDICT, tags=["predict"],
    openapi_extra=body_limit(CEILING),
)  # fmt: skip
async def abtest_predict(name: str, request: Request, ws: WS) -> Response:
    test = ws.abtests.get(name)
    return await _forward(request, f"{test.url}/predict")


@router.post(
    "/abtests/{name}/feedback", dependencies=PREDICT, tags=["predict"],
    openapi_extra=body_limit(FEEDBACK_BODY_BYTES),
)  # fmt: skip
async def abtest_feedback(name: str, request: Request, ws: WS) -> Response:
    test = ws.abtests.get(name)
    return await _forward(request, f"{test.url}/feedback")


async def _forward(request: Request, url: str) -> Response:
    import anyio

    body = await request.body()
    headers = {"Content-Type": request.headers.get("content-type", "application/json")}
    for name in ("X-Assay-Key", "X-Request-Id"):
        value = request.headers.get(name)
        if value:
            headers[name] = value
    try:
        answer = await anyio.to_thread.run_sync(
            lambda: _client.post(url, content=body, headers=headers)
        )
    except httpx.HTTPError as exc:
        from assay.errors import ModelNotReadyError

        raise ModelNotReadyError(f"The endpoint at {url} did not answer: {exc}.") from None
    keep = {k: v for k, v in answer.headers.items() if k.lower().startswith("x-assay-")}
    return Response(
        answer.content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type"),
        headers=keep,
    )
