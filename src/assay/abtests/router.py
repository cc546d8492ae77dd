"""The A/B test's router: one process serves every variant and routes among them in-process.

`python -m assay.abtests TEST_DIR` runs it, with the same folder layout, workers,
drain and metrics as an inference service (`assay.serving.process`), so there is no
extra network hop between the router and the models:

    POST /abtests/{name}/predict    a KServe V1 or V2 body -> the variant's answer, plus
                                    "variant", "request_id" and the model's provenance
    POST /abtests/{name}/feedback   {"request_id", "reward": number} or {"request_id",
                                    "label": ground truth}
    GET  /abtests/{name}            the test as the router sees it (strategy, arms)
    GET  /abtests/{name}/report     the analysis of everything logged so far
    GET  /health/live  /health/ready  /metrics

target.json names the test, its strategy, status and variants (each a model bundle
copy, its weight and provenance); the control plane rewrites it to pause, resume,
change weights or conclude, and the router follows without dropping a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from assay.abtests.eventlog import EventLog, Tail
from assay.abtests.routing import Router, parse_strategy
from assay.errors import (
    AssayError,
    InvalidArgumentError,
    ModelNotReadyError,
    NotFoundError,
    PredictTimeoutError,
)
from assay.serving.app import JsonBody, error_body, error_kind, read_body
from assay.serving.metrics import CONTENT_TYPE, Metrics
from assay.serving.process import ServiceConfig, Worker, log
from assay.serving.served import ServedModel, dumps

_log = logging.getLogger("assay.abtests")

PREDICT_THREADS = 4
SHADOW_BACKLOG = 64  # copies waiting for a shadow beyond this are dropped, not queued
REFRESH_S = 1.0  # how often other workers' feedback is read (for the bandits)
CHECK_EVERY = 50  # feedbacks between two looks of the auto-promote check


@dataclass(frozen=True)
class Variant:
    """One arm of the test: a model bundle copy, its weight, and where it came from."""

    label: str
    bundle: Path
    name: str
    version: int
    provenance: dict[str, Any]


@dataclass(frozen=True)
class ABTarget:
    """target.json of an A/B test."""

    name: str
    strategy: str
    key: str | None
    status: str  # running, paused or concluded
    winner: str | None
    variants: tuple[Variant, ...]
    target_id: str
    auto_promote: bool = False
    alpha: float = 0.05
    version: int | None = None  # what a worker file reports as the served version

    @property
    def ref(self) -> str:
        arms = ", ".join(f"{v.label}={v.name}@{v.version}" for v in self.variants)
        return f"abtest {self.name} ({arms})"

    @property
    def models(self) -> tuple[tuple[str, str], ...]:
        return tuple((v.label, str(v.bundle)) for v in self.variants)

    @classmethod
    def read(cls, path: Path) -> ABTarget:
        try:
            doc = json.loads(path.read_bytes())
            variants = tuple(
                Variant(
                    str(v["label"]),
                    path.parent / str(v["bundle"]),
                    str(v["name"]),
                    int(v["version"]),
                    dict(v.get("provenance") or {}),
                )
                for v in doc["variants"]
            )
            return cls(
                str(doc["name"]),
                str(doc["strategy"]),
                doc.get("key"),
                str(doc.get("status", "running")),
                doc.get("winner"),
                variants,
                str(doc["target_id"]),
                bool(doc.get("auto_promote", False)),
                float(doc.get("alpha", 0.05)),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidArgumentError(f"{path} is not an A/B test target ({exc}).") from exc


class ABServed:
    """Every variant loaded, and the router that picks among them."""

    def __init__(self, target: ABTarget, served: dict[str, ServedModel], router: Router) -> None:
        self.target = target
        self.name = target.name
        self.served = served
        self.router = router
        self.control = target.variants[0].label
        self.live = target.status == "running"
        # The end of each variant's answer, encoded once: variant and provenance.
        self._tails = {
            v.label: (
                f',"variant":{json.dumps(v.label)},'
                f'"provenance":{json.dumps(v.provenance, separators=(",", ":"))}'
            ).encode()
            for v in target.variants
        }
        self._headers = {
            label: [*s.headers, (b"x-assay-variant", label.encode())] for label, s in served.items()
        }

    def choose(self, key: str | None) -> str:
        if self.target.status == "concluded" and self.target.winner:
            return self.target.winner
        if self.target.status == "paused":
            return self.control
        return self.router.choose(key)

    def shadows(self, chosen: str) -> list[str]:
        return self.router.shadows(chosen) if self.live else []

    def headers(self, label: str, request_id: str) -> list[tuple[bytes, bytes]]:
        return [*self._headers[label], (b"x-assay-request-id", request_id.encode())]

    def answer(self, label: str, payload: bytes, request_id: str) -> bytes:
        """The variant's answer with the variant, request id and provenance added."""
        return payload[:-1] + self._tails[label] + b',"request_id":"' + request_id.encode() + b'"}'


