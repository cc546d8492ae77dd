"""The model repository: models, versions, aliases, lineage; registering and exporting.

A model file trained elsewhere goes up as a data upload does (`POST /uploads`, then
`PUT /uploads/{id}?path=FILE` in parts), and `POST /models/{name}/versions` names the
upload and the file's BLAKE3 hash, which the server checks before it loads anything.
An export comes down as one uncompressed tar, streamed, whose `assay.json` names every
other file's hash.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.background import BackgroundTask

from assay.registry.entities import LineageTree, Model, ModelVersion
from assay.server.deps import READ, WRITE, WS
from assay.server.schemas import (
    BY_PATH,
    ERRORS,
    RUN_PATTERN,
    SMALL_BODY,
    Alias,
    Input,
    Limit,
    Name,
    NameText,
    Page,
    PageToken,
    RelPathText,
    Selector,
    body_limit,
    documented,
    name_field,
    page_of,
)

router = APIRouter(prefix="/models", tags=["models"], responses=ERRORS)

_CHUNK = 1 << 20


class AliasIn(Input):
    version: int = Field(ge=1, le=2**31 - 1)


class RegisterRunIn(Input):
    run: str = Field(
        pattern=RUN_PATTERN, description="A succeeded run: its id, or the first characters of it"
    )
    name: NameText | None = name_field(
        "The model to add a version to (default: the run's pipeline)", default=None
    )


class ModelFileIn(Input):
    upload: str = Field(description="The upload (`POST /uploads`) that holds the file")
    filename: RelPathText = Field(description="The file's path in the upload; its extension tells "
                          "its format (.skops, .json, .ubj, .txt, .pkl)")  # fmt: skip
    hash: str = Field(description="The file's BLAKE3 hash; a file that arrived damaged is refused")
    trust: bool = Field(
        default=False,
        description="Load a pickle (or a .skops file with untrusted types), which can run "
        "any code it holds, on the server",
    )
    description: str = ""
    source: str | None = Field(
        default=None, description="Where the file came from (the client's path), for its lineage"
    )


@router.post(
    "", response_model=ModelVersion, status_code=201, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY),
    summary="Register a succeeded run's model as the next version (again: the same version)",
)  # fmt: skip
def register_run(body: RegisterRunIn, ws: WS) -> ModelVersion:
    return ws.registry.register_run(body.run, body.name)


@router.post(
    "/{name}/versions", response_model=ModelVersion, status_code=201, dependencies=WRITE,
    summary="Register a model file trained elsewhere, sent as an upload",
)  # fmt: skip
def register_file(name: Name, body: ModelFileIn, ws: WS) -> ModelVersion:
    from assay.data.entities import check_name

    check_name(name, "Model")  # before anything: a bad name must not cost the upload
    staged = ws.uploads.verified(body.upload, {body.filename: body.hash})
    try:
        return ws.registry.register_file(
            staged.path(body.filename),
            name,
            trust=body.trust,
            description=body.description,
            source=body.source or body.filename,
        )
    finally:
        ws.uploads.discard(body.upload)


class BundleIn(Input):
    upload: str = Field(description="The upload (`POST /uploads`) that holds the bundle's files")
    files: dict[RelPathText, str] = Field(
        json_schema_extra=BY_PATH, min_length=1, description="{path in the bundle: BLAKE3 hash}"
    )
    run: str | None = Field(
        default=None, pattern=RUN_PATTERN, description="The run that trained it (its lineage)"
    )
    allow_pickle: bool = Field(
        default=False, description="Store a model that only pickle can store (python flavor)"
    )
    description: str = ""


@router.post(
    "/{name}/bundles", response_model=ModelVersion, status_code=201, dependencies=WRITE,
    summary="Register a model bundle written by a client (`assay.log_model`), linked to its run",
)  # fmt: skip
def register_bundle(name: Name, body: BundleIn, ws: WS) -> ModelVersion:
    from assay.data.entities import check_name

    check_name(name, "Model")
    staged = ws.uploads.verified(body.upload, body.files)
    try:
        return ws.registry.register_bundle(
            staged.folder(),
            name,
            run=body.run,
            description=body.description,
            allow_pickle=body.allow_pickle,
        )
    finally:
        ws.uploads.discard(body.upload)


@router.get("", response_model=Page[Model], dependencies=READ)
def list_models(ws: WS, limit: Limit = 100, page_token: PageToken = None) -> Page[Model]:
    return page_of(ws.registry.models(), limit, page_token)


@router.get("/{name}/versions", response_model=Page[ModelVersion], dependencies=READ)
def versions(
    name: Name, ws: WS, limit: Limit = 100, page_token: PageToken = None
) -> Page[ModelVersion]:
    return page_of(ws.registry.versions(name), limit, page_token)


@router.get(
    "/{name}/versions/{version}", response_model=ModelVersion, dependencies=READ,
    summary="A version by number, alias or `latest`",
)  # fmt: skip
def get_version(name: Name, version: Selector, ws: WS) -> ModelVersion:
    return ws.registry.resolve(f"{name}@{version}")


@router.get(
    "/{name}/versions/{version}/lineage", response_model=documented(LineageTree),
    dependencies=READ, summary="The version traced back to its run, data, pipeline and params",
)  # fmt: skip
def lineage(name: Name, version: Selector, ws: WS) -> LineageTree:
    return ws.registry.lineage(f"{name}@{version}")


@router.get(
    "/{name}/versions/{version}/export", dependencies=READ, response_class=StreamingResponse,
    summary="The folder `assay models export` writes, as an uncompressed tar, streamed",
    responses={200: {"content": {"application/x-tar": {}}}},
)  # fmt: skip
def export(name: Name, version: Selector, ws: WS) -> StreamingResponse:
    ws.settings.cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="export-", dir=ws.settings.cache_dir))
    try:
        mv, folder = ws.registry.export(f"{name}@{version}", tmp / "model")
        members = _tar_members(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _tar_response(members, tmp, f"{mv.name}-{mv.version}.tar")


@router.get(
    "/{name}/versions/{version}/bundle", dependencies=READ, response_class=StreamingResponse,
    summary="The version's bundle as it is stored, as an uncompressed tar, streamed",
    responses={200: {"content": {"application/x-tar": {}}}},
)  # fmt: skip
def bundle(name: Name, version: Selector, ws: WS) -> StreamingResponse:
    mv = ws.registry.resolve(f"{name}@{version}")
    ws.settings.cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bundle-", dir=ws.settings.cache_dir))
    try:
        folder = ws.registry.materialize(mv, tmp / "model")
        members = _tar_members(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _tar_response(members, tmp, f"{mv.name}-{mv.version}-bundle.tar")


def _tar_response(members: list[tuple[bytes, Path]], tmp: Path, filename: str) -> StreamingResponse:
    size = sum(len(header) + _padded(path.stat().st_size) for header, path in members)
    return StreamingResponse(
        _tar_stream(members, tmp),
        media_type="application/x-tar",
        headers={
            "Content-Length": str(size + 2 * tarfile.BLOCKSIZE),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )


def _padded(size: int) -> int:
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _tar_members(folder: Path) -> list[tuple[bytes, Path]]:
    """Each file of `folder` with its tar header (POSIX pax), in a stable order."""
    members = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        info = tarfile.TarInfo(path.relative_to(folder).as_posix())
        info.size = path.stat().st_size
        info.mode = 0o644
        info.mtime = int(path.stat().st_mtime)
        members.append((info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), path))
    return members


def _tar_stream(members: list[tuple[bytes, Path]], tmp: Path) -> Iterator[bytes]:
    """The tar, a header and a file's chunks at a time (never a whole file in memory)."""
    try:
        for header, path in members:
            yield header
            size = 0
            with path.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    size += len(chunk)
                    yield chunk
            yield bytes(_padded(size) - size)
        yield bytes(2 * tarfile.BLOCKSIZE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@router.put(
    "/{name}/aliases/{alias}", response_model=ModelVersion, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def set_alias(name: Name, alias: Alias, body: AliasIn, ws: WS) -> ModelVersion:
    return ws.registry.alias(f"{name}@{body.version}", alias)


@router.delete(
    "/{name}/aliases/{alias}", status_code=204, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def delete_alias(name: Name, alias: Alias, ws: WS) -> None:
    ws.registry.unalias(name, alias)
