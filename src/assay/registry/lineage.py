"""Where a model version came from: what the registry takes from the run that trained it.

When a run registers a model, the version records the run's lineage (its data, pipeline
and params versions with their manifests, and its code), its numeric metrics, and the
signature of the features the model step was fitted on. `assay models lineage` reads the
tree back, saying what has been deleted since rather than failing.

Everything here reads the runs concept (`RunService` and what it holds); the registry's
service calls it and stores the results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from assay.errors import NotFoundError
from assay.registry.entities import Lineage, LineageCode, LineageRun, LineageTree

if TYPE_CHECKING:
    from assay.registry.entities import ModelVersion, Signature
    from assay.runs.entities import Run
    from assay.runs.service import RunService
    from assay.store.objects import ObjectStore


# ---- recorded at registration ---------------------------------------------------------------


def lineage_of(runs: RunService, run: Run) -> Lineage:
    """The lineage a version registered from `run` records."""
    data = runs.data.resolve(run.data_ref) if run.data_ref else None
    params = runs.data.resolve(run.params_ref) if run.params_ref else None
    pv = runs.pipelines.resolve(run.pipeline_ref) if run.pipeline_ref else None
    return Lineage(
        run_id=run.id,
        data=run.data_ref,
        data_manifest=data.manifest if data else None,
        pipeline=run.pipeline_ref,
        pipeline_manifest=pv.manifest if pv else None,
        params=run.params_ref,
        params_manifest=params.manifest if params else None,
        code=run.code,
    )


def run_metrics(run: Run) -> dict[str, float]:
    """The run's numeric metrics, as a version records them."""
    return {k: float(v) for k, v in run.metrics.items() if isinstance(v, int | float)}


def training_signature(
    runs: RunService, store: ObjectStore, run: Run, model: Any
) -> tuple[Signature | None, list[Any]]:
    """The signature of the features the model step was fitted on, and an input example.

    The model step's inputs are earlier steps' stored outputs: a `Split` gives its
    training features; a frame gives the model's own `feature_names_in_` columns.
    """
    from assay.registry.signature import infer_signature, signature_from_model
    from assay.runs import serialize
    from assay.runs.split import Split

    pv = runs.pipelines.resolve(run.pipeline_ref) if run.pipeline_ref else None
    step = pv.step(pv.model_step) if pv and pv.model_step else None
    outputs = {s.name: s for s in run.steps}
    names = getattr(model, "feature_names_in_", None)
    for input_name in step.inputs if step else ():
        out = outputs.get(input_name)
        if out is None or not out.output:
            continue
        value = serialize.load(store.get_bytes(out.output), out.output_format or "pickle")
        if isinstance(value, Split):
            return infer_signature(value.X("train"), model)
        columns = list(getattr(value, "columns", []))
        if names is not None and set(names) <= set(columns):
            return infer_signature(value[list(names)], model)
    return signature_from_model(model), []


# ---- read back ------------------------------------------------------------------------------


def lineage_tree(runs: RunService, mv: ModelVersion) -> LineageTree:
    """The tree from a model version back to its run, data, pipeline and params."""
    lin = mv.lineage
    run: LineageRun | None = None
    if lin.run_id:
        # Anything in the lineage may have been deleted since (`assay runs delete
        # --force`, `data delete --force`): the tree says so instead of failing.
        found = _or_none(lambda: runs.get(lin.run_id or ""))
        pv = _or_none(lambda: runs.pipelines.resolve(lin.pipeline or "")) if lin.pipeline else None
        params: dict[str, Any] = {}
        if lin.params:
            params = (
                _or_none(
                    lambda: json.loads(
                        runs.data.read_file(runs.data.resolve(lin.params or ""), "params.json")
                    )
                )
                or {}
            )
        run = {
            "id": lin.run_id,
            "name": found.name if found else "(deleted)",
            "experiment": found.experiment if found else "-",
            "status": found.status if found else "deleted",
            "started_at": found.started_at.isoformat() if found and found.started_at else None,
            "metrics": mv.metrics,
            "data": {
                "ref": lin.data,
                "manifest": lin.data_manifest,
                "message": _data_message(runs, lin.data),
            },
            "pipeline": {
                "ref": lin.pipeline,
                "manifest": lin.pipeline_manifest,
                "steps": [
                    {"name": s.name, "inputs": list(s.inputs), "code_hash": s.code_hash}
                    for s in (pv.steps if pv else ())
                ],
            },
            "params": {"ref": lin.params, "manifest": lin.params_manifest, "values": params},
            "code": _code_node(runs, found) if found else None,
        }
    return {
        "model": mv.ref,
        "bundle": mv.bundle,
        "flavor": mv.flavor,
        "source": lin.source,
        "run": run,
    }


def _data_message(runs: RunService, ref: str | None) -> str | None:
    if ref is None:
        return None
    try:
        return runs.data.resolve(ref).message or None
    except NotFoundError:
        return None


def _code_node(runs: RunService, run: Run) -> LineageCode | None:
    try:
        cv = runs.code_of(run.id)
    except NotFoundError:
        return None
    git = cv.git or {}
    return {
        "ref": cv.hash,
        "kind": cv.kind,
        "entry": cv.entry,
        "git_commit": git.get("commit"),
        "git_branch": git.get("branch"),
        "git_dirty": bool(git.get("dirty")),
    }


def _or_none(get: Callable[[], Any]) -> Any:
    """What `get` returns, or None when what it reads is not there (deleted)."""
    try:
        return get()
    except NotFoundError:
        return None
