"""Runs that the caller's own code fills in (a notebook, a script, a client of the
server): opening, logging params, metrics, artifacts and code, and closing them.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.data.entities import DataVersion
from assay.errors import (
    AssayError,
    AssayWarning,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
)
from assay.limits import check_document
from assay.runs import code as codes
from assay.runs import tracking
from assay.runs.code import CodeCapture, CodeVersion
from assay.runs.entities import Candidate, EndStatus, Run
from assay.runs.repository import RunRepository
from assay.runs.tables import runs
from assay.runs.values import Point
from assay.store import liveness
from assay.store.db import aware, utcnow

if TYPE_CHECKING:
    pass

from assay.runs.base import FULL_ID, HOST, REMOTE_HOST, RunsBase, checked_params, flatten_params


class RunRecording(RunsBase):
    """The recording half of `RunService`: runs opened and closed from outside a runner."""

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
                "host": REMOTE_HOST if remote else HOST,
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
            params=flatten_params(params),
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
            if children:
                repo.next_run_number(head.experiment_id, len(children))
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
                    checked_params({tracking.check_key(k): v for k, v in child.params.items()}),
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
        digest, raw = self._store_code(capture)
        with self.db.session() as conn:
            repo = RunRepository(conn)
            repo.update(repo.resolve_id(ref), code=digest)
        return codes.read_manifest(digest, raw)

    def _store_code(self, capture: CodeCapture) -> tuple[str, bytes]:
        """The capture's files and manifest into the store: (manifest hash, manifest)."""
        files = {name: self.store.put_bytes(data) for name, data in capture.files.items()}
        diff = None
        if capture.git is not None and capture.git.diff:
            diff = self.store.put_bytes(capture.git.diff.encode())
        raw = codes.manifest_of(capture, files, diff)
        return self.store.put_bytes(raw), raw

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
            run_id = ref if FULL_ID.fullmatch(ref) else repo.resolve_id(ref)
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
                run_id, checked_params({tracking.check_key(k): v for k, v in params.items()})
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
        status: EndStatus,
        error: str | None = None,
        *,
        reported: dict[str, float] | None = None,
        environment: dict[str, Any] | None = None,
    ) -> Run:
        """Close a tracked run with `status` (succeeded, failed or killed), for a caller
        elsewhere (the REST API, the remote SDK); `finish_here` is the tracking process's own.

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

    def finish_here(
        self,
        run_id: str,
        status: EndStatus,
        error: str | None,
        wall_s: float,
        cpu_s: float,
        points: list[Point] | None = None,
        code: CodeCapture | None = None,
    ) -> None:
        """Close a run tracked in this process (the local notebook SDK) with what this
        process measured (`wall_s`, `cpu_s`, its peak memory and environment), writing its
        last metric points and (if given) the code that made it in the same transaction:
        one commit fewer per run opened in a loop.

        The three ways a run is closed: `finish`, by a caller elsewhere (the REST API, the
        remote SDK; the server's own clock); `finish_here`, by the process that tracked it;
        `abandon`, for a runner that ended without closing its run."""
        _, peak = tracking.usage()
        resources = {
            "wall_s": round(wall_s, 3),
            "cpu_s": round(cpu_s, 3),
            "peak_rss_bytes": peak,
            "cost": round(wall_s / 3600 * self.settings.cost_per_hour, 6),
            "cost_per_hour": self.settings.cost_per_hour,
        }
        environment = self._environment()
        stored: str | None = None
        if code is not None:
            try:
                stored = self._store_code(code)[0]
            except (AssayError, OSError) as exc:  # the run still ends, without its code
                warnings.warn(
                    f"Assay could not store the run's code: {exc}", AssayWarning, stacklevel=2
                )
        with self.db.session() as conn:
            repo = RunRepository(conn)
            if points:
                repo.add_points(run_id, points)
            repo.close(run_id, status, error, resources, environment, code=stored)
