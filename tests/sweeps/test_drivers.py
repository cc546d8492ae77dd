"""A server's sweep drivers: start, stop and resume, and what a driver that dies leaves,
with a fake launcher (no process), a fake clock, and the sweep in a real workspace.

The real driver processes are tested end to end in tests/cli/test_sweeps_remote.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from assay.errors import ConflictError
from assay.sweeps.drivers import HOST, SweepDrivers, drive, log_file
from assay.sweeps.repository import SweepRepository
from assay.workspace import Workspace

from .fakes import FakeClock, FakeRunners, loss, make_sweep


class FakeProcess:
    """A driver process that exits when the test says so."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code: int | None = None

    def poll(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None = None) -> int:
        if self.code is None:
            assert timeout is not None, "waiting forever for a driver that never exits"
            raise subprocess.TimeoutExpired("driver", timeout)
        return self.code


class FakeLauncher:
    """Starts `FakeProcess`es. A started driver does nothing until the test plays it:
    `claim` (it marks the sweep running under its pid), and on SIGINT what `on_interrupt`
    says (by default: it records the sweep interrupted and exits 130, as a driver does)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.started: list[FakeProcess] = []
        self.interrupted: list[int] = []
        self.refuse = False  # the driver is not the server's to signal
        self.on_interrupt: Callable[[FakeProcess], None] = self.stops

    def start(self, settings: object, name: str, log_path: Path) -> FakeProcess:
        process = FakeProcess(40_000 + len(self.started))
        self.started.append(process)
        return process

    def interrupt(self, pid: int) -> None:
        if self.refuse:
            raise PermissionError(pid)
        process = self._process(pid)
        if process is None or process.code is not None:
            raise ProcessLookupError(pid)
        self.interrupted.append(pid)
        self.on_interrupt(process)

    def is_driver(self, pid: int) -> bool:
        process = self._process(pid)
        return process is not None and process.code is None

    def claim(self, name: str, process: FakeProcess, host: str = HOST) -> None:
        with self.ws.db.session() as conn:
            repo = SweepRepository(conn)
            repo.update(repo.load(name).id, status="running", pid=process.pid, host=host)

    def stops(self, process: FakeProcess) -> None:
        self.ws.sweeps.abandoned("s", process.pid, "Stopped on the server.")
        process.code = 130

    def _process(self, pid: int) -> FakeProcess | None:
        return next((p for p in self.started if p.pid == pid), None)


class Drivers:
    """`SweepDrivers` over the fakes, with the background work it leaves to run by hand."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.launcher = FakeLauncher(ws)
        self.clock = FakeClock()
        self.pending: list[Callable[[], None]] = []
        self.drivers = SweepDrivers(
            self.launcher,
            clock=self.clock,
            background=lambda work, name: self.pending.append(work),
        )

    def start(self) -> FakeProcess:
        self.drivers.start(self.ws.sweeps, self.ws.settings, "s")
        return self.launcher.started[-1]

    def settle(self) -> None:
        """The background waits for the drivers that have exited."""
        while self.pending:
            self.pending.pop(0)()


@pytest.fixture
def drivers(ws: Workspace, tmp_path: Path) -> Drivers:
    make_sweep(ws, tmp_path, trials=3)
    return Drivers(ws)


def test_one_driver_per_sweep_is_started_at_a_time(ws: Workspace, drivers: Drivers) -> None:
    process = drivers.start()
    with pytest.raises(ConflictError, match="'s' is starting on the server"):
        drivers.start()
    assert len(drivers.launcher.started) == 1
    process.code = 0  # it drove the sweep to its end
    drivers.settle()
    drivers.start()
    assert len(drivers.launcher.started) == 2


def test_a_driver_that_fails_before_claiming_leaves_the_sweep_failed_with_its_last_line(
    ws: Workspace, drivers: Drivers
) -> None:
    process = drivers.start()
    path = log_file(ws.settings, "s")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "Sweep s: starting\nerror: --executor ray needs Ray: pip install 'assay[ray]'.\n"
    )
    process.code = 1
    drivers.settle()
    sweep = ws.sweeps.get("s")
    assert sweep.status == "failed"
    assert sweep.stop_cause == "--executor ray needs Ray: pip install 'assay[ray]'."


def test_a_driver_killed_while_driving_leaves_the_sweep_interrupted(
    ws: Workspace, drivers: Drivers
) -> None:
    process = drivers.start()
    drivers.launcher.claim("s", process)
    process.code = -9  # killed: it printed nothing
    drivers.settle()
    sweep = ws.sweeps.get("s")
    assert sweep.status == "interrupted"
    assert sweep.pid is None
    assert sweep.stop_cause == (
        f"The sweep's driver exited with -9; its log is {log_file(ws.settings, 's')} on the server."
    )


def test_stop_signals_the_driver_and_returns_the_sweep_it_interrupted(
    ws: Workspace, drivers: Drivers
) -> None:
    process = drivers.start()
    drivers.launcher.claim("s", process)
    stopped = drivers.drivers.stop(ws.sweeps, ws.settings, "s")
    assert drivers.launcher.interrupted == [process.pid]
    assert stopped.status == "interrupted"
    assert stopped.stop_cause == "Stopped on the server."
    assert drivers.clock.slept == [0.1]  # it had stopped by the next look
    with pytest.raises(
        ConflictError,
        match=r"'s' is not running \(it is interrupted\); resume it with `assay sweep resume s`",
    ):
        drivers.drivers.stop(ws.sweeps, ws.settings, "s")


