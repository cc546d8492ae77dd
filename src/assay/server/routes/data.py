"""The data repository: datasets and versions, file downloads, and uploads.

Uploads stream: a file goes up as raw bytes (`PUT /uploads/{id}?path=…`), in one
request or in parts (`&offset=N` appends where the last part ended, so an
interrupted upload resumes from `GET /uploads/{id}`). Small files go up many to a
request (`POST /uploads/{id}/batch`: a JSON line `[[path, blake3, size], …]`, then
their bytes in that order), each checked against its hash on arrival. The commit
names every file's BLAKE3 hash; the server checks what it received and refuses a
mismatch, then commits the upload as the dataset's next version. A refused commit
keeps the upload, so that it can be committed again (`allow_invalid`) without
sending it again.
"""

from __future__ import annotations

from pathlib import PurePosixPath
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
from assay.data.profiles import TableProfile
from assay.data.validation import ValidationReport
from assay.errors import AssayError
from assay.server.deps import ADMIN, READ, WRITE, WS
from assay.server.schemas import (
    BY_PATH,
    CEILING,
    ERRORS,
    SMALL_BODY,
    Input,
    Limit,
    Name,
    NameText,
    Page,
    PageToken,
    Ref,
    RefText,
    RelPathText,
    TagText,
    body_limit,
    name_field,
    page_of,
    ref_field,
)

router = APIRouter(tags=["data"], responses=ERRORS)

_CHUNK = 1 << 20


class VersionDetail(BaseModel):
    version: DataVersion
    files: list[FileEntry]


class Upload(BaseModel):
    id: str
    files: dict[str, int] = Field(description="Bytes received so far, by path")


class UploadPart(BaseModel):
    id: str
    path: str
    size: int = Field(description="The file's bytes received so far, this part included")


class UploadBatch(BaseModel):
    id: str
    files: int = Field(description="Files the batch brought")
    bytes: int = Field(description="Their bytes")


class CommitIn(Input):
    dataset: NameText = name_field()
    message: str = Field(default="", max_length=4096)
    files: dict[RelPathText, str] = Field(
        json_schema_extra=BY_PATH, min_length=1, description="Every file's BLAKE3 hash, by path"
    )
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
def list_datasets(
    ws: WS,
    limit: Limit = 100,
    page_token: PageToken = None,
    include_params: Annotated[
        bool, Query(alias="all", description="Include the runs' params/* datasets")
    ] = False,
) -> Page[Dataset]:
    return page_of(ws.data.datasets(include_params=include_params), limit, page_token)


@router.get("/datasets/{name:path}/versions", response_model=Page[DataVersion], dependencies=READ)
def log(name: Name, ws: WS, limit: Limit = 100, page_token: PageToken = None) -> Page[DataVersion]:
    return page_of(ws.data.log(name), limit, page_token)


@router.get(
    "/versions/{ref:path}", response_model=VersionDetail, dependencies=READ,
    summary="A version (NAME@N, NAME@TAG, NAME@latest) and its files",
)  # fmt: skip
def show(ref: Ref, ws: WS) -> VersionDetail:
    version = ws.data.resolve(ref)
    return VersionDetail(version=version, files=list(ws.data.files(version)))


class Profile(BaseModel):
    version: DataVersion
    tables: dict[str, TableProfile]


class ChecksIn(Input):
    checks: str = Field(description="A checks file's text (YAML), as `assay data validate` reads")
    source: str = Field(default="the checks", description="The checks file's name, for messages")


class Validation(BaseModel):
    version: DataVersion
    report: ValidationReport


class TagIn(Input):
    ref: RefText = ref_field("NAME@VERSION to tag")
    tag: TagText = Field(description="A word (a letter first); not `latest`, which moves")
    force: bool = Field(default=False, description="Move the tag if it is on another version")


