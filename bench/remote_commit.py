"""Data commit through the server, side by side with the same commit on a local workspace.

What it measures, end to end through the CLI in a subprocess (what a user types),
wall-clock time with `time.perf_counter` around the subprocess:

- `local_commit_s`: `assay data commit small small` of a folder of 10,000 files of
  1 KiB (random bytes, in 10 subfolders) into a fresh workspace (`assay init`, untimed).
- `remote_commit_s`: the same command with `--remote URL` (a token in ASSAY_TOKEN),
  from a folder without a workspace, to an `assay server --workers 1` on loopback
  serving a fresh workspace of its own: the files go up (small ones in batches), the
  server checks them against their hashes and commits them.

Each is the median of 3 rounds; every round starts from fresh workspaces (and a fresh
server, started and stopped untimed), the two taking turns to go first. Both commits
must make the same version (the same manifest hash), or the benchmark fails.
`remote_over_local` is the remote time divided by the local one (the target: at most
3); `remote_vs_local` under speedups is its inverse, per the harness's rule (the
reference's time over the measured one).

Run it:

    .venv/bin/python bench/remote_commit.py

`ASSAY_BENCH_SCALE=0.1` scales the file count down for a quick trial. The last line on
stdout is one JSON object with every figure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import sys
import time
from pathlib import Path

import harness  # bench/harness.py: shared by every benchmark
from harness import ASSAY, BenchFailed, log, out, speedup
from rich.table import Table

FULL_FILE_COUNT = 10_000
SMALL_FILE_BYTES = 1024
SUBFOLDERS = 10
ROUNDS = 3
SETTLE_S = 2.0
TIMEOUT_S = 1800

FIGURES = ("local_commit_s", "remote_commit_s", "remote_over_local", "files")


def bench_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env["ASSAY_AUTHOR"] = "bench"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_small_tree(folder: Path, count: int) -> None:
    for i in range(count):
        sub = folder / f"part-{i % SUBFOLDERS:02d}"
        if i < SUBFOLDERS:
            sub.mkdir(parents=True)
        (sub / f"file-{i:05d}.bin").write_bytes(os.urandom(SMALL_FILE_BYTES))


def manifest_of(stdout: str, where: str) -> str:
    """The manifest hash of the version a `--json` commit made."""
    try:
        done = json.loads(stdout)
        manifest: str = done["version"]["manifest"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchFailed(f"The {where} commit printed no version ({exc}):\n{stdout}") from None
    if not done.get("created"):
        raise BenchFailed(f"The {where} commit made no new version:\n{stdout}")
    return manifest


def local_round(work: Path, data: Path, env: dict[str, str]) -> tuple[float, str]:
    root = work / "local"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    harness.timed_run([ASSAY, "init"], root, env, TIMEOUT_S)
    (root / "small").symlink_to(data, target_is_directory=True)
    time.sleep(SETTLE_S)
    elapsed, stdout = harness.timed_run(
        [ASSAY, "data", "commit", "small", "small/", "--json"], root, env, TIMEOUT_S
    )
    return elapsed, manifest_of(stdout, "local")


def remote_round(work: Path, data: Path, env: dict[str, str]) -> tuple[float, str]:
    home, laptop = work / "server", work / "laptop"
    for folder in (home, laptop):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    harness.timed_run([ASSAY, "init"], home, env, TIMEOUT_S)
    _, made = harness.timed_run(
        [ASSAY, "tokens", "create", "bench", "--scope", "write", "--json"], home, env, TIMEOUT_S
    )
    secret = json.loads(made)["secret"]
    (laptop / "small").symlink_to(data, target_is_directory=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [ASSAY, "server", "--port", str(port), "--workers", "1"]
    client_env = {**env, "ASSAY_TOKEN": secret}
    with harness.server_process(
        "assay server", args, f"{url}/api/v1/health", work / "server.log", cwd=home, env=env
    ):
        time.sleep(SETTLE_S)
        elapsed, stdout = harness.timed_run(
            [ASSAY, "data", "commit", "small", "small/", "--remote", url, "--json"],
            laptop,
            client_env,
            TIMEOUT_S,
        )
    return elapsed, manifest_of(stdout, "remote")


def bench(work: Path, scale: float) -> dict[str, float]:
    count = max(SUBFOLDERS, round(FULL_FILE_COUNT * scale))
    env = bench_env()
    data = work / "data"
    log.print(f"Generating {count:,} x {SMALL_FILE_BYTES} B files …")
    make_small_tree(data, count)

    local: list[float] = []
    remote: list[float] = []
    for r in range(ROUNDS):
        log.print(f"round {r + 1} of {ROUNDS} …")
        manifests = {}
        for where in ("local", "remote") if r % 2 == 0 else ("remote", "local"):
            if where == "local":
                elapsed, manifests[where] = local_round(work, data, env)
                local.append(elapsed)
            else:
                elapsed, manifests[where] = remote_round(work, data, env)
                remote.append(elapsed)
        if manifests["local"] != manifests["remote"]:
            raise BenchFailed(f"The two commits made different versions: {manifests}.")
    fig = {
        "local_commit_s": statistics.median(local),
        "remote_commit_s": statistics.median(remote),
        "files": float(count),
    }
    fig["remote_over_local"] = fig["remote_commit_s"] / fig["local_commit_s"]
    return fig


def report(fig: dict[str, float], scale: float) -> None:
    speedups = {"remote_vs_local": speedup(fig["local_commit_s"], fig["remote_commit_s"])}
    table = Table(
        title=f"Commit {int(fig['files']):,} x 1 KiB files: local vs through the server "
        f"(scale {scale:g})",
        title_justify="left",
    )
    table.add_column("case")
    table.add_column("seconds", justify="right")
    table.add_row("assay data commit (local workspace)", f"{fig['local_commit_s']:.3f}")
    table.add_row("assay data commit --remote (assay server, loopback)",
                  f"{fig['remote_commit_s']:.3f}")  # fmt: skip
    table.add_row("remote / local (target: at most 3)", f"{fig['remote_over_local']:.2f}x")
    out.print(table)
    figures: dict[str, float] = {k: round(fig[k], 4) for k in FIGURES}
    figures["scale"] = scale
    print(json.dumps({"bench": "remote_commit", "figures": figures, "speedups": speedups}))


def missing() -> str | None:
    return None if Path(ASSAY).exists() else f"{ASSAY} is missing"


if __name__ == "__main__":
    sys.exit(harness.main("remote_commit", bench, report, missing))
