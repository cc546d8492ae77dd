"""Code versions: the code a run executed, content-addressed.

A pipeline run's code is its pipeline version's snapshot. A notebook or script run
(`assay.start_run`, `assay.autolog()`) captures where it runs: the script file, the
notebook's `.ipynb` (outputs left out), or failing that the cells executed so far,
in order; plus, inside a git repository, the commit and a diff of uncommitted changes.

A capture is stored as objects: each file a blob, the diff a blob, and a small JSON
manifest naming them, whose hash is the code version's identity (`runs.code`). Two
runs of unchanged code share one code version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import InvalidArgumentError
from assay.pipelines.notebook import as_script, is_notebook, strip_outputs

CODE_FORMAT = 1
KINDS = ("pipeline", "script", "notebook", "cells")
# Bounds on what one capture stores: a run is not a backup of the disk.
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DIFF_BYTES = 2 * 1024 * 1024
_GIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class GitState:
    """Where the code sat in git: the commit, the branch, the file's path in the
    repository, and the uncommitted changes (`git diff HEAD`) when there were any."""

    commit: str
    branch: str | None
    path: str | None
    dirty: bool
    diff: str = ""


@dataclass(frozen=True)
class CodeCapture:
    """The code that produced a run, as read where it ran (nothing stored yet)."""

    kind: str
    entry: str
    files: dict[str, bytes]
    git: GitState | None = None


@dataclass(frozen=True)
class CodeVersion:
    """A stored code version: its hash, what it is, and its files by content hash."""

    hash: str
    kind: str
    entry: str
    files: dict[str, str] = field(default_factory=dict)
    git: dict[str, Any] | None = None

    @property
    def short(self) -> str:
        return self.hash[:16]

    def describe(self) -> str:
        """One line: `notebook analysis.ipynb, git 1a2b3c4d (main, uncommitted changes)`."""
        text = f"{self.kind} {self.entry}"
        if self.git:
            state = ", uncommitted changes" if self.git.get("dirty") else ""
            branch = self.git.get("branch") or "detached"
            text += f", git {str(self.git.get('commit', ''))[:8]} ({branch}{state})"
        return text


# ---- manifests ----------------------------------------------------------------------


def manifest_of(capture: CodeCapture, files: dict[str, str], diff: str | None) -> bytes:
    """The stored form of a capture whose files (and diff) are already objects."""
    doc: dict[str, Any] = {
        "format": CODE_FORMAT,
        "kind": capture.kind,
        "entry": capture.entry,
        "files": dict(sorted(files.items())),
        "git": None,
    }
    if capture.git is not None:
        doc["git"] = {
            "commit": capture.git.commit,
            "branch": capture.git.branch,
            "path": capture.git.path,
            "dirty": capture.git.dirty,
            "diff": diff,
        }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def read_manifest(digest: str, raw: bytes) -> CodeVersion:
    doc = json.loads(raw)
    return CodeVersion(
        hash=digest,
        kind=str(doc.get("kind", "script")),
        entry=str(doc.get("entry", "")),
        files={str(k): str(v) for k, v in (doc.get("files") or {}).items()},
        git=doc.get("git"),
    )


# ---- reading code where it runs -------------------------------------------------------


class GitStateStale(Exception):
    """Raised with `cached_only` where the git state would have to be read afresh."""


def capture_file(path: Path, kind: str | None = None, *, cached_only: bool = False) -> CodeCapture:
    """A script or a notebook file, with its git state. A notebook is stored without
    its outputs (they are results, not code, and would make every save a new version)."""
    raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
    if len(raw) > MAX_FILE_BYTES:
        raw = raw[:MAX_FILE_BYTES]
    if is_notebook(path.name):
        raw = strip_outputs(raw)
        kind = kind or "notebook"
    git = git_state(path, cached_only=cached_only)
    return CodeCapture(kind or "script", path.name, {path.name: raw}, git)


def capture_cells(
    cells: list[str], where: Path | None = None, *, cached_only: bool = False
) -> CodeCapture:
    """The cells a kernel executed so far, in order, as one script (`# %%` markers,
    as jupytext writes them)."""
    text = "".join(f"# %% [{i}]\n{cell.rstrip()}\n\n" for i, cell in enumerate(cells, 1))
    git = git_state(where, cached_only=cached_only) if where is not None else None
    return CodeCapture("cells", "cells.py", {"cells.py": text.encode()}, git)


def capture_here(*, cached_only: bool = False) -> CodeCapture | None:
    """The code of this process: the notebook (or its executed cells) in a Jupyter
    kernel, the script run as `python script.py`, or None (an interactive prompt).

    Raises:
        GitStateStale: with `cached_only`, the git state was not read lately (git may
            take a moment: the caller reads it in the background instead).
    """
    shell = _ipython()
    if shell is not None:
        path = notebook_path(shell)
        if path is not None and path.is_file():
            return capture_file(path, cached_only=cached_only)
        cells = [c for c in shell.user_ns.get("In", [])[1:] if isinstance(c, str) and c.strip()]
        return capture_cells(cells, Path.cwd(), cached_only=cached_only) if cells else None
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script and Path(script).is_file() and Path(script).suffix in (".py", ".ipynb"):
        return capture_file(Path(script).resolve(), cached_only=cached_only)
    return None


def notebook_path(shell: Any) -> Path | None:
    """The `.ipynb` a kernel runs, as its front end tells it: VS Code names it in the
    kernel's namespace, Jupyter Server (2.0 and later) in `JPY_SESSION_NAME`."""
    named = shell.user_ns.get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME")
    if not named:
        return None
    path = Path(str(named))
    return path if path.suffix == ".ipynb" else None