def test_stop_records_a_sweep_whose_driver_went_away_as_interrupted(
    ws: Workspace, drivers: Drivers
) -> None:
    process = drivers.start()
    drivers.launcher.claim("s", process)
    process.code = -9  # gone, and nobody has settled it yet
    stopped = drivers.drivers.stop(ws.sweeps, ws.settings, "s")
    assert stopped.status == "interrupted"
    assert stopped.stop_cause == "Its driver went away."
    assert drivers.launcher.interrupted == []


def test_stop_refuses_a_driver_on_another_host_or_one_it_may_not_signal(
    ws: Workspace, drivers: Drivers
) -> None:
    process = drivers.start()
    drivers.launcher.claim("s", process, host="elsewhere")
    with pytest.raises(ConflictError, match="'s' is driven on host elsewhere; stop it there"):
        drivers.drivers.stop(ws.sweeps, ws.settings, "s")
    drivers.launcher.claim("s", process)
    drivers.launcher.refuse = True
    with pytest.raises(ConflictError, match="which the server may not signal"):
        drivers.drivers.stop(ws.sweeps, ws.settings, "s")
    assert ws.sweeps.get("s").status == "running"


def test_stop_waits_for_a_starting_driver_to_claim_the_sweep_then_gives_up(
    ws: Workspace, drivers: Drivers
) -> None:
    drivers.start()  # it never claims the sweep
    with pytest.raises(ConflictError, match="'s' has not started yet; stop it again in a moment"):
        drivers.drivers.stop(ws.sweeps, ws.settings, "s", wait_s=5.0)
    assert drivers.clock.t > 5.0
    assert drivers.launcher.interrupted == []


def test_stop_of_a_driver_that_does_not_stop_returns_the_sweep_as_it_stands(
    ws: Workspace, drivers: Drivers
) -> None:
    process = drivers.start()
    drivers.launcher.claim("s", process)
    drivers.launcher.on_interrupt = lambda process: None  # busy: it ignores the signal
    stopped = drivers.drivers.stop(ws.sweeps, ws.settings, "s", wait_s=5.0)
    assert stopped.status == "running"
    assert drivers.clock.t > 5.0
    assert drivers.launcher.interrupted == [process.pid]  # signalled once, not every look


def test_resume_queues_an_interrupted_sweep_and_starts_a_new_driver(
    ws: Workspace, drivers: Drivers
) -> None:
    first = drivers.start()
    drivers.launcher.claim("s", first)
    drivers.drivers.stop(ws.sweeps, ws.settings, "s")
    resumed = drivers.drivers.resume(ws.sweeps, ws.settings, "s")
    assert resumed.status == "queued"
    assert resumed.stop_cause is None
    assert len(drivers.launcher.started) == 2
    with pytest.raises(ConflictError, match="'s' is starting on the server"):
        drivers.drivers.resume(ws.sweeps, ws.settings, "s")


def test_resume_waits_for_the_last_driver_to_exit(ws: Workspace, drivers: Drivers) -> None:
    first = drivers.start()
    drivers.launcher.claim("s", first)

    def records_but_lingers(process: object) -> None:
        ws.sweeps.abandoned("s", first.pid, "Stopped on the server.")

    drivers.launcher.on_interrupt = records_but_lingers
    drivers.drivers.stop(ws.sweeps, ws.settings, "s", wait_s=0.0)
    with pytest.raises(ConflictError, match="last driver of sweep 's' is still stopping"):
        drivers.drivers.resume(ws.sweeps, ws.settings, "s")
    first.code = 130
    assert drivers.drivers.resume(ws.sweeps, ws.settings, "s").status == "queued"


def test_a_finished_sweep_is_not_resumed(ws: Workspace, drivers: Drivers) -> None:
    runners = FakeRunners(ws, drivers.clock, loss())
    assert ws.sweeps.run("s", runners, clock=drivers.clock).status == "finished"
    with pytest.raises(ConflictError, match="'s' has finished all its 3 trials"):
        drivers.drivers.resume(ws.sweeps, ws.settings, "s")
    assert drivers.launcher.started == []


def test_drive_runs_the_sweep_and_says_how_it_went(ws: Workspace, drivers: Drivers) -> None:
    said: list[str] = []

    def runners(sweep: object) -> FakeRunners:
        return FakeRunners(ws, drivers.clock, loss())

    code = drive(ws.sweeps, "s", runners, say=said.append, clock=drivers.clock)
    assert code == 0
    assert said[0].startswith("Sweep s: toy@1 on toy@1, 3 of 3 trials to go, 1 at a time on local")
    assert said[-1] == "Sweep s finished"
    assert drive(ws.sweeps, "s", runners, say=said.append, clock=drivers.clock) == 1
    assert said[-1].startswith("error: Sweep 's' has finished all its 3 trials")


def test_drive_interrupted_says_so_and_leaves_the_sweep_to_resume(
    ws: Workspace, drivers: Drivers
) -> None:
    said: list[str] = []

    def interrupted(sweep: object) -> FakeRunners:
        return FakeRunners(ws, drivers.clock, loss(), interrupt_after=1)

    assert drive(ws.sweeps, "s", interrupted, say=said.append, clock=drivers.clock) == 130
    assert said[-1] == "Sweep s interrupted."
    sweep = ws.sweeps.get("s")
    assert sweep.status == "interrupted"
    assert [t.state for t in sweep.trial_list] == ["complete", "interrupted"]
