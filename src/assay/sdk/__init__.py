"""Tracking from your own code: a notebook, a script, a pipeline step.

    with assay.start_run(experiment="wine", data="wine@2", params={"C": 0.5}):
        assay.log_metric("loss", 0.3, step=1)
        assay.log_model(model, "wine")

`assay.autolog()` records every top-level fit without any of those lines. Inside a
pipeline step the runner has already opened the run; in a notebook or a script,
`start_run` opens one in the workspace found from the current folder or, with
`ASSAY_REMOTE` (and `ASSAY_TOKEN`) set, on the team's server: the same calls either way.
Every run keeps the code that produced it (`assay runs code RUN`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.errors import InvalidArgumentError
from assay.runs import tracking
from assay.sdk.autologging import autolog

if TYPE_CHECKING:
    from assay.registry.entities import ModelVersion, Signature
    from assay.runs.code import CodeCapture
    from assay.runs.entities import EndStatus, Run
    from assay.runs.tracking import Recorder
    from assay.sdk.session import Session

__all__ = [
    "ActiveRun",
    "active_run",
    "autolog",
    "commit_data",
    "compare",
    "get_run",
    "load_data",
    "load_model",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "runs",
    "start_run",
]


class ActiveRun:
    """A run being recorded in this process: `with assay.start_run(...) as run:`."""

    def __init__(
        self,
        run: Run,
        session: Session,
        recorder: Recorder,
        *,
        owned: bool,
        autolog: bool = False,
    ) -> None:
        self.run = run
        self.session = session
        self.recorder = recorder
        self.owned = owned  # opened here (closed here); else a runner's or a kernel's parent
        self.autolog = autolog
        self.params: dict[str, Any] = dict(run.params)
        self.training: Any = None  # the features of its last autologged fit (a signature)
        self.notes: dict[str, Any] = {}  # what a fit learned, for the run's `extra`
        self.models: dict[str, ModelVersion] = {}
        self._wall0 = time.perf_counter()
        self._cpu0 = tracking.usage()[0]
        self._code: _Capture | None = None
        self._stored_code: CodeCapture | None = None

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def experiment(self) -> str:
        return self.run.experiment

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self.recorder.log_metric(key, value, step)

    def log_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Record params; a name it already holds with another value is kept under
        `prefix.name` by the caller (autolog) — here it is simply not overwritten."""
        fresh = {k: v for k, v in params.items() if k not in self.params}
        if fresh:
            self.recorder.log_params(fresh)
            self.params.update(fresh)
        return fresh

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run.short_id} {self.name!r} in {self.experiment!r}>"

    def _repr_html_(self) -> str:
        from assay.sdk.display import run_html

        html: str = run_html(self.session.get_run(self.id), self.session.series(self.id))
        return html


# ---- the runs of this process -----------------------------------------------------------

_lock = threading.Lock()
_stack: list[ActiveRun] = []  # open runs, innermost last
_attached: ActiveRun | None = None


def active_run() -> ActiveRun | None:
    """The run this process records into now, if any (opened by `start_run`, by
    autolog, or by the runner executing this notebook as a pipeline)."""
    with _lock:
        if _stack:
            return _stack[-1]
    return _attach()


def _attach() -> ActiveRun | None:
    """The run named by `ASSAY_RUN_ID`: a notebook executed as a pipeline records into
    the run its runner opened (which the runner also closes)."""
    global _attached
    run_id = os.environ.get("ASSAY_RUN_ID")
    if not run_id:
        return None
    with _lock:
        if _attached is not None and _attached.id == run_id:
            return _attached
        from assay.sdk.session import current

        session = current()
        run = session.get_run(run_id)
        recorder = session.recorder(run)
        _attached = ActiveRun(run, session, recorder, owned=False)
        tracking.activate(recorder)
        return _attached


