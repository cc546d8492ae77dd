"""Executing a queued run, in the runner process: steps, cache, environment, logs."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.data.entities import DataVersion
from assay.errors import ConflictError
from assay.pipelines.notebook import is_notebook
from assay.runs import tracking
from assay.runs.engine import StepSpec, execute, expose
from assay.runs.entities import EndStatus, Run, StopReason
from assay.runs.failures import explain
from assay.runs.notebook import CellError
from assay.runs.repository import RunRepository
from assay.store import liveness
from assay.store.db import utcnow

if TYPE_CHECKING:
    from assay.pipelines.entities import PipelineVersion

from assay.runs.base import HOST, Emit, RunsBase, quiet


class RunExecution(RunsBase):
    """The executing half of `RunService` (it runs in the runner process)."""

    # ---- executing (in the runner process) -----------------------------------------------

    def execute(self, run_id: str, *, use_cache: bool = True, emit: Emit = quiet) -> Run:
        """Execute a queued run here, recording everything; returns the finished run.

        A step that raises marks the run failed (traceback stored); Ctrl-C marks it killed.
        """
        run = self.by_id(run_id)
        if run.status != "queued":
            raise ConflictError(f"Run {run.short_id} is {run.status}, not queued.")
        recorder = tracking.RunRecorder(run.id, self.db, self.store, stoppable=True)
        cpu0, _ = tracking.usage()
        wall0 = time.perf_counter()
        status, error, model, flavor = "failed", None, None, None
        params: dict[str, Any] = {}
        code_root: Path | None = None  # where the pipeline's own files are, for a failure
        # Whatever stops the runner from the moment the run is marked running (a signal
        # that its owner died can land before the first step) is recorded below.
        try:
            with self.db.session() as conn:
                RunRepository(conn).update(
                    run.id,
                    status="running",
                    started_at=utcnow(),
                    heartbeat_at=utcnow(),
                    pid=os.getpid(),
                    host=HOST,
                    pid_started=liveness.started(os.getpid()),
                )
            recorder.start()
            tracking.activate(recorder)
            emit({"event": "start", "run": run.id, "name": run.name})
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

    def request_stop(self, run_id: str, reason: StopReason) -> None:
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

    def abandon(self, run_id: str, status: EndStatus, error: str) -> None:
        """Close a run its runner left unfinished (killed by a signal, crashed, stopped):
        recorded only while the run is still queued or running, so a run the runner did
        close keeps its own ending. (`finish` and `finish_here` close a tracked run.)"""
        with self.db.session() as conn:
            repo = RunRepository(conn)
            if repo.load(run_id).status in ("queued", "running"):
                repo.update(run_id, status=status, error=error, ended_at=utcnow())


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
