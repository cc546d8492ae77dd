"""`client.pipelines`: pipelines and their source snapshots, over HTTP (`PipelinesAPI`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from assay import errors
from assay.client.http import Part, parse

if TYPE_CHECKING:
    from assay.data.entities import FileEntry
    from assay.pipelines.entities import PipelineInfo, PipelineVersion


def _url(ref: str) -> str:
    name, _, selector = ref.partition("@")
    return f"/pipelines/{name}/versions/{selector or 'latest'}"


class PipelinesClient(Part):
    """The server's pipelines: what `PipelineService` offers, the same verbs and entities."""

    def register(
        self, path: Path | str, name: str | None = None, message: str = ""
    ) -> tuple[PipelineVersion, bool]:
        """Send a pipeline's source (its folder's `*.py` and requirements files) to register.

        Returns the PipelineVersion and whether it is new (unchanged source makes none).
        """
        from assay.pipelines.entities import PipelineVersion

        entry = Path(path)
        if entry.is_dir():
            entry = entry / "pipeline.py"
        if not entry.is_file():
            raise errors.NotFoundError(f"Pipeline file {str(entry)!r} does not exist.")
        folder = entry.parent
        files = {
            p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*"))
            if p.is_file()
            and (p.suffix == ".py" or p.name.startswith("requirements") or p == entry)
            and not any(part.startswith(".") or part in ("__pycache__", "venv", ".venv")
                        for part in p.relative_to(folder).parts)
        }  # fmt: skip
        doc = self._call(
            "POST",
            "/pipelines",
            json={"files": files, "entry": entry.name, "name": name, "message": message},
        )
        return parse(PipelineVersion, doc["version"]), bool(doc["created"])

    def pipelines(self) -> list[PipelineInfo]:
        from assay.pipelines.entities import PipelineInfo

        return self._list(PipelineInfo, "/pipelines")

    def resolve(self, ref: str) -> PipelineVersion:
        from assay.pipelines.entities import PipelineVersion

        return self._get(PipelineVersion, _url(ref))

    def log(self, name: str) -> list[PipelineVersion]:
        """Every version of pipeline `name`, newest first."""
        from assay.pipelines.entities import PipelineVersion

        return self._list(PipelineVersion, f"/pipelines/{name}/versions")

    def files(self, version: PipelineVersion) -> tuple[FileEntry, ...]:
        """A version's files: path, content hash and size."""
        from assay.data.entities import FileEntry

        return tuple(self._get(list[FileEntry], f"{_url(version.ref)}/files"))

    def source(self, version: PipelineVersion, path: str | None = None) -> str:
        """The text of one file of a version (its entry file by default)."""
        query = {"path": path} if path else {}
        return str(self._call("GET", f"{_url(version.ref)}/source", params=query) or "")

    def readable(self, version: PipelineVersion, path: str | None = None) -> str:
        from assay.pipelines import notebook

        wanted = path or version.entry
        text = self.source(version, wanted)
        return notebook.as_script(text) if notebook.is_notebook(wanted) else text

    def diff(self, a_ref: str, b_ref: str) -> str:
        """A unified diff of two versions' source; empty when they hold the same."""
        return str(self._call("GET", "/pipelines/diff", params={"old": a_ref, "new": b_ref}) or "")
