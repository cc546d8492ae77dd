"""Client-supplied paths made safe to join under a folder of ours.

Transports (a pipeline's source files, an upload's parts, a model file's name) and
the services behind them receive relative paths from clients; every one goes through
`safe_join` before it touches the disk.
"""

from __future__ import annotations

import re
from pathlib import Path

from assay.errors import InvalidArgumentError


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
