"""`client.models`: the model registry over HTTP (the `ModelsAPI` contract), plus
uploading and downloading bundles for the notebook SDK."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from assay import errors
from assay.client.http import Part, parse

if TYPE_CHECKING:
    from assay.registry.entities import LineageTree, Model, ModelVersion


def _url(ref: str) -> str:
    name, _, selector = ref.partition("@")
    return f"/models/{name}/versions/{selector or 'latest'}"


class ModelsClient(Part):
    """The server's registry: what `RegistryService` offers, the same verbs and entities."""

    def models(self) -> list[Model]:
        from assay.registry.entities import Model

        return self._list(Model, "/models")

    def resolve(self, ref: str) -> ModelVersion:
        from assay.registry.entities import ModelVersion

        return self._get(ModelVersion, _url(ref))

    def versions(self, name: str) -> list[ModelVersion]:
        from assay.registry.entities import ModelVersion

        return self._list(ModelVersion, f"/models/{name}/versions")

    def lineage(self, ref: str) -> LineageTree:
        """Model version `ref` traced back to its run, data, pipeline and params."""
        found: LineageTree = self._call("GET", f"{_url(ref)}/lineage")
        return found

    def alias(self, ref: str, alias: str) -> ModelVersion:
        from assay.registry.entities import ModelVersion

        name, _, version = ref.partition("@")
        if not version.isdigit():
            version = str(self.resolve(ref).version)
        doc = self._call("PUT", f"/models/{name}/aliases/{alias}", json={"version": int(version)})
        return parse(ModelVersion, doc)

    def unalias(self, name: str, alias: str) -> None:
        self._call("DELETE", f"/models/{name}/aliases/{alias}")

    def register_run(self, run_ref: str, name: str | None = None) -> ModelVersion:
        """Register a succeeded run's model as the next version of `name` (default: its
        pipeline); a run registered before returns the version it made then."""
        from assay.registry.entities import ModelVersion

        doc = self._call("POST", "/models", json={"run": run_ref, "name": name})
        return parse(ModelVersion, doc)

    def register_file(
        self, path: Path | str, name: str, *, trust: bool = False, description: str = ""
    ) -> ModelVersion:
        """Upload a model file trained elsewhere (.skops, XGBoost, LightGBM; a pickle only
        with `trust`, as it is loaded on the server) as the next version of `name`."""
        from assay.registry.entities import ModelVersion

        file = Path(path)
        if not file.is_file():
            raise errors.NotFoundError(f"No model file at {file}.", path=str(file))
        upload, hashes = self.http.upload(file)
        body = {
            "upload": upload,
            "filename": file.name,
            "hash": hashes[file.name],
            "trust": trust,
            "description": description,
            "source": str(file.resolve()),
        }
        return parse(ModelVersion, self._call("POST", f"/models/{name}/versions", json=body))

    def register_bundle(
        self, folder: Path, name: str, *, run: str | None = None, allow_pickle: bool = False
    ) -> ModelVersion:
        """Upload a model bundle written here (`assay.log_model`) as the next version of
        `name`, linked to `run`; the server checks every file's hash first."""
        from assay.registry.entities import ModelVersion

        upload, hashes = self.http.upload(folder)
        body = {"upload": upload, "files": hashes, "run": run, "allow_pickle": allow_pickle}
        return parse(ModelVersion, self._call("POST", f"/models/{name}/bundles", json=body))

    def download_bundle(self, ref: str, dest: Path) -> Path:
        """A model version's stored bundle, as it is in the store, into the new folder
        `dest`; every file is checked against the manifest, and the manifest against
        the version's bundle hash."""
        import tempfile

        from assay.store.objects import hash_file

        mv = self.resolve(ref)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".assay-bundle-", dir=dest.parent) as tmp:
            folder = self.http.download_tar(
                f"/models/{mv.name}/versions/{mv.version}/bundle", Path(tmp), mv.ref
            )
            if hash_file(folder / "assay.json") != mv.bundle:
                raise errors.CorruptObjectError(f"The bundle of {mv.ref} arrived damaged; retry.")
            folder.rename(dest)
        return dest

    def export(self, ref: str, dest: Path | str) -> tuple[ModelVersion, Path]:
        """Write what `assay models export` writes into the new folder `dest`: the server's
        export, streamed down and checked against its manifest's hashes."""
        import shutil
        import tempfile

        target = Path(dest)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise errors.ConflictError(f"{target} exists and is not empty; pick a new folder.")
        mv = self.resolve(ref)  # one version, even if an alias moves meanwhile
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".assay-export-", dir=target.parent) as tmp:
            folder = self.http.download_tar(
                f"/models/{mv.name}/versions/{mv.version}/export", Path(tmp), mv.ref
            )
            if target.exists():
                target.rmdir()
            shutil.move(str(folder), str(target))
        return mv, target
