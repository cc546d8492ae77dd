"""`client.sweeps`: sweeps over HTTP (the `SweepsAPI` contract). The server drives a
sweep's trials; a caller follows it with `get`, and can `stop` and `resume` it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.client.http import Part, parse
from assay.sweeps import api

if TYPE_CHECKING:
    from assay.client.http import Http
    from assay.client.pipelines import PipelinesClient
    from assay.sweeps.entities import Sweep, Trial


class SweepsClient(Part):
    """The server's sweeps: what `SweepService` offers, the same verbs and entities."""

    def __init__(self, http: Http, pipelines: PipelinesClient) -> None:
        super().__init__(http)
        self._pipelines = pipelines

    def sweeps(self) -> list[Sweep]:
        from assay.sweeps.entities import Sweep

        return self._list(Sweep, "/sweeps")

    def get(self, name: str) -> Sweep:
        from assay.sweeps.entities import Sweep

        return self._get(Sweep, f"/sweeps/{name}")

    def create(
        self,
        pipeline: str,
        *,
        data: str,
        trials: int,
        objectives: Sequence[str],
        space_file: Path | None = None,
        space_text: str | None = None,
        space_name: str = api.SPACE_NAME,
        params_file: Path | None = None,
        params: Mapping[str, Any] | None = None,
        direction: str | None = None,
        parallel: int = api.PARALLEL,
        sampler: str = api.SAMPLER,
        pruner: str = api.PRUNER,
        prune_on: str | None = None,
        seed: int = api.SEED,
        timeout_s: float | None = None,
        budget: float | None = None,
        name: str | None = None,
        executor: str = api.EXECUTOR,
        register: str = api.REGISTER,
    ) -> Sweep:
        """Start a sweep on the server, which checks it, records it and drives its
        trials; returns the Sweep as recorded (follow it with `get(name)`). The space
        and params files are read here and sent as their contents; a pipeline path is
        registered on the server first."""
        from assay.errors import InvalidArgumentError
        from assay.runs.params import load_params
        from assay.runs.service import looks_like_path
        from assay.sweeps.service import check_options
        from assay.sweeps.space import load_space

        # What needs no server is checked before anything is sent, so that a bad option
        # or space registers no pipeline there; the server checks everything again.
        check_options(trials=trials, objectives=objectives, direction=direction,
                      parallel=parallel, sampler=sampler, pruner=pruner, prune_on=prune_on,
                      timeout_s=timeout_s, budget=budget, register=register)  # fmt: skip
        if space_text is None:
            if space_file is None:
                raise InvalidArgumentError("Give the search space with --space FILE.")
            load_space(space_file)
            space_text, space_name = space_file.read_text(encoding="utf-8"), space_file.name
        base = dict(params) if params is not None else {}
        if params_file:
            base = load_params(params_file)
        if looks_like_path(pipeline):
            pipeline = self._pipelines.register(Path(pipeline))[0].ref
        body = {
            "pipeline": pipeline, "data": data, "params": base, "space": space_text,
            "space_file": space_name, "objectives": list(objectives), "direction": direction,
            "trials": trials, "parallel": parallel, "sampler": sampler, "pruner": pruner,
            "prune_on": prune_on, "seed": seed, "timeout_s": timeout_s, "budget": budget,
            "register": register, "executor": executor, "name": name,
        }  # fmt: skip
        from assay.sweeps.entities import Sweep

        return parse(Sweep, self._call("POST", "/sweeps", json=body))

    def resume(self, name: str) -> Sweep:
        """Continue an interrupted sweep on the server (finished trials are kept)."""
        from assay.sweeps.entities import Sweep

        return parse(Sweep, self._call("POST", f"/sweeps/{name}/resume"))

    def stop(self, name: str) -> Sweep:
        """Stop a running sweep as Ctrl-C would; returns it once its driver has stopped."""
        from assay.sweeps.entities import Sweep

        return parse(Sweep, self._call("POST", f"/sweeps/{name}/stop"))

    def ranked(self, sweep: Sweep) -> list[Trial]:
        from assay.sweeps.service import rank

        return rank(sweep)

    def importances(self, sweep: Sweep, objective: int = 0) -> dict[str, float]:
        from assay.sweeps import study

        return study.importances(self.study(sweep), objective)

    def study(self, sweep: Sweep) -> Any:
        from assay.sweeps.service import study_of

        return study_of(sweep)
