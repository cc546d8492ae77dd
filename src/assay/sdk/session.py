"""Where the SDK records: this machine's workspace, or the team's server.

`current()` picks one from the environment, as the CLI does: `ASSAY_REMOTE` (with
`ASSAY_TOKEN`) means the server; otherwise the workspace found from the current folder
upwards (or `ASSAY_DB_URL` and `ASSAY_STORE_URL`). Both kinds offer the same verbs and
return the same entities, so notebook code never asks which one it has.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from assay.client import Client
    from assay.data.entities import CommitResult, DataVersion
    from assay.registry.entities import ModelVersion, Signature
    from assay.runs.code import CodeCapture
    from assay.runs.entities import Candidate, EndStatus, Run
    from assay.runs.tracking import Recorder
    from assay.runs.values import Point
    from assay.workspace import Workspace


class Session(Protocol):
    """The verbs a notebook's run needs, on a workspace or through a server."""

    where: str

    def begin(
        self,
        experiment: str,
        *,
        data: str | None,
        params: dict[str, Any],
        name: str | None,
        parent: str | None,
    ) -> Run: ...

    def recorder(self, run: Run) -> Recorder: ...

    def end(
        self,
        run: Run,
        recorder: Recorder,
        status: EndStatus,
        error: str | None,
        resources: dict[str, Any],
        code: CodeCapture | None = None,
    ) -> None:
        """Close the run; `code`, if given, is stored with it (a failure to store it is a
        warning: the run still ends)."""
        ...

    def record_code(self, run_id: str, capture: CodeCapture) -> None: ...

    def link_data(self, run_id: str, ref: str) -> None: ...

    def annotate(self, run_id: str, extra: dict[str, Any]) -> None: ...

    def add_children(self, parent: str, children: Sequence[Candidate]) -> list[str]: ...

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        run: str | None,
        signature: Signature | None,
        example: list[Any],
        allow_pickle: bool,
    ) -> ModelVersion: ...

    def model_folder(self, ref: str) -> Path: ...

    def data_folder(self, ref: str) -> tuple[DataVersion, Path]: ...

    def commit(self, name: str, path: Path, message: str) -> CommitResult: ...

    def search(
        self, experiment: str | None, filter: str | None, sort: str | None, limit: int | None
    ) -> list[Run]: ...

    def get_run(self, ref: str) -> Run: ...

    def series(self, run_id: str) -> list[tuple[str, float | None, int | None, float]]: ...


_lock = threading.Lock()
_sessions: dict[tuple[str, ...], Session] = {}
# The local session each working folder (and database and store variables) led to, the
# root it was found at, and what it was found by (`_found_by`): finding the workspace again
# on every run (a walk up the folders, assay.toml read and parsed) cost a twentieth of
# opening one.
_places: dict[tuple[str, str | None, str | None], tuple[tuple[Any, ...], str, Session]] = {}


def _found_by(cwd: str, root: str) -> tuple[Any, ...]:
    """What decides which workspace `Settings.load` finds from `cwd`: that no folder
    below `root` ("": none was found) holds `.assay/`, and `root`'s `.assay/` and
    `assay.toml` as they are. Strings, not paths: this runs once per run opened."""
    from assay.config import CONFIG_FILE, WORKSPACE_DIR

    nearer = []
    folder = cwd
    while folder != root:
        nearer.append(os.path.isdir(os.path.join(folder, WORKSPACE_DIR)))
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if not root:
        return (tuple(nearer),)
    try:
        conf = os.stat(os.path.join(root, CONFIG_FILE))
        toml: tuple[int, ...] = (conf.st_ino, conf.st_mtime_ns, conf.st_size)
    except OSError:
        toml = ()
    try:
        ws: int | None = os.stat(os.path.join(root, WORKSPACE_DIR)).st_ino
    except OSError:
        ws = None
    return (tuple(nearer), ws, toml)