class ABState:
    """What an A/B worker serves now; swapped whole, like a service's model."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.current: ABServed | None = None
        self.draining = False

    @property
    def ready(self) -> bool:
        return self.current is not None and not self.draining


class ABWorker(Worker):
    """A service worker that serves an A/B test instead of one model."""

    def __init__(
        self, service_dir: Path, config: ServiceConfig, port: int, *, supervised: bool
    ) -> None:
        super().__init__(service_dir, config, port, supervised=supervised)
        self.ab = ABState(self.state.metrics)
        self.state = self.ab  # type: ignore[assignment]  # duck-typed: ready, draining, metrics
        self.events = EventLog(service_dir / "events")
        self.tail = Tail(service_dir / "events")
        # request id -> (variant, predictions) of every live answered request, and the
        # ids whose feedback is in: feedback is joined by id, duplicates ignored.
        self.answered: dict[str, tuple[str, Any]] = {}
        self.rewarded: set[str] = set()
        self.rewards: dict[str, float] = {}
        self._salt = ""
        self._feedbacks = 0
        self._checking = False

    def read_target(self, path: Path) -> Any:
        return ABTarget.read(path)

    def app(self) -> Starlette:
        return create_ab_app(self, lifespan=self.lifespan)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.refresh()
        refresher = asyncio.create_task(self._refresh_loop(), name="read feedback")
        try:
            async with super().lifespan(app):
                yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            self.events.close()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                self.refresh()
            except Exception:  # keep serving whatever one bad read did
                log.exception("could not read the test's events")

    def refresh(self) -> None:
        """Take in events other workers (or earlier runs) wrote: answers and feedback."""
        for event in self.tail.read():
            kind = event.get("t")
            if kind == "a" and event.get("live", True) and event.get("ok"):
                self.answered.setdefault(str(event["id"]), (str(event["v"]), event.get("pred")))
            elif kind == "f":
                rid, reward = str(event.get("id")), event.get("reward")
                if rid in self.rewarded or not isinstance(reward, int | float):
                    continue
                self.rewarded.add(rid)
                self.rewards[rid] = float(reward)
                found, current = self.answered.get(rid), self.ab.current
                if found is not None and current is not None and found[0] in current.served:
                    current.router.reward(found[0], float(reward))

    async def _load(self, target: Any) -> None:
        log.info("loading %s (target %s)", target.ref, target.target_id)
        started = time.monotonic()
        try:
            ab = await asyncio.to_thread(self._prepare_ab, target)
        except Exception as exc:  # a failed load leaves the old test serving
            self._failed(target, f"{type(exc).__name__}: {exc}", exc)
            return
        old = self.ab.current
        self.ab.current = ab
        self.target, self.error, self.failed_target_id = target, None, None
        log.info(
            "serving %s, %s, strategy %s: ready in %.2f s%s",
            target.ref,
            target.status,
            target.strategy,
            time.monotonic() - started,
            " (models kept)" if old is not None and old.served is ab.served else "",
        )
        self.write_file()

    def _prepare_ab(self, target: ABTarget) -> ABServed:
        from assay.registry.bundle import load_bundle
        from assay.serving.served import prepare

        labels = [v.label for v in target.variants]
        strategy = parse_strategy(target.strategy, labels)
        self._salt = target.name
        old = self.ab.current
        if old is not None and old.target.models == target.models:
            # Only the strategy, weights or status changed: keep the models, and the
            # bandits' learning when the strategy is the same.
            before = old.router.strategy
            if (before.kind, before.primary, before.epsilon) == (
                strategy.kind,
                strategy.primary,
                strategy.epsilon,
            ):
                router = old.router
                if strategy.kind in ("weighted", "sticky"):
                    router.set_weights(strategy.weights or [1.0] * len(labels))
            else:
                router = self._router(strategy, labels)
            return ABServed(target, old.served, router)
        served: dict[str, ServedModel] = {}
        for v in target.variants:
            bundle = replace(load_bundle(v.bundle), name=v.name, version=v.version)
            served[v.label] = prepare(bundle, self.ab.metrics)
        return ABServed(target, served, self._router(strategy, labels))

    def _router(self, strategy: Any, labels: list[str]) -> Router:
        """A fresh router, its bandits taught every reward logged so far. Sticky keys
        hash with the test's name, so two tests do not put the same users in "B"."""
        router = Router(strategy, labels, salt=self._salt)
        router.restore(
            (self.answered[rid][0], reward)
            for rid, reward in self.rewards.items()
            if rid in self.answered and self.answered[rid][0] in labels
        )
        return router

    def after_feedback(self) -> None:
        """With auto-promote, look at the sequential test every `CHECK_EVERY` feedbacks;
        once it decides, route everything to the winner and leave `decided.json` for the
        control plane to record the verdict and move the alias."""
        self._feedbacks += 1
        current = self.ab.current
        if (
            current is None
            or not current.target.auto_promote
            or current.target.status != "running"
            or self._checking
            or self._feedbacks % CHECK_EVERY
        ):
            return
        self._checking = True
        task = asyncio.get_running_loop().create_task(self._check_decision(current))
        task.add_done_callback(lambda _t: setattr(self, "_checking", False))

    async def _check_decision(self, current: ABServed) -> None:
        from assay.abtests.eventlog import read_all
        from assay.abtests.report import build_report

        target = current.target
        try:
            events = await asyncio.to_thread(read_all, self.dir / "events")
            doc = await asyncio.to_thread(
                build_report,
                events,
                labels=[v.label for v in target.variants],
                strategy=target.strategy,
                alpha=target.alpha,
            )
        except Exception:  # the check must never take the serving down
            log.exception("could not evaluate the sequential test")
            return
        verdict = doc["verdict"]
        if not verdict["decided"] or self.ab.current is not current:
            return
        winner = str(verdict["winner"])
        _write_decided(self.dir / "decided.json", winner, verdict["message"])
        self.ab.current = ABServed(
            replace(target, status="concluded", winner=winner), current.served, current.router
        )
        log.info(
            "the sequential test decided: %s; all traffic goes to %s", verdict["message"], winner
        )


