"""A model bundle: the self-contained folder a model version is stored, exported and served as.

Layout (`FORMAT` 1)::

    assay.json          the manifest: name, version, flavor, flavor meta, signature,
                        input example, lineage, metrics, frameworks, and every other
                        file of the bundle with its BLAKE3 hash
    MLmodel             so MLflow's tools can load the folder too
    requirements.txt    the libraries (pinned) that load the model
    input_example.json  a few training rows, the warm-up request of a service
    python_env.yaml     the environment MLflow builds to serve it (with conda.yaml), when
    conda.yaml          MLmodel has a python_function entry
    model/...           the flavor's own files (model.skops, model.json, model.txt, model.pkl)
    mlflow/model.pkl    exports only (`mlflow_pickle`): a pickle for flavors MLflow reads no
                        other way (scikit-learn: MLflow cannot read skops)

Loading verifies every file against the manifest's hashes before any of it is read,
so a pickle is only ever unpickled when its bytes are the ones Assay wrote.

A scikit-learn model skops cannot store falls back to the python flavor (pickle); the
manifest's `note` says why. Model files trained elsewhere are read by `external.py`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from assay.errors import (
    AssayError,
    CorruptObjectError,
    InvalidArgumentError,
    StorageError,
)
from assay.registry.entities import Signature
from assay.registry.flavors import (
    MODEL_DIR,
    PICKLE_PROTOCOL,
    Flavor,
    flavor_for,
    flavor_named,
    installed,
)
from assay.registry.mlmodel import CONDA_ENV as CONDA_ENV
from assay.registry.mlmodel import MLMODEL as MLMODEL
from assay.registry.mlmodel import PYTHON_ENV as PYTHON_ENV
from assay.registry.mlmodel import REQUIREMENTS as REQUIREMENTS
from assay.registry.mlmodel import mlflow_signature as mlflow_signature
from assay.registry.mlmodel import write_mlmodel
from assay.registry.signature import json_value
from assay.serialize import dump, load
from assay.store.objects import ObjectStore, hash_file

FORMAT = 1
MANIFEST = "assay.json"
INPUT_EXAMPLE = "input_example.json"
MLFLOW_PICKLE = "mlflow/model.pkl"
_REQUIRED_KEYS = ("format", "name", "version", "flavor", "flavor_meta", "files")
# MLflow's column types, by Assay column kind; 32-bit numbers have their own.


@dataclass(frozen=True)
class LoadedBundle:
    """A bundle loaded for predicting: the live model and what describes it."""

    name: str
    version: int
    flavor: str
    model: Any  # has .predict(X); .predict_proba(X) when signature.output.has_proba
    signature: Signature | None
    input_example: list[Any]
    manifest: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


# -- writing ------------------------------------------------------------------------


def write_bundle(
    model: Any,
    folder: Path,
    *,
    name: str,
    version: int,
    signature: Signature | None,
    input_example: list[Any],
    lineage: dict[str, Any],
    metrics: dict[str, float],
    flavor: str | None = None,
    mlflow_pickle: bool = False,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Save `model` with its flavor (chosen by type unless named) into the empty `folder`,
    write the manifest, MLmodel, requirements and example; returns the manifest.

    A scikit-learn model that skops cannot store is pickled (the python flavor) instead,
    and the manifest's `note` says why. `mlflow_pickle` (exports) also writes
    `mlflow/model.pkl` for flavors MLflow can read no other way, so that
    `mlflow.pyfunc.load_model(folder)` works. `cache_dir` keeps the scan of installed
    packages that finds the ones the model's classes come from (`assay.installed`).

    Raises:
        InvalidArgumentError: `folder` is not empty, the named flavor does not take this
            model, or the model cannot be stored at all.
        StorageError: the folder could not be written (disk full, permissions).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise InvalidArgumentError(
            f"{folder} is not empty; a bundle is written into an empty folder. Pick a new folder.",
            folder=str(folder),
        )
    chosen = flavor_named(flavor) if flavor else flavor_for(model)
    if not chosen.accepts(model):
        raise InvalidArgumentError(
            f"The {chosen.name} flavor cannot store a {_qualname(model)}. Leave the flavor "
            "out to have Assay pick one by the model's type.",
            flavor=chosen.name,
        )
    chosen, meta, note = _save(chosen, model, folder / MODEL_DIR)

    mlflow_meta = dict(meta)
    if mlflow_pickle and getattr(chosen, "mlflow_needs_pickle", False):
        problem = _write_mlflow_pickle(model, folder / MLFLOW_PICKLE)
        if problem is None:
            mlflow_meta["mlflow_pickle"] = MLFLOW_PICKLE
        else:
            note = " ".join(filter(None, [note, problem]))

    pins = {**_class_distributions(model, cache_dir), **chosen.frameworks()}
    frameworks = {"python": platform.python_version(), **dict(sorted(pins.items()))}
    requirements = sorted(
        {*chosen.requirements(), *(f"{d}=={v}" for d, v in pins.items())},
        key=str.lower,
    )
    example = _json_safe(input_example)
    created = datetime.now(UTC)

    (folder / REQUIREMENTS).write_text("".join(f"{line}\n" for line in requirements))
    (folder / INPUT_EXAMPLE).write_text(json.dumps(example))
    write_mlmodel(folder, chosen, mlflow_meta, signature, name, created, requirements)

    manifest: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "flavor": chosen.name,
        "flavor_meta": meta,
        "signature": dump(signature) if signature else None,
        "input_example": example,
        "lineage": _json_safe(lineage),
        "metrics": {str(k): json_value(v) for k, v in metrics.items()},
        "frameworks": frameworks,
        "created_at": created.isoformat(),
        "note": note,
        "files": _hash_files(folder),
    }
    # Written last, under a temporary name first: a folder with an assay.json is a
    # finished bundle.
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_bytes(encode_manifest(manifest))
    os.replace(tmp, folder / MANIFEST)
    return manifest


def add_mlflow_pickle(folder: Path, model: Any) -> None:
    """Make a stored bundle (materialized in `folder`) loadable by MLflow too, for an
    export: a pickle for flavors MLflow reads no other way, named in `MLmodel`, and the
    manifest updated to list it. The stored files stay as they are: nothing is saved
    again, and the requirements are the ones recorded when the model was stored."""
    manifest = read_manifest(folder)
    chosen = flavor_named(manifest["flavor"])
    if not getattr(chosen, "mlflow_needs_pickle", False):
        return
    problem = _write_mlflow_pickle(model, folder / MLFLOW_PICKLE)
    if problem is not None:
        manifest["note"] = " ".join(filter(None, [manifest.get("note"), problem]))
    else:
        meta = {**manifest["flavor_meta"], "mlflow_pickle": MLFLOW_PICKLE}
        sig = manifest.get("signature")
        requirements = (folder / REQUIREMENTS).read_text().split()
        created = datetime.fromisoformat(manifest["created_at"])
        write_mlmodel(
            folder,
            chosen,
            meta,
            load(Signature, sig) if sig else None,
            manifest["name"],
            created,
            requirements,
        )
    manifest["files"] = _hash_files(folder)
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_bytes(encode_manifest(manifest))
    os.replace(tmp, folder / MANIFEST)


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    """A manifest as `assay.json` holds it (and as the store names it by its hash)."""
    return json.dumps(manifest, indent=2, allow_nan=False).encode()


def content_key(folder: Path, manifest: dict[str, Any]) -> str:
    """What makes two bundles the same model: the flavor, the signature, and the model's
    own files by content. A zip (a `.skops` file) counts by what its members hold, not
    by its bytes (which carry the time it was written) nor its members' names (skops
    names arrays after their objects' ids): a model trained again to the same weights
    has the same key."""
    import zipfile

    from blake3 import blake3

    hasher = blake3()
    hasher.update(json.dumps([manifest["flavor"], manifest.get("signature")]).encode())
    files: dict[str, str] = manifest["files"]
    for rel in sorted(f for f in files if f.startswith(f"{MODEL_DIR}/")):
        hasher.update(rel.encode() + b"\0")
        path = member(folder, rel)
        if zipfile.is_zipfile(path):
            hasher.update(_zip_key(path).encode())
        else:
            hasher.update(files[rel].encode())
    return hasher.hexdigest()


def _zip_key(path: Path) -> str:
    """A zip's content, without what differs between two saves of one model: members'
    names (skops names an array's file, and gives every object an `__id__`, after the
    object's id in memory) are replaced by their contents' hashes, and `__id__`s dropped."""
    import zipfile

    from blake3 import blake3

    with zipfile.ZipFile(path) as archive:
        contents = {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}
    digests = {name: _member_digest(name, data) for name, data in contents.items()}

    def canonical(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: canonical(v) for k, v in node.items() if k != "__id__"}
        if isinstance(node, list):
            return [canonical(v) for v in node]
        if isinstance(node, str) and node in digests:
            return digests[node]
        return node

    parts = []
    for name, data in contents.items():
        if name.endswith(".json"):
            try:
                doc = canonical(json.loads(data))
            except (ValueError, UnicodeDecodeError):
                parts.append(digests[name])
                continue
            parts.append(blake3(json.dumps(doc, sort_keys=True).encode()).hexdigest())
        else:
            parts.append(digests[name])
    return blake3("".join(sorted(parts)).encode()).hexdigest()


def _member_digest(name: str, data: bytes) -> str:
    """A member's content hash; an array (`.npy`) by its values, field by field: a
    structured array's padding bytes hold whatever memory held (a tree's nodes do)."""
    from blake3 import blake3

    if not name.endswith(".npy"):
        return str(blake3(data).hexdigest())
    import io

    import numpy as np

    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError:  # an object array, or not an array after all: its bytes, then
        return str(blake3(data).hexdigest())
    hasher = blake3(f"{arr.dtype.descr}{arr.shape}".encode())
    for field in arr.dtype.names or (None,):
        part = arr if field is None else arr[field]
        hasher.update(np.ascontiguousarray(part).tobytes())
    return str(hasher.hexdigest())


def stamp(
    manifest: dict[str, Any],
    *,
    name: str,
    version: int,
    lineage: dict[str, Any],
    metrics: dict[str, float],
) -> dict[str, Any]:
    """The manifest of a written bundle, as the version it is about to become: the
    model's files are the same whatever number it gets, so a bundle is written once and
    only its manifest is stamped (again, when a concurrent registration takes the number)."""
    return {
        **manifest,
        "name": name,
        "version": version,
        "lineage": _json_safe(lineage),
        "metrics": {str(k): json_value(v) for k, v in metrics.items()},
    }


def _save(chosen: Flavor, model: Any, target: Path) -> tuple[Flavor, dict[str, Any], str | None]:
    """Save with `chosen`; a scikit-learn model skops cannot store is pickled instead."""
    try:
        return chosen, chosen.save(model, target), None
    except OSError as exc:  # the disk, not the model: no other format would help
        raise _storage_failed(target, exc) from exc
    except Exception as exc:  # whatever the framework raises, wrapped where it enters
        if chosen.name != "sklearn":
            raise _save_failed(chosen.name, model, exc) from exc
        reason = f"{type(exc).__name__}: {exc}"
    shutil.rmtree(target, ignore_errors=True)
    python = flavor_named("python")
    try:
        meta = python.save(model, target)
    except OSError as exc:
        raise _storage_failed(target, exc) from exc
    except Exception as exc:
        raise _save_failed("python", model, exc, also=f"skops failed too ({reason})") from exc
    note = (
        f"skops could not store this {_qualname(model)} ({reason}); it is stored with "
        "pickle (the python flavor) instead, and its hash is verified before it is loaded."
    )
    return python, meta, note


def _save_failed(flavor: str, model: Any, exc: Exception, also: str = "") -> AssayError:
    detail = f"{type(exc).__name__}: {exc}" + (f"; {also}" if also else "")
    if flavor == "python":
        return InvalidArgumentError(
            f"Cannot store the {_qualname(model)}: it cannot be pickled ({detail}). Define "
            "its class (and any function it holds) at module level, not in a function or "
            "as a lambda.",
            flavor=flavor,
        )
    return AssayError(
        f"The {flavor} flavor could not save the {_qualname(model)} ({detail}). Check that "
        "the model is fitted; if it is, report this with the model's type.",
        flavor=flavor,
    )


def _storage_failed(target: Path, exc: OSError) -> StorageError:
    return StorageError(
        f"Could not write the model into {target}: {exc.strerror or exc}. Free some space "
        "(or fix the folder's permissions) and retry.",
        errno=exc.errno,
    )


def _write_mlflow_pickle(model: Any, target: Path) -> str | None:
    """Pickle the model for MLflow; returns why not when it cannot be pickled."""
    import pickle

    target.parent.mkdir(exist_ok=True)
    try:
        with open(target, "wb") as fh:
            pickle.dump(model, fh, protocol=PICKLE_PROTOCOL)
    except OSError as exc:
        raise _storage_failed(target, exc) from exc
    except Exception as exc:  # pickle raises PicklingError, TypeError, AttributeError
        shutil.rmtree(target.parent)
        return (
            f"MLflow cannot load this export: the model cannot be pickled "
            f"({type(exc).__name__}: {exc})."
        )
    return None


def _qualname(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def _class_distributions(model: Any, cache_dir: Path | None) -> dict[str, str]:
    """{distribution: version} of the installed packages the model's classes come from
    (e.g. scikit-learn for an XGBClassifier, or for a pipeline pickled as a fallback)."""
    from assay.installed import cached_module_owners

    tops = {c.__module__.partition(".")[0] for c in type(model).__mro__}
    owners = cached_module_owners(cache_dir)
    out: dict[str, str] = {}
    for top in sorted(tops - {"builtins", "assay"}):
        for dist in owners.get(top, []):
            found = installed(dist)
            if found and found[0].lower() != "assay":
                out[found[0]] = found[1]
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return json_value(value)


def _hash_files(folder: Path) -> dict[str, str]:
    """{relative posix path: BLAKE3} of every file in the bundle but the manifest."""
    files: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            if rel != MANIFEST:
                files[rel] = hash_file(path)
    return files


# -- MLflow's view of the bundle ------------------------------------------------------


# -- reading ------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    """The bundle's manifest. Raises InvalidArgumentError when it is missing or malformed."""
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise InvalidArgumentError(
            f"{folder} is not a model bundle: it has no {MANIFEST}. Point at a folder "
            "written by Assay (`assay models export MODEL@V DEST` writes one).",
            folder=str(folder),
        ) from exc
    try:
        doc: dict[str, Any] = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(
            f"{path} is not valid JSON ({exc}); the bundle is damaged. Export the model again.",
            folder=str(folder),
        ) from exc
    missing = [k for k in _REQUIRED_KEYS if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise InvalidArgumentError(
            f"{path} is not a bundle manifest: it lacks {', '.join(missing)}. Export the "
            "model again.",
            folder=str(folder),
        )
    if doc["format"] != FORMAT:
        newer = isinstance(doc["format"], int) and doc["format"] > FORMAT
        raise InvalidArgumentError(
            f"{path} is bundle format {doc['format']!r}; this Assay reads format {FORMAT}. "
            + ("Upgrade Assay to load it." if newer else "Export the model again."),
            folder=str(folder),
        )
    if not isinstance(doc["files"], dict) or not isinstance(doc["flavor_meta"], dict):
        raise InvalidArgumentError(
            f"{path} is malformed: `files` and `flavor_meta` must be objects. Export the "
            "model again.",
            folder=str(folder),
        )
    return doc


def verify_bundle(folder: Path) -> dict[str, Any]:
    """Check every file of the bundle against the manifest's hashes; returns the manifest.

    The manifest itself is trusted: in the store its hash is the version's `bundle`,
    checked whenever the store hands it out. A file under `model/` that the manifest
    does not list is an error too, since a flavor could read it.

    Raises:
        CorruptObjectError: a file is missing, differs from its hash, or is not listed.
        InvalidArgumentError: the folder is not a bundle.
    """
    manifest = read_manifest(folder)
    files: dict[str, Any] = manifest["files"]
    for rel, digest in files.items():
        path = member(folder, rel)
        try:
            actual = hash_file(path)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise CorruptObjectError(
                f"Bundle {folder} is missing {rel}, which its manifest lists. Nothing was "
                "loaded; materialize the model again from the store.",
                file=rel,
            ) from exc
        if actual != digest:
            raise CorruptObjectError(
                f"Bundle file {rel} in {folder} does not match its hash in the manifest: it "
                "changed after the bundle was written. Nothing was loaded; materialize the "
                "model again from the store.",
                file=rel,
                expected=digest,
                actual=actual,
            )
    model_dir = folder / MODEL_DIR
    extra = sorted(
        p.relative_to(folder).as_posix()
        for p in (model_dir.rglob("*") if model_dir.is_dir() else ())
        if p.is_file() and p.relative_to(folder).as_posix() not in files
    )
    if extra:
        raise CorruptObjectError(
            f"Bundle {folder} holds {', '.join(extra)}, which its manifest does not list. "
            "Nothing was loaded; materialize the model again from the store.",
            files=extra,
        )
    return manifest


def member(folder: Path, rel: str) -> Path:
    """`rel` inside `folder`, refusing absolute paths and `..` (a manifest is data)."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or "\\" in rel:
        raise InvalidArgumentError(
            f"Bundle manifest in {folder} names the file {rel!r}, outside the bundle. "
            "Export the model again.",
            file=rel,
        )
    return folder.joinpath(*parts)


def materialize(store: ObjectStore, manifest_digest: str, dest: Path) -> Path:
    """Write the bundle whose manifest is `manifest_digest`, exactly as stored, into the
    new folder `dest`. Needs only the object store (a Ray Serve replica has no database).

    Raises:
        InvalidArgumentError: the manifest names a file outside the folder.
    """
    raw = store.get_bytes(manifest_digest)
    manifest = json.loads(raw)
    dest.mkdir(parents=True, exist_ok=False)
    for rel, digest in manifest["files"].items():
        path = PurePosixPath(rel)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise InvalidArgumentError(f"Bundle file path {rel!r} escapes its folder.")
        target = dest / Path(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        store.copy_to(digest, target)
    (dest / MANIFEST).write_bytes(raw)
    return dest


def load_bundle(folder: Path) -> LoadedBundle:
    """Verify every file against the manifest, then load the model with its flavor.

    Raises CorruptObjectError when a file's hash differs, InvalidArgumentError when the
    folder is not a bundle.
    """
    manifest = verify_bundle(folder)
    flavor = flavor_named(manifest["flavor"])
    ref = f"{manifest['name']}@{manifest['version']}"
    try:
        model = flavor.load(folder / MODEL_DIR, manifest["flavor_meta"])
    except AssayError:
        raise
    except Exception as exc:  # the framework's error, wrapped where it enters
        saved_with = ", ".join(f"{k} {v}" for k, v in manifest.get("frameworks", {}).items())
        raise AssayError(
            f"Model {ref} could not be loaded with the {flavor.name} flavor "
            f"({type(exc).__name__}: {exc}). It was saved with {saved_with or 'unknown versions'}; "
            f"install those (see {REQUIREMENTS} in the bundle) and retry.",
            model=ref,
            flavor=flavor.name,
        ) from exc
    sig = manifest.get("signature")
    return LoadedBundle(
        name=manifest["name"],
        version=manifest["version"],
        flavor=flavor.name,
        model=model,
        signature=load(Signature, sig) if sig else None,
        input_example=list(manifest.get("input_example") or []),
        manifest=manifest,
    )
