"""Inference services and A/B tests: deploy, read, change, stop; and predictions through
the server (a `predict` token is enough for those).

A prediction through the server is passed to the service's (or router's) own port
on this machine and its answer returned as it is, so a client that can reach only
the server, with a token, reaches every model.
"""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import Field

from assay import httpclient
from assay.abtests import api as abtests
from assay.abtests.entities import ABReport, ABTest
from assay.limits import FEEDBACK_BODY_BYTES
from assay.server.deps import PREDICT, READ, WRITE, WS
from assay.server.schemas import (
    CEILING,
    ERRORS,
    PREDICT_ERRORS,
    REF_MAX,
    SMALL_BODY,
    TEXT_ROUTE_ERRORS,
    Input,
    Limit,
    Name,
    NameText,
    Page,
    PageToken,
    RefText,
    TagText,
    body_limit,
    documented,
    name_field,
    page_of,
    ref_field,
)
from assay.serving import api as serving
from assay.serving.entities import Service, ServiceStatus

router = APIRouter(responses=ERRORS)

_LABEL = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
VARIANT_PATTERN = rf"^{_LABEL}=[A-Za-z0-9][^=@\s]*(?:@[A-Za-z0-9_][A-Za-z0-9._-]{{0,63}})?$"
_NUMBER = r"[0-9]{1,6}(?:\.[0-9]{1,6})?"
STRATEGY_PATTERN = (
    rf"^(?:(?:weighted|sticky)(?::{_NUMBER}(?:,{_NUMBER}){{1,15}})?|round-robin|ucb|thompson"
    rf"|shadow:{_LABEL}|epsilon-greedy(?::(?:0(?:\.[0-9]{{1,6}})?|1(?:\.0{{1,6}})?))?)$"
)

_client = httpclient.client(timeout=60.0)

HOST_PATTERN = r"^[A-Za-z0-9:][A-Za-z0-9.:-]*$"  # a name, IPv4 or IPv6 address


class AutoscaleIn(Input):
    min: int = Field(ge=0, le=1024)
    max: int = Field(ge=1, le=1024)
    target_ongoing_requests: float = Field(
        default=2.0, gt=0, description="Ongoing requests per replica to scale at"
    )


class DeployIn(Input):
    name: NameText = name_field()
    model: RefText = ref_field("MODEL@VERSION, @ALIAS or @latest")
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
    on: Literal["local", "ray"] = Field(
        default="local",
        description="Where it runs: local (a process on the server's machine) or ray (a Ray "
        "Serve application on the cluster at the server's ASSAY_RAY_ADDRESS)",
    )
    replicas: int | None = Field(default=None, ge=1, le=1024, description="On Ray: replicas")
    autoscale: AutoscaleIn | None = Field(
        default=None, description="On Ray: scale between bounds instead of fixed replicas"
    )
    cpus: float | None = Field(default=None, gt=0, le=1024, description="On Ray: CPUs each")
    memory_bytes: int | None = Field(default=None, gt=0, description="On Ray: memory each")


class UpdateIn(Input):
    model: RefText = ref_field("MODEL@VERSION, @ALIAS or @latest")


class StopIn(Input):
    timeout_s: float = Field(
        default=serving.STOP_TIMEOUT_S,
        gt=0,
        le=3600,
        description="Seconds to let in-flight requests finish before the process is killed",
    )


class ABTestIn(Input):
    name: NameText = name_field()
    variants: list[Annotated[str, Field(pattern=VARIANT_PATTERN, max_length=REF_MAX)]] = Field(
        description="LABEL=MODEL@V or LABEL=SERVICE", min_length=2, max_length=16
    )
    strategy: str = Field(
        pattern=STRATEGY_PATTERN,
        max_length=1000,
        description="weighted[:W1,W2,...], sticky[:W1,W2,...], round-robin, shadow:LABEL, "
        "epsilon-greedy[:EPSILON], ucb or thompson",
    )
    key: str | None = Field(default=None, max_length=255)
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
    alias: TagText = Field(default=abtests.ALIAS, description="Moved to the winner")
    timeout_s: float = Field(
        default=abtests.TIMEOUT_S, gt=0, description="Seconds a prediction may take before a 504"
    )
    log_sample: float = Field(
        default=abtests.LOG_SAMPLE,
        ge=0,
        le=1,
        description="Share of requests logged for monitoring (0: none)",
    )
    on: Literal["local", "ray"] = Field(
        default="local",
        description="Where the router runs: local (a process on the server's machine) or ray "
        "(a Ray Serve application on the cluster at the server's ASSAY_RAY_ADDRESS)",
    )
    replicas: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="On Ray: replicas of the router and of each variant",
    )
    cpus: float | None = Field(default=None, gt=0, le=1024, description="On Ray: CPUs each")


