"""What a commit takes in: the files under a path, each with its stat signature.

A user's tree is read as it is found, and whatever cannot be read is named in one line:
a folder without permission, a symlink to nothing, a file gone while being looked at.
"""

from __future__ import annotations

import os
import stat as stat_mod
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from assay.data.statcache import Signature, signature
from assay.errors import ConflictError, InvalidArgumentError

_SKIP_DIRS = frozenset({".assay", ".git", ".dvc", "__pycache__"})


class Scanned(NamedTuple):
    """A file to commit: its absolute path, its path inside the dataset, its stat signature."""

    # A NamedTuple, not a dataclass: ten thousand of these are built per commit.
    abspath: str
    rel: str
    sig: Signature


def scan(root: Path) -> list[Scanned]:
    """Every regular file under `root` (or `root` itself, a file), sorted by path.

    Symlinks to files are followed (their content is committed); named pipes, sockets
    and devices have no content to version and are skipped, as git skips them; folders
    of other tools (`.git`, `.assay`, ...) are not entered.

    Raises:
        InvalidArgumentError: a folder or file cannot be read, or a symlink leads nowhere.
        ConflictError: something vanished while it was being looked at.
    """
    if root.is_file():
        return [Scanned(str(root), root.name, signature(root.stat()))]
    out: list[Scanned] = []
    stack = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            it = os.scandir(folder)
        except FileNotFoundError:
            raise ConflictError(f"{folder} disappeared during the commit. Retry.") from None
        except OSError as exc:
            raise unreadable(Path(folder), exc) from None
        with it:
            for entry in it:
                sub = f"{rel}{entry.name}"
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in _SKIP_DIRS:
                            stack.append((entry.path, sub + "/"))
                        continue
                    st = entry.stat()  # follows a symlink to a file: its content is committed
                except FileNotFoundError:
                    if entry.is_symlink():
                        raise InvalidArgumentError(
                            f"{entry.path} is a symbolic link to nothing: there is no content "
                            "to commit. Remove the link or point it at a file."
                        ) from None
                    raise ConflictError(
                        f"{entry.path} disappeared during the commit. Retry."
                    ) from None
                except OSError as exc:
                    raise unreadable(Path(entry.path), exc) from None
                # Named pipes, sockets and devices have no content to version: skipped,
                # as git skips them.
                if stat_mod.S_ISREG(st.st_mode):
                    out.append(
                        Scanned(
                            entry.path,
                            sub,
                            (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino),
                        )
                    )
    out.sort(key=itemgetter(1))
    return out


def unreadable(path: Path, exc: OSError) -> InvalidArgumentError:
    """A file or folder of the user's that cannot be read, in one line."""
    if isinstance(exc, PermissionError):
        return InvalidArgumentError(
            f"Cannot read {path}: permission denied. Check its permissions, or leave it out."
        )
    return InvalidArgumentError(f"Cannot read {path}: {exc.strerror or exc}.")