def _write_decided(path: Path, winner: str, message: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"winner": winner, "message": message, "at": time.time()}))
    os.replace(tmp, path)


def create_ab_app(worker: ABWorker, *, lifespan: Any = None) -> Starlette:
    """The A/B test's app over `worker`'s state."""
    ep = _ABEndpoints(worker)
    routes = [
        Route("/abtests/{name}/predict", ep.predict, methods=["POST"]),
        Route("/abtests/{name}/feedback", ep.feedback, methods=["POST"]),
        Route("/abtests/{name}/report", ep.report, methods=["GET"]),
        Route("/abtests/{name}", ep.describe, methods=["GET"]),
        Route("/health/live", ep.live, methods=["GET"]),
        Route("/health/ready", ep.ready, methods=["GET"]),
        Route("/metrics", ep.metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class _ABEndpoints:
    def __init__(self, worker: ABWorker) -> None:
        self.w = worker
        self.timeout_s = worker.config.timeout_s
        self.limit = worker.config.max_body_bytes
        self.pool = ThreadPoolExecutor(PREDICT_THREADS, thread_name_prefix="assay-predict")
        self.shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="assay-shadow")
        self.shadow_pending = 0
        self.shadow_dropped = 0
        self._background: set[asyncio.Task[None]] = set()

    def _current(self, request: Request) -> ABServed:
        ab = self.w.ab.current
        if ab is None or self.w.ab.draining:
            raise ModelNotReadyError(
                "The A/B test is still loading its models (or stopping); retry shortly."
            )
        name = request.path_params["name"]
        if name != ab.name:
            raise NotFoundError(
                f"No A/B test {name!r} here: this router serves {ab.name!r}.",
                abtest=name,
            )
        return ab

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        label: str | None = None
        ab: ABServed | None = None
        request_id = uuid.uuid4().hex
        try:
            ab = self._current(request)
            body = await read_body(request, self.limit)
            key = _key(request, body, ab.target.key)
            label = ab.choose(key)
            served = ab.served[label]
            op: Callable[[bytes], bytes] = served.v1 if b'"instances"' in body else served.v2
            loop = asyncio.get_running_loop()
            try:
                payload = await asyncio.wait_for(
                    loop.run_in_executor(self.pool, op, body), self.timeout_s
                )
            except TimeoutError:
                raise PredictTimeoutError(
                    f"Variant {label} ({served.ref}) took longer than {self.timeout_s:g} s; "
                    "the request was abandoned.",
                    timeout_s=self.timeout_s,
                ) from None
            elapsed = time.perf_counter() - started
            self.w.events.append(
                {
                    "t": "a",
                    "id": request_id,
                    "ts": time.time(),
                    "v": label,
                    "ms": round(elapsed * 1000, 3),
                    "ok": True,
                    "err": None,
                    "pred": _predictions(payload),
                    "live": ab.live,
                }
            )
            if ab.live:
                self.w.answered[request_id] = (label, _predictions(payload))
            served.metrics.record("ab", 200, elapsed, None)
            for shadow in ab.shadows(label):
                self._shadow(ab, shadow, body, request_id)
            return JsonBody(
                ab.answer(label, payload, request_id), 200, ab.headers(label, request_id)
            )
        except AssayError as exc:
            elapsed = time.perf_counter() - started
            if ab is not None and label is not None:
                self.w.events.append(
                    {
                        "t": "a",
                        "id": request_id,
                        "ts": time.time(),
                        "v": label,
                        "ms": round(elapsed * 1000, 3),
                        "ok": False,
                        "err": error_kind(exc),
                        "pred": None,
                        "live": ab.live,
                    }
                )
                ab.served[label].metrics.record("ab", exc.status, elapsed, error_kind(exc))
                return JsonBody(error_body(exc), exc.status, ab.headers(label, request_id))
            return JsonBody(error_body(exc), exc.status)
        except ClientDisconnect:
            return Response(status_code=400)

    def _shadow(self, ab: ABServed, label: str, body: bytes, request_id: str) -> None:
        if self.shadow_pending >= SHADOW_BACKLOG:
            self.shadow_dropped += 1
            if self.shadow_dropped in (1, 10, 100, 1000) or self.shadow_dropped % 10000 == 0:
                log.warning("shadow %s is behind: %d copies dropped", label, self.shadow_dropped)
            return
        self.shadow_pending += 1
        task = asyncio.get_running_loop().create_task(self._run_shadow(ab, label, body, request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_shadow(self, ab: ABServed, label: str, body: bytes, request_id: str) -> None:
        served = ab.served[label]
        op = served.v1 if b'"instances"' in body else served.v2
        started = time.perf_counter()
        ok, pred = True, None
        try:
            payload = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(self.shadow_pool, op, body),
                self.timeout_s,
            )
            pred = _predictions(payload)
        except (AssayError, TimeoutError):
            ok = False
        finally:
            self.shadow_pending -= 1
        self.w.events.append(
            {
                "t": "s",
                "id": request_id,
                "ts": time.time(),
                "v": label,
                "ms": round((time.perf_counter() - started) * 1000, 3),
                "ok": ok,
                "pred": pred,
            }
        )

    async def feedback(self, request: Request) -> Response:
        try:
            ab = self._current(request)
            doc = _parse_object(await read_body(request, self.limit))
            request_id, reward, truth = _feedback_fields(doc)
            found = self.w.answered.get(request_id)
            if found is None:
                self.w.refresh()  # another worker may have answered it
                found = self.w.answered.get(request_id)
            if found is None:
                raise NotFoundError(
                    f"No prediction with request_id {request_id!r} in A/B test {ab.name!r} "
                    "(while paused or concluded, predictions take no feedback).",
                    request_id=request_id,
                )
            label, predictions = found
            if request_id in self.w.rewarded:
                return JsonBody(
                    dumps({"request_id": request_id, "variant": label, "duplicate": True})
                )
            if reward is None:
                reward = _label_reward(truth, predictions)
            self.w.rewarded.add(request_id)
            self.w.rewards[request_id] = reward
            self.w.events.append(
                {
                    "t": "f",
                    "id": request_id,
                    "ts": time.time(),
                    "reward": reward,
                    "label": truth,
                }
            )
            ab.router.reward(label, reward)
            self.w.after_feedback()
            return JsonBody(
                dumps(
                    {
                        "request_id": request_id,
                        "variant": label,
                        "reward": reward,
                        "duplicate": False,
                    }
                )
            )
        except AssayError as exc:
            return JsonBody(error_body(exc), exc.status)
        except ClientDisconnect:
            return Response(status_code=400)

    async def describe(self, request: Request) -> Response:
        try:
            ab = self._current(request)
        except AssayError as exc:
            return JsonBody(error_body(exc), exc.status)
        return JsonBody(
            dumps(
                {
                    "name": ab.name,
                    "strategy": ab.target.strategy,
                    "status": ab.target.status,
                    "winner": ab.target.winner,
                    "variants": {
                        v.label: {"model": v.name, "version": v.version, **v.provenance}
                        for v in ab.target.variants
                    },
                    "arms": ab.router.arms,
                    "shadow_dropped": self.shadow_dropped,
                }
            )
        )

    async def report(self, request: Request) -> Response:
        try:
            ab = self._current(request)
        except AssayError as exc:
            return JsonBody(error_body(exc), exc.status)
        from assay.abtests.eventlog import read_all
        from assay.abtests.report import build_report

        events = await asyncio.to_thread(read_all, self.w.dir / "events")
        doc = await asyncio.to_thread(
            build_report,
            events,
            labels=[v.label for v in ab.target.variants],
            strategy=ab.target.strategy,
        )
        return JsonBody(dumps(doc))

    async def live(self, request: Request) -> Response:
        return JsonBody(b'{"live":true}')

    async def ready(self, request: Request) -> Response:
        ok = self.w.ab.ready
        return JsonBody(dumps({"ready": ok}), 200 if ok else 503)

    async def metrics(self, request: Request) -> Response:
        metrics = self.w.ab.metrics
        return Response(metrics.render(), media_type=CONTENT_TYPE)


def _key(request: Request, body: bytes, field: str | None) -> str | None:
    """The request's routing key: the X-Assay-Key header, else the test's key field
    (top level of the body, or the first instance's)."""
    for name, value in request.scope["headers"]:
        if name == b"x-assay-key":
            return str(value.decode("latin-1"))
    if field is None:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None  # the model's own parsing says what is wrong with the body
    if isinstance(doc, dict):
        if field in doc:
            return str(doc[field])
        rows = doc.get("instances")
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and field in rows[0]:
            return str(rows[0][field])
    return None


def _predictions(payload: bytes) -> Any:
    doc = json.loads(payload)
    if "predictions" in doc:
        return doc["predictions"]
    outputs = doc.get("outputs") or []
    return outputs[0].get("data") if outputs else None


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidArgumentError(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(doc, dict):
        raise InvalidArgumentError('Send a JSON object: {"request_id": ..., "reward": ...}.')
    return doc


def _feedback_fields(doc: dict[str, Any]) -> tuple[str, float | None, Any]:
    request_id = doc.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidArgumentError(
            "Feedback needs 'request_id', the id a prediction answered with.", field="request_id"
        )
    has_reward, has_label = "reward" in doc, "label" in doc
    if has_reward == has_label:
        raise InvalidArgumentError(
            "Send exactly one of 'reward' (a number) or 'label' (the ground truth).",
            field="reward",
        )
    if has_reward:
        reward = doc["reward"]
        if (
            isinstance(reward, bool)
            or not isinstance(reward, int | float)
            or not math.isfinite(reward)
        ):
            raise InvalidArgumentError(
                f"'reward' must be a finite number, not {json.dumps(reward)}.", field="reward"
            )
        return request_id, float(reward), None
    return request_id, None, doc["label"]


def _label_reward(truth: Any, predictions: Any) -> float:
    """1 for a correct prediction, 0 for a wrong one; the share correct for several rows."""
    if not isinstance(predictions, list) or not predictions:
        raise InvalidArgumentError("This prediction has no labels to compare the truth with.")
    truths = truth if isinstance(truth, list) else [truth]
    if len(truths) != len(predictions):
        raise InvalidArgumentError(
            f"'label' has {len(truths)} value(s) but the prediction had {len(predictions)} "
            "row(s); send one label per row.",
            field="label",
        )
    return sum(_same(t, p) for t, p in zip(truths, predictions, strict=True)) / len(truths)


def _same(truth: Any, predicted: Any) -> bool:
    if isinstance(truth, int | float) and isinstance(predicted, int | float):
        return float(truth) == float(predicted)
    return str(truth) == str(predicted)
