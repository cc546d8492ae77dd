"""Executing a pipeline's steps in order, with step caching.

A step's cache key is the hash of its code and of its inputs' stored outputs. The
params a step reads are recorded as it runs; a cached output is reused only when
the current params agree on every key that step read last time. So changing a
param re-runs exactly the steps that read it (and what depends on them).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.runs import serialize, tracking
from assay.runs.failures import STEP_ATTR
from assay.runs.repository import RunRepository
from assay.store.db import Database, utcnow
from assay.store.objects import ObjectStore, hash_bytes

Emit = Callable[[dict[str, Any]], None]
_ABSENT = "__assay_absent__"


class ParamsView(Mapping[str, Any]):
    """The run's params, read-only, remembering which keys a step read."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params
        self.read: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        try:
            value = self._params[key]
        except KeyError:
            self.read[key] = _ABSENT
            raise
        self.read[key] = value
        return value

    def __iter__(self) -> Iterator[str]:
        for key in self._params:
            self.read[key] = self._params[key]
            yield key

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read[key] = self._params.get(key, _ABSENT)
        return key in self._params


@dataclass(frozen=True)
class StepSpec:
    """What the engine needs of a step: its function, inputs and code hash."""

    name: str
    func: Callable[..., Any]
    inputs: tuple[str, ...]
    code_hash: str


@dataclass
class Outcome:
    values: dict[str, Any]
    hashes: dict[str, str]


def _params_digest(read: Mapping[str, Any]) -> str:
    return hash_bytes(json.dumps(read, sort_keys=True, default=str).encode())


def execute(
    steps: list[StepSpec],
    *,
    run_id: str,
    data_dir: Path,
    data_hash: str,
    params: Mapping[str, Any],
    db: Database,
    store: ObjectStore,
    use_cache: bool,
    emit: Emit,
) -> Outcome:
    """Run `steps` in order; every output is stored, and recorded on the run's step rows.

    Raises whatever a step raises, after marking that step failed (earlier steps'
    outputs stay stored and recorded).
    """
    values: dict[str, Any] = {}
    hashes: dict[str, str] = {"data": f"data:{data_hash}"}
    with db.session() as conn:
        repo = RunRepository(conn)
        for pos, spec in enumerate(steps):
            repo.set_step(run_id, pos, name=spec.name, status="pending", cached=False)
    for pos, spec in enumerate(steps):
        key = hash_bytes(
            "\0".join([spec.code_hash, *(f"{i}={hashes.get(i, '')}" for i in spec.inputs)]).encode()
        )
        emit({"event": "step", "name": spec.name, "position": pos, "total": len(steps)})
        started = time.perf_counter()
        hit = _lookup(db, key, params) if use_cache else None
        found = tracking.current()
        # The runner's own recorder (a step's metrics are cached with its output).
        recorder = found if isinstance(found, tracking.RunRecorder) else None
        cache_row: dict[str, Any] | None = None
        if hit is not None:
            output, fmt, logged = hit
            value = serialize.load(store.get_bytes(output), fmt)
            if recorder is not None and logged:
                recorder.replay(logged)
            cached = True
        else:
            with db.session() as conn:
                RunRepository(conn).set_step(run_id, pos, status="running", started_at=utcnow())
            view = ParamsView(params)
            kwargs = {
                name: data_dir if name == "data" else view if name == "params" else values[name]
                for name in spec.inputs
            }
            if recorder is not None:
                recorder.begin_capture()
            try:
                value = spec.func(**kwargs)
            except BaseException as exc:
                if recorder is not None:
                    recorder.end_capture()
                seconds = time.perf_counter() - started
                with db.session() as conn:
                    RunRepository(conn).set_step(
                        run_id, pos, status="failed", ended_at=utcnow(), seconds=seconds
                    )
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(exc, STEP_ATTR, spec.name)  # which step, for the explanation
                emit({"event": "step_failed", "name": spec.name, "position": pos,
                      "seconds": round(seconds, 3)})  # fmt: skip
                raise
            logged = recorder.end_capture() if recorder else {}
            data, fmt = serialize.dump(value)
            output = store.put_bytes(data)
            cache_row = {
                "key": key,
                "params_read": view.read,
                "params_digest": _params_digest(view.read),
                "params_keys": json.dumps(sorted(view.read)),
                "output": output,
                "output_format": fmt,
                "logged": logged if logged.get("points") or logged.get("split") else None,
            }
            cached = False
        seconds = time.perf_counter() - started
        with db.session() as conn:  # the cache entry and the step's end, in one transaction
            if not cached and cache_row is not None:
                RunRepository(conn).add_cached(**cache_row)
            RunRepository(conn).set_step(
                run_id,
                pos,
                status="succeeded",
                cached=cached,
                ended_at=utcnow(),
                seconds=seconds,
                output=output,
                output_format=fmt,
            )
        values[spec.name] = value
        hashes[spec.name] = output
        emit(
            {
                "event": "step_done",
                "name": spec.name,
                "position": pos,
                "cached": cached,
                "seconds": round(seconds, 3),
            }
        )
    return Outcome(values, hashes)


def _lookup(
    db: Database, key: str, params: Mapping[str, Any]
) -> tuple[str, str, dict[str, Any]] | None:
    with db.read() as conn:
        repo = RunRepository(conn)
        for names in repo.cached_key_sets(key):
            read = {k: params.get(k, _ABSENT) for k in json.loads(names)}
            row = repo.cached_output(key, _params_digest(read))
            if row is not None:
                return row.output, row.output_format, row.logged or {}
        for row in repo.legacy_cached_outputs(key):
            if all(params.get(k, _ABSENT) == v for k, v in row.params_read.items()):
                return row.output, row.output_format, row.logged or {}
    return None


def expose(pipeline: Any, folder: Path) -> Callable[[], None]:
    """Keep the pipeline's module importable while its steps run; returns the undo.

    `load_pipeline` leaves `sys.path` and `sys.modules` as it found them; a run also
    needs steps that import sibling modules lazily to find them, and values of the
    module's own classes to pickle by their module's name.
    """
    import sys
    import types

    path_before, modules_before = list(sys.path), set(sys.modules)
    shims: list[str] = []
    sys.path.insert(0, str(folder))
    for step in pipeline.steps:
        name = getattr(step.func, "__module__", None)
        if name and name not in sys.modules:
            shim = types.ModuleType(name)
            shim.__dict__.update(step.func.__globals__)
            sys.modules[name] = shim
            shims.append(name)

    def undo() -> None:
        sys.path[:] = path_before
        for name in shims:
            sys.modules.pop(name, None)
        for name in set(sys.modules) - modules_before:  # the snapshot's own modules
            where = str(getattr(sys.modules.get(name), "__file__", "") or "")
            if where.startswith(str(folder)):
                sys.modules.pop(name, None)

    return undo
