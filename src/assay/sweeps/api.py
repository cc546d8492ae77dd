"""What a sweeps workspace offers, locally (`SweepService`) or over HTTP
(`assay.client.SweepsClient`): one signature and one set of defaults for both.

Recording a sweep is shared; driving its trials is not: locally the caller runs them
(`SweepService.run`), remotely the server does, and the client follows it with `get`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from assay.sweeps.entities import Sweep, Trial

SPACE_NAME = "space.yaml"
PARALLEL = 1
SAMPLER = "tpe"
PRUNER = "median"
SEED = 0
EXECUTOR = "local"
REGISTER = "best"


class SweepsAPI(Protocol):
    """Hyperparameter sweeps: many runs of one pipeline from a search space."""

    def create(
        self,
        pipeline: str,
        *,
        data: str,
        trials: int,
        objectives: Sequence[str],
        space_file: Path | None = None,
        space_text: str | None = None,
        space_name: str = SPACE_NAME,
        params_file: Path | None = None,
        params: Mapping[str, Any] | None = None,
        direction: str | None = None,
        parallel: int = PARALLEL,
        sampler: str = SAMPLER,
        pruner: str = PRUNER,
        prune_on: str | None = None,
        seed: int = SEED,
        timeout_s: float | None = None,
        budget: float | None = None,
        name: str | None = None,
        executor: str = EXECUTOR,
        register: str = REGISTER,
    ) -> Sweep:
        """Check and record a sweep of `pipeline` (a reference, or a path registered
        first) over the space in `space_file` (or `space_text`)."""
        ...

    def sweeps(self) -> list[Sweep]:
        """Every sweep."""
        ...

    def get(self, name: str) -> Sweep:
        """One sweep with its trials."""
        ...

    def ranked(self, sweep: Sweep) -> list[Trial]:
        """Its finished trials, best first."""
        ...

    def importances(self, sweep: Sweep, objective: int = 0) -> dict[str, float]:
        """How much each param mattered to objective number `objective`."""
        ...

    def study(self, sweep: Sweep) -> Any:
        """The sweep as an Optuna study (for its plots)."""
        ...
