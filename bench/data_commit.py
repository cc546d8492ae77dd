"""Data commit, side by side: `assay data commit` against DVC's `dvc add`.

What it measures, end to end through each tool's CLI in a subprocess (what a user
types), wall-clock time with `time.perf_counter` around the subprocess:

- `commit_10k_small_s`: a folder of 10,000 files of 1 KiB (random bytes, in 10
  subfolders), committed into a fresh workspace (`assay init`; `git init` +
  `dvc init`, both untimed); the median of 3 rounds in fresh repositories, the
  tools taking turns to go first.
- `commit_1gb_s`: one 1 GiB file of random bytes, measured the same way.
- `recommit_one_change_s`: re-committing the folder after appending a line to one
  of its files; the median of 3 rounds, each changing a different file. Assay's
  commands are served by the warm server that the first one starts, as a user's are
  (`assay.cli.warm`; started untimed before anything is measured);
  `recommit_one_change_cold_s` and `cli_startup_cold_s` are the same with
  `ASSAY_WARM=0`, a new interpreter importing everything.

The `dvc_*` figures are the same cases for DVC. Two Assay-only figures split the
re-commit into work and start-up: `recommit_one_change_inproc_s` is the same
re-commit through the Python API (`Workspace.data.commit`, median of 3) and
`cli_startup_s` is the median of 3 runs of `assay data list`, i.e. interpreter
start-up and imports. A speedup is DVC's time divided by Assay's.

Each tool gets its own copy of the data in its own scratch folder under
`bench/.work/` (same filesystem), so neither benefits from the other's cache;
everything is deleted at the end. Before each timed command the script flushes
pending writes (`os.sync`, untimed), so no command pays for the write-back of the
one before.

Run it (DVC comes from `make bench-deps`):

    .venv/bin/python bench/data_commit.py

`ASSAY_BENCH_SCALE=0.1` scales the file count and the big file's size down for a
quick trial. The last line on stdout is one JSON object with every figure.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import harness  # bench/harness.py: shared by every benchmark
from harness import ASSAY, BIN, BenchFailed, log, out, speedup
from rich.table import Table

from assay.config import Settings
from assay.workspace import Workspace

DVC = str(BIN / "dvc")

FULL_FILE_COUNT = 10_000
SMALL_FILE_BYTES = 1024
SUBFOLDERS = 10
FULL_BIG_BYTES = 1024**3
CHUNK_BYTES = 16 * 1024**2
ROUNDS = 3
FIRST_ROUNDS = 3
SETTLE_S = 2.0
TIMEOUT_S = 1800
RACY_PAUSE_S = 0.5

FIGURES = (
    "commit_10k_small_s",
    "commit_1gb_s",
    "recommit_one_change_s",
    "dvc_commit_10k_small_s",
    "dvc_commit_1gb_s",
    "dvc_recommit_one_change_s",
    "recommit_one_change_inproc_s",
    "recommit_one_change_cold_s",
    "cli_startup_s",
    "cli_startup_cold_s",
)


@dataclass(frozen=True)
class Layout:
    """One tool's scratch folder: its repository root and its copy of the data."""

    root: Path

    @property
    def small(self) -> Path:
        return self.root / "small"

    @property
    def big(self) -> Path:
        return self.root / "big.bin"


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ASSAY_AUTHOR"] = "bench"
    env.pop("ASSAY_DB_URL", None)
    env.pop("ASSAY_STORE_URL", None)
    env["DVC_NO_ANALYTICS"] = "1"  # no background telemetry process competing for the CPU
    return env


