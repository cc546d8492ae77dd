"""The README's tour runs as written: every `$ command` in it, in order, in a fresh folder."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tour_steps() -> list[tuple[str, list[str]]]:
    text = (ROOT / "README.md").read_text()
    tour = text.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", tour, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
    return steps


def _norm(s: str) -> str:
    # Run ids, content hashes of things holding a timestamp, and timings differ from run
    # to run; the rest must match.
    s = re.sub(r"\b[0-9a-f]{12,64}\b", "<hash>", s)
    s = re.sub(r"\b[0-9a-f]{8}\b", "<id>", s)
    s = re.sub(r"\b\d+\.\d+ s\b", "<s>", s)
    return " ".join(s.split())


def _stop_leftovers(folder: Path) -> None:
    """Kill any service or router the tour started in `folder` and did not stop (a tour
    that fails half-way must not leave a process holding its port for the next run)."""
    import signal

    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(folder).encode() in a for a in args) and any(
            m in args for m in (b"assay.serving", b"assay.abtests")
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


@pytest.fixture
def tour_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    _stop_leftovers(tmp_path)


def test_readme_tour_runs_and_prints_what_it_shows(tour_dir: Path) -> None:
    tmp_path = tour_dir
    steps = tour_steps()
    assert len(steps) >= 10
    bindir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(PATH=f"{bindir}:{env.get('PATH', '')}", COLUMNS="200")
    for command, shown in steps:
        if command.startswith("cat "):  # the README shows a file: write it as shown
            (tmp_path / command.split()[1]).write_text("\n".join(shown) + "\n")
            continue
        done = subprocess.run(
            command,
            shell=True,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        output = done.stdout + done.stderr
        expect_failure = any(line.startswith("error:") for line in shown) or any(
            "checks failed" in line for line in shown
        )
        assert (done.returncode != 0) == expect_failure, f"{command}\n{output}"
        assert "Traceback" not in output
        if shown:
            first = shown[0].replace("/tmp/tour", str(tmp_path))
            assert _norm(first) in _norm(output), f"{command}: expected {first!r} in\n{output}"
