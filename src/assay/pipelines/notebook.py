"""A notebook is a pipeline: one step, the whole notebook, executed headless.

Its parameters follow papermill's convention: the cell tagged `parameters` holds the
defaults, and a run's params (plus `data`, the path of the checked-out data version)
are injected as a new cell right after it. A notebook is stored without its outputs and
execution counts, so re-saving it after running it is not a new version; its step's
code hash covers its code cells only.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from assay.errors import InvalidArgumentError
from assay.store.objects import hash_bytes

STEP = "notebook"
SUFFIX = ".ipynb"
PARAMETERS_TAG = "parameters"


def is_notebook(path: str) -> bool:
    return path.lower().endswith(SUFFIX)


def strip_outputs(raw: bytes) -> bytes:
    """A notebook without outputs and execution counts (what nbstripout keeps), or the
    bytes as they are when they are not a notebook."""
    try:
        nb = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return raw
    for cell in nb["cells"]:
        if not isinstance(cell, dict):
            continue
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata")
        if isinstance(meta, dict):
            for noisy in ("execution", "collapsed", "scrolled", "ExecuteTime", "papermill"):
                meta.pop(noisy, None)
    if isinstance(nb.get("metadata"), dict):
        nb["metadata"].pop("papermill", None)
    return (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def cells(raw: bytes | str) -> list[tuple[str, str, list[str]]]:
    """A notebook's cells: (type, source, tags).

    Raises:
        InvalidArgumentError: it is not a Jupyter notebook.
    """
    try:
        nb = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"Not a Jupyter notebook: it is not JSON ({exc}).") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise InvalidArgumentError("Not a Jupyter notebook: it has no list of cells.")
    out = []
    for cell in nb["cells"]:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        meta = cell.get("metadata")
        raw_tags = meta.get("tags") if isinstance(meta, dict) else None
        tags = [str(t) for t in raw_tags] if isinstance(raw_tags, list) else []
        out.append((str(cell.get("cell_type", "code")), text, tags))
    return out


def code_hash(raw: bytes | str) -> str:
    """The hash of a notebook's code, as a step's code hash: its code cells, in order
    (markdown, outputs and metadata left out)."""
    code = [source for kind, source, _ in cells(raw) if kind == "code"]
    return hash_bytes(json.dumps(code).encode())


def parameter_names(raw: bytes | str) -> set[str] | None:
    """The names the `parameters` cell assigns (the params a run may set), or None when
    the notebook has no such cell (then any name may be injected)."""
    for kind, source, tags in cells(raw):
        if kind != "code" or PARAMETERS_TAG not in tags:
            continue
        try:
            tree = ast.parse(_python_only(source))
        except SyntaxError:
            return None
        names: set[str] = set()
        for node in tree.body:
            targets: list[Any] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        return names
    return None


def _python_only(source: str) -> str:
    """A cell without IPython's magics and shell escapes (`%matplotlib`, `!pip`)."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )


def as_script(raw: bytes | str) -> str:
    """A notebook as a person reads it in a terminal: jupytext's percent format (code
    cells as they are, markdown as comments)."""
    parts = []
    for kind, source, tags in cells(raw):
        if kind == "markdown":
            body = "\n".join(f"# {line}".rstrip() for line in source.splitlines())
            parts.append(f"# %% [markdown]\n{body}\n")
        elif kind == "code":
            marker = f"# %% tags={tags}" if tags else "# %%"
            parts.append(f"{marker}\n{source.rstrip()}\n")
    return "\n".join(parts)
