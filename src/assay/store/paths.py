"""Paths from outside: client-supplied ones made safe to join under a folder of ours,
and files a user names read with one clear line when they cannot be.

Transports (a pipeline's source files, an upload's parts, a model file's name) and
the services behind them receive relative paths from clients; every one goes through
`safe_join` before it touches the disk.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from assay.errors import ConflictError, InvalidArgumentError, NotFoundError

# A checks or params file is a few kilobytes; a path to anything far larger is a mistake.
USER_FILE_LIMIT = 16 * 1024 * 1024


def safe_join(root: Path, path: str) -> Path:
    """`root/path` for a client-supplied relative path, or InvalidArgumentError.

    Refused: what `check_relative` refuses, and anything resolving outside `root`
    (a symlink inside it included).
    """
    check_relative(path)
    target = root.joinpath(*path.split("/"))
    resolved = target.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise InvalidArgumentError(f"Path {path!r} leads outside its folder.", path=path)
    return target


def check_relative(path: str) -> None:
    """Refuse a client-supplied relative path that could name anything but a file below
    a folder: empty parts, `.` and `..`, absolute paths, backslashes (a Windows
    separator), NUL and control characters, over-long paths or parts. No disk is read:
    a path checked before anything is written (a batch's index) costs no `realpath`,
    which was most of the server's time in a 10,000-file upload (py-spy)."""
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


def kind_of(mode: int) -> str:
    """What a file that `os.stat` describes is, in words a user knows ("a folder")."""
    for test, words in (
        (stat.S_ISREG, "a file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return words
    return "a special file"


def read_user_text(path: Path, what: str, *, limit: int = USER_FILE_LIMIT) -> str:
    """The UTF-8 text of a file a user named on the command line (`what`: "checks file").

    It is looked at before it is opened: a named pipe would block the read, and a
    device such as /dev/zero would never end it.

    Raises:
        NotFoundError: there is no such file.
        InvalidArgumentError: it is a folder or a device, cannot be read, is larger than
            `limit`, or is not UTF-8 text.
    """
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgumentError(
                f"The {what} {str(path)!r} is {kind_of(st.st_mode)}, not a file; give a file."
            )
        if st.st_size > limit:
            raise InvalidArgumentError(
                f"The {what} {str(path)!r} is {st.st_size:,} bytes, more than a {what} "
                f"needs ({limit:,} at most); check the path."
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"The {what} {str(path)!r} does not exist; check the path.") from None
    except PermissionError:
        raise InvalidArgumentError(
            f"Cannot read the {what} {str(path)!r}: permission denied. Check its permissions."
        ) from None
    except OSError as exc:
        raise InvalidArgumentError(
            f"Cannot read the {what} {str(path)!r}: {exc.strerror or exc}."
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(
            f"The {what} {str(path)!r} is not UTF-8 text (byte {data[exc.start]:#04x} at "
            f"offset {exc.start}); save it as UTF-8."
        ) from None


def check_destination(dest: Path, *, force: bool) -> None:
    """Refuse a checkout's destination that is not a folder, or a full one without `force`.

    Raises:
        InvalidArgumentError: `dest` is a file or a device, lies under a file, or
            cannot be looked at.
        ConflictError: `dest` is a folder with something in it, and `force` is not set.
    """
    try:
        mode = dest.stat().st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise not_a_folder(dest) from None
    except PermissionError:
        raise InvalidArgumentError(
            f"Cannot write {dest}: permission denied. Check the folder's permissions."
        ) from None
    if not stat.S_ISDIR(mode):
        # Never replaced, even with --force: a checkout writes a folder, and a device
        # (/dev/null) replaced by one would break the machine.
        raise InvalidArgumentError(
            f"{dest} is {kind_of(mode)}, not a folder: a checkout writes a folder. "
            "Give a new or empty folder.",
            dest=str(dest),
        )
    if not force and any(dest.iterdir()):
        raise ConflictError(
            f"{dest} already exists and is not empty; use --force to replace its contents.",
            dest=str(dest),
        )


def not_a_folder(dest: Path) -> InvalidArgumentError:
    """`dest` cannot be made because a path above it is a file, not a folder."""
    for parent in dest.parents:
        if parent.is_file():
            return InvalidArgumentError(
                f"Cannot make {dest}: {parent} is a file, not a folder. Give another path."
            )
    return InvalidArgumentError(f"Cannot make {dest}: a path above it is not a folder.")
