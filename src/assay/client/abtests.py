"""`client.abtests`: A/B tests over HTTP (the `ABTestsAPI` contract)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from assay.abtests import api
from assay.abtests.api import Progress, quiet
from assay.client.http import Part, parse
from assay.serialize import load

if TYPE_CHECKING:
    from assay.abtests.entities import ABReport, ABTest


class ABTestsClient(Part):
    """The server's A/B tests: what `ABTestService` offers, the same verbs and entities."""

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
        progress: Progress = quiet,
    ) -> ABTest:
        from assay.abtests.entities import ABTest

        progress("starting its router on the server")
        doc = self._call(
            "POST",
            "/abtests",
            json={"name": name, "variants": list(variants), "strategy": strategy, "key": key,
                  "port": port, "host": host, "workers": workers, "baseline": baseline,
                  "mde": mde, "auto_promote": auto_promote, "alias": alias,
                  "timeout_s": timeout_s, "log_sample": log_sample, "on": on,
                  "replicas": replicas, "cpus": cpus},
        )  # fmt: skip
        return parse(ABTest, doc)

    def tests(self) -> list[ABTest]:
        from assay.abtests.entities import ABTest

        return self._list(ABTest, "/abtests")

    def get(self, name: str) -> ABTest:
        from assay.abtests.entities import ABTest

        return self._get(ABTest, f"/abtests/{name}")

    def report(self, name: str) -> ABReport:
        from assay.abtests.entities import ABReport

        return load(ABReport, self._call("GET", f"/abtests/{name}/report"))

    def conclude(self, name: str, winner: str, *, promote: bool = True) -> ABTest:
        from assay.abtests.entities import ABTest

        return parse(ABTest, self._call("POST", f"/abtests/{name}/conclude",
                                        json={"winner": winner, "promote": promote}))  # fmt: skip

    def pause(self, name: str) -> ABTest:
        from assay.abtests.entities import ABTest

        return parse(ABTest, self._call("POST", f"/abtests/{name}/pause"))

    def resume(self, name: str) -> ABTest:
        from assay.abtests.entities import ABTest

        return parse(ABTest, self._call("POST", f"/abtests/{name}/resume"))

    def set_weights(self, name: str, weights: Sequence[float]) -> ABTest:
        from assay.abtests.entities import ABTest

        doc = self._call("PUT", f"/abtests/{name}/weights", json={"weights": list(weights)})
        return parse(ABTest, doc)

    def start(self, name: str) -> ABTest:
        from assay.abtests.entities import ABTest

        return parse(ABTest, self._call("POST", f"/abtests/{name}/start"))

    def stop(self, name: str) -> ABTest:
        from assay.abtests.entities import ABTest

        return parse(ABTest, self._call("POST", f"/abtests/{name}/stop"))

    def logs(self, name: str, *, lines: int = api.LOG_LINES) -> str:
        return str(self._call("GET", f"/abtests/{name}/logs", params={"lines": lines}) or "")