def _local() -> Session:
    """The session of the workspace found from the current folder, as `assay` finds it."""
    from assay.config import Settings, find_root

    cwd = os.getcwd()
    place = (cwd, os.environ.get("ASSAY_DB_URL"), os.environ.get("ASSAY_STORE_URL"))
    known = _places.get(place)
    if known is not None and _found_by(cwd, known[1]) == known[0]:
        return known[2]
    # What the place is found by, taken before the settings are read: an edit of
    # assay.toml in between is then seen by the next run, not missed for good.
    root = str(find_root(Path(cwd)) or "")
    found = _found_by(cwd, root)
    settings = Settings.load(Path(cwd), os.environ)
    key = ("local", settings.db_url, settings.store_url, str(settings.root or ""))

    def open_local() -> Session:
        from assay.workspace import Workspace

        return LocalSession(Workspace(settings))

    session = _shared(key, open_local)
    if key[3] == root:
        _places[place] = (found, root, session)
    return session


def _shared(key: tuple[str, ...], open_session: Callable[[], Session]) -> Session:
    """The one session for `key`, opened on first use."""
    with _lock:
        found = _sessions.get(key)
        if found is None:
            if not _sessions:
                atexit.register(close_all)
            found = _sessions[key] = open_session()
        return found


def current() -> Session:
    """The session this process records into, built once per place (one engine, or one
    connection pool, for every run of a notebook)."""
    remote = os.environ.get("ASSAY_REMOTE")
    if not remote:
        return _local()
    token = os.environ.get("ASSAY_TOKEN")

    def open_remote() -> Session:
        from assay.client import Client

        return RemoteSession(Client(remote, token=token))

    return _shared(("remote", remote, token or ""), open_remote)


def close_all() -> None:
    with _lock:
        for session in _sessions.values():
            close = getattr(session, "close", None)
            if close is not None:
                close()
        _sessions.clear()
        _places.clear()


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "assay"


def _cached(folder: Path, fill: Any) -> Path:
    """`folder`, filled once by `fill(tmp)` and published with one rename (immutable
    content named by its hash: a second filler simply uses the first one's)."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        fill(tmp / "content")
        try:
            os.replace(tmp / "content", folder)
        except OSError:
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ---- on this machine's workspace ----------------------------------------------------------


class LocalSession:
    """The workspace's services, called in this process."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.where = f"workspace {ws.settings.root or ws.settings.db_url}"

    def close(self) -> None:
        self.ws.close()

    def begin(
        self,
        experiment: str,
        *,
        data: str | None,
        params: dict[str, Any],
        name: str | None,
        parent: str | None,
    ) -> Run:
        return self.ws.runs.begin(experiment, data=data, params=params, name=name, parent=parent)

    def recorder(self, run: Run) -> Recorder:
        from assay.runs.tracking import RunRecorder

        recorder = RunRecorder(run.id, self.ws.db, self.ws.store)
        recorder.start()
        return recorder

    def end(
        self,
        run: Run,
        recorder: Recorder,
        status: EndStatus,
        error: str | None,
        resources: dict[str, Any],
        code: CodeCapture | None = None,
    ) -> None:
        from assay.runs.tracking import RunRecorder

        left: list[Point] = recorder.stop() if isinstance(recorder, RunRecorder) else []
        wall_s, cpu_s = resources["wall_s"], resources["cpu_s"]
        self.ws.runs.finish_here(run.id, status, error, wall_s, cpu_s, left, code=code)

    def record_code(self, run_id: str, capture: CodeCapture) -> None:
        self.ws.runs.record_code(run_id, capture)

    def link_data(self, run_id: str, ref: str) -> None:
        self.ws.runs.link_data(run_id, ref)

    def annotate(self, run_id: str, extra: dict[str, Any]) -> None:
        self.ws.runs.annotate(run_id, **extra)

    def add_children(self, parent: str, children: Sequence[Candidate]) -> list[str]:
        return self.ws.runs.add_children(parent, children)

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        run: str | None,
        signature: Signature | None,
        example: list[Any],
        allow_pickle: bool,
    ) -> ModelVersion:
        return self.ws.registry.log_model(
            model, name, run=run, signature=signature, example=example, allow_pickle=allow_pickle
        )

    def model_folder(self, ref: str) -> Path:
        mv = self.ws.registry.resolve(ref)
        target = self.ws.settings.cache_dir / "models" / mv.bundle
        return _cached(target, lambda tmp: self.ws.registry.materialize(mv, tmp))

    def data_folder(self, ref: str) -> tuple[DataVersion, Path]:
        dv = self.ws.data.resolve(ref)
        return dv, self.ws.runs.data_dir(dv)

    def commit(self, name: str, path: Path, message: str) -> CommitResult:
        return self.ws.data.commit(name, path, message)

    def search(
        self, experiment: str | None, filter: str | None, sort: str | None, limit: int | None
    ) -> list[Run]:
        return self.ws.runs.search(experiment=experiment, filter=filter, sort=sort, limit=limit)

    def get_run(self, ref: str) -> Run:
        return self.ws.runs.get(ref)

    def series(self, run_id: str) -> list[tuple[str, float | None, int | None, float]]:
        return self.ws.runs.series(run_id)