class ConcludeIn(Input):
    winner: NameText = name_field("The winning variant's label")
    promote: bool = Field(
        default=True, description="Move the test's alias to the winner's model version"
    )


@router.get("/services", response_model=Page[Service], dependencies=READ, tags=["services"])
def list_services(ws: WS, limit: Limit = 100, page_token: PageToken = None) -> Page[Service]:
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
        on=body.on,
        replicas=body.replicas,
        autoscale=(body.autoscale.min, body.autoscale.max) if body.autoscale else None,
        target_ongoing_requests=body.autoscale.target_ongoing_requests if body.autoscale else 2.0,
        cpus=body.cpus,
        memory_bytes=body.memory_bytes,
    )


@router.get("/services/{name}", response_model=Service, dependencies=READ, tags=["services"])
def get_service(name: Name, ws: WS) -> Service:
    return ws.services.get(name)


@router.get(
    "/services/{name}/status", response_model=ServiceStatus, dependencies=READ,
    tags=["services"], summary="The service with its uptime, workers and traffic",
)  # fmt: skip
def service_status(name: Name, ws: WS) -> ServiceStatus:
    return ws.services.status(name)


@router.put(
    "/services/{name}", response_model=Service, dependencies=WRITE, tags=["services"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def update_service(name: Name, body: UpdateIn, ws: WS) -> Service:
    return ws.services.update(name, body.model)


@router.get(
    "/services/{name}/logs", response_class=PlainTextResponse, dependencies=READ,
    responses=TEXT_ROUTE_ERRORS,
    tags=["services"],
)  # fmt: skip
def service_logs(name: Name, ws: WS, lines: Annotated[int, Query(ge=1, le=100_000)] = 200) -> str:
    return ws.services.logs(name, lines=lines)


@router.post(
    "/services/{name}/start", response_model=Service, dependencies=WRITE, tags=["services"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def start_service(name: Name, ws: WS) -> Service:
    return ws.services.start(name)


@router.post(
    "/services/{name}/stop", response_model=Service, dependencies=WRITE, tags=["services"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def stop_service(name: Name, ws: WS, body: StopIn | None = None) -> Service:
    return ws.services.stop(name, timeout_s=(body or StopIn()).timeout_s)


@router.post(
    "/services/{name}/predict", dependencies=PREDICT, tags=["predict"], responses=PREDICT_ERRORS,
    openapi_extra=body_limit(CEILING),
    summary="KServe V1 `{instances: [...]}` to the service's model",
)  # fmt: skip
async def predict(name: Name, request: Request, ws: WS) -> Response:
    svc = _answering(ws.services.get(name))
    return await _forward(request, f"{svc.url}/v1/models/{svc.model}:predict", f"Service {name!r}")


@router.post(
    "/services/{name}/feedback", dependencies=PREDICT, tags=["predict"], responses=PREDICT_ERRORS,
    summary="{request_id, label} or {request_id, reward} for a prediction the service logged",
)  # fmt: skip
async def feedback(name: Name, request: Request, ws: WS) -> Response:
    svc = _answering(ws.services.get(name))
    return await _forward(request, f"{svc.url}/feedback", f"Service {name!r}")


@router.get("/abtests", response_model=Page[ABTest], dependencies=READ, tags=["abtests"])
def list_abtests(ws: WS, limit: Limit = 100, page_token: PageToken = None) -> Page[ABTest]:
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
        on=body.on,
        replicas=body.replicas,
        cpus=body.cpus,
    )


@router.get("/abtests/{name}", response_model=ABTest, dependencies=READ, tags=["abtests"])
def get_abtest(name: Name, ws: WS) -> ABTest:
    return ws.abtests.get(name)


@router.get(
    "/abtests/{name}/report", response_model=documented(ABReport), dependencies=READ,
    tags=["abtests"], summary="The analysis; concludes a test with auto-promotion that has decided",
)  # fmt: skip
def abtest_report(name: Name, ws: WS) -> ABReport:
    return ws.abtests.report(name)


@router.post(
    "/abtests/{name}/conclude", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def conclude(name: Name, body: ConcludeIn, ws: WS) -> ABTest:
    return ws.abtests.conclude(name, body.winner, promote=body.promote)


class WeightsIn(Input):
    weights: list[float] = Field(min_length=2)


@router.post(
    "/abtests/{name}/pause", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def pause_abtest(name: Name, ws: WS) -> ABTest:
    return ws.abtests.pause(name)


@router.post(
    "/abtests/{name}/resume", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def resume_abtest(name: Name, ws: WS) -> ABTest:
    return ws.abtests.resume(name)


@router.put(
    "/abtests/{name}/weights", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def set_weights(name: Name, body: WeightsIn, ws: WS) -> ABTest:
    return ws.abtests.set_weights(name, body.weights)


@router.post(
    "/abtests/{name}/start", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def start_abtest(name: Name, ws: WS) -> ABTest:
    return ws.abtests.start(name)


@router.get(
    "/abtests/{name}/logs", response_class=PlainTextResponse, dependencies=READ,
    responses=TEXT_ROUTE_ERRORS,
    tags=["abtests"],
)  # fmt: skip
def abtest_logs(name: Name, ws: WS, lines: Annotated[int, Query(ge=1, le=100_000)] = 200) -> str:
    return ws.abtests.logs(name, lines=lines)


@router.post(
    "/abtests/{name}/stop", response_model=ABTest, dependencies=WRITE, tags=["abtests"],
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def stop_abtest(name: Name, ws: WS) -> ABTest:
    return ws.abtests.stop(name)


@router.post(
    "/abtests/{name}/predict", dependencies=PREDICT, tags=["predict"], responses=PREDICT_ERRORS,
    openapi_extra=body_limit(CEILING),
)  # fmt: skip
async def abtest_predict(name: Name, request: Request, ws: WS) -> Response:
    test = _routing(ws.abtests.get(name))
    return await _forward(request, f"{test.url}/predict", f"A/B test {name!r}")


@router.post(
    "/abtests/{name}/feedback", dependencies=PREDICT, tags=["predict"], responses=PREDICT_ERRORS,
    openapi_extra=body_limit(FEEDBACK_BODY_BYTES),
)  # fmt: skip
async def abtest_feedback(name: Name, request: Request, ws: WS) -> Response:
    test = _routing(ws.abtests.get(name))
    return await _forward(request, f"{test.url}/feedback", f"A/B test {name!r}")


def _answering(svc: Service) -> Service:
    """The service, if its process can take a request.

    Raises:
        ConflictError: it is stopped (or failed): a start, not a retry, brings it back.
        ModelNotReadyError: it is still starting.
    """
    from assay.errors import ConflictError, ModelNotReadyError

    if svc.state == "starting":
        raise ModelNotReadyError(
            f"Service {svc.name!r} is starting; try again once it is running.",
            service=svc.name,
            state=svc.state,
        )
    if svc.state != "running":
        raise ConflictError(
            f"Service {svc.name!r} is {svc.state}, so it cannot predict; start it with "
            f"POST /services/{svc.name}/start (`assay services start {svc.name}`).",
            service=svc.name,
            state=svc.state,
        )
    return svc


def _routing(test: ABTest) -> ABTest:
    """The A/B test, if its router can take a request (see `_answering`)."""
    from assay.errors import ConflictError, ModelNotReadyError

    if test.state == "starting":
        raise ModelNotReadyError(
            f"A/B test {test.name!r}'s router is starting; try again once it is running.",
            abtest=test.name,
            state=test.state,
        )
    if test.state != "running":
        raise ConflictError(
            f"A/B test {test.name!r}'s router is {test.state}, so it cannot predict; start "
            f"it with POST /abtests/{test.name}/start (`assay abtests start {test.name}`).",
            abtest=test.name,
            state=test.state,
        )
    return test


async def _forward(request: Request, url: str, what: str) -> Response:
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

        # Where it listens is the server's business: the client is told which one failed.
        raise ModelNotReadyError(
            f"{what} did not answer ({type(exc).__name__}); its logs may say why."
        ) from None
    keep = {k: v for k, v in answer.headers.items() if k.lower().startswith("x-assay-")}
    return Response(
        answer.content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type"),
        headers=keep,
    )