def _recorder() -> Recorder:
    found = tracking.current()
    if found is None:
        attached = _attach()
        found = attached.recorder if attached else None
    if found is None:
        raise InvalidArgumentError(
            "No active run: call this inside `with assay.start_run(...):`, in a pipeline "
            "step, or after `assay.autolog()` inside a fit."
        )
    return found


@contextlib.contextmanager
def start_run(
    experiment: str | None = None,
    *,
    data: str | None = None,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    parent: str | None = None,
) -> Iterator[ActiveRun]:
    """Open a run, record into it, and close it as succeeded, failed or killed.

    `experiment` defaults to the notebook's or script's name. `data` links a data
    version (`churn@3`); `params` are versioned as dataset `params/<experiment>`, as a
    pipeline's params file is. A run opened inside another is its child (`parent`
    names another one). The code that produced the run is stored with it.
    """
    active = open_run(experiment, data=data, params=params, name=name, parent=parent)
    status: EndStatus = "failed"
    error: str | None = None
    try:
        yield active
        status = "succeeded"
    except KeyboardInterrupt:
        status, error = "killed", "Interrupted (Ctrl-C)."
        raise
    except BaseException as exc:
        error = "".join(traceback.format_exception(exc))
        raise
    finally:
        close_run(active, status, error)


def open_run(
    experiment: str | None = None,
    *,
    data: str | None = None,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    parent: str | None = None,
    autolog: bool = False,
) -> ActiveRun:
    """Open a run owned by this process and make it the active one (`start_run` and
    autolog; pair it with `close_run`)."""
    from assay.sdk.session import current

    session = current()
    outer = active_run()
    if parent is None and outer is not None:
        parent = outer.id
    run = session.begin(
        experiment or default_experiment(),
        data=data,
        params=dict(params or {}),
        name=name,
        parent=parent,
    )
    recorder = session.recorder(run)
    active = ActiveRun(run, session, recorder, owned=True, autolog=autolog)
    active._code = _Capture()
    if data is None:
        _link_loaded(active)
    with _lock:
        _stack.append(active)
    tracking.activate(recorder)
    return active


def close_run(active: ActiveRun, status: EndStatus, error: str | None) -> None:
    """Close a run `open_run` opened: its code, its last points, its resources."""
    with _lock:
        if active in _stack:
            _stack.remove(active)
        outer = _stack[-1] if _stack else _attached
    tracking.activate(outer.recorder if outer else None)
    code = _unstored_code(active)  # stored in the closing transaction
    cpu1, peak = tracking.usage()
    resources = {
        "wall_s": time.perf_counter() - active._wall0,
        "cpu_s": cpu1 - active._cpu0,
        "peak_rss_bytes": peak,
    }
    active.session.end(active.run, active.recorder, status, error, resources, code=code)
    if code is not None:
        active._stored_code = code


def record_code(active: ActiveRun) -> None:
    """Store the run's code now (a model logged mid-run names it in its lineage), and
    again at the end if it grew meanwhile (cells executed since)."""
    capture = _unstored_code(active)
    if capture is None:
        return
    _quietly(lambda: active.session.record_code(active.id, capture), "store the run's code")
    active._stored_code = capture


def _unstored_code(active: ActiveRun) -> CodeCapture | None:
    """The run's code if it has not been stored as it is now, else None."""
    capture = active._code.result() if active._code else None
    return None if capture is None or capture == active._stored_code else capture


