"""The runs' use cases: prepare a run from its three inputs, execute it, read it back."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from assay import installed
from assay.data.entities import DataVersion
from assay.data.service import DataService
from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.limits import MAX_NAME_LENGTH, check_document
from assay.pipelines.notebook import is_notebook
from assay.runs import code as codes
from assay.runs import tracking
from assay.runs.code import CodeCapture, CodeVersion
from assay.runs.engine import StepSpec, execute, expose
from assay.runs.entities import Candidate, Run, lower_is_better
from assay.runs.failures import explain
from assay.runs.notebook import CellError
from assay.runs.params import apply_overrides, load_params
from assay.runs.repository import Point, RunRepository, runs
from assay.store import liveness
from assay.store.db import Database, aware, utcnow
from assay.store.objects import ObjectStore, hash_bytes
from assay.store.packs import Blobs

if TYPE_CHECKING:
    from assay.pipelines.entities import PipelineVersion
    from assay.pipelines.service import PipelineService

Emit = Callable[[dict[str, Any]], None]


def _quiet(event: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class RunSettings:
    author: str
    cache_dir: Path
    cost_per_hour: float
    heartbeat_s: float


class RunService:
    """Experiments and runs over the data and pipeline repositories."""

    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        data: DataService,
        pipelines: PipelineService,
        settings: RunSettings,
    ) -> None:
        self.db = db
        self.store = store
        self.blobs = Blobs(db, store)
        self.data = data
        self.pipelines = pipelines
        self.settings = settings
        self._experiment_ids: dict[str, int] = {}

    # ---- starting ------------------------------------------------------------------------

    def prepare(
        self,
        pipeline: str,
        *,
        data: str,
        params_file: Path | None = None,
        params: dict[str, Any] | None = None,
        overrides: Sequence[str] = (),
        experiment: str | None = None,
        name: str | None = None,
        force: bool = False,
        rerun_of: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Run:
        """`queue` a run (see there for the options and errors) and return it."""
        run_id = self.queue(
            pipeline,
            data=data,
            params_file=params_file,
            params=params,
            overrides=overrides,
            experiment=experiment,
            name=name,
            force=force,
            rerun_of=rerun_of,
            extra=extra,
        )
        return self.by_id(run_id)

    def queue(
        self,
        pipeline: str,
        *,
        data: str,
        params_file: Path | None = None,
        params: dict[str, Any] | None = None,
        overrides: Sequence[str] = (),
        experiment: str | None = None,
        name: str | None = None,
        force: bool = False,
        rerun_of: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Resolve the three inputs, version the params, and queue a run; returns its id.

        `pipeline` is `NAME[@V]` or a path to a pipeline file (registered first).
        The params come from `params_file` or, already read, from `params`;
        `overrides` apply on top. `extra` is stored with the run as it is.

        Raises:
            InvalidArgumentError: malformed params JSON or an override of the wrong type.
            NotFoundError: unknown pipeline or data version.
            ConflictError: these exact inputs already succeeded and `force` is not set.
        """
        if params_file is not None:
            params = load_params(params_file)
        params = apply_overrides(dict(params or {}), overrides)
        if looks_like_path(pipeline):
            pv, _ = self.pipelines.register(Path(pipeline))
        else:
            pv = self.pipelines.resolve(pipeline)
        dv = self.data.resolve(data)
        experiment = experiment or pv.pipeline

        def queued(repo: RunRepository, params_version: DataVersion) -> dict[str, Any]:
            inputs_key = hash_bytes(f"{pv.ref}|{dv.ref}|{params_version.ref}".encode())
            earlier = repo.succeeded_with_inputs(inputs_key)
            if earlier and not force:
                prior = repo.load(earlier)
                shown = ", ".join(
                    f"{k}={v:.4g}" for k, v in list(prior.metrics.items())[:3] if v is not None
                )
                raise ConflictError(
                    f"These inputs already ran: run {earlier[:8]} ({pv.ref}, {dv.ref}, "
                    f"{params_version.ref}{'; ' + shown if shown else ''}). "
                    "See it with `assay runs show`, or pass --force to run again.",
                    run=earlier,
                )
            pid, host, started = liveness.me()
            return {
                "status": "queued",
                # The command that queued it answers for it until a runner takes it: if
                # that command dies first, readers mark the run (`_reap`).
                "pid": pid,
                "host": host,
                "pid_started": started,
                "pipeline": pv.pipeline,
                "pipeline_version": pv.number,
                "dataset": dv.dataset,
                "data_version": dv.number,
                "inputs_key": inputs_key,
                "rerun_of": rerun_of,
                "code": pv.manifest,
                "extra": extra,
            }

        return self._open_run(experiment, pv.pipeline, name, params, queued)[0]

    def rerun(self, ref: str) -> Run:
        """Queue a run with exactly the inputs of run `ref` (always runs: --force implied)."""
        old = self.get(ref)
        if not (old.pipeline_ref and old.data_ref and old.params_ref):
            kept = (
                f" Its code is kept: `assay runs code {old.short_id}`; run a notebook as a "
                "pipeline (`assay run NOTEBOOK.ipynb --data D --params P`) to make it "
                "re-executable."
                if old.code
                else ""
            )
            raise InvalidArgumentError(
                f"Run {old.short_id} was tracked from a notebook or script, not made from "
                f"pipeline, data and params versions: there is nothing to re-execute.{kept}"
            )
        params = json.loads(self.data.read_file(self.data.resolve(old.params_ref), "params.json"))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "params.json"
            path.write_text(json.dumps(params))
            return self.prepare(
                old.pipeline_ref,
                data=old.data_ref,
                params_file=path,
                experiment=old.experiment,
                force=True,
                rerun_of=old.id,
            )

    def _open_run(
        self,
        experiment: str,
        params_of: str,
        name: str | None,
        params: dict[str, Any],
        fields: Callable[[RunRepository, DataVersion], dict[str, Any]],
    ) -> tuple[str, str, DataVersion, datetime]:
        """Version the params (dataset `params/<params_of>`) and insert the run, at once.

        One transaction: a run never exists without its params version, nor a params
        version committed for a run refused by `fields` (which may raise). A lost race
        for the params' version number retries the whole of it.

        Returns the run's id and name, its params version and its creation time.

        Raises:
            InvalidArgumentError: params beyond the bounds of `assay.limits` (every listing
                reads them back), or not JSON values.
        """
        flat = _checked_params(params)
        try:
            text = (json.dumps(params, indent=2, sort_keys=True) + "\n").encode()
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"Params must be JSON values (numbers, strings, booleans, lists, objects): {exc}."
            ) from None
        for attempt in range(20):
            try:
                with self.db.session() as conn:
                    # The same params as any earlier run reuse that version, so that a
                    # run is known by its inputs whatever ran in between.
                    pversion = self.data.commit_bytes_in(
                        conn,
                        f"params/{params_of}",
                        "params.json",
                        text,
                        "run parameters",
                        reuse=True,
                    ).version
                    repo = RunRepository(conn)
                    values = fields(repo, pversion)
                    exp_id = self._experiment_ids.get(experiment) or repo.experiment_id(experiment)
                    assert exp_id is not None
                    count = repo.run_count(exp_id)
                    run_id, now = uuid.uuid4().hex, utcnow()
                    run_name = name or f"{experiment}-{count + 1}"
                    repo.insert_run(
                        {
                            **values,
                            "id": run_id,
                            "experiment_id": exp_id,
                            "name": run_name,
                            "params_dataset": pversion.dataset,
                            "params_version": pversion.number,
                            "created_at": now,
                        },
                        flat,
                    )
                self._experiment_ids[experiment] = exp_id  # committed: safe to remember
                return run_id, run_name, pversion, now
            except IntegrityError:
                if attempt == 19:
                    raise
        raise AssertionError("unreachable")

    # ---- notebook runs (assay.start_run) ---------------------------------------------------

    def begin(
        self,
        experiment: str,
        *,
        data: str | None = None,
        params: dict[str, Any] | None = None,
        name: str | None = None,
        remote: bool = False,
        parent: str | None = None,
    ) -> Run:
        """Open a run that the caller's own code fills in (a notebook, a script).

        A `remote` run reports from another machine through the server: it has no
        process here to watch, so only a long silence (REMOTE_SILENCE) marks it dead.
        `parent` makes it a child of another run (a fit inside a run, say).

        Raises:
            NotFoundError: no such data version or parent run.
        """
        from assay.data.entities import check_name

        check_name(experiment, "Experiment")
        dv = self.data.resolve(data) if data else None
        params = dict(params or {})
        parent_id = self._resolve(parent) if parent else None

        def running(repo: RunRepository, params_version: DataVersion) -> dict[str, Any]:
            now = utcnow()
            return {
                "status": "running",
                "dataset": dv.dataset if dv else None,
                "data_version": dv.number if dv else None,
                "started_at": now,
                "heartbeat_at": now,
                "pid": None if remote else os.getpid(),
                "host": REMOTE_HOST if remote else _HOST,
                "parent_id": parent_id,
                "pid_started": None if remote else liveness.started(os.getpid()),
            }

        run_id, run_name, pversion, now = self._open_run(
            experiment, experiment, name, params, running
        )
        return Run(
            id=run_id,
            name=run_name,
            experiment=experiment,
            status="running",
            created_at=now,
            dataset=dv.dataset if dv else None,
            data_version=dv.number if dv else None,
            params_dataset=pversion.dataset,
            params_version=pversion.number,
            started_at=now,
            parent_id=parent_id,
            params=_flatten(params),
        )

    def _resolve(self, ref: str) -> str:
        with self.db.read() as conn:
            return RunRepository(conn).resolve_id(ref)

    def add_children(self, parent: str, children: Sequence[Candidate]) -> list[str]:
        """Record runs made inside `parent` that ran no code of their own: a search's
        candidates, each with its params and metrics, finished as `parent` saw them.
        One transaction however many; returns their ids in order.

        Raises:
            NotFoundError: no such parent run.
            InvalidArgumentError: a malformed param or metric.
        """
        now = utcnow()
        with self.db.session() as conn:
            repo = RunRepository(conn)
            parent_id = repo.resolve_id(parent)
            head = repo.load_row(parent_id)
            ids = []
            for i, child in enumerate(children):
                run_id = uuid.uuid4().hex
                repo.insert_run(
                    {
                        "id": run_id,
                        "experiment_id": head.experiment_id,
                        "name": child.name or f"{head.name}-{i + 1}",
                        "status": child.status,
                        "parent_id": parent_id,
                        "dataset": head.dataset,
                        "data_version": head.data_version,
                        "code": head.code,
                        "created_at": now,
                        "started_at": now,
                        "ended_at": now,
                    },
                    _checked_params({tracking.check_key(k): v for k, v in child.params.items()}),
                )
                points: list[Point] = [
                    (tracking.check_key(k), tracking.as_number(k, v), None, now.timestamp())
                    for k, v in child.metrics.items()
                ]
                repo.add_points(run_id, points)
                ids.append(run_id)
        return ids

    def children(self, ref: str) -> list[Run]:
        """The runs made inside run `ref`, in the order they were recorded."""
        run_id = self._resolve(ref)
        with self.db.read() as conn:
            return RunRepository(conn).search(runs.c.parent_id == run_id, [runs.c.name], None)

    def link_data(self, ref: str, data: str) -> Run:
        """Name the data version a run used (`assay.data.load` in a notebook). A run
        keeps the first version it is linked to; later ones are listed in its extra
        `data_also`.

        Raises:
            NotFoundError: no such run or data version.
        """
        dv = self.data.resolve(data)
        with self.db.session() as conn:
            repo = RunRepository(conn)
            run_id = repo.resolve_id(ref)
            row = repo.load_row(run_id)
            if row.dataset is None:
                repo.update(run_id, dataset=dv.dataset, data_version=dv.number)
            elif (row.dataset, row.data_version) != (dv.dataset, dv.number):
                extra = dict(row.extra or {})
                also = list(extra.get("data_also", []))
                if dv.ref not in also:
                    extra["data_also"] = [*also, dv.ref]
                    repo.update(run_id, extra=extra)
        return self.by_id(run_id)

    def annotate(self, ref: str, **extra: Any) -> None:
        """Merge JSON values into a run's `extra` (what a tracked run learned about itself:
        the fingerprint of its training data, a search's best candidate…).

        Raises:
            InvalidArgumentError: the merged `extra` beyond the bounds of `assay.limits`.
        """
        with self.db.session() as conn:
            repo = RunRepository(conn)
            run_id = repo.resolve_id(ref)
            merged = {**(repo.load_row(run_id).extra or {}), **extra}
            check_document(merged, "The run's extra")  # every listing reads it back
            repo.update(run_id, extra=merged)

    # ---- code versions -------------------------------------------------------------------

    def record_code(self, ref: str, capture: CodeCapture) -> CodeVersion:
        """Store the code that produced a tracked run, content-addressed, and link it.

        Raises:
            NotFoundError: no such run.
        """
        files = {name: self.store.put_bytes(data) for name, data in capture.files.items()}
        diff = None
        if capture.git is not None and capture.git.diff:
            diff = self.store.put_bytes(capture.git.diff.encode())
        raw = codes.manifest_of(capture, files, diff)
        digest = self.store.put_bytes(raw)
        with self.db.session() as conn:
            repo = RunRepository(conn)
            repo.update(repo.resolve_id(ref), code=digest)
        return codes.read_manifest(digest, raw)

    def code_of(self, ref: str) -> CodeVersion:
        """The code version a run executed: its pipeline snapshot, or what a tracked run
        captured.

        Raises:
            NotFoundError: no such run, or a run that recorded no code.
        """
        run = self.get(ref)
        if run.pipeline_ref:
            pv = self.pipelines.resolve(run.pipeline_ref)
            return CodeVersion(
                hash=pv.manifest,
                kind="pipeline",
                entry=pv.entry,
                files={f.path: f.hash for f in self.pipelines.files(pv)},
            )
        if not run.code:
            raise NotFoundError(
                f"Run {run.short_id} recorded no code: it was tracked from an interactive "
                "prompt, or by an Assay older than code capture.",
                run=run.id,
            )
        return codes.read_manifest(run.code, self.store.get_bytes(run.code))

    def code_files(self, version: CodeVersion) -> dict[str, bytes]:
        """Every file of a code version, checked against its hash; a git diff of
        uncommitted changes as `git.diff`."""
        out = {name: self.blobs.read(digest) for name, digest in version.files.items()}
        diff = (version.git or {}).get("diff")
        if diff:
            out["git.diff"] = self.store.get_bytes(str(diff))
        return out

    def log_points(
        self, ref: str, points: Sequence[tuple[str, float | None, int | None, float | None]]
    ) -> None:
        """Append metric points to a running run (a tracked run reporting from elsewhere).

        Raises:
            NotFoundError: no such run.
            ConflictError: the run is not running.
            InvalidArgumentError: a malformed key or value.
        """
        now = time.time()
        rows = [
            (tracking.check_key(k), tracking.as_number(k, v), s, t if t is not None else now)
            for k, v, s, t in points
        ]
        with self.db.session() as conn:
            repo = RunRepository(conn)
            # A full id (what clients send) needs no lookup first: the heartbeat, which
            # a reporting run is owed anyway, is also the check that it is running.
            run_id = ref if _FULL_ID.fullmatch(ref) else repo.resolve_id(ref)
            if not repo.beat_if_running(run_id, utcnow()):
                run_id = repo.resolve_id(run_id)  # NotFoundError
                status = repo.status(run_id)
                raise ConflictError(f"Run {run_id[:8]} is {status}; it takes no more metrics.")
            repo.add_points(run_id, rows)

    def log_params(self, ref: str, params: dict[str, Any]) -> None:
        """Add params to a running run; names it already has keep their values.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run is not running.
            InvalidArgumentError: a malformed name.
        """
        with self.db.session() as conn:
            repo = RunRepository(conn)
            run_id = self._running(repo, ref)
            repo.add_params(
                run_id, _checked_params({tracking.check_key(k): v for k, v in params.items()})
            )

    def add_artifacts(self, ref: str, files: dict[str, Path]) -> None:
        """Store files (name: local path) with a running run.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run is not running.
        """
        with self.db.read() as conn:
            run_id = self._running(RunRepository(conn), ref)
        tracking.store_artifacts(self.db, self.store, run_id, files)

    def _running(self, repo: RunRepository, ref: str) -> str:
        run_id = repo.resolve_id(ref)
        status = repo.status(run_id)
        if status != "running":
            raise ConflictError(f"Run {run_id[:8]} is {status}; it takes nothing more.")
        return run_id

    def finish(
        self,
        ref: str,
        status: str,
        error: str | None = None,
        *,
        reported: dict[str, float] | None = None,
        environment: dict[str, Any] | None = None,
    ) -> Run:
        """Close a tracked run with `status` (succeeded, failed or killed).

        The wall time is the server's own (open to close); what the caller `reported` of
        its machine (CPU seconds, peak memory) and its `environment` (Python, packages)
        are kept as it said, marked as reported.

        Raises:
            InvalidArgumentError: another status.
            ConflictError: the run is not running.
        """
        if status not in ("succeeded", "failed", "killed"):
            raise InvalidArgumentError(f"A run ends succeeded, failed or killed, not {status!r}.")
        with self.db.session() as conn:
            repo = RunRepository(conn)
            run_id = repo.resolve_id(ref)
            current, started = repo.status_and_start(run_id)
            if current != "running":
                raise ConflictError(f"Run {run_id[:8]} is {current}, not running.")
            now = utcnow()
            wall = (now - aware(started)).total_seconds() if started else 0.0
            # Only what the server can vouch for: the wall time between open and close
            # (the caller's CPU, memory and packages are its own machine's).
            resources: dict[str, Any] = {
                "wall_s": round(wall, 3),
                "cost": round(wall / 3600 * self.settings.cost_per_hour, 6),
                "cost_per_hour": self.settings.cost_per_hour,
            }
            for key in ("cpu_s", "peak_rss_bytes"):
                value = (reported or {}).get(key)
                if isinstance(value, int | float) and value >= 0:
                    resources[key] = round(float(value), 3)
                    resources["reported"] = True
            env = self._reported_environment(environment) if environment else None
            repo.update(
                run_id,
                status=status,
                error=error,
                ended_at=now,
                resources=resources,
                **({"environment": env} if env else {}),
            )
        return self.by_id(run_id)

    def _reported_environment(self, environment: dict[str, Any]) -> dict[str, Any]:
        """A caller's environment as a run keeps one: its package list stored once as an
        object, the rest as said (bounded: it is the caller's word)."""
        packages = environment.get("packages")
        out: dict[str, Any] = {
            k: str(environment[k])[:255]
            for k in ("python", "implementation", "platform", "cpus")
            if k in environment
        }
        if isinstance(packages, dict) and len(packages) <= 10_000:
            clean = {str(k)[:255]: str(v)[:64] for k, v in packages.items()}
            out["packages_object"] = self.store.put_bytes(
                json.dumps(clean, sort_keys=True).encode()
            )
            out["package_count"] = len(clean)
        out["reported"] = True
        return out

    def end(
        self,
        run_id: str,
        status: str,
        error: str | None,
        wall_s: float,
        cpu_s: float,
        points: list[Point] | None = None,
    ) -> None:
        """Close a notebook run, writing its last metric points in the same transaction."""
        _, peak = tracking.usage()
        resources = {
            "wall_s": round(wall_s, 3),
            "cpu_s": round(cpu_s, 3),
            "peak_rss_bytes": peak,
            "cost": round(wall_s / 3600 * self.settings.cost_per_hour, 6),
            "cost_per_hour": self.settings.cost_per_hour,
        }
        environment = self._environment()
        with self.db.session() as conn:
            repo = RunRepository(conn)
            if points:
                repo.add_points(run_id, points)
            repo.update(
                run_id,
                status=status,
                error=error,
                ended_at=utcnow(),
                resources=resources,
                environment=environment,
            )

    # ---- executing (in the runner process) -----------------------------------------------

    def execute(self, run_id: str, *, use_cache: bool = True, emit: Emit = _quiet) -> Run:
        """Execute a queued run here, recording everything; returns the finished run.

        A step that raises marks the run failed (traceback stored); Ctrl-C marks it killed.
        """
        run = self.by_id(run_id)
        if run.status != "queued":
            raise ConflictError(f"Run {run.short_id} is {run.status}, not queued.")
        recorder = tracking.RunRecorder(run.id, self.db, self.store, stoppable=True)
        cpu0, _ = tracking.usage()
        wall0 = time.perf_counter()
        with self.db.session() as conn:
            RunRepository(conn).update(
                run.id,
                status="running",
                started_at=utcnow(),
                heartbeat_at=utcnow(),
                pid=os.getpid(),
                host=_HOST,
                pid_started=liveness.started(os.getpid()),
            )
        recorder.start()
        tracking.activate(recorder)
        status, error, model, flavor = "failed", None, None, None
        params: dict[str, Any] = {}
        code_root: Path | None = None  # where the pipeline's own files are, for a failure
        emit({"event": "start", "run": run.id, "name": run.name})
        try:
            with tempfile.TemporaryDirectory(prefix="assay-run-") as tmp:
                pv = self.pipelines.resolve(f"{run.pipeline}@{run.pipeline_version}")
                entry = self._pipeline_dir(pv, Path(tmp) / "pipeline") / pv.entry
                code_root = entry.parent
                dv = self.data.resolve(run.data_ref or "")
                data_dir = self.data_dir(dv, Path(tmp) / "data")
                params = json.loads(
                    self.data.read_file(self.data.resolve(run.params_ref or ""), "params.json")
                )
                if is_notebook(pv.entry):
                    from assay.runs.notebook import execute_notebook

                    execute_notebook(
                        run_id=run.id,
                        entry=entry,
                        data_dir=data_dir,
                        params=params,
                        db=self.db,
                        store=self.store,
                        work=Path(tmp) / "work",
                        emit=emit,
                    )
                else:
                    model, flavor = self._run_steps(
                        run, pv, entry, dv, data_dir, params, recorder, use_cache, emit
                    )
            status = "succeeded"
        except KeyboardInterrupt as exc:  # Ctrl-C, or a signal that says why (its text)
            status, error = "killed", str(exc) or "Interrupted (Ctrl-C)."
        except tracking.RunStopped as exc:
            status, error = exc.reason, f"Stopped early ({exc.reason}) at the request of a sweep."
        except CellError as exc:  # the notebook's own traceback, not the runner's frames
            status, error = "failed", f"{exc.message}\n\n{exc.details.get('traceback', '')}"
        except BaseException as exc:  # the run records any failure of user code
            # The log keeps the whole traceback; the run, what its author needs to read.
            sys.stderr.write("".join(traceback.format_exception(exc)))
            status, error = "failed", explain(exc, code_root, run.id)
        finally:
            tracking.activate(None)
            recorder.close()
            cpu1, peak = tracking.usage()
            wall = time.perf_counter() - wall0
            resources = {
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu1 - cpu0, 3),
                "peak_rss_bytes": peak,
                "cost": round(wall / 3600 * self.settings.cost_per_hour, 6),
                "cost_per_hour": self.settings.cost_per_hour,
            }
            extra = dict(run.extra)
            if isinstance(params.get("seed"), int):
                extra["seed"] = params["seed"]  # also fed to random and numpy before the steps
            if recorder.split_info:
                extra["split"] = recorder.split_info
                if recorder.split_info.get("leaked_rows"):
                    emit({"event": "leakage", "rows": recorder.split_info["leaked_rows"]})
            with self.db.session() as conn:
                RunRepository(conn).update(
                    run.id,
                    status=status,
                    ended_at=utcnow(),
                    error=error,
                    model=model,
                    model_flavor=flavor,
                    resources=resources,
                    extra=extra,
                    environment=self._environment(),
                )
        finished = self.by_id(run.id)
        emit({"event": "end", "status": finished.status})
        return finished

    def _run_steps(
        self,
        run: Run,
        pv: PipelineVersion,
        entry: Path,
        dv: DataVersion,
        data_dir: Path,
        params: dict[str, Any],
        recorder: tracking.RunRecorder,
        use_cache: bool,
        emit: Emit,
    ) -> tuple[str | None, str | None]:
        """A Python pipeline's steps, in order; returns its model's hash and flavor."""
        from assay.pipelines.dsl import load_pipeline

        pipeline = load_pipeline(entry, pv.pipeline)
        _seed(params)
        unexpose = expose(pipeline, entry.parent)
        hashes = {s.name: s.code_hash for s in pv.steps}
        specs = [StepSpec(s.name, s.func, s.inputs, hashes.get(s.name, "")) for s in pipeline.steps]
        try:
            outcome = execute(
                specs,
                run_id=run.id,
                data_dir=data_dir,
                data_hash=dv.manifest,
                params=params,
                db=self.db,
                store=self.store,
                use_cache=use_cache,
                emit=emit,
            )
        finally:
            unexpose()
        if pv.metrics_step and pv.metrics_step in outcome.values:
            values = outcome.values[pv.metrics_step]
            if isinstance(values, dict):
                recorder.log_metrics(
                    {k: v for k, v in values.items() if isinstance(v, int | float)}
                )
        if pv.model_step and pv.model_step in outcome.hashes:
            return outcome.hashes[pv.model_step], _flavor(outcome.values[pv.model_step])
        return None, None

    def by_id(self, run_id: str) -> Run:
        """A run by full id, without looking for dead runners first (`get` does)."""
        with self.db.read() as conn:
            return RunRepository(conn).load(run_id)

    def _environment(self) -> dict[str, Any]:
        """The environment, its package list stored once as an object (it is the same for
        every run of a process, and of most processes)."""
        if not hasattr(self, "_env"):
            env = dict(installed.cached_environment(self.settings.cache_dir))
            packages = env.pop("packages")
            env["packages_object"] = self.store.put_bytes(
                json.dumps(packages, sort_keys=True).encode()
            )
            env["package_count"] = len(packages)
            self._env = env
        return self._env

    def packages(self, run: Run) -> dict[str, str]:
        """The packages (name: version) installed where `run` ran."""
        ref = run.environment.get("packages_object")
        if not ref:
            return dict(run.environment.get("packages", {}))
        found: dict[str, str] = json.loads(self.store.get_bytes(ref))
        return found

    def data_dir(self, dv: DataVersion, dest: Path | None = None) -> Path:
        """A data version's files on this machine, checked out once per content hash
        (into `dest` where the cache cannot be written)."""
        if dest is None:
            dest = Path(tempfile.gettempdir()) / f"assay-data-{uuid.uuid4().hex[:12]}"
        return self._cached_tree(
            "checkouts", dv.manifest, lambda where: self.data.checkout(dv.ref, where), dest
        )

    def _pipeline_dir(self, pv: PipelineVersion, dest: Path) -> Path:
        return self._cached_tree(
            "pipelines", pv.manifest, lambda where: self.pipelines.materialize(pv, where), dest
        )

    def _cached_tree(
        self, kind: str, digest: str, build: Callable[[Path], object], dest: Path
    ) -> Path:
        """A snapshot's files (a data version, a pipeline version), built once per machine.

        Snapshots are immutable, so one copy per content hash is kept in the local
        cache and reused by every later run. Runners starting together each build
        their own and publish it with one rename; whoever renames second simply uses
        the first one's. Where the cache cannot be written, `dest` is used instead.
        """
        cached = self.settings.cache_dir / kind / digest
        if cached.is_dir():
            return cached
        building = cached.with_name(f".{cached.name}.{uuid.uuid4().hex[:8]}")
        try:
            build(building)
            try:
                os.replace(building, cached)
            except OSError:
                if not cached.is_dir():
                    raise
            return cached
        except OSError:
            build(dest)
            return dest
        finally:
            if building.exists():
                import shutil

                shutil.rmtree(building, ignore_errors=True)

    def warm(self, pipeline_ref: str) -> None:
        """Import a pipeline version's code here once, ahead of its runs.

        A runner that will execute many runs of it (a sweep's trials) pays for the
        libraries the pipeline imports (scikit-learn, pandas…) while it waits for its
        first job. Best effort: a pipeline that fails to load fails its runs instead.
        """
        from assay.pipelines.dsl import load_pipeline

        pv = self.pipelines.resolve(pipeline_ref)
        if is_notebook(pv.entry):
            return  # each run gets a kernel of its own: nothing to import here
        with tempfile.TemporaryDirectory(prefix="assay-warm-") as tmp:
            load_pipeline(self._pipeline_dir(pv, Path(tmp)) / pv.entry, pv.pipeline)

    def request_stop(self, run_id: str, reason: str) -> None:
        """Ask a running run to end with status `reason` (e.g. "pruned").

        Its runner sees the request within a heartbeat and ends the run at the
        run's next `log_metric`; a run that logs nothing more finishes normally.
        """
        with self.db.session() as conn:
            RunRepository(conn).update(run_id, stop_reason=reason)

    def attach_logs(self, run_id: str, text: bytes) -> None:
        if not text:
            return  # nothing was printed: `assay runs logs` shows the same empty text
        digest = self.store.put_bytes(text)
        with self.db.session() as conn:
            RunRepository(conn).update(run_id, logs=digest)

    def mark(self, run_id: str, status: str, error: str) -> None:
        """Record that a runner ended without finishing its run (killed by a signal, …)."""
        with self.db.session() as conn:
            repo = RunRepository(conn)
            if repo.load(run_id).status in ("queued", "running"):
                repo.update(run_id, status=status, error=error, ended_at=utcnow())

    # ---- reading -------------------------------------------------------------------------

    def _reap(self) -> None:
        # Readers look for dead runners without taking the write lock; only when one
        # is found does a write transaction mark it.
        stale_after = timedelta(seconds=3 * self.settings.heartbeat_s + 3)
        with self.db.read() as conn:
            repo = RunRepository(conn)
            dead = repo.stale_runs(stale_after, _HOST, remote=(REMOTE_HOST, REMOTE_SILENCE))
            orphans = repo.orphaned_queued(_HOST)
        if dead or orphans:
            with self.db.session() as conn:
                RunRepository(conn).mark_dead(dead)
                RunRepository(conn).mark_orphaned(orphans, _HOST)

    def get(self, ref: str) -> Run:
        self._reap()
        with self.db.read() as conn:
            repo = RunRepository(conn)
            return repo.load(repo.resolve_id(ref))

    def search(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        archived: bool = False,
    ) -> list[Run]:
        """Runs matching a filter expression (see `assay.runs.query`), sorted. Archived
        runs, and the runs of archived experiments (unless that experiment is named),
        are left out unless `archived`."""
        from assay.runs.query import compile_filter, compile_sort
        from assay.runs.repository import experiments

        self._reap()
        clauses: list[Any] = []
        if not archived:
            clauses.append(runs.c.archived_at.is_(None))
            if not experiment:
                shelved = select(experiments.c.id).where(experiments.c.archived_at.is_not(None))
                clauses.append(runs.c.experiment_id.not_in(shelved))
        if experiment:
            with self.db.read() as conn:
                if RunRepository(conn).experiment_id(experiment, create=False) is None:
                    raise NotFoundError(
                        f"No experiment named {experiment!r}. List them with "
                        "`assay runs experiments`."
                    )
            clauses.append(
                runs.c.experiment_id
                == experiments.select()
                .with_only_columns(experiments.c.id)
                .where(experiments.c.name == experiment)
                .scalar_subquery()
            )
        if filter:
            clauses.append(compile_filter(filter))
        from sqlalchemy import and_

        where = and_(*clauses) if clauses else None
        order = compile_sort(sort) if sort else None
        with self.db.read() as conn:
            return RunRepository(conn).search(where, order, limit, offset)

    # ---- deleting and archiving --------------------------------------------------------------

    def delete(self, refs: Sequence[str]) -> list[str]:
        """Delete runs, and the runs made inside them, with everything they recorded
        (params, metrics, steps, artifact entries); their objects go at the next
        `assay gc`. Checking what depends on them is the caller's (`Lifecycle`).
        Returns the ids deleted.

        Raises:
            NotFoundError: no such run.
            ConflictError: a run is still queued or running.
        """
        with self.db.session() as conn:
            repo = RunRepository(conn)
            ids = [repo.resolve_id(r) for r in refs]
            doomed = list(dict.fromkeys([*ids, *repo.descendants(ids)]))
            for run_id in doomed:
                status = repo.status(run_id)
                if status in ("queued", "running"):
                    raise ConflictError(
                        f"Run {run_id[:8]} is {status}; stop it (or wait) before deleting it.",
                        run=run_id,
                    )
            repo.delete_runs(doomed)
        return doomed

    def using_data(self, dataset: str, number: int) -> list[str]:
        """The runs that used data version `dataset@number`, as data or as params."""
        with self.db.read() as conn:
            return RunRepository(conn).using_data(dataset, number)

    def archive(self, refs: Sequence[str], *, restore: bool = False) -> list[str]:
        """Archive runs (kept whole, out of listings), or with `restore` bring them back;
        returns their ids."""
        with self.db.session() as conn:
            repo = RunRepository(conn)
            ids = [repo.resolve_id(r) for r in refs]
            repo.set_archived(ids, None if restore else utcnow())
        return ids

    def archive_experiment(self, name: str, *, restore: bool = False) -> int:
        """Archive an experiment (its runs leave the listings with it), or restore it;
        returns how many runs it holds.

        Raises:
            NotFoundError: no such experiment.
        """
        with self.db.session() as conn:
            repo = RunRepository(conn)
            exp_id = repo.experiment_id(name, create=False)
            if exp_id is None:
                raise NotFoundError(
                    f"No experiment named {name!r}. List them with `assay runs experiments`."
                )
            repo.set_experiment_archived(exp_id, None if restore else utcnow())
            return repo.run_count(exp_id)

    def live_objects(self, conn: Connection, read: Callable[[str], bytes]) -> Iterator[str]:
        """Every object a run refers to: its logs, model and step outputs, artifacts,
        code version (manifest, files, diff), package list; and the step cache's outputs."""
        repo = RunRepository(conn)
        for digest in repo.referenced_objects():
            yield digest
        for digest in repo.code_versions():
            yield digest
            version = codes.read_manifest(digest, read(digest))
            yield from version.files.values()
            diff = (version.git or {}).get("diff")
            if diff:
                yield str(diff)

    def leaderboard(
        self, experiment: str, metric: str, *, minimize: bool | None = None, limit: int = 10
    ) -> list[Run]:
        """The experiment's succeeded runs, best first by `metric` (direction from its name)."""
        where, order = leaderboard_query(metric, minimize)
        return self.search(experiment=experiment, filter=where, sort=order, limit=limit)

    def keys(self) -> tuple[list[str], list[str]]:
        """Every param name and metric name any run has: (params, metrics), sorted."""
        with self.db.read() as conn:
            return RunRepository(conn).keys()

    def experiments(self) -> list[tuple[str, int]]:
        with self.db.read() as conn:
            return RunRepository(conn).experiment_names()

    def logs(self, ref: str) -> str:
        run = self.get(ref)
        if run.logs is None:
            return ""
        return self.store.get_bytes(run.logs).decode("utf-8", errors="replace")

    def series(
        self, ref: str, key: str | None = None
    ) -> list[tuple[str, float | None, int | None, float]]:
        run = self.get(ref)
        with self.db.read() as conn:
            return RunRepository(conn).series(run.id, key)

    def steps_of(self, run_id: str, key: str) -> list[tuple[int, float | None]]:
        """The stepped points of one metric of a run, by full id: (step, value), in order.

        Lean on purpose (no run lookup): a sweep polls it for every running trial.
        """
        with self.db.read() as conn:
            points = RunRepository(conn).series(run_id, key)
        return [(step, value) for _, value, step, _ in points if step is not None]

    def artifacts(self, ref: str) -> list[tuple[str, str, int]]:
        """The files stored with a run: (path, hash, size)."""
        run = self.get(ref)
        with self.db.read() as conn:
            return RunRepository(conn).artifacts(run.id)

    def compare(self, refs: Sequence[str]) -> list[Run]:
        if len(refs) < 2:
            raise InvalidArgumentError("Compare needs at least two runs.")
        return [self.get(r) for r in refs]


