"""What runs execute on: the interface the executors (`assay.executors`) implement.

A concept that launches many runs (a sweep) takes an `Executor` and never asks
which one it is: local runner processes and a Ray cluster look the same from here.
Everything a run produces goes to the shared metadata database and object store;
an executor only says when a run's runner is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from assay.errors import InvalidArgumentError

EXECUTORS = ("local", "ray")  # where runs execute: this machine's cores, or a Ray cluster


def check_executor(kind: str) -> str:
    """`kind` if it names an executor; InvalidArgumentError otherwise."""
    if kind not in EXECUTORS:
        raise InvalidArgumentError(f"--executor takes local or ray, not {kind!r}.")
    return kind


@dataclass(frozen=True)
class Job:
    """One queued run for a runner to execute."""

    run_id: str
    use_cache: bool = True
    register: bool = True  # register the run's model in the model repository


@dataclass(frozen=True)
class Done:
    """A job whose runner finished. `problem` says why when the runner itself died
    (the run is then still queued or running in the store, and the caller marks it)."""

    run_id: str
    problem: str | None = None


class Executor(Protocol):
    name: str
    slots: int  # how many jobs it runs at once

    def submit(self, job: Job) -> None: ...

    def wait(self, timeout: float) -> list[Done]:
        """Jobs that finished since the last call, waiting up to `timeout` s for one."""
        ...

    def close(self, *, cancel: bool = False) -> None:
        """Release the runners; with `cancel`, stop jobs still running (they are killed)."""
        ...
