"""What a pipelines workspace offers, locally (`PipelineService`) or over HTTP
(`assay.client.PipelinesClient`): one signature for both."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from assay.data.entities import FileEntry
    from assay.pipelines.entities import PipelineInfo, PipelineVersion


class PipelinesAPI(Protocol):
    """Pipelines and their source snapshots."""

    def register(
        self, path: Path, name: str | None = None, message: str = ""
    ) -> tuple[PipelineVersion, bool]:
        """Snapshot a pipeline's source as its next version: (the version, whether it is
        new; unchanged source makes none)."""
        ...

    def pipelines(self) -> list[PipelineInfo]:
        """Every pipeline with its latest version."""
        ...

    def log(self, name: str) -> list[PipelineVersion]:
        """Every version of pipeline `name`, newest first."""
        ...

    def resolve(self, ref: str) -> PipelineVersion:
        """The version `ref` (`name@2`, `name@latest`) names."""
        ...

    def files(self, version: PipelineVersion) -> tuple[FileEntry, ...]:
        """A version's files: path, content hash and size."""
        ...

    def source(self, version: PipelineVersion, path: str | None = None) -> str:
        """The text of one file of a version (its entry file by default)."""
        ...

    def readable(self, version: PipelineVersion, path: str | None = None) -> str:
        """As `source`, with a notebook shown as a script."""
        ...

    def diff(self, a_ref: str, b_ref: str) -> str:
        """A unified diff of two versions' source; empty when they hold the same."""
        ...
