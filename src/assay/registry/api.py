"""What a model registry offers, locally (`RegistryService`) or over HTTP
(`assay.client.ModelsClient`): one signature for both."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assay.registry.entities import LineageTree, Model, ModelVersion


class ModelsAPI(Protocol):
    """Models and their versions, aliases and lineage."""

    def models(self) -> list[Model]:
        """Every model with its latest version and aliases."""
        ...

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of model `name`, newest first."""
        ...

    def resolve(self, ref: str) -> ModelVersion:
        """The version `ref` (`name@4`, `name@champion`, `name@latest`) names."""
        ...

    def alias(self, ref: str, alias: str) -> ModelVersion:
        """Point `alias` at version `ref`, moving it from wherever it was."""
        ...

    def unalias(self, name: str, alias: str) -> None:
        """Remove `alias` from model `name`."""
        ...

    def register_run(self, run_ref: str, name: str | None = None) -> ModelVersion:
        """Register a succeeded run's model as the next version of `name` (default: its
        pipeline); a run registered before returns the version it made then."""
        ...

    def register_file(
        self, path: Path, name: str, *, trust: bool = False, description: str = ""
    ) -> ModelVersion:
        """Register a model file trained elsewhere (a pickle only with `trust`)."""
        ...

    def export(self, ref: str, dest: Path) -> tuple[ModelVersion, Path]:
        """Write the version's model, manifest and lineage into the new folder `dest`."""
        ...

    def lineage(self, ref: str) -> LineageTree:
        """The version traced back to its run, data, pipeline and params."""
        ...
