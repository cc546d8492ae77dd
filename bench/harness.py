"""What every side-by-side benchmark shares: paths, the scale knob, the scratch folder,
failure reporting and the speedup rule. Each `bench/NAME.py` imports it and calls
`main(...)` with its own measuring and reporting.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / ".work"  # git-ignored, on the same filesystem as the repository
BIN = Path(sys.executable).parent
ASSAY = str(BIN / "assay")

out = Console(highlight=False)
log = Console(stderr=True, highlight=False)

Figures = dict[str, float]


class BenchFailed(Exception):
    """A tool failed, or the tools disagreed; the message says how."""


def speedup(peer: float, ours: float) -> float:
    """The peer's time divided by Assay's: above 1, Assay is faster."""
    return round(peer / ours, 2) if ours > 0 else float("inf")


def main(
    name: str,
    bench: Callable[[Path, float], Figures],
    report: Callable[[Figures, float], None],
    missing: Callable[[], str | None] = lambda: None,
) -> int:
    """Read ASSAY_BENCH_SCALE, run `bench` in a scratch folder, always clean up, report."""
    scale = float(os.environ.get("ASSAY_BENCH_SCALE", "1.0"))
    if not 0 < scale <= 10:
        log.print(f"ASSAY_BENCH_SCALE must be in (0, 10], got {scale}.")
        return 2
    problem = missing()
    if problem:
        log.print(f"{problem}; run `make bench-deps` first.")
        return 2
    out.print(f"scale: {scale:g}")
    WORK_ROOT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=WORK_ROOT))
    try:
        figures = bench(work, scale)
    except BenchFailed as exc:
        log.print(f"benchmark failed: {exc}", markup=False)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(figures, scale)
    return 0