def _ipython() -> Any:
    """The IPython shell running this code (a Jupyter kernel), or None. IPython is only
    consulted when something already imported it: a plain script never pays for it."""
    getter = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = getter() if callable(getter) else None
    return shell if shell is not None and hasattr(shell, "user_ns") else None


# Runs opened in a loop (a script that trains 1,000 models, a sweep in a notebook) would
# each pay five git calls (half of opening a run in a repository, by py-spy): the state
# around a path is read again once it is older than this.
GIT_STATE_TTL_S = 2.0
_git_states: dict[Path, tuple[float, GitState | None]] = {}


def git_state(path: Path, *, cached_only: bool = False) -> GitState | None:
    """The git commit, branch and uncommitted changes around `path`, or None outside
    a repository (or without git); read at most every `GIT_STATE_TTL_S` per path.

    Raises:
        GitStateStale: with `cached_only`, when it would be read now.
    """
    now = time.monotonic()
    found = _git_states.get(path)
    if found is not None and now - found[0] < GIT_STATE_TTL_S:
        return found[1]
    if cached_only:
        raise GitStateStale(str(path))
    state = _read_git_state(path)
    _git_states[path] = (now, state)
    return state


def _read_git_state(path: Path) -> GitState | None:
    where = path if path.is_dir() else path.parent
    commit = _git(where, "rev-parse", "HEAD")
    if not commit:
        return None
    branch = _git(where, "rev-parse", "--abbrev-ref", "HEAD")
    prefix = _git(where, "rev-parse", "--show-prefix") or ""
    rel = None if path.is_dir() else f"{prefix}{path.name}"
    diff = _git(where, "diff", "HEAD", "--no-color", "--no-ext-diff", strip=False) or ""
    if len(diff.encode()) > MAX_DIFF_BYTES:
        diff = diff.encode()[:MAX_DIFF_BYTES].decode("utf-8", errors="ignore")
        diff += "\n# … diff cut at 2 MB\n"
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    return GitState(
        commit=commit,
        branch=None if branch in (None, "HEAD") else branch,
        path=rel,
        dirty=bool(status),
        diff=diff,
    )


def _git(where: Path, *args: str, strip: bool = True) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    out = done.stdout.decode("utf-8", errors="replace")
    return out.strip() if strip else out


# ---- as a person reads it --------------------------------------------------------------


def as_text(name: str, raw: bytes) -> str:
    """A stored file as a person reads it: a notebook in jupytext's percent format
    (code cells as they are, markdown as comments), anything else decoded."""
    if is_notebook(name):
        try:
            return as_script(raw)
        except InvalidArgumentError:
            pass
    return raw.decode("utf-8", errors="replace")
