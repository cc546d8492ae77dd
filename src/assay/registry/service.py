"""The model repository's use cases: register, list, show, resolve, alias, lineage, export.

A model version is a bundle (see `bundle.py`) stored in the object store: every file
an object named by its hash, and the manifest listing them an object too, whose hash
is the version's `bundle`. A succeeded run registers its model as the next version
of the model named after its pipeline, converted to a format that runs no code on
load wherever the framework allows it. What a version takes from its run, and the
lineage tree read back, is `lineage.py`; files to and from other tools, `external.py`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.data.entities import LATEST, Ref, check_name, check_tag
from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.registry import bundle as bundles
from assay.registry.entities import (
    Lineage,
    LineageTree,
    Model,
    ModelVersion,
    Signature,
)
from assay.registry.external import export_folder, load_model_file
from assay.registry.lineage import lineage_of, lineage_tree, run_metrics, training_signature
from assay.registry.repository import RegistryRepository, to_version
from assay.serialize import dump, load
from assay.store import versioned
from assay.store.acting import author_or
from assay.store.db import Database, utcnow
from assay.store.objects import ObjectStore, hash_file
from assay.store.retry import Retry, retrying

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row

    from assay.runs.service import RunService


class NotAModelError(ConflictError):
    """A run's model step returned something without `predict` (a dict of weights, say)."""


