"""An A/B test on a Ray cluster: the router as a Ray Serve deployment over the variants'.

`assay abtests create NAME ... --on ray` runs the Ray Serve application `abtest-NAME`
(built by `assay.serving.ray_serve`), mounted at `/abtests/NAME` on the cluster's HTTP
proxies, the same URL shape as a local router's:

- one deployment per variant (`variant-LABEL`), each a `ModelReplica`
  (`assay.serving.replica`) serving that model version, loaded from the object store;
- the ingress deployment `router` (`ABRouterReplica`): the local router's app
  (`assay.abtests.app`), unchanged, whose variants are handles to those deployments
  (Ray Serve's model composition): routes, answers, error bodies, provenance, feedback,
  report and metrics are the local ones.

What every router replica must agree on lives in one detached actor per test
(`SharedState`, named `abtest-state:NAME` in the `assay` namespace): the live answers
waiting for feedback, the rewards joined to them (so feedback reaches the right
variant whichever replica takes it, once), and the auto-promote decision. Each replica
routes with a `Router` of its own, fed every reward the actor has joined (`SYNC_S`),
so the bandits learn from all the test's traffic, not one replica's share of it.
Sticky routing hashes the key with the test's name: every replica puts a key in the
same variant without asking anyone.

The event log is durable in the object store: each replica writes its events as
segments under the test's prefix (`SegmentEventLog`), and the actor, when it (re)starts,
rebuilds the answers and rewards from them.

Like a model replica, nothing here imports control-plane code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from assay.abtests.answers import Answers
from assay.abtests.decision import DecisionCheck
from assay.abtests.eventlog import SegmentEventLog, read_segments
from assay.abtests.routing import Router
from assay.abtests.strategies import parse_strategy
from assay.abtests.worker import ABServed, ABState, ABTarget, Variant
from assay.errors import AssayError, NotFoundError
from assay.serving.metrics import Metrics, ModelMetrics
from assay.serving.replica import as_call, call_asgi

__all__ = ["ABRouterReplica", "RemoteServed", "SharedState", "state_actor_name"]

SYNC_S = 0.5  # how often a replica takes in the rewards other replicas joined
RETRIES = 4
# Routes a router answers at the root of its prefix, as a local router does at its own.
_ROOT_ROUTES = ("/health/live", "/health/ready", "/metrics")

# What the control plane hands the router (JSON values only):
# {"name", "strategy", "key", "status", "winner", "auto_promote", "alpha", "target_id",
#  "variants": [{"label", "name", "version", "provenance"}], "store", "events" (the
#  log's prefix in the store), "timeout_s", "max_body_bytes"}
RouterSpec = dict[str, Any]


def state_actor_name(test: str) -> str:
    return f"abtest-state:{test}"


class SharedState:
    """What every router replica of one test shares (a detached Ray actor)."""

    def __init__(self, test: str, store_url: str, prefix: str) -> None:
        self.test = test
        self.answers = Answers()
        self.credits: list[tuple[str, float]] = []  # every joined reward, in order
        self.decision: dict[str, Any] | None = None
        for event in read_segments(store_url, prefix):
            credited = self.answers.take(event)
            if credited is not None:
                self.credits.append(credited)

    def remember(self, request_id: str, label: str, predictions: str) -> None:
        self.answers.remember(request_id, label, predictions)

    def join(
        self, request_id: str, reward: float | None, truth: Any
    ) -> tuple[str, float | None, bool] | AssayError:
        """(variant, reward, duplicate), or the error to answer with."""
        try:
            label, value, duplicate = self.answers.join(self.test, request_id, reward, truth)
        except AssayError as exc:
            return exc
        if not duplicate and value is not None:
            self.credits.append((label, value))
        return label, value, duplicate

    def since(self, seen: int) -> tuple[list[tuple[str, float]], dict[str, Any] | None]:
        """The rewards joined after the first `seen`, and the decision, if one was taken."""
        return self.credits[seen:], self.decision

    def decide(self, winner: str, message: str) -> None:
        if self.decision is None:
            self.decision = {"winner": winner, "message": message, "at": time.time()}


class RemoteServed:
    """A variant served by a deployment of its own, as the A/B app sees a local model."""

    def __init__(self, handle: Any, variant: dict[str, Any], metrics: ModelMetrics) -> None:
        self.handle = handle
        self.name = str(variant["name"])
        self.version = int(variant["version"])
        self.ref = f"{self.name}@{self.version}"
        self.metrics = metrics
        self.headers = [
            (b"content-type", b"application/json"),
            (b"x-assay-model", self.name.encode()),
            (b"x-assay-model-version", str(self.version).encode()),
        ]

    async def answer_async(
        self, body: bytes, json_length: int | None = None, request_id: str | None = None
    ) -> tuple[bytes, int | None]:
        """The variant's answer to a body of either protocol. A replica that died answering
        (a crash, a lost node) is asked again: a prediction is safe to repeat.

        Raises:
            AssayError: the model's own error for this body.
        """
        from ray.exceptions import RayActorError

        for attempt in range(RETRIES + 1):
            try:
                out = await self.handle.infer.remote(body, json_length, request_id)
                break
            except RayActorError:
                if attempt == RETRIES:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        if isinstance(out, AssayError):
            raise out
        payload, length = out
        return bytes(payload), length


class ABRouterReplica:
    """One replica of the test's router: the A/B app over the variants' deployments."""

    def __init__(self, spec: RouterSpec, variants: dict[str, Any]) -> None:
        import ray

        from assay.cluster import NAMESPACE

        self.spec = spec
        self.name = str(spec["name"])
        self.root = f"/abtests/{self.name}"
        self.config = SimpleNamespace(
            timeout_s=float(spec["timeout_s"]), max_body_bytes=int(spec["max_body_bytes"])
        )
        self.metrics = Metrics()
        self.ab = ABState(self.metrics)
        self.events = SegmentEventLog(str(spec["store"]), str(spec["events"]))
        self.predlog = None  # each variant's replicas log their own predictions
        self.monitor_file: Path | None = None
        self.shared = ray.get_actor(state_actor_name(self.name), namespace=NAMESPACE)
        self.target = ABTarget(
            name=self.name,
            strategy=str(spec["strategy"]),
            key=spec.get("key"),
            status=str(spec["status"]),
            winner=spec.get("winner"),
            variants=tuple(
                Variant(
                    str(v["label"]),
                    Path("."),  # the models are the deployments', not files here
                    str(v["name"]),
                    int(v["version"]),
                    dict(v.get("provenance") or {}),
                )
                for v in spec["variants"]
            ),
            target_id=str(spec["target_id"]),
            auto_promote=bool(spec.get("auto_promote")),
            alpha=float(spec.get("alpha", 0.05)),
        )
        labels = [v.label for v in self.target.variants]
        served = {
            str(v["label"]): RemoteServed(
                variants[str(v["label"])],
                v,
                self.metrics.for_model(str(v["name"]), int(v["version"])),
            )
            for v in spec["variants"]
        }
        router = Router(parse_strategy(self.target.strategy, labels), labels, salt=self.name)
        self.ab.current = ABServed(self.target, served, router)  # type: ignore[arg-type]
        self._seen = 0  # rewards taken in from the shared state so far
        # One sync at a time: two (a feedback's and the loop's, or two feedbacks') that
        # both asked for the rewards after the same `_seen` counted them twice.
        self._sync_lock = asyncio.Lock()
        # With auto-promote: a look at the sequential test every so many feedbacks this
        # replica took; a decision reaches every replica through the shared state.
        self.decision = DecisionCheck(self.all_events, self._announce)
        self._syncing: asyncio.Task[None] | None = None
        from assay.abtests.app import create_ab_app

        self.app = create_ab_app(self)  # type: ignore[arg-type]

    # ---- HTTP -------------------------------------------------------------------------------

    async def __call__(self, request: Any) -> Any:
        from starlette.responses import Response

        if self._syncing is None:  # started here: the constructor has no running loop
            self._syncing = asyncio.get_running_loop().create_task(self._sync_loop())
        scope = request.scope
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and not path.startswith(root):
            path = root + path  # the proxy gave it relative to the prefix
        rest = path[len(self.root) :]
        if rest in _ROOT_ROUTES:
            path = rest
        status, headers, body = await call_asgi(self.app, await as_call(request, path))
        response = Response(body, status_code=status)
        response.raw_headers = headers
        return response

    # ---- what the A/B app asks of whoever holds the test -----------------------------------

    def remember(self, request_id: str, label: str, predictions: str) -> None:
        self.shared.remember.remote(request_id, label, predictions)

    async def feedback(
        self, ab: ABServed, request_id: str, reward: float | None, truth: Any
    ) -> dict[str, Any]:
        for attempt in range(RETRIES + 1):
            joined = await self.shared.join.remote(request_id, reward, truth)
            # The replica that answered tells the shared state without waiting for it: a
            # feedback sent at once may get there first, so it is asked again shortly.
            if not isinstance(joined, NotFoundError) or attempt == RETRIES:
                break
            await asyncio.sleep(0.02 * 2**attempt)
        if isinstance(joined, AssayError):
            raise joined
        label, value, duplicate = joined
        if duplicate:
            return {"request_id": request_id, "variant": label, "duplicate": True}
        self.events.append(
            {"t": "f", "id": request_id, "ts": time.time(), "reward": value, "label": truth}
        )
        await self.sync()  # this reward (and any before it) routes now, here
        self.decision.after_feedback(self.ab.current)
        return {"request_id": request_id, "variant": label, "reward": value, "duplicate": False}

    async def arms(self, ab: ABServed) -> dict[str, Any]:
        await self.sync()
        current = self.ab.current
        return dict((current or ab).router.arms)

    async def all_events(self) -> list[dict[str, Any]]:
        self.events.flush()  # what this replica holds, so the report has it
        return await asyncio.to_thread(
            read_segments, str(self.spec["store"]), str(self.spec["events"])
        )

    # ---- the shared state -------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(SYNC_S)
            try:
                await self.sync()
            except Exception:  # keep routing with what it has
                import logging

                logging.getLogger("assay.abtests").exception("could not read the shared state")

    async def sync(self) -> None:
        """Take in the rewards every replica joined since the last look, and a decision."""
        async with self._sync_lock:
            credits, decision = await self.shared.since.remote(self._seen)
            current = self.ab.current
            if current is None:
                return
            for label, reward in credits:
                if label in current.served:
                    current.router.reward(label, reward)
            self._seen += len(credits)
            if decision is not None and current.target.status == "running":
                self.ab.current = ABServed(
                    replace(current.target, status="concluded", winner=str(decision["winner"])),
                    current.served,
                    current.router,
                )

    async def _announce(self, looked_at: ABServed, winner: str, message: str) -> None:
        """The sequential test decided: tell the shared state (every replica routes to the
        winner from its next sync) and the store, where the control plane finds it."""
        from assay.store.segments import SegmentStore

        await self.shared.decide.remote(winner, message)
        decided = json.dumps({"winner": winner, "message": message, "at": time.time()})
        store = SegmentStore(str(self.spec["store"]), decision_prefix(self.spec))
        await asyncio.to_thread(store.put, DECIDED, decided.encode())
        await self.sync()

    def __del__(self) -> None:
        # Ray Serve stopped routing here and requests in flight have finished.
        self.ab.draining = True
        if self._syncing is not None:
            self._syncing.cancel()
        with contextlib.suppress(Exception):
            self.events.close()


DECIDED = "decided.json"


def decision_prefix(spec: RouterSpec) -> str:
    """Where the router leaves an auto-promote decision for the control plane: beside the
    test's events."""
    return str(spec["events"]).rsplit("/", 1)[0]
