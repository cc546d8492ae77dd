"""The local executor: each run in a subprocess of its own, on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class LocalRun:
    """A runner process and the stream of progress events it sends."""

    process: subprocess.Popen[bytes]
    events_fd: int

    def events(self) -> Iterator[dict[str, Any]]:
        with os.fdopen(self.events_fd, "r") as stream:
            for line in stream:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    def wait(self) -> int:
        return self.process.wait()


class LocalExecutor:
    """Starts `python -m assay.executors.worker RUN_ID` with the workspace's settings."""

    def __init__(self, cwd: Path, environ: Mapping[str, str]) -> None:
        self.cwd = cwd
        self.environ = dict(environ)

    def launch(self, run_id: str, *, use_cache: bool = True) -> LocalRun:
        read_fd, write_fd = os.pipe()
        env = {**self.environ, "ASSAY_EVENTS_FD": str(write_fd), "PYTHONUNBUFFERED": "1"}
        args = [sys.executable, "-m", "assay.executors.worker", run_id]
        if not use_cache:
            args.append("--no-cache")
        process = subprocess.Popen(
            args, cwd=self.cwd, env=env, pass_fds=(write_fd,), stdin=subprocess.DEVNULL
        )
        os.close(write_fd)
        return LocalRun(process, read_fd)