class RegistryService:
    """Versioned models over the metadata database and the content-addressed store."""

    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        runs: RunService,
        *,
        author: str,
        cache_dir: Path | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.runs = runs
        self._author = author
        self.cache_dir = cache_dir  # what is installed, scanned once (`assay.installed`)

    @property
    def author(self) -> str:
        """Whom what this records names: the caller a server acts for, else the default."""
        return author_or(self._author)

    # ---- registering ----------------------------------------------------------------------

    def register_run(self, run_ref: str, name: str | None = None) -> ModelVersion:
        """Store a succeeded run's model as the next version of `name` (default: its pipeline).

        Registering a run under a name twice returns the version it already made.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run did not succeed, or has no model.
        """
        run = self.runs.get(run_ref)
        with self.db.read() as s:
            found = RegistryRepository(s).version_for_run(run.id, name)
        if found is not None:
            model_name, row = found
            return self._entity(model_name, row)
        if run.status != "succeeded":
            raise ConflictError(
                f"Run {run.short_id} is {run.status}; only a succeeded run's model is registered.",
                run=run.id,
            )
        if not run.model:
            raise ConflictError(
                f"Run {run.short_id} has no model: its pipeline has no model step "
                "(name one with `Pipeline(..., model='train')`), and its code logged none "
                "(`assay.log_model(model, name)`).",
                run=run.id,
            )
        name = check_name(name or run.pipeline or run.experiment, "Model")
        from assay.runs import serialize

        model_step = next((s for s in run.steps if s.output == run.model), None)
        # The run's own output, read back by content hash (a mismatch raises before
        # the bytes are unpickled), so this loads only what the run itself wrote.
        model = serialize.load(
            self.store.get_bytes(run.model),
            (model_step.output_format if model_step else None) or "pickle",
        )
        if not callable(getattr(model, "predict", None)):
            raise NotAModelError(
                f"Run {run.short_id}'s model step returned a {type(model).__name__}, which has "
                "no predict(); there is no model to register.",
                run=run.id,
            )
        signature, example = training_signature(self.runs, self.store, run, model)
        return self._store(
            name,
            model,
            signature=signature,
            example=example,
            lineage=lineage_of(self.runs, run),
            metrics=run_metrics(run),
            run_id=run.id,
            description=f"From run {run.name} ({run.short_id}).",
        )

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        run: str | None = None,
        signature: Signature | None = None,
        example: list[Any] | None = None,
        allow_pickle: bool = False,
        description: str = "",
    ) -> ModelVersion:
        """Store a live model (a notebook's or a script's) as the next version of `name`,
        with the lineage of the run that trained it: its data, params and code versions
        and its metrics so far. A run logs one version of each model name; logging it
        again returns that version.

        Stored in the safest format its framework has (skops, XGBoost JSON, LightGBM
        text); a model only pickle can store is refused unless `allow_pickle`.

        Raises:
            NotFoundError: no such run.
            InvalidArgumentError: a bad name, a model without predict, or one only pickle
                can store without `allow_pickle`.
        """
        check_name(name, "Model")
        if not callable(getattr(model, "predict", None)):
            raise InvalidArgumentError(
                f"A {type(model).__name__} has no predict(); log a fitted model that predicts.",
                model=name,
            )
        found = self.runs.get(run) if run else None
        if found is not None:
            with self.db.read() as s:
                earlier = RegistryRepository(s).version_for_run(found.id, name)
            if earlier is not None:
                return self._entity(*earlier)
        if signature is None:
            from assay.registry.signature import signature_from_model

            signature = signature_from_model(model)
        return self._store(
            name,
            model,
            signature=signature,
            example=list(example or []),
            lineage=lineage_of(self.runs, found) if found else Lineage(source="a live model"),
            metrics=run_metrics(found) if found else {},
            run_id=found.id if found else None,
            description=description
            or (f"Logged by run {found.name} ({found.short_id})." if found else "Logged."),
            allow_pickle=allow_pickle,
        )

    def register_bundle(
        self,
        folder: Path,
        name: str,
        *,
        run: str | None = None,
        description: str = "",
        allow_pickle: bool = False,
    ) -> ModelVersion:
        """Store a bundle written elsewhere (`assay.log_model` through a server: the
        client saves the model, this keeps it) as the next version of `name`, with the
        lineage of `run`. Every file is checked against the manifest first.

        Raises:
            InvalidArgumentError: not a bundle, an unknown flavor, or a pickle without
                `allow_pickle`.
            CorruptObjectError: a file differs from its hash in the manifest.
            NotFoundError: no such run.
        """
        check_name(name, "Model")
        manifest = bundles.verify_bundle(folder)
        from assay.registry.flavors import flavor_named

        flavor_named(str(manifest["flavor"]))  # InvalidArgumentError for an unknown one
        if manifest["flavor"] == "python" and not allow_pickle:
            raise _pickle_refused(name, manifest.get("note"))
        raw_sig = manifest.get("signature")
        try:
            signature = load(Signature, raw_sig) if raw_sig else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"The bundle's signature is malformed ({exc}).", model=name
            ) from None
        found = self.runs.get(run) if run else None
        if found is not None:
            with self.db.read() as s:
                earlier = RegistryRepository(s).version_for_run(found.id, name)
            if earlier is not None:
                return self._entity(*earlier)
        return self._insert(
            folder,
            manifest,
            name,
            signature=signature,
            lineage=lineage_of(self.runs, found) if found else Lineage(source="an uploaded bundle"),
            metrics=run_metrics(found) if found else {},
            run_id=found.id if found else None,
            description=description or "Logged through the server.",
        )

    def register_file(
        self,
        path: Path,
        name: str,
        *,
        trust: bool = False,
        description: str = "",
        metrics: dict[str, float] | None = None,
        source: str | None = None,
    ) -> ModelVersion:
        """Register a model trained elsewhere: a `.skops` file, an XGBoost or LightGBM
        native model, or (with `trust`) a pickle. `source` says where it came from in the
        lineage (default: the file's path; a server names the client's file).

        Raises:
            InvalidArgumentError: an unknown format, or an untrusted pickle without `trust`.
            NotFoundError: no such file.
        """
        check_name(name, "Model")
        if not path.is_file():
            raise NotFoundError(f"No model file at {path}.", path=str(path))
        model, flavor = load_model_file(path, trust=trust)
        from assay.registry.signature import signature_from_model

        signature = signature_from_model(model)
        lineage = Lineage(source=f"{source or path.resolve()} (blake3 {hash_file(path)})")
        return self._store(
            name,
            model,
            signature=signature,
            example=[],
            lineage=lineage,
            metrics=metrics or {},
            run_id=None,
            description=description or f"Registered from {path.name}.",
            flavor=flavor,
            allow_pickle=True,  # `trust` already said whether a pickle may be read
        )

    def _store(
        self,
        name: str,
        model: Any,
        *,
        signature: Signature | None,
        example: list[Any],
        lineage: Lineage,
        metrics: dict[str, float],
        run_id: str | None,
        description: str,
        flavor: str | None = None,
        allow_pickle: bool = True,
    ) -> ModelVersion:
        """Write the model's bundle once, then insert it as the next version."""
        with tempfile.TemporaryDirectory(prefix="assay-model-") as tmp:
            folder = Path(tmp) / "bundle"
            folder.mkdir()
            manifest = bundles.write_bundle(
                model,
                folder,
                name=name,
                version=0,  # stamped with its number when it is inserted
                signature=signature,
                input_example=example,
                lineage=dump(lineage),
                metrics=metrics,
                flavor=flavor,
                cache_dir=self.cache_dir,
            )
            if manifest["flavor"] == "python" and not allow_pickle:
                raise _pickle_refused(name, manifest.get("note"))
            return self._insert(
                folder,
                manifest,
                name,
                signature=signature,
                lineage=lineage,
                metrics=metrics,
                run_id=run_id,
                description=description,
            )

    def _insert(
        self,
        folder: Path,
        manifest: dict[str, Any],
        name: str,
        *,
        signature: Signature | None,
        lineage: Lineage,
        metrics: dict[str, float],
        run_id: str | None,
        description: str,
    ) -> ModelVersion:
        """Store a written bundle's files, then its manifest stamped with the next number,
        and insert the version; a number taken meanwhile restamps and retries."""
        content = bundles.content_key(folder, manifest)
        with self.db.read() as s:
            same = RegistryRepository(s).version_with_content(name, content)
        if same is not None:  # the same model again (a rerun): that version, not a new one
            return self._entity(name, same)
        for rel, digest in manifest["files"].items():
            stored, _size = self.store.ingest_file(bundles.member(folder, rel))
            if stored != digest:
                raise ConflictError(f"Bundle file {rel} changed while it was being stored; retry.")
        extra: dict[str, Any] = {"content": content}
        if manifest.get("note"):
            extra["note"] = manifest["note"]

        def attempt() -> ModelVersion:
            with self.db.read() as s:
                repo = RegistryRepository(s)
                row = repo.model_row(name)
                number = repo.next_number(row.id) if row is not None else 1
            stamped = bundles.stamp(
                manifest, name=name, version=number, lineage=dump(lineage), metrics=metrics
            )
            digest = self.store.put_bytes(bundles.encode_manifest(stamped))
            with self.db.session() as s:
                repo = RegistryRepository(s)
                model_row = repo.get_or_create_model(name)
                if repo.next_number(model_row.id) != number:
                    raise Retry  # someone registered meanwhile: renumber and restamp
                row = repo.insert_version(
                    model_id=model_row.id,
                    number=number,
                    bundle=digest,
                    flavor=stamped["flavor"],
                    signature=dump(signature) if signature else None,
                    metrics=metrics,
                    frameworks=stamped.get("frameworks", {}),
                    lineage=dump(lineage),
                    run_id=run_id,
                    description=description,
                    author=self.author,
                    created_at=utcnow(),
                    extra=extra,
                )
                return to_version(name, row, repo.aliases(model_row.id))

        def settled() -> ModelVersion | None:
            """The run's model, when the race was lost to the same run's registration."""
            if run_id is None:
                return None
            with self.db.read() as s:
                found = RegistryRepository(s).version_for_run(run_id, name)
            return self._entity(*found) if found is not None else None

        return retrying(
            attempt, f"Too many concurrent registrations of {name!r}; retry.", settled=settled
        )

    # ---- reading ----------------------------------------------------------------------------

    def models(self) -> list[Model]:
        """Every registered model, by name, with its version count and aliases."""
        with self.db.read() as s:
            return RegistryRepository(s).models()

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of model `name`, newest first.

        Raises:
            NotFoundError: no such model.
        """
        with self.db.read() as s:
            repo = RegistryRepository(s)
            row = self._model(repo, name)
            aliases = repo.aliases(row.id)
            return [to_version(name, r, aliases) for r in repo.version_rows(row.id)]

    def of_run(self, run_id: str) -> list[ModelVersion]:
        """The versions run `run_id` registered (a notebook may log several models)."""
        with self.db.read() as s:
            repo = RegistryRepository(s)
            return [self._entity(name, row) for name, row in repo.versions_of_run(run_id)]

    def resolve(self, ref: str) -> ModelVersion:
        """`name@3`, `name@champion`, `name@latest` or `name` to a version.

        Raises:
            InvalidArgumentError: a malformed reference.
            NotFoundError: no such model, version or alias.
        """
        parsed = _parse(ref)
        with self.db.read() as s:
            repo = RegistryRepository(s)
            row = self._model(repo, parsed.name)
            aliases = repo.aliases(row.id)
            if parsed.selector == LATEST:
                number = repo.latest_number(row.id)
            elif parsed.number is not None:
                number = parsed.number
            elif parsed.selector in aliases:
                number = aliases[parsed.selector]
            else:
                known = ", ".join(aliases) or "none yet"
                raise NotFoundError(
                    f"Model {parsed.name!r} has no alias {parsed.selector!r} (aliases: {known}). "
                    f"Set one with `assay models alias {parsed.name}@VERSION {parsed.selector}`.",
                    model=parsed.name,
                    alias=parsed.selector,
                )
            found = repo.version_row(row.id, number) if number is not None else None
            if found is None:
                gone = versioned.retired(s, "model", row.id, number) if number else None
                if gone is not None:
                    raise NotFoundError(
                        f"{parsed.name}@{number} was deleted on {gone[0]:%Y-%m-%d %H:%M} by "
                        f"{gone[1]}. List the versions left with "
                        f"`assay models show {parsed.name}`.",
                        model=parsed.name,
                        version=number,
                    )
                raise NotFoundError(
                    f"Model {parsed.name!r} has no version {parsed.selector}. "
                    f"List them with `assay models show {parsed.name}`.",
                    model=parsed.name,
                    version=parsed.selector,
                )
            return to_version(parsed.name, found, aliases)

    def _model(self, repo: RegistryRepository, name: str) -> Row[Any]:
        row = repo.model_row(name)
        if row is None:
            raise NotFoundError(
                f"No model named {name!r}. List models with `assay models list`.", model=name
            )
        return row

    def _entity(self, name: str, row: Row[Any]) -> ModelVersion:
        with self.db.read() as s:
            repo = RegistryRepository(s)
            model = repo.model_row(name)
            assert model is not None
            return to_version(name, row, repo.aliases(model.id))

    # ---- aliases --------------------------------------------------------------------------

    def alias(self, ref: str, alias: str) -> ModelVersion:
        """Point `alias` at the version `ref` names, moving it from wherever it was.

        Raises:
            NotFoundError: no such model version.
            InvalidArgumentError: the alias is a number or `latest`, or malformed.
        """
        _check_alias(alias)
        mv = self.resolve(ref)
        with self.db.session() as s:
            repo = RegistryRepository(s)
            row = self._model(repo, mv.name)
            repo.set_alias(row.id, alias, mv.version)
        return self.resolve(f"{mv.name}@{mv.version}")

    def unalias(self, name: str, alias: str) -> None:
        """Remove `alias` from model `name`.

        Raises:
            NotFoundError: no such model or alias.
        """
        with self.db.session() as s:
            repo = RegistryRepository(s)
            row = self._model(repo, name)
            if not repo.remove_alias(row.id, alias):
                raise NotFoundError(f"Model {name!r} has no alias {alias!r}.", model=name)

    # ---- deleting ----------------------------------------------------------------------

    def delete_version(self, ref: str) -> tuple[ModelVersion, list[str]]:
        """Delete one version and the aliases on it; its number is never given out again,
        and its bundle goes at the next `assay gc`. Checking what depends on it (services,
        A/B tests) is the caller's (`Lifecycle`). Returns the version and its aliases.

        Raises:
            NotFoundError: no such version.
        """
        mv = self.resolve(ref)
        with self.db.session() as s:
            repo = RegistryRepository(s)
            row = self._model(repo, mv.name)
            aliases = repo.delete_version(row.id, mv.version, self.author)
        return mv, aliases

    def naming_data(self, data_ref: str) -> list[str]:
        """The versions whose lineage names data version `data_ref` (as data or params)."""
        with self.db.read() as s:
            rows = RegistryRepository(s).lineages()
        return [
            f"{name}@{number}"
            for name, number, lineage in rows
            if data_ref in (lineage.get("data"), lineage.get("params"))
        ]

    def naming_run(self, run_id: str) -> list[str]:
        """The versions a run registered (their lineage names it)."""
        return [mv.ref for mv in self.of_run(run_id)]

    def live_objects(self, conn: Connection, read: Callable[[str], bytes]) -> Iterator[str]:
        """Every object a model version refers to: its bundle's manifest and files."""
        for digest in RegistryRepository(conn).bundles():
            yield digest
            yield from json.loads(read(digest)).get("files", {}).values()

    # ---- lineage and bytes ------------------------------------------------------------------

    def lineage(self, ref: str) -> LineageTree:
        """The tree from a model version back to its run, data, pipeline and params."""
        return lineage_tree(self.runs, self.resolve(ref))

    def manifest(self, mv: ModelVersion) -> dict[str, Any]:
        """The version's bundle manifest, read back (and verified) from the store."""
        doc: dict[str, Any] = json.loads(self.store.get_bytes(mv.bundle))
        return doc

    def materialize(self, mv: ModelVersion, dest: Path) -> Path:
        """Write the version's bundle, exactly as stored, into the new folder `dest`."""
        return bundles.materialize(self.store, mv.bundle, dest)

    def export(self, ref: str, dest: Path) -> tuple[ModelVersion, Path]:
        """A self-contained folder at `dest`: the model, signature, requirements, an
        input example, and an `MLmodel` file (with a pickle MLflow can read).

        Raises:
            ConflictError: `dest` exists and is not an empty folder.
        """
        mv = self.resolve(ref)
        return mv, export_folder(self.store, mv, dest)


def _pickle_refused(name: str, note: Any) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"Model {name!r} can only be stored as a pickle ({note or 'no safe format takes it'}). "
        "Pass allow_pickle=True to store it so; it is then loaded only after its hash "
        "matches the one recorded now.",
        model=name,
    )


def _parse(ref: str) -> Ref:
    name, sep, selector = ref.partition("@")
    check_name(name, "Model")
    if sep and not selector:
        raise InvalidArgumentError(
            f"Reference {ref!r} has nothing after '@': write MODEL@VERSION or MODEL@ALIAS."
        )
    if selector and not selector.isdigit() and selector != LATEST:
        _check_alias(selector)
    return Ref(name, selector or LATEST)


def _check_alias(alias: str) -> str:
    if alias.isdigit() or alias == LATEST:
        raise InvalidArgumentError(
            f"Alias {alias!r} would shadow a version; use a word such as 'champion'."
        )
    check_tag(alias)
    return alias