_HOST = liveness.HOST
# Runs tracked from other machines through the server (`begin(remote=True)`): no
# local process to look for, so they die of silence only, after REMOTE_SILENCE.
REMOTE_HOST = "remote"
REMOTE_SILENCE = timedelta(hours=1)
_FULL_ID = re.compile("[0-9a-f]{32}")  # a run id, as clients send it


def leaderboard_query(metric: str, minimize: bool | None = None) -> tuple[str, str]:
    """The filter and sort (the query language's) of a leaderboard by `metric`."""
    low = lower_is_better(metric) if minimize is None else minimize
    quoted = metric.replace("`", "``")
    return (
        f"metrics.`{quoted}` is not null and status = 'succeeded'",
        f"metrics.`{quoted}` {'asc' if low else 'desc'}",
    )


def looks_like_path(ref: str) -> bool:
    """Whether a pipeline ref names a file to register (else it is NAME[@VERSION])."""
    return ref.endswith((".py", ".ipynb")) or (os.sep in ref.split("@")[0] and Path(ref).exists())


def _seed(params: dict[str, Any]) -> None:
    seed = params.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        import random

        random.seed(seed)
        # Only when the pipeline uses numpy: importing it just to seed costs 0.2 s.
        np = sys.modules.get("numpy")
        if np is not None:
            np.random.seed(seed % 2**32)


def _flavor(value: Any) -> str:
    module = type(value).__module__.split(".")[0]
    return {"sklearn": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm"}.get(
        module, "python"
    )


def _checked_params(params: dict[str, Any]) -> dict[str, Any]:
    """`params` flattened as a run stores them, once they are within the bounds of
    `assay.limits` (every listing reads them back).

    Raises:
        InvalidArgumentError: too deep or too large, or a (dotted) name too long.
    """
    check_document(params, "Params")
    flat = _flatten(params)
    for key in flat:
        if len(key) > MAX_NAME_LENGTH:
            raise InvalidArgumentError(
                f"Param name {key[:40]!r}… is {len(key):,} characters; names are at most "
                f"{MAX_NAME_LENGTH} (a nested name counts its parents, joined by dots).",
                limit=MAX_NAME_LENGTH,
            )
    return flat


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys (`model.C`), so filters and tables can reach them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{full}."))
        else:
            out[full] = value
    return out
