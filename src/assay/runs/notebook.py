"""Executing a notebook pipeline: papermill runs it headless on a fresh kernel.

The run's params (and `data`, the path of its data version's files) are injected after
the cell tagged `parameters`. The kernel records into the run the runner opened: it is
started with `ASSAY_RUN_ID` and the workspace's URLs in its environment, so
`assay.log_metric`, `assay.log_model` and `assay.autolog()` in the notebook land in
this run. The executed notebook, outputs included, is stored with the run as
`notebook.ipynb`, whether the run succeeded or not.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from assay.errors import AssayError, InvalidArgumentError
from assay.pipelines.notebook import STEP
from assay.runs import tracking
from assay.runs.repository import RunRepository
from assay.store.db import Database, utcnow
from assay.store.objects import ObjectStore

KERNEL = "python3"  # the runner's own interpreter, which has Assay installed
EXECUTED = "notebook.ipynb"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

Emit = Callable[[dict[str, Any]], None]


class CellError(AssayError):
    """A cell of the notebook raised; the message names the cell and the error."""


def execute_notebook(
    *,
    run_id: str,
    entry: Path,
    data_dir: Path,
    params: Mapping[str, Any],
    db: Database,
    store: ObjectStore,
    work: Path,
    emit: Emit,
) -> None:
    """Run the notebook `entry` (its folder copied to `work` first, so what it writes
    stays out of the snapshot), recording it as the run's one step.

    Raises:
        CellError: a cell raised (the executed notebook is stored all the same).
        InvalidArgumentError: papermill or ipykernel is not installed.
    """
    try:
        import papermill
    except ImportError as exc:
        raise InvalidArgumentError(
            "Running a notebook needs papermill and ipykernel: "
            "`pip install 'assay[notebook]'`, then run it again."
        ) from exc
    import shutil

    shutil.copytree(entry.parent, work, dirs_exist_ok=True)
    source, executed = work / entry.name, work.parent / f"executed-{entry.name}"
    with db.session() as conn:
        RunRepository(conn).set_step(
            run_id, 0, name=STEP, status="running", cached=False, started_at=utcnow()
        )
    emit({"event": "step", "name": STEP, "position": 0, "total": 1})
    started = time.perf_counter()
    status, failure = "failed", None
    try:
        with _kernel_environment(run_id, db, store):
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters={**params, "data": str(data_dir)},
                kernel_name=KERNEL,
                language="python",  # the kernel's; a notebook may not say
                cwd=str(work),
                progress_bar=False,
                stdout_file=sys.stdout,
                stderr_file=sys.stderr,
            )
        status = "succeeded"
    except papermill.PapermillExecutionError as exc:
        failure = CellError(
            f"Cell {exc.exec_count or exc.cell_index + 1} raised {exc.ename}: "
            f"{_ANSI.sub('', str(exc.evalue))}",
            traceback=_ANSI.sub("", "\n".join(exc.traceback or [])),
        )
    finally:
        seconds = time.perf_counter() - started
        if executed.is_file():
            tracking.store_artifacts(db, store, run_id, {EXECUTED: executed})
        with db.session() as conn:
            RunRepository(conn).set_step(
                run_id, 0, status=status, ended_at=utcnow(), seconds=seconds
            )
    if failure is not None:
        raise failure
    emit({"event": "step_done", "name": STEP, "position": 0, "cached": False,
          "seconds": round(seconds, 3)})  # fmt: skip


class _kernel_environment:
    """The kernel inherits this process's environment: for the notebook's run, with the
    run and the workspace named, and no server in the way."""

    def __init__(self, run_id: str, db: Database, store: ObjectStore) -> None:
        self.values = {
            "ASSAY_RUN_ID": run_id,
            "ASSAY_DB_URL": db.url,
            "ASSAY_STORE_URL": store.url,
            "ASSAY_REMOTE": None,
            "ASSAY_EVENTS_FD": None,
        }
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
