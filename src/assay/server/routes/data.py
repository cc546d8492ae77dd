"""The data repository: datasets and versions, file downloads, and uploads.

Uploads stream: each file goes up as raw bytes (`PUT /uploads/{id}?path=…`), in one
request or in parts (`&offset=N` appends where the last part ended, so an
interrupted upload resumes from `GET /uploads/{id}`). The commit names every file's
BLAKE3 hash; the server re-hashes what it received and refuses a mismatch, then
commits the staged folder as the dataset's next version.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from assay.data.entities import (
    CommitResult,
    DataDiff,
    Dataset,
    DataVersion,
    FileEntry,
    VerifyReport,
)
from assay.data.tabular import TableProfile
from assay.data.validation import ValidationReport
from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.server.deps import ADMIN, READ, WRITE, WS
from assay.server.schemas import ERRORS, Limit, Page, page_of

router = APIRouter(tags=["data"], responses=ERRORS)

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_CHUNK = 1 << 20


class VersionDetail(BaseModel):
    version: DataVersion
    files: list[FileEntry]


class Upload(BaseModel):
    id: str
    files: dict[str, int] = Field(description="Bytes received so far, by path")


class CommitIn(BaseModel):
    dataset: str
    message: str = ""
    files: dict[str, str] = Field(description="Every file's BLAKE3 hash, by path")
    checks: str | None = Field(
        default=None,
        description="A checks file's text (YAML): validate first, and refuse data that fails "
        "(a 422 whose details hold the report; no version is made)",
    )
    checks_source: str = Field(default="the checks", description="The checks file's name")
    allow_invalid: bool = Field(
        default=False, description="Commit data that fails the checks, marked failed"
    )


@router.get("/datasets", response_model=Page[Dataset], dependencies=READ)
def list_datasets(ws: WS, limit: Limit = 100, page_token: str | None = None) -> Page[Dataset]:
    return page_of(ws.data.datasets(), limit, page_token)


@router.get("/datasets/{name:path}/versions", response_model=Page[DataVersion], dependencies=READ)
def log(name: str, ws: WS, limit: Limit = 100, page_token: str | None = None) -> Page[DataVersion]:
    return page_of(ws.data.log(name), limit, page_token)


@router.get(
    "/versions/{ref:path}", response_model=VersionDetail, dependencies=READ,
    summary="A version (NAME@N, NAME@TAG, NAME@latest) and its files",
)  # fmt: skip
def show(ref: str, ws: WS) -> VersionDetail:
    version = ws.data.resolve(ref)
    return VersionDetail(version=version, files=list(ws.data.files(version)))


class Profile(BaseModel):
    version: DataVersion
    tables: dict[str, TableProfile]


class ChecksIn(BaseModel):
    checks: str = Field(description="A checks file's text (YAML), as `assay data validate` reads")
    source: str = Field(default="the checks", description="The checks file's name, for messages")


class Validation(BaseModel):
    version: DataVersion
    report: ValidationReport


class TagIn(BaseModel):
    ref: str = Field(description="NAME@VERSION to tag")
    tag: str
    force: bool = Field(default=False, description="Move the tag if it is on another version")


@router.post("/tags", response_model=DataVersion, dependencies=WRITE, summary="Tag a version")
def tag(body: TagIn, ws: WS) -> DataVersion:
    return ws.data.tag(body.ref, body.tag, force=body.force)


@router.post(
    "/verify", response_model=VerifyReport, dependencies=ADMIN,
    summary="Re-hash every stored object; name any that is missing or corrupt",
)  # fmt: skip
def verify(ws: WS) -> VerifyReport:
    return ws.data.verify()


@router.get(
    "/profiles/{ref:path}", response_model=Profile, dependencies=READ,
    summary="Per-column statistics and histograms of a version's tables",
)  # fmt: skip
def profile(ref: str, ws: WS) -> Profile:
    version, tables = ws.data.profile(ref)
    return Profile(version=version, tables=tables)


@router.post(
    "/validations/{ref:path}", response_model=Validation, dependencies=WRITE,
    summary="Check a version against a checks file; the result is stored with it",
)  # fmt: skip
def validate(ref: str, body: ChecksIn, ws: WS) -> Validation:
    from assay.data.checks import load_checks

    version, report = ws.data.validate(ref, load_checks(body.checks, body.source))
    return Validation(version=version, report=report)


@router.get("/diffs", response_model=DataDiff, dependencies=READ, summary="Two versions' diff")
def diff(
    ws: WS,
    old: Annotated[str, Query(description="NAME@A")],
    new: Annotated[str, Query(description="NAME@B")],
) -> DataDiff:
    return ws.data.diff(old, new)


@router.get(
    "/files", dependencies=READ, response_class=StreamingResponse,
    summary="Download one file of a version, streamed",
    responses={200: {"content": {"application/octet-stream": {}}}},
)  # fmt: skip
def download(
    ws: WS,
    ref: Annotated[str, Query(description="NAME@VERSION")],
    path: Annotated[str, Query(description="The file's path inside the version")],
) -> StreamingResponse:
    version = ws.data.resolve(ref)
    entry, chunks = ws.data.stream_file(version, path, _CHUNK)  # only listed paths exist
    name = PurePosixPath(path).name.replace('"', "")
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(entry.size),
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Assay-Hash": entry.hash,
        },
    )


@router.post("/uploads", response_model=Upload, status_code=201, dependencies=WRITE)
def start_upload(ws: WS) -> Upload:
    upload_id = uuid.uuid4().hex
    _staging(ws, upload_id, create=True)
    return Upload(id=upload_id, files={})


@router.get("/uploads/{upload_id}", response_model=Upload, dependencies=WRITE)
def upload_status(upload_id: str, ws: WS) -> Upload:
    root = _staging(ws, upload_id)
    files = {
        p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()
    }
    return Upload(id=upload_id, files=files)


@router.put(
    "/uploads/{upload_id}", response_model=Upload, dependencies=WRITE,
    summary="Send a file, or a part of one (raw bytes; `offset` says where it starts)",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}}},
)  # fmt: skip
async def upload_part(
    upload_id: str,
    request: Request,
    ws: WS,
    path: Annotated[str, Query(description="The file's path inside the dataset")],
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Upload:
    root = _staging(ws, upload_id)
    target = safe_join(root, path)
    if target.is_dir():
        raise ConflictError(f"{path!r} is a folder of this upload: it cannot be a file too.")
    have = target.stat().st_size if target.exists() else 0
    if offset != have:
        raise ConflictError(
            f"{path!r} has {have} bytes so far; send the part that starts there (offset={have}).",
            received=have,
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab" if offset else "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
    except (NotADirectoryError, FileExistsError, IsADirectoryError):
        raise ConflictError(
            f"{path!r} clashes with a file of this upload that is on its way: a file cannot "
            "also be a folder."
        ) from None
    return upload_status(upload_id, ws)


@router.post("/uploads/{upload_id}/commit", response_model=CommitResult, dependencies=WRITE)
def commit_upload(upload_id: str, body: CommitIn, ws: WS) -> CommitResult:
    from assay.data.checks import load_checks
    from assay.data.entities import check_name

    check_name(body.dataset)  # before anything: bad input must not cost the upload
    checks = None if body.checks is None else load_checks(body.checks, body.checks_source)
    root = verified_upload(ws, upload_id, body.files)
    try:
        return ws.data.commit(
            body.dataset, root, body.message, checks=checks, allow_invalid=body.allow_invalid
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def verified_upload(ws: WS, upload_id: str, hashes: dict[str, str]) -> Path:
    """The folder of an upload that holds exactly the files `hashes` names, each with the
    BLAKE3 hash it was sent with; InvalidArgumentError (the upload kept) otherwise."""
    from assay.store.objects import hash_file

    root = _staging(ws, upload_id)
    received = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    if not received:
        raise InvalidArgumentError("Nothing was uploaded; send the files first.")
    missing = sorted(set(hashes) - set(received))
    extra = sorted(set(received) - set(hashes))
    if missing or extra:
        what = f"never sent: {missing[0]!r}" if missing else f"not named: {extra[0]!r}"
        raise InvalidArgumentError(
            f"The upload does not match the files named with it ({what}); send them again."
        )
    for rel, file in sorted(received.items()):
        digest = hash_file(file)
        if digest != hashes[rel]:
            raise InvalidArgumentError(
                f"{rel!r} arrived with hash {digest[:16]}…, not the {hashes[rel][:16]}… "
                "it was sent with: it was damaged on the way. Upload it again.",
                path=rel,
            )
    return root


def _staging(ws: WS, upload_id: str, *, create: bool = False) -> Path:
    if not _UPLOAD_ID.match(upload_id):
        raise NotFoundError(f"No upload {upload_id!r}.")
    root = ws.settings.cache_dir / "uploads" / upload_id
    if create:
        root.mkdir(parents=True)
    elif not root.is_dir():
        raise NotFoundError(f"No upload {upload_id!r}; start one with POST /api/v1/uploads.")
    return root


def safe_join(root: Path, path: str) -> Path:
    """`root/path` for a client-supplied relative path, or InvalidArgumentError.

    Refused: empty parts, `.` and `..`, absolute paths, backslashes (a Windows
    separator), NUL and control characters, and anything resolving outside `root`
    (a symlink inside it included).
    """
    parts = path.split("/")
    bad = (
        not path
        or len(path) > 1024
        or len(parts) > 64
        or any(len(part.encode()) > 255 for part in parts)
        or path.startswith("/")
        or "\\" in path
        or any(ord(c) < 32 for c in path)
        or re.match(r"^[A-Za-z]:", path) is not None
        or any(part in ("", ".", "..") for part in parts)
    )
    if bad:
        raise InvalidArgumentError(
            f"Path {path[:200]!r} is not allowed: give a relative path with '/' between "
            "parts (at most 64 parts of 255 bytes), without '..'.",
            path=path,
        )
    target = root.joinpath(*path.split("/"))
    resolved = target.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise InvalidArgumentError(f"Path {path!r} leads outside its folder.", path=path)
    return target
