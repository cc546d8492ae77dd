"""A version's file list, stored as one content-addressed object (like a git tree)."""

from __future__ import annotations

import json

from assay.data.entities import FileEntry
from assay.errors import CorruptObjectError

FORMAT = "assay.manifest/1"


def encode(files: list[FileEntry]) -> bytes:
    """Canonical bytes: sorted by path, so the same tree always hashes the same."""
    rows = [[f.path, f.hash, f.size] for f in sorted(files, key=lambda f: f.path)]
    return json.dumps({"format": FORMAT, "files": rows}, separators=(",", ":")).encode()


def decode(data: bytes) -> tuple[FileEntry, ...]:
    try:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            raise ValueError(f"unknown format {doc.get('format')!r}")
        return tuple(FileEntry(p, h, int(s)) for p, h, s in doc["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptObjectError(f"A version manifest cannot be read: {exc}.") from exc
