"""The A/B test control plane: create, read, report, pause, resume, re-weight, conclude.

An A/B test runs as a router process (`python -m assay.abtests TEST_DIR`) that loads
every variant's model and routes among them in-process. Its folder has a service's
layout plus `events/`, the durable log every report is computed from. The test's
definition, status and verdict are a row in the metadata store.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.abtests import api
from assay.abtests.entities import (
    ABReport,
    ABTest,
    ABTestFailedError,
    ABTestStatus,
    RouterState,
    VariantSpec,
    provenance,
)
from assay.abtests.repository import ABTestRepository, to_abtest
from assay.data.entities import check_name
from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.serialize import dump
from assay.serving import processes
from assay.store.db import Database, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Row

    from assay.abtests.on_ray import RayABTests
    from assay.registry.entities import ModelVersion
    from assay.registry.service import RegistryService
    from assay.serving.service import ServingService

MODULE = "assay.abtests"

__all__ = ["ABTestFailedError", "ABTestService", "plan", "provenance"]


class ABTestService:
    """A/B tests on this machine or a Ray cluster, defined in the metadata store. A test on
    Ray (`test.on == "ray"`) is asked of `assay.abtests.on_ray` for all it does there."""

    def __init__(
        self,
        db: Database,
        registry: RegistryService,
        services: ServingService,
        folder: Path,
        *,
        cost_per_hour: float = 0.10,
    ) -> None:
        self.db = db
        self.registry = registry
        self.services = services
        self.dir = folder
        self.cost_per_hour = cost_per_hour
        self._recording: set[str] = set()  # tests whose router's decision is being recorded

    # ---- create -----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        variants: Sequence[str],
        strategy: str,
        *,
        key: str | None = None,
        port: int | None = None,
        host: str = api.HOST,
        workers: int = api.WORKERS,
        baseline: float | None = None,
        mde: float | None = None,
        auto_promote: bool = False,
        alias: str = api.ALIAS,
        timeout_s: float = api.TIMEOUT_S,
        log_sample: float = api.LOG_SAMPLE,
        on: str = api.ON,
        replicas: int | None = None,
        cpus: float | None = None,
        ready_timeout_s: float = 120.0,
        progress: api.Progress = api.quiet,
    ) -> ABTest:
        """Start an A/B test of `variants` (`LABEL=MODEL@V` or `LABEL=SERVICE`), routed
        by `strategy`; returns once its router answers. `log_sample` is the share of
        requests whose inputs and outputs go to the prediction log (0: none). With
        `baseline` (the control's expected rate) and `mde` (the smallest difference worth
        finding) the test is planned: its report counts toward the samples needed.

        `on="ray"` runs it on the Ray cluster at `ASSAY_RAY_ADDRESS` (`assay.abtests.on_ray`):
        `replicas` of the router and of each variant's model, `cpus` each.

        Raises:
            InvalidArgumentError: fewer than two variants, a malformed or repeated label,
                a strategy that does not parse or does not fit the variants.
            NotFoundError: an unknown model version or service.
            ConflictError: a test of that name exists, or the port is taken.
        """
        from assay.abtests.strategies import parse_strategy
        from assay.serving.predlog import check_sample, log_block

        check_name(name, "A/B test")
        check_sample(log_sample)
        if (baseline is None) != (mde is None):
            raise InvalidArgumentError("A plan needs both --baseline and --mde.")
        planned = plan(baseline, mde) if baseline is not None and mde is not None else None
        if workers < 1:
            raise InvalidArgumentError(f"--workers must be at least 1, not {workers}.")
        if on not in ("local", "ray"):
            raise InvalidArgumentError(f"--on must be local or ray, not {on!r}.")
        if on == "local" and (replicas is not None or cpus is not None):
            raise InvalidArgumentError(
                "--replicas and --cpus only apply to an A/B test on Ray; add --on ray."
            )
        if replicas is not None and replicas < 1:
            raise InvalidArgumentError(f"--replicas must be at least 1, not {replicas}.")
        if cpus is not None and not 0 < cpus <= 1024:
            raise InvalidArgumentError(f"--cpus must be above 0, not {cpus:g}.")
        if self._row(name) is not None:
            raise ConflictError(
                f"An A/B test named {name!r} exists; pick another name or look at it with "
                f"`assay abtests report {name}`.",
                abtest=name,
            )
        specs, versions = self._variants(variants)
        labels = [s.label for s in specs]
        parsed = parse_strategy(strategy, labels)
        row = {
            "variants": dump(specs),
            "strategy": parsed.spec,
            "key": key,
            "status": "running",
            "pid": None,
            "alias": alias,
            "auto_promote": auto_promote,
            "plan": planned,
        }
        if on == "ray":
            on_ray = self._ray()
            host, port = on_ray.place(name)
            with self.db.session() as s:
                ABTestRepository(s).insert(
                    name, **row, host=host, port=port, workers=replicas or 1, runs_on="ray"
                )
            try:
                on_ray.create(
                    self.get(name),
                    specs,
                    versions,
                    replicas=replicas or 1,
                    cpus=cpus,
                    timeout_s=timeout_s,
                    max_body_bytes=api.MAX_BODY_BYTES,
                    log_sample=log_sample,
                    ready_timeout_s=ready_timeout_s,
                    progress=progress,
                )
            except Exception:  # no row left behind either
                with self.db.session() as s:
                    ABTestRepository(s).delete(name)
                raise
            return self.get(name)
        port = processes.free_port(host) if port is None else processes.check_port(host, port)
        folder = self.dir / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        progress("copying the variants' models")
        bundles = [self.services.bundle_copy(folder, mv) for mv in versions]
        processes.write_json(
            folder / "service.json",
            {
                "name": name,
                "host": host,
                "port": port,
                "workers": workers,
                "timeout_s": timeout_s,
                "max_body_bytes": api.MAX_BODY_BYTES,
                "drain_s": 0.5,
                "log": log_block(self.registry.store.url, "abtests", name, log_sample),
            },
        )
        self._write_target(
            folder,
            name=name,
            strategy=parsed.spec,
            key=key,
            status="running",
            winner=None,
            auto_promote=auto_promote,
            alpha=0.05,
            specs=specs,
            versions=versions,
            bundles=bundles,
        )
        with self.db.session() as s:
            ABTestRepository(s).insert(name, **row, host=host, port=port, workers=workers)
        progress(f"starting the router on {host}:{port}")
        pid = processes.spawn(self.services.python, MODULE, folder)
        with self.db.session() as s:
            ABTestRepository(s).update(name, pid=pid)
        progress("waiting for every variant to load and answer a warm-up request")
        why = processes.wait_ready(folder, pid, host, port, workers, ready_timeout_s)
        if why is not None:
            tail = processes.tail(folder / "service.log", 15).strip()
            with self.db.session() as s:
                ABTestRepository(s).update(name, status="stopped", pid=None)
            raise ABTestFailedError(
                f"A/B test {name!r} did not start: {why}. The end of its log:\n{tail}",
                abtest=name,
            )
        return self.get(name)

    def _ray(self) -> RayABTests:
        from assay.abtests.on_ray import RayABTests

        return RayABTests(self.services.ray, self.registry.store.url)

    def _variants(self, variants: Sequence[str]) -> tuple[list[VariantSpec], list[ModelVersion]]:
        if len(variants) < 2:
            raise InvalidArgumentError(
                "An A/B test needs at least two variants: --variant A=MODEL@V --variant B=MODEL@V."
            )
        specs: list[VariantSpec] = []
        versions: list[ModelVersion] = []
        for text in variants:
            label, sep, ref = text.partition("=")
            label, ref = label.strip(), ref.strip()
            if not sep or not label or not ref:
                raise InvalidArgumentError(
                    f"Variant {text!r} is not LABEL=MODEL@VERSION (or LABEL=SERVICE).",
                    variant=text,
                )
            check_name(label, "Variant label")
            if any(s.label == label for s in specs):
                raise InvalidArgumentError(f"Variant label {label!r} is used twice.", label=label)
            service = None
            if "@" not in ref and self._service(ref) is not None:
                svc = self.services.get(ref)
                service, ref = svc.name, svc.model_ref
            mv = self.registry.resolve(ref)
            specs.append(VariantSpec(label, mv.name, mv.version, service))
            versions.append(mv)
        return specs, versions

    def _service(self, name: str) -> Any:
        try:
            return self.services.get(name)
        except (NotFoundError, InvalidArgumentError):
            return None

    def _write_target(
        self,
        folder: Path,
        *,
        name: str,
        strategy: str,
        key: str | None,
        status: ABTestStatus,
        winner: str | None,
        auto_promote: bool,
        alpha: float,
        specs: Sequence[VariantSpec],
        versions: Sequence[ModelVersion],
        bundles: Sequence[Path],
    ) -> str:
        target_id = uuid.uuid4().hex
        processes.write_json(
            folder / "target.json",
            {
                "name": name,
                "strategy": strategy,
                "key": key,
                "status": status,
                "winner": winner,
                "auto_promote": auto_promote,
                "alpha": alpha,
                "target_id": target_id,
                "variants": [
                    {
                        "label": spec.label,
                        "bundle": str(bundle),
                        "name": mv.name,
                        "version": mv.version,
                        "provenance": provenance(mv),
                    }
                    for spec, mv, bundle in zip(specs, versions, bundles, strict=True)
                ],
            },
        )
        return target_id

    # ---- changes while live -----------------------------------------------------------------

    def pause(self, name: str) -> ABTest:
        """Send all traffic to the control; nothing is analysed until `resume`."""
        return self._change(name, status="paused")

    def resume(self, name: str) -> ABTest:
        """Route by the strategy again after `pause`."""
        return self._change(name, status="running")

    def set_weights(self, name: str, weights: Sequence[float]) -> ABTest:
        """New weights for a weighted or sticky test (sticky moves only the keys it must).

        Raises:
            InvalidArgumentError: the strategy has no weights, or the weights do not fit.
        """
        from assay.abtests.strategies import parse_strategy

        test = self.get(name)
        kind = test.strategy.split(":")[0]
        if kind not in ("weighted", "sticky"):
            raise InvalidArgumentError(
                f"A/B test {name!r} routes by {test.strategy}, which has no weights.",
                abtest=name,
            )
        labels = [v.label for v in test.variants]
        spec = f"{kind}:{','.join(f'{w:g}' for w in weights)}"
        return self._change(name, strategy=parse_strategy(spec, labels).spec)

    def _change(
        self,
        name: str,
        *,
        status: ABTestStatus | None = None,
        strategy: str | None = None,
        winner: str | None = None,
    ) -> ABTest:
        test = self.get(name)
        if test.status in ("concluded", "stopped") and status != "concluded":
            raise ConflictError(f"A/B test {name!r} is {test.status}; it takes no changes.")
        if test.state != "running":
            raise ConflictError(
                f"A/B test {name!r}'s router is {test.state}; start it again with "
                f"`assay abtests start {name}`.",
                abtest=name,
            )
        if test.on == "ray":
            now = self._ray().change(test, status=status, strategy=strategy, winner=winner)
        else:
            now = self._change_locally(test, status=status, strategy=strategy, winner=winner)
        with self.db.session() as s:
            ABTestRepository(s).update(name, **now)
        return self.get(name)

    def _change_locally(
        self,
        test: ABTest,
        *,
        status: ABTestStatus | None,
        strategy: str | None,
        winner: str | None,
    ) -> dict[str, Any]:
        """Rewrite the router's target and wait until every worker took it; what it now
        runs with, for the row."""
        folder = self.dir / test.name
        target = json.loads((folder / "target.json").read_text())
        target.update(
            status=status or target["status"],
            strategy=strategy or target["strategy"],
            winner=winner if winner is not None else target.get("winner"),
            target_id=uuid.uuid4().hex,
        )
        processes.write_json(folder / "target.json", target)
        why = processes.await_target(folder, target["target_id"], test.workers, 60.0)
        if why is not None:
            raise ABTestFailedError(f"The router did not take the change: {why}.")
        return {
            "status": target["status"],
            "strategy": target["strategy"],
            "winner": target.get("winner"),
        }

    def conclude(self, name: str, winner: str, *, promote: bool = True) -> ABTest:
        """Stop the test, record the verdict, and point the test's alias (`champion`) at
        the winner's model version.

        Raises:
            InvalidArgumentError: `winner` is not one of the test's variants.
            ConflictError: the test is already concluded or stopped.
        """
        test = self.get(name)
        if test.status in ("concluded", "stopped"):
            raise ConflictError(f"A/B test {name!r} is already {test.status}.", abtest=name)
        variant = test.variant(winner)
        if variant is None:
            labels = ", ".join(v.label for v in test.variants)
            raise InvalidArgumentError(
                f"A/B test {name!r} has no variant {winner!r} (variants: {labels}).",
                abtest=name,
                winner=winner,
            )
        report = self.report(name, auto=False)
        if test.state == "running":
            # The router keeps answering, all of it with the winner, so no client breaks;
            # `stop` ends it.
            self._change(name, status="concluded", winner=winner)
        if promote:
            self.registry.alias(variant.model_ref, test.alias)
        with self.db.session() as s:
            ABTestRepository(s).update(
                name,
                status="concluded",
                winner=winner,
                concluded_at=utcnow(),
                verdict={
                    "winner": winner,
                    "model": variant.model_ref,
                    "alias": test.alias if promote else None,
                    "analysis": report.get("verdict"),
                    "variants": report.get("variants"),
                },
            )
        return self.get(name)

    def start(self, name: str, *, ready_timeout_s: float = 120.0) -> ABTest:
        """Start a stopped router again on its folder: the log, and so the analysis, the
        bandits' learning and sticky assignments, carry on where they were.

        Raises:
            ConflictError: the router runs, or the test is concluded.
        """
        test = self.get(name)
        if test.state != "stopped":
            raise ConflictError(f"A/B test {name!r}'s router is already {test.state}.")
        if test.status == "concluded":
            raise ConflictError(f"A/B test {name!r} is concluded; start a new one.")
        status: ABTestStatus = "running" if test.status == "stopped" else test.status
        if test.on == "ray":
            on_ray = self._ray()
            on_ray.start(test, status, ready_timeout_s)
            with self.db.session() as s:
                ABTestRepository(s).update(name, status=status)
            processes.await_route(test.url, ready_timeout_s)
            return self.get(name)
        folder = self.dir / name
        if test.pid:
            processes.wait_gone(test.pid, timeout_s=5.0)
        processes.check_port(test.host, test.port)
        target = json.loads((folder / "target.json").read_text())
        target.update(status=status, target_id=uuid.uuid4().hex)
        processes.write_json(folder / "target.json", target)
        pid = processes.spawn(self.services.python, MODULE, folder)
        with self.db.session() as s:
            ABTestRepository(s).update(name, pid=pid, status=status)
        why = processes.wait_ready(folder, pid, test.host, test.port, test.workers, ready_timeout_s)
        if why is not None:
            raise ABTestFailedError(f"A/B test {name!r} did not start: {why}.", abtest=name)
        return self.get(name)

    def stop(self, name: str) -> ABTest:
        """Stop the router without a verdict."""
        test = self.get(name)
        if test.on == "ray":
            self._ray().stop(test)
        elif test.pid and processes.is_service_process(test.pid, self.dir / name):
            processes.terminate(test.pid, timeout_s=30.0)
        with self.db.session() as s:
            ABTestRepository(s).update(
                name, pid=None, status="stopped" if test.status != "concluded" else "concluded"
            )
        return self.get(name)

    # ---- reading ------------------------------------------------------------------------------

    def tests(self) -> list[ABTest]:
        """Every A/B test, with the state its router is in."""
        with self.db.read() as s:
            rows = ABTestRepository(s).rows()
        for row in rows:
            if self._decided(row):
                return self.tests()  # one was concluded by its router: read them again
        return [to_abtest(r, self._state(r)) for r in rows]

    def _decided(self, row: Row[Any]) -> bool:
        """Record a decision the router took on its own (auto-promote): conclude the test
        and move the alias. Returns whether there was one to record."""
        if row.status != "running" or not row.auto_promote or row.name in self._recording:
            return False
        if row.runs_on == "ray":
            found = self._ray().winner(to_abtest(row, "running"))
            if found is None:
                return False
            winner = found
        else:
            path = self.dir / row.name / "decided.json"
            if not path.exists():
                return False
            try:
                winner = str(json.loads(path.read_text())["winner"])
                os.replace(path, path.with_name("decided.recorded.json"))
            except (OSError, ValueError, KeyError):
                return False
        # Recorded once: concluding reads the test again, and must not come back here.
        self._recording.add(row.name)
        try:
            self.conclude(row.name, winner)
        finally:
            self._recording.discard(row.name)
        return True

    def get(self, name: str) -> ABTest:
        """One A/B test.

        Raises:
            NotFoundError: no such test.
        """
        row = self._row(name)
        if row is None:
            raise NotFoundError(
                f"No A/B test named {name!r}. List them with `assay abtests list`.", abtest=name
            )
        if self._decided(row):
            return self.get(name)
        return to_abtest(row, self._state(row))

    def report(self, name: str, *, auto: bool = True) -> ABReport:
        """The analysis of everything the test logged. With `auto`, a test created with
        auto-promotion whose sequential test has decided is concluded now."""
        from assay.abtests.eventlog import read_all
        from assay.abtests.report import build_report

        test = self.get(name)
        if test.on == "ray":
            events = self._ray().events(test)
        else:
            events = read_all(self.dir / name / "events")
        analysis = build_report(
            events,
            labels=[v.label for v in test.variants],
            strategy=test.strategy,
            cost_per_hour=self.cost_per_hour,
            planned_per_variant=(test.plan or {}).get("per_variant"),
        )
        doc: ABReport = {**analysis, "abtest": test, "auto_concluded": False}
        winner = doc["verdict"]["winner"]
        decided = doc["verdict"]["decided"] and winner is not None
        if auto and test.auto_promote and test.status == "running" and decided:
            concluded = self.conclude(name, str(winner))
            doc["abtest"] = concluded
            doc["auto_concluded"] = True
        return doc

    def logs(self, name: str, *, lines: int = api.LOG_LINES) -> str:
        test = self.get(name)
        if test.on == "ray":
            return self._ray().logs(test, lines)
        return processes.tail(self.dir / name / "service.log", lines)

    def folder(self, name: str) -> Path:
        """Where the test's router keeps its state (`monitor.json` goes there too).

        Raises:
            NotFoundError: no such test.
        """
        self.get(name)
        return self.dir / name

    def _row(self, name: str) -> Row[Any] | None:
        with self.db.read() as s:
            return ABTestRepository(s).row(name)

    def _state(self, row: Row[Any]) -> RouterState:
        if row.runs_on == "ray":
            return self._ray().state(row.name, row.status, row.host, row.port)
        if not row.pid or not processes.is_service_process(row.pid, self.dir / row.name):
            return "stopped"
        url = processes.probe_url(row.host, row.port)
        return "running" if processes.ready(url) else "starting"


def plan(baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> dict[str, Any]:
    """How many samples each variant needs to detect `mde` over `baseline`."""
    from assay.abtests.stats import sample_size

    n = sample_size(baseline, mde, alpha=alpha, power=power)
    return {"baseline": baseline, "mde": mde, "alpha": alpha, "power": power, "per_variant": n}
