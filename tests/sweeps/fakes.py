"""A fake clock, fake runners and a toy sweep for the sweep scheduler's and drivers' tests.

`make_sweep` records a sweep of a toy pipeline in a workspace. `FakeRunners` is an
`Executor` that plays what a runner does to a run in the store (the real database): it
marks the run running, logs its learning curve step by step, stops at a pruning request
as `log_metric` does, and records the run's end with its metrics and cost. Time is the
`FakeClock`'s, moved on by `wait` from one event to the next, so a trial of an hour ends
at once and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assay.runs.executor import Done, Job
from assay.runs.repository import RunRepository
from assay.sweeps.entities import Sweep
from assay.workspace import Workspace


class FakeClock:
    """Time that passes only when something moves it on."""

    def __init__(self) -> None:
        self.t = 0.0
        self.epoch = datetime(2026, 1, 1, tzinfo=UTC)
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.t)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@dataclass
class Script:
    """How one trial's run goes."""

    seconds: float = 1.0
    metrics: dict[str, float] = field(default_factory=dict)
    curve: Sequence[float] = ()  # values of `curve_key`, logged at steps 1..n over `seconds`
    curve_key: str = "partial"
    error: str | None = None  # the run fails with this error
    problem: str | None = None  # the runner dies at the end: the run is left running


@dataclass
class _Running:
    run_id: str
    script: Script
    started: float
    logged: int = 0

    def next_event(self) -> float:
        steps = len(self.script.curve)
        if self.logged < steps:
            return self.started + (self.logged + 1) * self.script.seconds / steps
        return self.started + self.script.seconds


class FakeRunners:
    """`slots` runners that never start a process; each run goes as `behave(params)` says."""

    name = "fake"

    def __init__(
        self,
        ws: Workspace,
        clock: FakeClock,
        behave: Callable[[dict[str, Any]], Script],
        *,
        slots: int = 1,
        cost_per_s: float = 0.0,
        interrupt_after: int | None = None,
    ) -> None:
        self.ws = ws
        self.clock = clock
        self.behave = behave
        self.slots = slots
        self.cost_per_s = cost_per_s
        self.interrupt_after = interrupt_after  # raise KeyboardInterrupt once so many ended
        self.running: dict[str, _Running] = {}
        self.submitted: list[str] = []
        self.ended = 0
        self.peak = 0
        self.closed: bool | None = None  # None: open; else whether it was closed with cancel

    def submit(self, job: Job) -> None:
        assert self.closed is None, "a job submitted to a closed executor"
        assert len(self.running) < self.slots, "a job submitted while every runner is busy"
        script = self.behave(self.ws.runs.get(job.run_id).params)
        with self.ws.db.session() as conn:
            RunRepository(conn).update(job.run_id, status="running", started_at=self.clock.now())
        self.running[job.run_id] = _Running(job.run_id, script, self.clock.t)
        self.submitted.append(job.run_id)
        self.peak = max(self.peak, len(self.running))

    def wait(self, timeout: float) -> list[Done]:
        if self.interrupt_after is not None and self.ended >= self.interrupt_after:
            self.interrupt_after = None
            raise KeyboardInterrupt  # Ctrl-C, or a driver's stop signal, while it waits
        deadline = self.clock.t + timeout
        while self.running:
            job = min(self.running.values(), key=_Running.next_event)
            at = job.next_event()
            if at > deadline:
                break
            self.clock.t = max(self.clock.t, at)
            done = self._step(job)
            if done is not None:
                del self.running[job.run_id]
                self.ended += 1
                return [done]
        self.clock.t = max(self.clock.t, deadline)
        return []

    def close(self, *, cancel: bool = False) -> None:
        self.closed = cancel

    def _step(self, job: _Running) -> Done | None:
        """The job's next event: a point of its curve, or its end."""
        script = job.script
        with self.ws.db.session() as conn:
            repo = RunRepository(conn)
            if job.logged < len(script.curve):
                reason = repo.stop_reason(job.run_id)
                if reason is not None:  # `log_metric` raises RunStopped: the run ends so
                    self._end(repo, job, reason, f"Stopped early ({reason}).")
                    return Done(job.run_id)
                value = script.curve[job.logged]
                job.logged += 1
                repo.add_points(job.run_id, [(script.curve_key, value, job.logged, self._ts())])
                return None
            if script.problem is not None:
                return Done(job.run_id, script.problem)
            if script.error is not None:
                self._end(repo, job, "failed", script.error)
            else:
                points = [(k, v, None, self._ts()) for k, v in script.metrics.items()]
                repo.add_points(job.run_id, points)  # type: ignore[arg-type]
                self._end(repo, job, "succeeded", None)
            return Done(job.run_id)

    def _end(self, repo: RunRepository, job: _Running, status: str, error: str | None) -> None:
        wall = self.clock.t - job.started
        repo.update(
            job.run_id,
            status=status,
            error=error,
            ended_at=self.clock.now(),
            resources={"wall_s": wall, "cost": wall * self.cost_per_s},
        )

    def _ts(self) -> float:
        return self.clock.now().timestamp()


PIPELINE = """
import assay

@assay.step
def evaluate(params):
    x = float(params.get("x", 0.0))
    return {"loss": (x - 2) ** 2, "gain": x}

pipeline = assay.Pipeline("toy", [evaluate])
"""


def make_sweep(ws: Workspace, tmp_path: Path, **options: Any) -> Sweep:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.csv").write_text("a\n1\n")
    ws.data.commit("toy", tmp_path / "d")
    given: dict[str, Any] = {
        "data": "toy",
        "trials": 5,
        "objectives": ["loss"],
        "space_text": "x: {float: [0, 4]}\n",
        "register": "none",
        "name": "s",
    }
    return ws.sweeps.create(str(tmp_path / "pipeline.py"), **(given | options))


def loss(seconds: float = 2.0) -> Callable[[dict[str, Any]], Script]:
    """Runs that take `seconds` and log the objective of PIPELINE."""

    def behave(params: dict[str, Any]) -> Script:
        return Script(seconds=seconds, metrics={"loss": (params["x"] - 2) ** 2})

    return behave