@router.post(
    "/tags", response_model=DataVersion, dependencies=WRITE, summary="Tag a version",
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def tag(body: TagIn, ws: WS) -> DataVersion:
    return ws.data.tag(body.ref, body.tag, force=body.force)


@router.post(
    "/verify", response_model=VerifyReport, dependencies=ADMIN,
    openapi_extra=body_limit(SMALL_BODY),
    summary="Re-hash every stored object; name any that is missing or corrupt",
)  # fmt: skip
def verify(ws: WS) -> VerifyReport:
    return ws.data.verify()


@router.get(
    "/profiles/{ref:path}", response_model=Profile, dependencies=READ,
    summary="Per-column statistics and histograms of a version's tables",
)  # fmt: skip
def profile(ref: Ref, ws: WS) -> Profile:
    version, tables = ws.data.profile(ref)
    return Profile(version=version, tables=tables)


@router.post(
    "/validations/{ref:path}", response_model=Validation, dependencies=WRITE,
    summary="Check a version against a checks file; the result is stored with it",
)  # fmt: skip
def validate(ref: Ref, body: ChecksIn, ws: WS) -> Validation:
    from assay.data.checks import load_checks

    version, report = ws.data.validate(ref, load_checks(body.checks, body.source))
    return Validation(version=version, report=report)


@router.get("/diffs", response_model=DataDiff, dependencies=READ, summary="Two versions' diff")
def diff(
    ws: WS,
    old: Annotated[RefText, Query(description="NAME@A")],
    new: Annotated[RefText, Query(description="NAME@B")],
    key: Annotated[
        str | None,
        Query(description="Match rows by this column (default: a unique id-like column)"),
    ] = None,
) -> DataDiff:
    return ws.data.diff(old, new, key=key)


@router.get(
    "/files", dependencies=READ, response_class=StreamingResponse,
    summary="Download one file of a version, streamed",
    responses={200: {"content": {"application/octet-stream": {}}}},
)  # fmt: skip
def download(
    ws: WS,
    ref: Annotated[RefText, Query(description="NAME@VERSION")],
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


@router.post(
    "/uploads", response_model=Upload, status_code=201, dependencies=WRITE,
    openapi_extra=body_limit(SMALL_BODY),
)  # fmt: skip
def start_upload(ws: WS) -> Upload:
    return Upload(id=ws.uploads.start(), files={})


@router.get("/uploads/{upload_id}", response_model=Upload, dependencies=WRITE)
def upload_status(upload_id: str, ws: WS) -> Upload:
    return Upload(id=upload_id, files=ws.uploads.files(upload_id))


@router.put(
    "/uploads/{upload_id}", response_model=UploadPart, dependencies=WRITE,
    summary="Send a file, or a part of one (raw bytes; `offset` says where it starts)",
    openapi_extra=body_limit(
        CEILING, requestBody={"content": {"application/octet-stream": {}}}
    ),
)  # fmt: skip
async def upload_part(
    upload_id: str,
    request: Request,
    ws: WS,
    path: Annotated[RelPathText, Query(description="The file's path inside the dataset")],
    offset: Annotated[int, Query(ge=0)] = 0,
) -> UploadPart:
    # The body streams straight to disk; each chunk is small, and a local write of it
    # returns as soon as the page cache holds it. The answer is this part's alone: one
    # that listed the whole upload grew with it, making a commit of many files quadratic.
    with ws.uploads.open_part(upload_id, path, offset) as out:
        async for chunk in request.stream():
            out.write(chunk)
        size = out.tell()
    return UploadPart(id=upload_id, path=path, size=size)


@router.post(
    "/uploads/{upload_id}/batch", response_model=UploadBatch, dependencies=WRITE,
    summary="Send many small files at once: a JSON line [[path, blake3, size], …], then "
    "their bytes in that order; each is checked against its hash, the batch kept whole or "
    "not at all",
    openapi_extra=body_limit(
        CEILING, requestBody={"content": {"application/octet-stream": {}}}
    ),
)  # fmt: skip
async def upload_batch(upload_id: str, request: Request, ws: WS) -> UploadBatch:
    with ws.uploads.open_batch(upload_id) as batch:
        async for chunk in request.stream():
            batch.feed(chunk)
    return UploadBatch(id=upload_id, files=len(batch.index), bytes=batch.size)


@router.post(
    "/uploads/{upload_id}/commit", response_model=CommitResult, dependencies=WRITE,
    openapi_extra=body_limit(CEILING),  # every file's hash: 100,000 files take 10 MB
)  # fmt: skip
def commit_upload(upload_id: str, body: CommitIn, ws: WS) -> CommitResult:
    from assay.data.checks import load_checks
    from assay.data.entities import check_name

    check_name(body.dataset)  # before anything: bad input must not cost the upload
    checks = None if body.checks is None else load_checks(body.checks, body.checks_source)
    staged = ws.uploads.verified(upload_id, body.files)
    try:
        done = ws.data.commit_staged(
            body.dataset, staged, body.message, checks=checks, allow_invalid=body.allow_invalid
        )
    except AssayError as exc:  # refused (its checks, say): the upload stays for a retry
        exc.details.setdefault("upload", upload_id)
        raise
    ws.uploads.discard(upload_id)
    return done
