"""The runs' use cases: prepare a run from its three inputs, execute it, read it back.

`RunService` is assembled from its parts: starting and reading runs here, recording runs
that the caller's code fills in (`assay.runs.recording`) and executing queued runs in a
runner (`assay.runs.execution`); what they share is `assay.runs.base`.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from assay.data.entities import DataVersion
from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.runs import code as codes
from assay.runs.api import LEADERBOARD_LIMIT, SEARCH_LIMIT
from assay.runs.entities import Run, lower_is_better
from assay.runs.params import apply_overrides, load_params, params_text
from assay.runs.repository import RunRepository
from assay.runs.tables import runs
from assay.store import liveness
from assay.store.db import utcnow
from assay.store.objects import hash_bytes
from assay.store.retry import retrying

if TYPE_CHECKING:
    pass

from assay.runs.base import HOST, REMOTE_HOST, REMOTE_SILENCE, RunSettings, checked_params
from assay.runs.execution import RunExecution
from assay.runs.recording import RunRecording

__all__ = [
    "REMOTE_HOST",
    "REMOTE_SILENCE",
    "RunService",
    "RunSettings",
    "leaderboard_query",
    "looks_like_path",
]


class RunService(RunRecording, RunExecution):
    """Experiments and runs over the data and pipeline repositories."""

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
            raise ConflictError(
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
        flat = checked_params(params)
        try:
            text = params_text(params)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"Params must be JSON values (numbers, strings, booleans, lists, objects): {exc}."
            ) from None

        def attempt() -> tuple[str, str, DataVersion, datetime]:
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
                number = repo.next_run_number(exp_id)
                run_id, now = uuid.uuid4().hex, utcnow()
                run_name = name or f"{experiment}-{number}"
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

        return retrying(attempt, f"Too many runs opened at once in {experiment!r}; retry.")

    # ---- reading -------------------------------------------------------------------------

    def _reap(self) -> None:
        # Readers look for dead runners without taking the write lock; only when one
        # is found does a write transaction mark it.
        stale_after = timedelta(seconds=3 * self.settings.heartbeat_s + 3)
        with self.db.read() as conn:
            repo = RunRepository(conn)
            dead = repo.stale_runs(stale_after, HOST, remote=(REMOTE_HOST, REMOTE_SILENCE))
            orphans = repo.orphaned_queued(HOST)
        if dead or orphans:
            with self.db.session() as conn:
                RunRepository(conn).mark_dead(dead)
                RunRepository(conn).mark_orphaned(orphans, HOST)

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
        limit: int | None = SEARCH_LIMIT,
        offset: int = 0,
        archived: bool = False,
    ) -> list[Run]:
        """Runs matching a filter expression (see `assay.runs.query`), sorted. Archived
        runs, and the runs of archived experiments (unless that experiment is named),
        are left out unless `archived`."""
        from assay.runs.query import compile_filter, compile_sort
        from assay.runs.tables import experiments

        self._reap()
        if experiment:
            with self.db.read() as conn:
                if RunRepository(conn).experiment_id(experiment, create=False) is None:
                    raise NotFoundError(
                        f"No experiment named {experiment!r}. List them with "
                        "`assay runs experiments`."
                    )
        clauses: list[Any] = []
        if not archived:
            clauses.append(runs.c.archived_at.is_(None))
            if not experiment:
                shelved = select(experiments.c.id).where(experiments.c.archived_at.is_not(None))
                clauses.append(runs.c.experiment_id.not_in(shelved))
        if experiment:
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
        self,
        experiment: str,
        metric: str,
        *,
        minimize: bool | None = None,
        limit: int = LEADERBOARD_LIMIT,
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
