"""Sweeps started through the API are driven on the server, each by a process of its own.

The rules (what may start, resume or stop, and what a driver that dies leaves behind)
are `assay.sweeps.drivers`'; this module wires them to the server's workspace, and is
the driver process itself: `python -m assay.server.sweep_driver NAME` runs a recorded
sweep's trials through the executor it was created with (`assay.executors`).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from assay.sweeps.drivers import ProcessLauncher, SweepDrivers, drive

if TYPE_CHECKING:
    from assay.runs.executor import Executor
    from assay.sweeps.entities import Sweep
    from assay.workspace import Workspace

# The drivers this server process started, shared by every workspace it serves.
_drivers = SweepDrivers(ProcessLauncher("assay.server.sweep_driver", os.environ))


def start(ws: Workspace, name: str) -> None:
    _drivers.start(ws.sweeps, ws.settings, name)


def resume(ws: Workspace, name: str) -> Sweep:
    return _drivers.resume(ws.sweeps, ws.settings, name)


def stop(ws: Workspace, name: str) -> Sweep:
    return _drivers.stop(ws.sweeps, ws.settings, name)


# ---- the driver process ----------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Drive sweep `argv[0]` to its end; 0 when it finished or stopped at a limit."""
    from assay.config import Settings
    from assay.workspace import Workspace

    [name] = argv
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    ws = Workspace(Settings.load(Path.cwd(), os.environ))
    try:
        return drive(ws.sweeps, name, lambda sweep: _executor(ws, sweep), say=_say)
    finally:
        ws.close()


def _executor(ws: Workspace, sweep: Sweep) -> Executor:
    from assay.executors import open_executor

    return open_executor(
        sweep.executor,
        ws.settings,
        os.environ,
        slots=sweep.parallel,
        cwd=Path.cwd(),
        pipeline_ref=sweep.pipeline_ref,
    )


def _say(line: str) -> None:
    print(line, flush=True)


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
