"""`--remote URL` (or ASSAY_REMOTE): the CLI's commands through the SDK, same output.

A `RemoteWorkspace` stands where a `Workspace` does and offers the same service
objects (`ws.data`, `ws.runs`, …). Each method the commands call is one SDK call;
a method with no API behind it yet says so in one line instead of failing oddly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.client import Client
from assay.errors import InvalidArgumentError

if TYPE_CHECKING:
    from assay.abtests.entities import ABReport
    from assay.monitoring.entities import MonitorReport, Window
    from assay.registry.entities import LineageTree
    from assay.serving.entities import ServiceStatus


class _Remote:
    """A service whose unlisted methods are refused with a clear message."""

    what = ""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def refused(*args: Any, **kwargs: Any) -> Any:
            raise InvalidArgumentError(
                f"This command is not available with --remote yet ({self.what}.{name}); "
                "run it on the server's machine."
            )

        return refused


class RemoteData(_Remote):
    what = "data"

    def datasets(self, *, include_params: bool = False) -> list[Any]:
        return self.client.datasets(include_params=include_params)

    def log(self, name: str) -> list[Any]:
        return self.client.log(name)

    def resolve(self, ref: str) -> Any:
        return self.client.version(str(ref))[0]

    def files(self, version: Any) -> tuple[Any, ...]:
        return tuple(self.client.version(version.ref)[1])

    def commit(
        self,
        name: str,
        path: Path,
        message: str = "",
        *,
        checks: Any = None,
        allow_invalid: bool = False,
        progress: Any = None,
        **_: Any,
    ) -> Any:
        return self.client.commit(name, path, message, checks=checks, allow_invalid=allow_invalid)

    def validate(self, ref: str, checks: Any) -> tuple[Any, Any]:
        return self.client.validate(ref, checks)

    def tag(self, ref: str, tag: str, *, force: bool = False) -> Any:
        from assay.client.http import parse
        from assay.data.entities import DataVersion

        doc = self.client._call("POST", "/tags", json={"ref": ref, "tag": tag, "force": force})
        return parse(DataVersion, doc)

    def verify(self, progress: Any = None) -> Any:
        from assay.client.http import parse
        from assay.data.entities import VerifyReport

        return parse(VerifyReport, self.client._call("POST", "/verify"))

    def checkout(self, ref: str, dest: Path, *, force: bool = False, progress: Any = None) -> Any:
        """Download every file of a version into `dest` (each checked against its hash)."""
        from assay.store.paths import check_destination

        version, files = self.client.version(ref)
        dest = Path(dest)
        check_destination(dest, force=force)
        for i, entry in enumerate(files, start=1):
            self.client.download(version.ref, entry.path, dest.joinpath(*entry.path.split("/")))
            if progress is not None:
                progress(i, len(files))
        return version

    def profile(self, ref: str) -> tuple[Any, dict[str, Any]]:
        from assay.client.http import parse
        from assay.data.entities import DataVersion
        from assay.data.profiles import TableProfile

        doc = self.client._call("GET", f"/profiles/{ref}")
        return parse(DataVersion, doc["version"]), parse(dict[str, TableProfile], doc["tables"])

    def diff(self, old_ref: str, new_ref: str, *, key: str | None = None) -> Any:
        return self.client.diff(old_ref, new_ref, key=key)


class RemotePipelines(_Remote):
    what = "pipelines"

    def pipelines(self) -> list[Any]:
        return self.client.pipelines()

    def register(self, path: Path, name: str | None = None, message: str = "") -> Any:
        return self.client.register_pipeline(path, name, message)

    def resolve(self, ref: str) -> Any:
        return self.client.pipeline(ref)

    def log(self, name: str) -> list[Any]:
        return self.client.pipeline_log(name)

    def files(self, version: Any) -> tuple[Any, ...]:
        return tuple(self.client.pipeline_files(version.ref))

    def source(self, version: Any, path: str | None = None) -> str:
        return self.client.pipeline_source(version.ref, path)

    def readable(self, version: Any, path: str | None = None) -> str:
        from assay.pipelines import notebook

        wanted = path or version.entry
        text = self.source(version, wanted)
        return notebook.as_script(text) if notebook.is_notebook(wanted) else text

    def diff(self, a_ref: str, b_ref: str) -> str:
        return self.client.pipeline_diff(a_ref, b_ref)


class RemoteRuns(_Remote):
    what = "runs"

    def get(self, ref: str) -> Any:
        return self.client.get_run(ref)

    def search(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        archived: bool = False,
    ) -> list[Any]:
        if offset:
            raise InvalidArgumentError("An offset is not available with --remote.")
        return self.client.runs(
            experiment=experiment, filter=filter, sort=sort, limit=limit, archived=archived
        )

    def archive(self, refs: Sequence[str], *, restore: bool = False) -> list[str]:
        return self.client.archive_runs(refs, restore=restore)

    def archive_experiment(self, name: str, *, restore: bool = False) -> int:
        return self.client.archive_experiment(name, restore=restore)

    def leaderboard(
        self, experiment: str, metric: str, *, minimize: bool | None = None, limit: int = 10
    ) -> list[Any]:
        from assay.runs.service import leaderboard_query

        where, order = leaderboard_query(metric, minimize)
        return self.search(experiment=experiment, filter=where, sort=order, limit=limit)

    def compare(self, refs: Sequence[str]) -> list[Any]:
        if len(refs) < 2:
            raise InvalidArgumentError("Compare needs at least two runs.")
        return [self.get(r) for r in refs]

    def logs(self, ref: str) -> str:
        return self.client.logs(ref)

    def artifacts(self, ref: str) -> list[tuple[str, str, int]]:
        found = self.client._call("GET", f"/runs/{ref}/artifacts")
        return [(a["path"], a["hash"], a["size"]) for a in found]

    def series(self, ref: str, key: str | None = None) -> list[tuple[Any, ...]]:
        return [(p["key"], p["value"], p["step"], p["ts"]) for p in self.client.metrics(ref, key)]

    def experiments(self) -> list[tuple[str, int]]:
        found = self.client._call("GET", "/experiments", params={"limit": 1000})["items"]
        return [(e["name"], e["runs"]) for e in found]

    def code_of(self, ref: str) -> Any:
        version, files = self.client.code(ref)
        self._code_files = getattr(self, "_code_files", {})
        self._code_files[version.hash] = files
        return version

    def code_files(self, version: Any) -> dict[str, bytes]:
        found: dict[str, bytes] = getattr(self, "_code_files", {}).get(version.hash, {})
        return found

    def children(self, ref: str) -> list[Any]:
        return self.client.children(ref)

    def rerun_and_wait(self, ref: str) -> Any:
        from assay.client.http import parse
        from assay.runs.entities import Run

        run = parse(Run, self.client._call("POST", f"/runs/{ref}/rerun"))
        while run.status in ("queued", "running"):
            time.sleep(0.5)
            run = self.client.get_run(run.id)
        return run

    def start(
        self,
        pipeline: str,
        *,
        data: str,
        params: dict[str, Any],
        experiment: str | None,
        name: str | None,
        force: bool,
        on_wait: Any = None,
    ) -> Any:
        """Queue a run on the server and wait for it (the server executes it)."""
        run = self.client.run(
            pipeline, data=data, params=params, experiment=experiment, name=name, force=force,
            wait=False,
        )  # fmt: skip
        said = None
        while run.status in ("queued", "running"):
            if on_wait is not None and run.status != said:
                on_wait(run)
                said = run.status
            time.sleep(0.5)
            run = self.client.get_run(run.id)
        return run


class RemoteRegistry(_Remote):
    what = "models"

    def models(self) -> list[Any]:
        return self.client.models()

    def versions(self, name: str) -> list[Any]:
        return self.client.model_versions(name)

    def resolve(self, ref: str) -> Any:
        return self.client.model(ref)

    def alias(self, ref: str, alias: str) -> Any:
        return self.client.alias(ref, alias)

    def register_run(self, run_ref: str, name: str | None = None) -> Any:
        return self.client.register_run(run_ref, name)

    def register_file(
        self, path: Path, name: str, *, trust: bool = False, description: str = "", **_: Any
    ) -> Any:
        return self.client.register_model_file(path, name, trust=trust, description=description)

    def export(self, ref: str, dest: Path) -> tuple[Any, Path]:
        return self.client.export_model(ref, dest)

    def lineage(self, ref: str) -> LineageTree:
        return self.client.lineage(ref)


class RemoteServices(_Remote):
    what = "services"

    def services(self) -> list[Any]:
        return self.client.services()

    def get(self, name: str) -> Any:
        from assay.client.http import parse
        from assay.serving.entities import Service

        return parse(Service, self.client._call("GET", f"/services/{name}"))

    def deploy(
        self,
        name: str,
        model_ref: str,
        *,
        port: int | None = None,
        workers: int = 1,
        host: str = "127.0.0.1",
        timeout_s: float = 30.0,
        max_body_bytes: int = 10 * 1024 * 1024,
        log_sample: float = 1.0,
        **_: Any,
    ) -> Any:
        return self.client.deploy(
            name, model_ref, port=port, workers=workers, host=host, timeout_s=timeout_s,
            max_body_bytes=max_body_bytes, log_sample=log_sample,
        )  # fmt: skip

    def status(self, name: str) -> ServiceStatus:
        return self.client.service_status(name)

    def stop(self, name: str, *, timeout_s: float = 60.0) -> Any:
        return self.client.stop_service(name, timeout_s=timeout_s)

    def start(self, name: str, **_: Any) -> Any:
        return self.get_from(self.client._call("POST", f"/services/{name}/start"))

    def update(self, name: str, model_ref: str, **_: Any) -> Any:
        return self.get_from(
            self.client._call("PUT", f"/services/{name}", json={"model": model_ref})
        )

    def logs(self, name: str, *, lines: int = 200) -> str:
        return str(
            self.client._call("GET", f"/services/{name}/logs", params={"lines": lines}) or ""
        )

    def get_from(self, doc: Any) -> Any:
        from assay.client.http import parse
        from assay.serving.entities import Service

        return parse(Service, doc)


class RemoteABTests(_Remote):
    what = "abtests"

    def tests(self) -> list[Any]:
        return self.client.abtests()

    def create(self, name: str, variants: Sequence[str], strategy: str, **options: Any) -> Any:
        allowed = {"key", "port", "host", "workers", "baseline", "mde", "auto_promote", "alias",
                   "log_sample"}  # fmt: skip
        return self.client.create_abtest(
            name,
            variants,
            strategy,
            **{k: v for k, v in options.items() if k in allowed},
        )

    def report(self, name: str, **_: Any) -> ABReport:
        return self.client.abtest_report(name)

    def conclude(self, name: str, winner: str, *, promote: bool = True) -> Any:
        return self.client.conclude(name, winner, promote=promote)

    def stop(self, name: str) -> Any:
        return self.client.stop_abtest(name)

    def _test(self, doc: Any) -> Any:
        from assay.abtests.entities import ABTest
        from assay.client.http import parse

        return parse(ABTest, doc)

    def pause(self, name: str) -> Any:
        return self._test(self.client._call("POST", f"/abtests/{name}/pause"))

    def resume(self, name: str) -> Any:
        return self._test(self.client._call("POST", f"/abtests/{name}/resume"))

    def start(self, name: str, **_: Any) -> Any:
        return self._test(self.client._call("POST", f"/abtests/{name}/start"))

    def set_weights(self, name: str, weights: Sequence[float]) -> Any:
        doc = self.client._call("PUT", f"/abtests/{name}/weights", json={"weights": list(weights)})
        return self._test(doc)

    def logs(self, name: str, *, lines: int = 200) -> str:
        return str(self.client._call("GET", f"/abtests/{name}/logs", params={"lines": lines}) or "")


class RemoteMonitoring(_Remote):
    what = "monitor"

    def check(
        self,
        name: str,
        *,
        window: Window | None = None,
        reference: str | None = None,
        record: bool = True,
        **_: Any,
    ) -> MonitorReport:
        return self.client.monitor(name, reference=reference, record=record, **_window(window))

    def configure(self, name: str, text: str, source: str = "monitor config") -> Any:
        return self.client.configure_monitor(name, text)

    def get(self, name: str) -> Any:
        return self.client.get_monitor(name)

    def monitors(self) -> list[Any]:
        return self.client.monitors()

    def history(self, name: str, *, limit: int = 200) -> list[Any]:
        return self.client.monitor_history(name, limit)

    def snapshot(
        self,
        name: str,
        dataset: str,
        *,
        window: Window | None = None,
        labeled_only: bool = False,
        message: str | None = None,
        **_: Any,
    ) -> Any:
        return self.client.snapshot(
            name, dataset, labeled_only=labeled_only, message=message, **_window(window)
        )

    def snapshots(self, name: str | None = None) -> list[Any]:
        return self.client.snapshots(name)

    def retrain(
        self,
        model_ref: str,
        with_ref: str,
        *,
        alone: bool = False,
        challenge: str | None = None,
        label: str | None = None,
        **_: Any,
    ) -> Any:
        """The server runs it; this waits for the new version (and its A/B test)."""
        return self.client.retrain(
            model_ref, with_ref, alone=alone, challenge=challenge, label=label
        )

    def get_retrain(self, run_id: str) -> Any:
        return self.client.get_retrain(run_id)

    def retrains(self) -> list[Any]:
        return self.client.retrains()

    def run_due(self, **_: Any) -> Any:
        raise InvalidArgumentError(
            "The server runs scheduled checks itself (`assay server`); `assay monitor watch` "
            "is for a workspace on this machine."
        )


def _window(window: Window | None) -> dict[str, Any]:
    """A window as the API takes it: `last`, `start`, `end`."""
    if window is None:
        return {}
    last: str | None = None
    if window.requests is not None:
        last = str(window.requests)
    elif window.seconds is not None:
        last = f"{window.seconds:g}s"
    start = window.start.isoformat() if window.start and last is None else None
    return {"last": last, "start": start, "end": window.end.isoformat() if window.end else None}


# The sweep options `check_options` reads: what can be checked before the server is asked.
_OPTION_CHECKS = (
    "trials", "objectives", "direction", "parallel", "sampler", "pruner", "prune_on",
    "timeout_s", "budget", "register",
)  # fmt: skip


class RemoteSweeps(_Remote):
    what = "sweeps"

    def sweeps(self) -> list[Any]:
        return self.client.sweeps()

    def get(self, name: str) -> Any:
        return self.client.sweep(name)

    def create(
        self,
        pipeline: str,
        *,
        space_file: Path,
        params_file: Path | None = None,
        **options: Any,
    ) -> Any:
        """Record the sweep on the server, which drives it (`get` follows it). A pipeline
        path here is registered there first, and the files go as their contents."""
        from assay.runs.params import load_params
        from assay.runs.service import looks_like_path
        from assay.sweeps.service import check_options
        from assay.sweeps.space import load_space

        # What needs no server is checked before anything is sent, so that a bad option
        # or space registers no pipeline there; the server checks everything again.
        check_options(**{k: options[k] for k in _OPTION_CHECKS})
        load_space(space_file)
        params = load_params(params_file) if params_file else {}
        if looks_like_path(pipeline):
            pipeline = self.client.register_pipeline(Path(pipeline))[0].ref
        return self.client.create_sweep(
            pipeline,
            space=space_file.read_text(encoding="utf-8"),
            space_file=space_file.name,
            params=params,
            **options,
        )

    def resume(self, name: str) -> Any:
        return self.client.resume_sweep(name)

    def stop(self, name: str) -> Any:
        return self.client.stop_sweep(name)

    def ranked(self, sweep: Any) -> list[Any]:
        from assay.sweeps.service import rank

        return rank(sweep)

    def importances(self, sweep: Any, objective: int = 0) -> dict[str, float]:
        from assay.sweeps import study

        return study.importances(self.study(sweep), objective)

    def study(self, sweep: Any) -> Any:
        from assay.sweeps.service import study_of

        return study_of(sweep)


class RemoteTokens(_Remote):
    what = "tokens"

    def _token(self, doc: Any) -> Any:
        from assay.auth.entities import Token
        from assay.client.http import parse

        return parse(Token, doc)

    def create(self, name: str, scope: str) -> tuple[Any, str]:
        doc = self.client._call("POST", "/tokens", json={"name": name, "scope": scope})
        return self._token(doc["token"]), str(doc["secret"])

    def tokens(self) -> list[Any]:
        from assay.auth.entities import Token

        return self.client._list(Token, "/tokens")

    def revoke(self, name: str) -> Any:
        return self._token(self.client._call("DELETE", f"/tokens/{name}"))


class RemoteLifecycle(_Remote):
    what = "lifecycle"

    def delete_runs(self, refs: Sequence[str], *, force: bool = False) -> Any:
        return self.client.delete_runs(refs, force=force)

    def delete_model(self, ref: str, *, force: bool = False) -> Any:
        return self.client.delete_model(ref, force=force)

    def delete_data(self, ref: str, *, force: bool = False) -> Any:
        return self.client.delete_data(ref, force=force)

    def collect(self, *, dry_run: bool = False, grace_s: float = 3600) -> Any:
        return self.client.collect(dry_run=dry_run, grace_s=grace_s)


class RemoteWorkspace:
    """The services of the workspace a server holds, reached through the SDK."""

    def __init__(self, url: str, token: str | None) -> None:
        self.client = Client(url, token)
        self.remote = url
        self.data = RemoteData(self.client)
        self.pipelines = RemotePipelines(self.client)
        self.runs = RemoteRuns(self.client)
        self.registry = RemoteRegistry(self.client)
        self.services = RemoteServices(self.client)
        self.abtests = RemoteABTests(self.client)
        self.sweeps = RemoteSweeps(self.client)
        self.tokens = RemoteTokens(self.client)
        self.lifecycle = RemoteLifecycle(self.client)
        self.monitoring = RemoteMonitoring(self.client)

    def close(self) -> None:
        self.client.close()


__all__ = ["RemoteWorkspace"]