class _Capture:
    """The code of this process, read in a thread while the run works (git can take a
    moment in a large repository), or at once when git was asked lately: runs opened in
    a loop would otherwise each start a thread, a tenth of their cost (py-spy)."""

    def __init__(self) -> None:
        from assay.runs.code import GitStateStale, capture_here

        self._found: CodeCapture | None = None
        self._thread: threading.Thread | None = None
        try:
            self._found = capture_here(cached_only=True)
            return
        except GitStateStale:
            pass
        except Exception:  # a run without its code beats no run
            return
        self._thread = threading.Thread(target=self._read, name="assay-code", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from assay.runs.code import capture_here

        with contextlib.suppress(Exception):  # a run without its code beats no run
            self._found = capture_here()

    def result(self) -> CodeCapture | None:
        if self._thread is not None:
            self._thread.join(timeout=10)
        # Cells executed since the run opened belong to it too: read them again.
        if self._found is not None and self._found.kind == "cells":
            from assay.runs.code import capture_here

            with contextlib.suppress(Exception):
                self._found = capture_here()
        return self._found


def default_experiment() -> str:
    """The notebook's or script's name (`analysis` for analysis.ipynb), else `default`."""
    import re
    import sys

    from assay.runs.code import _ipython, notebook_path

    path: Path | None = None
    shell = _ipython()
    if shell is not None:
        path = notebook_path(shell)
    else:
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        path = Path(main) if main else None
    if path is None:
        return "notebook" if shell is not None else "default"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._")
    return stem or "default"


def _quietly(call: Callable[[], Any], what: str) -> Any:
    """Run `call`; a failure is a warning (said once per kind), never the user's error."""
    try:
        return call()
    except Exception as exc:  # recording must not break the user's work
        warn_once(what, f"Assay could not {what}: {exc}")
        return None


_warned: set[str] = set()


def warn_once(kind: str, message: str) -> None:
    import warnings

    from assay.errors import AssayWarning

    if kind in _warned:
        return
    _warned.add(kind)
    warnings.warn(message, AssayWarning, stacklevel=3)


# ---- logging -------------------------------------------------------------------------------


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record a metric on the active run (buffered: returns in microseconds)."""
    _recorder().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _recorder().log_metrics(metrics, step)


def log_param(key: str, value: Any) -> None:
    log_params({key: value})


def log_params(params: Mapping[str, Any]) -> None:
    active = active_run()
    if active is not None:
        active.log_params(params)
    else:
        _recorder().log_params(params)


def log_artifact(path: str | Path, name: str | None = None) -> str:
    """Store a file or folder with the active run; returns its content hash."""
    return _recorder().log_artifact(path, name)


def log_model(
    model: Any,
    name: str | None = None,
    input_example: Any = None,
    *,
    allow_pickle: bool = False,
) -> ModelVersion:
    """Register `model` as the next version of model `name` (default: the run's
    experiment), linked to the active run: its data, params and code versions, and its
    metrics. The signature comes from `input_example` (a few rows of the features), or
    else from the data of the run's last autologged fit, or from the model itself.

    Stored in a format that runs no code when loaded (skops, XGBoost JSON, LightGBM
    text); a model only pickle can store needs `allow_pickle=True`.

    Raises:
        InvalidArgumentError: a model without predict, a bad name, or a pickle not allowed.
    """
    from assay.sdk.session import current

    active = active_run()
    session = active.session if active else current()
    name = name or (active.experiment if active else default_experiment())
    features = input_example
    if features is None and active is not None:
        features = active.training
    signature: Signature | None = None
    example: list[Any] = []
    if features is not None:
        from assay.registry.signature import infer_signature

        with contextlib.suppress(InvalidArgumentError):
            signature, example = infer_signature(features, model)
    if active is not None:  # the version takes the run's metrics and code: send them
        flush = getattr(active.recorder, "flush", None)
        if flush is not None:
            _quietly(flush, "send the run's metrics")
        if active.owned:
            record_code(active)
    mv = session.log_model(
        model,
        name,
        run=active.id if active else None,
        signature=signature,
        example=example,
        allow_pickle=allow_pickle,
    )
    if active is not None:
        active.models[name] = mv
    return mv


def load_model(ref: str) -> Any:
    """The predictor of model version `ref` (`wine@champion`, `wine@3`, `wine`): an
    object with `predict` (and `predict_proba` where the model has it), loaded from the
    store after every file's hash is checked."""
    from assay.registry.bundle import load_bundle
    from assay.sdk.session import current

    return load_bundle(current().model_folder(ref)).model


# ---- data a run used --------------------------------------------------------------------

_loaded: list[str] = []  # data versions this process loaded, oldest first


def note_loaded(ref: str) -> None:
    """`assay.data.load` saw `ref`: link it to the active run, and to runs opened later."""
    with _lock:
        if ref in _loaded:
            _loaded.remove(ref)
        _loaded.append(ref)
    active = active_run()
    if active is not None:
        _quietly(lambda: active.session.link_data(active.id, ref), "link the data version")


def _link_loaded(active: ActiveRun) -> None:
    """A run opened after `assay.data.load` used what was loaded last (a fit whose
    frame names its version links that one instead)."""
    with _lock:
        ref = _loaded[-1] if _loaded else None
    if ref is not None:
        _quietly(lambda: active.session.link_data(active.id, ref), "link the data version")


def load_data(ref: str) -> Any:
    """`assay.data.load`: a one-table version as a DataFrame, else its folder."""
    from assay.sdk.autologging.recording import DATA_ATTR
    from assay.sdk.session import current

    version, folder = current().data_folder(ref)
    note_loaded(version.ref)
    files = [p for p in folder.rglob("*") if p.is_file()]
    if len(files) == 1 and files[0].suffix.lower() in _TABLES:
        table = _read_table(files[0])
        table.attrs[DATA_ATTR] = version.ref
        return table
    return folder


def commit_data(name: str, data: Any, message: str = "", *, filename: str | None = None) -> Any:
    """`assay.data.commit`: a DataFrame (stored as Parquet) or a path, as the next version."""
    import tempfile

    from assay.sdk.session import current

    session = current()
    if isinstance(data, str | Path):
        return session.commit(name, Path(data), message).version
    to_parquet = getattr(data, "to_parquet", None)
    if to_parquet is None:
        raise InvalidArgumentError(
            f"assay.data.commit takes a pandas DataFrame or a path, not a {type(data).__name__}."
        )
    with tempfile.TemporaryDirectory(prefix="assay-commit-") as tmp:
        target = Path(tmp) / (filename or f"{name.rsplit('/', 1)[-1]}.parquet")
        if target.suffix == ".csv":
            data.to_csv(target, index=False)
        else:
            to_parquet(target, index=False)
        return session.commit(name, target, message).version


_TABLES = {".csv", ".tsv", ".parquet", ".pq"}


def _read_table(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")


# ---- looking at runs ----------------------------------------------------------------------


def runs(
    experiment: str | None = None,
    *,
    filter: str | None = None,
    sort: str | None = None,
    limit: int | None = 1000,
) -> Any:
    """Runs as a pandas DataFrame, newest first (or as sorted): `params.*` and
    `metrics.*` columns, filtered with the CLI's expressions
    (`"params.C > 1 and metrics.val_f1 >= 0.9 and status = 'succeeded'"`)."""
    from assay.sdk.display import frame
    from assay.sdk.session import current

    return frame(current().search(experiment, filter, sort, limit))


def get_run(ref: str) -> Any:
    """A run by id (or prefix), shown in a notebook as a table with its metric curves."""
    from assay.sdk.display import RunView
    from assay.sdk.session import current

    session = current()
    run = session.get_run(ref)
    return RunView(run, session.series(run.id))


def compare(*refs: str) -> Any:
    """Runs side by side: an HTML table in a notebook (differences highlighted, best
    values starred, shared curves overlaid); `.to_frame()` gives the numbers."""
    from assay.sdk.display import Comparison
    from assay.sdk.session import current

    if len(refs) == 1 and not isinstance(refs[0], str):
        refs = tuple(refs[0])
    if len(refs) < 2:
        raise InvalidArgumentError("Compare needs at least two runs.")
    session = current()
    found = [session.get_run(r) for r in refs]
    return Comparison(found, {r.id: session.series(r.id) for r in found})