def run(args: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    return harness.timed_run(args, cwd, env, TIMEOUT_S)


def make_small_tree(folder: Path, count: int) -> list[Path]:
    """`count` files of random bytes spread over `SUBFOLDERS` subfolders; returns them."""
    files = []
    for i in range(count):
        sub = folder / f"part-{i % SUBFOLDERS:02d}"
        if i < SUBFOLDERS:
            sub.mkdir(parents=True)
        path = sub / f"file-{i:05d}.bin"
        path.write_bytes(os.urandom(SMALL_FILE_BYTES))
        files.append(path)
    return files


def make_big_file(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left > 0:
            n = min(CHUNK_BYTES, left)
            f.write(os.urandom(n))
            left -= n


def touch_one(root: Path, rel: Path, round_no: int) -> None:
    """Append a line to one file, then wait a moment as a user would before committing.

    The pause (untimed) keeps the edit out of the stat caches' "racily clean" window
    (a file written in the same timestamp tick as its hashing is re-hashed next
    time), so each re-commit hashes just the one changed file.
    """
    with (root / rel).open("ab") as f:
        f.write(f"changed in round {round_no}\n".encode())
    time.sleep(RACY_PAUSE_S)


def dvc_digest(repo: Path) -> str:
    """The `.dvc` file of `small`, whose recorded hash must change on every re-commit."""
    return (repo / "small.dvc").read_text(encoding="utf-8")


def inproc_commit(root: Path, small: Path) -> float:
    """Re-commit `small` through the Python API, opening and closing the workspace as the CLI does.

    Raises:
        BenchFailed: the commit created no version or re-hashed more than the one file.
    """
    os.sync()
    start = time.perf_counter()
    ws = Workspace(Settings.load(root, {"ASSAY_AUTHOR": "bench"}))
    try:
        result = ws.data.commit("small", small, "bench in-process")
    finally:
        ws.close()
    elapsed = time.perf_counter() - start
    if not result.created or result.files_hashed != 1:
        raise BenchFailed(
            f"In-process re-commit: created={result.created}, "
            f"files_hashed={result.files_hashed} (expected a new version, 1 file hashed)."
        )
    return elapsed


def median_of(rounds: int, once: Callable[[int], float]) -> float:
    return statistics.median(once(r) for r in range(rounds))


def bench(work: Path, scale: float) -> dict[str, float]:
    count = max(SUBFOLDERS, round(FULL_FILE_COUNT * scale))
    big_size = max(CHUNK_BYTES, round(FULL_BIG_BYTES * scale))
    env = bench_env()
    assay, dvc = Layout(work / "assay"), Layout(work / "dvc")
    assay.root.mkdir()
    dvc.root.mkdir()
    # Assay's commands are served by a warm server, as a user's are after the first
    # (`assay.cli.warm`): started before anything is timed.
    harness.warm_server(assay.root, env)

    log.print(f"Generating {count:,} x {SMALL_FILE_BYTES} B files and a {big_size:,} B file …")
    files = make_small_tree(assay.small, count)
    shutil.copytree(assay.small, dvc.small)
    make_big_file(assay.big, big_size)
    shutil.copyfile(assay.big, dvc.big)

    # The disk of a small VM is noisy: each first commit runs in fresh repositories
    # several times, the tools taking turns, and the median counts.
    def fresh_assay() -> None:
        shutil.rmtree(assay.root / ".assay", ignore_errors=True)
        run([ASSAY, "init"], assay.root, env)

    def fresh_dvc() -> None:
        for name in (".git", ".dvc"):
            shutil.rmtree(dvc.root / name, ignore_errors=True)
        for name in ("small.dvc", "big.bin.dvc", ".gitignore", ".dvcignore"):
            (dvc.root / name).unlink(missing_ok=True)
        run(["git", "init", "-q"], dvc.root, env)
        run([DVC, "init", "-q"], dvc.root, env)

    def first_commits(target: str, rounds: int) -> tuple[float, float]:
        ours: list[float] = []
        theirs: list[float] = []
        for r in range(rounds):
            fresh_assay()
            fresh_dvc()
            time.sleep(SETTLE_S)  # let the deletes above reach the disk first
            for tool in ("assay", "dvc") if r % 2 == 0 else ("dvc", "assay"):
                if tool == "assay":
                    name = target.split(".")[0]
                    ours.append(run([ASSAY, "data", "commit", name, target], assay.root, env)[0])
                else:
                    theirs.append(run([DVC, "add", target], dvc.root, env)[0])
        return statistics.median(ours), statistics.median(theirs)

    fig: dict[str, float] = {}
    log.print(f"(a) {count:,} small files, {FIRST_ROUNDS} rounds …")
    fig["commit_10k_small_s"], fig["dvc_commit_10k_small_s"] = first_commits("small", FIRST_ROUNDS)
    log.print(f"(b) one {big_size:,} B file, {FIRST_ROUNDS} rounds …")
    # Both repositories must hold `small` for (c): commit it last, untimed.
    fig["commit_1gb_s"], fig["dvc_commit_1gb_s"] = first_commits("big.bin", FIRST_ROUNDS)
    run([ASSAY, "data", "commit", "small", "small"], assay.root, env)
    run([DVC, "add", "small"], dvc.root, env)

    # Each round changes a different file, the same one in both copies.
    changed = [
        files[(r + 1) * count // (3 * ROUNDS + 1)].relative_to(assay.root)
        for r in range(3 * ROUNDS)
    ]

    def assay_round(r: int, env: dict[str, str] = env) -> float:
        touch_one(assay.root, changed[r], r)
        elapsed, stdout = run([ASSAY, "data", "commit", "small", "small"], assay.root, env)
        if "Committed" not in stdout:
            raise BenchFailed(f"`assay data commit` created no new version:\n{stdout}")
        return elapsed

    def dvc_round(r: int) -> float:
        touch_one(dvc.root, changed[r], r)
        before = dvc_digest(dvc.root)
        elapsed, _ = run([DVC, "add", "small"], dvc.root, env)
        if dvc_digest(dvc.root) == before:
            raise BenchFailed("`dvc add small` left small.dvc unchanged after a file changed.")
        return elapsed

    def inproc_round(r: int) -> float:
        touch_one(assay.root, changed[ROUNDS + r], ROUNDS + r)
        return inproc_commit(assay.root, assay.small)

    log.print(f"(c) re-commit after changing one file, {ROUNDS} rounds …")
    fig["recommit_one_change_s"] = median_of(ROUNDS, assay_round)
    fig["dvc_recommit_one_change_s"] = median_of(ROUNDS, dvc_round)
    fig["recommit_one_change_inproc_s"] = median_of(ROUNDS, inproc_round)
    cold = {**env, "ASSAY_WARM": "0"}
    fig["recommit_one_change_cold_s"] = median_of(
        ROUNDS, lambda r: assay_round(2 * ROUNDS + r, cold)
    )

    def startup_round(_: int, env: dict[str, str] = env) -> float:
        elapsed, stdout = run([ASSAY, "data", "list", "--json"], assay.root, env)
        versions = {d["name"]: d["versions"] for d in json.loads(stdout)}
        expected = {"small": 1 + 3 * ROUNDS, "big": 1}
        if versions != expected:
            raise BenchFailed(f"Assay holds versions {versions}, expected {expected}.")
        return elapsed

    fig["cli_startup_s"] = median_of(ROUNDS, startup_round)
    fig["cli_startup_cold_s"] = median_of(ROUNDS, lambda r: startup_round(r, cold))
    return fig


def report(fig: dict[str, float], scale: float) -> None:
    count = max(SUBFOLDERS, round(FULL_FILE_COUNT * scale))
    big_mib = max(CHUNK_BYTES, round(FULL_BIG_BYTES * scale)) / 1024**2
    speedups = {
        "speedup_10k_small": speedup(fig["dvc_commit_10k_small_s"], fig["commit_10k_small_s"]),
        "speedup_1gb": speedup(fig["dvc_commit_1gb_s"], fig["commit_1gb_s"]),
        "speedup_recommit": speedup(fig["dvc_recommit_one_change_s"], fig["recommit_one_change_s"]),
    }
    table = Table(title=f"Data commit: Assay vs DVC (scale {scale:g})", title_justify="left")
    table.add_column("case")
    table.add_column("Assay s", justify="right")
    table.add_column("DVC s", justify="right")
    table.add_column("speedup", justify="right")
    rows = [
        (f"commit {count:,} x 1 KiB files", "commit_10k_small_s", "speedup_10k_small"),
        (f"commit one {big_mib:,.0f} MiB file", "commit_1gb_s", "speedup_1gb"),
        (f"re-commit, 1 of {count:,} changed", "recommit_one_change_s", "speedup_recommit"),
    ]
    for label, key, sp in rows:
        table.add_row(label, f"{fig[key]:.3f}", f"{fig['dvc_' + key]:.3f}", f"{speedups[sp]:.2f}x")
    table.add_row(
        "  re-commit, in-process API", f"{fig['recommit_one_change_inproc_s']:.3f}", "", ""
    )
    table.add_row(
        "  re-commit, cold (ASSAY_WARM=0)", f"{fig['recommit_one_change_cold_s']:.3f}", "", ""
    )
    table.add_row("  CLI start-up (assay data list)", f"{fig['cli_startup_s']:.3f}", "", "")
    table.add_row("    cold (ASSAY_WARM=0)", f"{fig['cli_startup_cold_s']:.3f}", "", "")
    out.print(table)
    figures: dict[str, float] = {k: round(fig[k], 4) for k in FIGURES}
    figures["scale"] = scale
    print(json.dumps({"bench": "data_commit", "figures": figures, "speedups": speedups}))


def missing() -> str | None:
    return next((f"{exe} is missing" for exe in (ASSAY, DVC) if not Path(exe).exists()), None)


if __name__ == "__main__":
    sys.exit(harness.main("data_commit", bench, report, missing))
