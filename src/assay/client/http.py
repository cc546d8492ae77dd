"""The transport every sub-client shares: one httpx connection pool, the server's JSON
errors back as Assay's exceptions, uploads in parts and batches, checked downloads."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from assay import errors, httpclient

if TYPE_CHECKING:
    from assay.data.checks import Checks

T = TypeVar("T")

PART = 8 * 1024 * 1024  # upload parts: a failed part is resent, not the whole file
# Files smaller than this travel in batches of up to PART bytes or BATCH_FILES files
# (the size under which the store packs files, `assay.store.packs.PACKABLE`).
SMALL = 256 * 1024
BATCH_FILES = 4096


@cache
def _adapter(kind: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def parse(kind: type[T], data: Any) -> T:
    """JSON from the server back into the entity class it was made from."""
    found: T = _adapter(cast("Hashable", kind)).validate_python(data)
    return found


def _checks(checks: Checks | Path | str) -> Checks:
    """Parsed checks as they are, or a checks file (its path) parsed."""
    from assay.data.checks import Checks, load_checks

    if isinstance(checks, Checks):
        return checks
    from assay.store.paths import read_user_text

    return load_checks(read_user_text(Path(checks), "checks file"), str(checks))


class Http:
    """One server's REST API: requests, pages, uploads and downloads."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "assay-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpclient.client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise errors.UnreachableError(
                f"Cannot reach the Assay server at {self.url}: {exc or type(exc).__name__}. "
                "Check that it is up and that ASSAY_REMOTE names it."
            ) from None
        if response.status_code >= 400:
            raise error_of(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get(self, kind: type[T], path: str, **params: Any) -> T:
        clean = {k: v for k, v in params.items() if v is not None}
        return parse(kind, self.call("GET", path, params=clean))

    def every(self, kind: type[T], path: str, page_size: int = 1000, **query: Any) -> list[T]:
        """Every item of a listing route, following its pages."""
        items: list[T] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size, **query}
            if token:
                params["page_token"] = token
            doc = self.call("GET", path, params=params)
            items.extend(parse(kind, item) for item in doc["items"])
            token = doc.get("next_page_token")
            if not token:
                return items

    def upload(
        self, root: Path, progress: Callable[[int, int], None] | None = None
    ) -> tuple[str, dict[str, str]]:
        """Send a file, or a folder's files, as a new upload: (its id, {path: BLAKE3}).

        Small files go many to a request (a batch, as the store packs them); larger
        ones in parts of PART bytes, so that a failed part is resent alone.
        """
        from assay.store.objects import hash_bytes, hash_file

        if not root.exists():
            raise errors.NotFoundError(f"{root} does not exist.")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        upload = self.call("POST", "/uploads")["id"]
        hashes: dict[str, str] = {}
        batch: list[tuple[str, str, bytes]] = []
        batch_bytes = 0
        for done, file in enumerate(files):
            if progress is not None:
                progress(done, len(files))
            rel = file.name if root.is_file() else file.relative_to(root).as_posix()
            if file.stat().st_size < SMALL:
                data = file.read_bytes()  # what is hashed is what is sent
                hashes[rel] = hash_bytes(data)
                batch.append((rel, hashes[rel], data))
                batch_bytes += len(data)
                if batch_bytes >= PART or len(batch) >= BATCH_FILES:
                    self.send_batch(upload, batch)
                    batch, batch_bytes = [], 0
                continue
            hashes[rel] = hash_file(file)
            with file.open("rb") as src:
                offset = 0
                while True:
                    part = src.read(PART)
                    if not part and offset:
                        break
                    self.call(
                        "PUT",
                        f"/uploads/{upload}",
                        params={"path": rel, "offset": offset},
                        content=part,
                        headers={"Content-Type": "application/octet-stream"},
                    )
                    offset += len(part)
                    if not part:
                        break
        if batch:
            self.send_batch(upload, batch)
        if progress is not None:
            progress(len(files), len(files))
        return upload, hashes

    def send_batch(self, upload: str, batch: list[tuple[str, str, bytes]]) -> None:
        """One request carrying many small files: a JSON line naming them, then their bytes."""
        import json

        index = json.dumps([[rel, digest, len(data)] for rel, digest, data in batch])
        self.call(
            "POST",
            f"/uploads/{upload}/batch",
            content=b"".join([index.encode(), b"\n", *(data for _, _, data in batch)]),
            headers={"Content-Type": "application/octet-stream"},
        )

    def download(self, ref: str, path: str, dest: Path | str) -> Path:
        """One file of a data version, streamed to `dest` and checked against its hash."""
        from blake3 import blake3

        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        hasher = blake3()
        with self._http.stream("GET", "/files", params={"ref": ref, "path": path}) as response:
            if response.status_code >= 400:
                response.read()
                raise error_of(response)
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    hasher.update(chunk)
                    out.write(chunk)
            expected = response.headers.get("x-assay-hash")
        if expected and hasher.hexdigest() != expected:
            target.unlink(missing_ok=True)
            raise errors.CorruptObjectError(f"{path} from {ref} arrived damaged; download again.")
        return target

    def download_tar(self, path: str, tmp: Path, what: str) -> Path:
        archive = tmp / "model.tar"
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response)
                with archive.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise errors.UnreachableError(
                f"The download of {what} from {self.url} broke off ({exc}); try again."
            ) from None
        return _unpack_bundle(archive, tmp / "bundle", what)


class Part:
    """A sub-client: one concept's operations over the shared `Http`."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.call(method, path, **kwargs)

    def _get(self, kind: type[T], path: str, **params: Any) -> T:
        return self.http.get(kind, path, **params)

    def _list(self, kind: type[T], path: str, **query: Any) -> list[T]:
        return self.http.every(kind, path, **query)


def _unpack_bundle(archive: Path, folder: Path, what: str) -> Path:
    """An export's tar into the new `folder`: plain files only, inside it, and exactly the
    files its manifest (`assay.json`) lists, each with the hash listed there."""
    import json
    import shutil
    import tarfile
    from pathlib import PurePosixPath

    from assay.store.objects import hash_file

    damaged = errors.CorruptObjectError(f"{what} arrived damaged from the server; try again.")
    folder.mkdir()
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                rel = PurePosixPath(member.name)
                src = tar.extractfile(member) if member.isfile() else None
                if src is None or rel.is_absolute() or ".." in rel.parts:
                    raise damaged
                target = folder.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with src, target.open("xb") as out:
                    shutil.copyfileobj(src, out, PART)
        listed: dict[str, str] = json.loads((folder / "assay.json").read_bytes())["files"]
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError) as exc:
        raise damaged from exc
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    if found != {*listed, "assay.json"} or any(
        hash_file(folder / rel) != digest for rel, digest in listed.items()
    ):
        raise damaged
    return folder


def error_of(response: httpx.Response) -> errors.AssayError:
    """The server's JSON error as the exception class it names."""
    try:
        body = response.json()["error"]
        kind, message, details = body["type"], body["message"], body.get("details") or {}
    except (ValueError, KeyError, TypeError):
        kind, message, details = "AssayError", response.text[:500], {}
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.AssayError)):
        cls = _BY_STATUS.get(response.status_code, errors.AssayError)
    exc = cls(message, **(details if isinstance(details, dict) else {}))
    return exc


_BY_STATUS: dict[int, type[errors.AssayError]] = {
    400: errors.InvalidArgumentError,
    401: errors.UnauthorizedError,
    403: errors.ForbiddenError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    415: errors.UnsupportedMediaTypeError,
    422: errors.InvalidArgumentError,
}
