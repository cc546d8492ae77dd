"""What every part of the run service shares: its stores, settings and the helpers
the others call (`RunService` is `RunRecording` + `RunExecution` + starting and reading).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay import installed
from assay.data.entities import DataVersion
from assay.data.service import DataService
from assay.errors import InvalidArgumentError
from assay.limits import MAX_NAME_LENGTH, check_document
from assay.runs.entities import Run
from assay.runs.repository import RunRepository
from assay.store import liveness
from assay.store.db import Database
from assay.store.objects import ObjectStore
from assay.store.packs import Blobs

if TYPE_CHECKING:
    from assay.pipelines.service import PipelineService

Emit = Callable[[dict[str, Any]], None]


def quiet(event: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class RunSettings:
    author: str
    cache_dir: Path
    cost_per_hour: float
    heartbeat_s: float


HOST = liveness.HOST
# Runs tracked from other machines through the server (`begin(remote=True)`): no
# local process to look for, so they die of silence only, after REMOTE_SILENCE.
REMOTE_HOST = "remote"
REMOTE_SILENCE = timedelta(hours=1)
FULL_ID = re.compile("[0-9a-f]{32}")  # a run id, as clients send it


class RunsBase:
    """The stores and settings of the run service, and what each of its parts reads."""

    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        data: DataService,
        pipelines: PipelineService,
        settings: RunSettings,
    ) -> None:
        self.db = db
        self.store = store
        self.blobs = Blobs(db, store)
        self.data = data
        self.pipelines = pipelines
        self.settings = settings
        self._experiment_ids: dict[str, int] = {}

    def by_id(self, run_id: str) -> Run:
        """A run by full id, without looking for dead runners first (`get` does)."""
        with self.db.read() as conn:
            return RunRepository(conn).load(run_id)

    def _environment(self) -> dict[str, Any]:
        """The environment, its package list stored once as an object (it is the same for
        every run of a process, and of most processes)."""
        if not hasattr(self, "_env"):
            env = dict(installed.cached_environment(self.settings.cache_dir))
            packages = env.pop("packages")
            env["packages_object"] = self.store.put_bytes(
                json.dumps(packages, sort_keys=True).encode()
            )
            env["package_count"] = len(packages)
            self._env = env
        return self._env

    if TYPE_CHECKING:  # defined where runs are started and read (`RunService`)

        def get(self, ref: str) -> Run: ...

        def _open_run(
            self,
            experiment: str,
            pipeline_name: str,
            name: str | None,
            params: dict[str, Any],
            fields: Callable[[RunRepository, DataVersion], dict[str, Any]],
        ) -> tuple[str, str, DataVersion, datetime]: ...


def checked_params(params: dict[str, Any]) -> dict[str, Any]:
    """`params` flattened as a run stores them, once they are within the bounds of
    `assay.limits` (every listing reads them back).

    Raises:
        InvalidArgumentError: too deep or too large, or a (dotted) name too long.
    """
    check_document(params, "Params")
    flat = flatten_params(params)
    for key in flat:
        if len(key) > MAX_NAME_LENGTH:
            raise InvalidArgumentError(
                f"Param name {key[:40]!r}… is {len(key):,} characters; names are at most "
                f"{MAX_NAME_LENGTH} (a nested name counts its parents, joined by dots).",
                limit=MAX_NAME_LENGTH,
            )
    return flat


def flatten_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys (`model.C`), so filters and tables can reach them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten_params(value, f"{full}."))
        else:
            out[full] = value
    return out
