"""The A/B test's router: one process serves every variant and routes among them in-process.

`python -m assay.abtests TEST_DIR` runs it, with the same folder layout, workers,
drain and metrics as an inference service (`assay.serving.worker`), so there is no
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
import gc
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from assay.abtests.answers import Answers
from assay.abtests.decision import DecisionCheck
from assay.abtests.eventlog import EventLog, Tail
from assay.abtests.routing import Router
from assay.abtests.strategies import parse_strategy
from assay.errors import (
    InvalidArgumentError,
)
from assay.serving.metrics import Metrics
from assay.serving.served import ServedModel
from assay.serving.worker import ServiceConfig, Worker, log

REFRESH_S = 1.0  # how often other workers' feedback is read (for the bandits)


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
        self.label_json = {v.label: json.dumps(v.label).encode() for v in target.variants}
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
        self.tail = Tail(service_dir / "events", skip=self.events.path)
        # The live answers and their feedback, joined by request id (duplicates ignored).
        self.answers = Answers()
        # With auto-promote: a look at the sequential test every so many feedbacks.
        self.decision = DecisionCheck(self.all_events, self._announce)

    def read_target(self, path: Path) -> Any:
        return ABTarget.read(path)

    def app(self) -> Starlette:
        from assay.abtests.app import create_ab_app

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
            credited = self.answers.take(event)
            current = self.ab.current
            if credited is not None and current is not None and credited[0] in current.served:
                current.router.reward(*credited)

    def remember(self, request_id: str, label: str, predictions: str) -> None:
        """Keep a live answer for its feedback."""
        self.answers.remember(request_id, label, predictions)

    # ---- what the app asks of whoever holds the test (a Ray router replica too) ----------

    async def feedback(
        self, ab: ABServed, request_id: str, reward: float | None, truth: Any
    ) -> dict[str, Any]:
        """Join feedback to its answer, log it and teach the router; the answer's body.

        Raises:
            NotFoundError: no live answer with that request id.
            InvalidArgumentError: a label that does not fit the predictions.
        """
        if self.answers.find(request_id) is None:
            self.refresh()  # another worker may have answered it
        label, reward, duplicate = self.answers.join(ab.name, request_id, reward, truth)
        if duplicate:
            return {"request_id": request_id, "variant": label, "duplicate": True}
        assert reward is not None
        self.events.append(
            {"t": "f", "id": request_id, "ts": time.time(), "reward": reward, "label": truth}
        )
        ab.router.reward(label, reward)
        if self.predlog is not None:  # the monitor joins it to the logged prediction
            self.predlog.feedback(request_id, truth, reward)
        self.decision.after_feedback(self.ab.current)
        return {"request_id": request_id, "variant": label, "reward": reward, "duplicate": False}

    async def arms(self, ab: ABServed) -> dict[str, Any]:
        """The feedback each variant has had, as the router routes by it."""
        return dict(ab.router.arms)

    async def all_events(self) -> list[dict[str, Any]]:
        """Every event the test has logged, from every worker's file."""
        from assay.abtests.eventlog import read_all

        return await asyncio.to_thread(read_all, self.dir / "events")

    @property
    def monitor_file(self) -> Path | None:
        return self.dir / "monitor.json"

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
        # What loading allocated lives as long as the models: out of the collector's scans
        # (full collections over it were 100 ms pauses in the middle of serving).
        gc.freeze()
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
                router = self._router(strategy, labels, target.name)
            return ABServed(target, old.served, router)
        served: dict[str, ServedModel] = {}
        for v in target.variants:
            bundle = replace(load_bundle(v.bundle), name=v.name, version=v.version)
            model = prepare(bundle, self.ab.metrics)
            model.log, model.variant = self.predlog, v.label
            served[v.label] = model
        return ABServed(target, served, self._router(strategy, labels, target.name))

    def _router(self, strategy: Any, labels: list[str], salt: str) -> Router:
        """A fresh router, its bandits taught every reward logged so far. Sticky keys
        hash with the test's name, so two tests do not put the same users in "B"."""
        router = Router(strategy, labels, salt=salt)
        router.restore(self.answers.credited(labels))
        return router

    async def _announce(self, looked_at: ABServed, winner: str, message: str) -> None:
        """The sequential test decided: route everything to the winner and leave
        `decided.json` for the control plane to record the verdict and move the alias."""
        if self.ab.current is not looked_at:  # the test changed while it was looked at
            return
        _write_decided(self.dir / "decided.json", winner, message)
        self.ab.current = ABServed(
            replace(looked_at.target, status="concluded", winner=winner),
            looked_at.served,
            looked_at.router,
        )
        log.info("the sequential test decided: %s; all traffic goes to %s", message, winner)


def _write_decided(path: Path, winner: str, message: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"winner": winner, "message": message, "at": time.time()}))
    os.replace(tmp, path)