# ---- through the team's server ----------------------------------------------------------


class RemoteSession:
    """The same verbs over the server's REST API."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.where = f"server {client.url}"

    def close(self) -> None:
        self.client.close()

    def begin(
        self,
        experiment: str,
        *,
        data: str | None,
        params: dict[str, Any],
        name: str | None,
        parent: str | None,
    ) -> Run:
        return self.client.runs.begin(
            experiment, params=params, data=data, name=name, parent=parent
        )

    def recorder(self, run: Run) -> Recorder:
        from assay.sdk.remote import RemoteRecorder

        recorder = RemoteRecorder(self.client, run.id)
        recorder.start()
        return recorder

    def end(
        self,
        run: Run,
        recorder: Recorder,
        status: EndStatus,
        error: str | None,
        resources: dict[str, Any],
        code: CodeCapture | None = None,
    ) -> None:
        import warnings

        from assay.errors import AssayError, AssayWarning
        from assay.installed import environment
        from assay.sdk.remote import RemoteRecorder

        if code is not None:
            try:
                self.record_code(run.id, code)
            except AssayError as exc:  # the run still ends, without its code
                warnings.warn(
                    f"Assay could not store the run's code: {exc}", AssayWarning, stacklevel=2
                )

        env = environment()
        if isinstance(recorder, RemoteRecorder):
            recorder.finish(status, error, resources, env)
        else:  # pragma: no cover - a remote session only makes remote recorders
            self.client.runs.finish(run.id, status, error)

    def record_code(self, run_id: str, capture: CodeCapture) -> None:
        self.client.runs.record_code(run_id, capture)

    def link_data(self, run_id: str, ref: str) -> None:
        self.client.runs.link_data(run_id, ref)

    def annotate(self, run_id: str, extra: dict[str, Any]) -> None:
        self.client.runs.annotate(run_id, extra)

    def add_children(self, parent: str, children: Sequence[Candidate]) -> list[str]:
        return self.client.runs.add_children(parent, children)

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        run: str | None,
        signature: Signature | None,
        example: list[Any],
        allow_pickle: bool,
    ) -> ModelVersion:
        """Save the bundle here (the model is this process's), send it, and let the
        server number it and link it to the run."""
        from assay.registry import bundle as bundles

        with tempfile.TemporaryDirectory(prefix="assay-model-") as tmp:
            folder = Path(tmp) / "bundle"
            bundles.write_bundle(
                model,
                folder,
                name=name,
                version=0,
                signature=signature,
                input_example=example,
                lineage={},
                metrics={},
            )
            return self.client.models.register_bundle(
                folder, name, run=run, allow_pickle=allow_pickle
            )

    def model_folder(self, ref: str) -> Path:
        mv = self.client.models.resolve(ref)
        target = _cache_root() / "models" / mv.bundle
        return _cached(target, lambda tmp: self.client.models.download_bundle(mv.ref, tmp))

    def data_folder(self, ref: str) -> tuple[DataVersion, Path]:
        version, files = self.client.data.version(ref)

        def fill(tmp: Path) -> None:
            for entry in files:
                self.client.data.download(
                    version.ref, entry.path, tmp.joinpath(*entry.path.split("/"))
                )

        return version, _cached(_cache_root() / "checkouts" / version.manifest, fill)

    def commit(self, name: str, path: Path, message: str) -> CommitResult:
        return self.client.data.commit(name, path, message)

    def search(
        self, experiment: str | None, filter: str | None, sort: str | None, limit: int | None
    ) -> list[Run]:
        return self.client.runs.search(experiment=experiment, filter=filter, sort=sort, limit=limit)

    def get_run(self, ref: str) -> Run:
        return self.client.runs.get(ref)

    def series(self, run_id: str) -> list[tuple[str, float | None, int | None, float]]:
        return self.client.runs.series(run_id)
