"""A failed run explains itself: the step that failed, and the frames of the user's own
code (file, line, the line's text), with library frames folded, as pytest and rich do.

The whole traceback is not lost: the runner prints it to the run's log
(`assay runs logs RUN`), where it always was.
"""

from __future__ import annotations

import traceback
from pathlib import Path

STEP_ATTR = "assay_step"  # set on an exception by the engine: the step it escaped from


def explain(exc: BaseException, code_root: Path | None, run_id: str = "") -> str:
    """The failure as a user wants to read it: which step, where in their code, what."""
    step = getattr(exc, STEP_ATTR, None)
    head = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    lines = [f"Step {step!r} failed: {head}" if step else f"The run failed: {head}"]
    frames = traceback.extract_tb(exc.__traceback__)
    root = str(code_root.resolve()) if code_root is not None else None
    folded: list[str] = []

    def fold() -> None:
        if folded:
            where = ", ".join(dict.fromkeys(folded))
            lines.append(f"  … {len(folded)} frame(s) in {where}")
            folded.clear()

    mine = False
    for frame in frames:
        path = str(Path(frame.filename).resolve()) if frame.filename else ""
        if root is not None and path.startswith(root + "/"):
            fold()
            mine = True
            rel = Path(path).relative_to(root).as_posix()
            lines.append(f'  File "{rel}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
        elif mine:  # library frames below the user's: fold them
            folded.append(_package(frame.filename))
    fold()
    if not mine:  # nothing of the user's: the innermost frames, as Python shows them
        lines += [
            line.rstrip("\n")
            for line in traceback.format_list(frames[-3:])
            for line in line.splitlines()
        ]
    if run_id:
        lines.append(f"  (the whole traceback: `assay runs logs {run_id[:8]}`)")
    return "\n".join(lines)


def _package(filename: str) -> str:
    """`sklearn` for …/site-packages/sklearn/linear_model/_logistic.py."""
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            rest = parts[parts.index(marker) + 1 :]
            return rest[0].removesuffix(".py") if rest else marker
    if "lib" in parts and "python" in "".join(parts):
        return "the standard library"
    return Path(filename).name
