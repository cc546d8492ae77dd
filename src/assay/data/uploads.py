"""Uploads staged on the way to a commit: files sent in parts, checked by hash.

Each upload is a folder of its own under the staging root, named by a random id.
A file arrives in one part or several; a part must start where the file's bytes
so far end, so an interrupted upload resumes from `files`. Before anything uses the
folder, `verified` re-hashes every file against the BLAKE3 hash the client named
with it. The folder is the client's until `discard`: a refused upload stays, to be
fixed and tried again.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.store.objects import hash_file
from assay.store.paths import safe_join

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class UploadService:
    """The staging area for uploads, under `root` (the workspace's `cache/uploads`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def start(self) -> str:
        """A new, empty upload; returns its id."""
        upload_id = uuid.uuid4().hex
        self._folder(upload_id, create=True)
        return upload_id

    def files(self, upload_id: str) -> dict[str, int]:
        """The bytes received so far, by path.

        Raises:
            NotFoundError: no such upload.
        """
        root = self._folder(upload_id)
        return {
            p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()
        }

    def open_part(self, upload_id: str, path: str, offset: int) -> BinaryIO:
        """The file `path` of an upload, open to take the part that starts at `offset`.

        The caller writes the part's bytes and closes the file; an async transport
        streams a request body into it without holding the file in memory.

        Raises:
            NotFoundError: no such upload.
            InvalidArgumentError: `path` is not a safe relative path inside the upload.
            ConflictError: `offset` is not where the file's bytes so far end, or the
                path clashes with a folder or a file of this upload.
        """
        root = self._folder(upload_id)
        target = safe_join(root, path)
        if target.is_dir():
            raise ConflictError(f"{path!r} is a folder of this upload: it cannot be a file too.")
        have = target.stat().st_size if target.exists() else 0
        if offset != have:
            raise ConflictError(
                f"{path!r} has {have} bytes so far; send the part that starts there "
                f"(offset={have}).",
                received=have,
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            return target.open("ab" if offset else "wb")
        except (NotADirectoryError, FileExistsError, IsADirectoryError):
            raise ConflictError(
                f"{path!r} clashes with a file of this upload that is on its way: a file cannot "
                "also be a folder."
            ) from None

    def write(self, upload_id: str, path: str, offset: int, chunks: Iterable[bytes]) -> int:
        """Write one part of `path`, starting at `offset`; returns the file's size now.

        Raises as `open_part` does.
        """
        with self.open_part(upload_id, path, offset) as out:
            for chunk in chunks:
                out.write(chunk)
            return out.tell()

    def verified(self, upload_id: str, hashes: dict[str, str]) -> Path:
        """The folder of an upload that holds exactly the files `hashes` names, each with
        the BLAKE3 hash it was sent with.

        Raises:
            NotFoundError: no such upload.
            InvalidArgumentError: nothing was sent, a file is missing or not named, or
                one arrived damaged; the upload is kept.
        """
        root = self._folder(upload_id)
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

    def discard(self, upload_id: str) -> None:
        """Delete an upload and everything sent to it; an unknown one is already gone.

        Raises:
            NotFoundError: `upload_id` is not an upload id.
        """
        shutil.rmtree(self._folder(upload_id, must_exist=False), ignore_errors=True)

    def _folder(self, upload_id: str, *, create: bool = False, must_exist: bool = True) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise NotFoundError(f"No upload {upload_id!r}.")
        root = self.root / upload_id
        if create:
            root.mkdir(parents=True)
        elif must_exist and not root.is_dir():
            raise NotFoundError(f"No upload {upload_id!r}; start one with POST /api/v1/uploads.")
        return root
