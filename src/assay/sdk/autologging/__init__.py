"""`assay.autolog()`: every top-level fit recorded, without a logging line.

One module per framework, as flavors are one class per framework in the registry:
`sklearn` (any estimator, pipelines, meta-estimators, searches; also the boosting
libraries' scikit-learn wrappers, which are estimators), `xgboost` and `lightgbm`
(their native `train`). A framework imported after `autolog()` is patched when it is
imported.

For each top-level fit (fits inside it — a pipeline's steps, a search's candidates,
a meta-estimator's clones — are not runs of their own):
- a run is opened for it, unless one is active (`start_run`, or a notebook executed as
  a pipeline), in which case the fit records into that run;
- its parameters, defaults included; training metrics suited to the estimator (and
  the same on validation data given as `eval_set`), with boosters' per-iteration
  series; a search's best parameters and score, and each candidate as a child run;
- the fitted model as a model version, with the signature of the training features
  and an input example, linked to the run;
- the training data's fingerprint (content hash, shape, columns), and the data
  version it came from when it came from `assay.data.load`.

A failure to record never breaks the fit: it is a warning, said once, and the fit
returns as usual.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.runs.entities import EndStatus

FRAMEWORKS = ("sklearn", "xgboost", "lightgbm")
# The module whose import makes each framework patchable.
_TRIGGERS = {"sklearn.base": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm"}


@dataclass(frozen=True)
class Config:
    enabled: bool = False
    log_models: bool = True
    experiment: str | None = None
    model_name: str | None = None
    frameworks: tuple[str, ...] = FRAMEWORKS


config = Config()
_installed: dict[str, Callable[[], None]] = {}  # framework -> its unpatch


def autolog(
    *,
    disable: bool = False,
    log_models: bool = True,
    experiment: str | None = None,
    model_name: str | None = None,
    frameworks: Sequence[str] = FRAMEWORKS,
) -> None:
    """Record every top-level fit of scikit-learn, XGBoost and LightGBM from now on.

    `experiment` groups the runs autolog opens (default: the notebook's or script's
    name); `model_name` names the model versions (default: the run's experiment);
    `log_models=False` records everything but the models; `disable=True` stops it and
    restores the frameworks' own methods.
    """
    global config
    unknown = set(frameworks) - set(FRAMEWORKS)
    if unknown:
        from assay.errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"autolog knows {', '.join(FRAMEWORKS)}; not {', '.join(sorted(unknown))}."
        )
    if disable:
        config = replace(config, enabled=False)
        for unpatch in _installed.values():
            unpatch()
        _installed.clear()
        _hook.frameworks = set()
        return
    config = Config(True, log_models, experiment, model_name, tuple(frameworks))
    _hook.frameworks = set(frameworks)
    if _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)
    for framework in frameworks:
        trigger = next(m for m, f in _TRIGGERS.items() if f == framework)
        if trigger in sys.modules:
            _install(framework)
        elif framework == "sklearn" and _importable("sklearn"):
            import sklearn.base  # noqa: F401 - the hook patches it as it loads


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _install(framework: str) -> None:
    if framework in _installed or not config.enabled:
        return
    try:
        import importlib

        module = importlib.import_module(f"assay.sdk.autologging.{framework}")
        _installed[framework] = module.install()
    except Exception as exc:  # a framework we cannot patch is not an error
        from assay.sdk import warn_once

        warn_once(f"autolog-{framework}", f"assay.autolog() cannot patch {framework}: {exc}")


class _PostImportHook(importlib.abc.MetaPathFinder):
    """Patches a framework right after it is imported, when autolog came first."""

    def __init__(self) -> None:
        self.frameworks: set[str] = set()
        self._busy = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        framework = _TRIGGERS.get(fullname)
        if (
            framework is None
            or framework not in self.frameworks
            or getattr(self._busy, "on", False)
        ):
            return None
        self._busy.on = True
        try:
            import importlib.util

            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy.on = False
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_patch(module: ModuleType) -> None:
            exec_module(module)
            _install(framework)

        with contextlib.suppress(AttributeError, TypeError):
            loader.exec_module = exec_then_patch  # type: ignore[method-assign]
        return spec


_hook = _PostImportHook()


# ---- the one thing every patch does: record a top-level fit ---------------------------------

_state = threading.local()
_depth_lock = threading.Lock()
_depth = 0  # fits under way in this process that autolog is recording


@contextlib.contextmanager
def top_level() -> Iterator[bool]:
    """Whether this call is a top-level fit (no other recorded fit is under way in the
    process: a search's candidate fits run in its worker threads)."""
    global _depth
    with _depth_lock:
        outer = _depth == 0 and not getattr(_state, "quiet", False)
        _depth += 1
    try:
        yield outer and config.enabled
    finally:
        with _depth_lock:
            _depth -= 1


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Fits made while recording (none today, but a metric could fit) are not recorded."""
    _state.quiet = True
    try:
        yield
    finally:
        _state.quiet = False


def record(
    fit: Callable[[], Any],
    *,
    what: str,
    params: Callable[[], dict[str, Any]],
    after: Callable[[Any, Any], None],
) -> Any:
    """Run `fit()` inside a run (the active one, or one opened for it) and call
    `after(result, active_run)` to record what it made. `what` names the estimator (its
    class, or `xgboost.train`). Recording failures warn once; the fit's own exceptions
    go to the caller, and close a run opened for it as failed."""
    from assay import sdk

    active, opened = None, False
    try:
        active = sdk.active_run()
        if active is None:
            active = sdk.open_run(config.experiment, params=params(), autolog=True)
            opened = True
        else:
            record_params(active, params(), what)
    except Exception as exc:  # an unrecorded fit beats no fit
        sdk.warn_once("autolog-open", f"assay.autolog() could not open a run: {exc}")
        return fit()
    try:
        result = fit()
    except BaseException as exc:
        if opened:
            status: EndStatus = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
            error = "".join(traceback.format_exception(exc))
            sdk._quietly(lambda: sdk.close_run(active, status, error), "close the run")
        raise
    try:
        with quiet():
            notes: dict[str, Any] = {"autolog": {"estimator": what}}
            after(result, active)
            notes.update(active.notes)
            active.notes.clear()
            active.session.annotate(active.id, notes)
    except Exception as exc:
        sdk.warn_once("autolog-record", f"assay.autolog() could not record the fit: {exc}")
    finally:
        if opened:
            sdk._quietly(lambda: sdk.close_run(active, "succeeded", None), "close the run")
    return result


def record_params(active: Any, params: dict[str, Any], what: str) -> None:
    """Params into a run; a name it already holds with another value (a second fit in
    one `start_run`) goes under `<estimator>.<name>` instead of being lost."""
    clash = {k for k, v in params.items() if k in active.params and active.params[k] != v}
    if clash:
        params = {(f"{what}.{k}" if k in clash else k): v for k, v in params.items()}
    active.log_params(params)


def wraps_fit(original: Callable[..., Any], handle: Callable[..., Any]) -> Callable[..., Any]:
    """`original` patched: a top-level call goes through `handle(original, *args)`."""

    @functools.wraps(original)
    def patched(*args: Any, **kwargs: Any) -> Any:
        with top_level() as top:
            if not top:
                return original(*args, **kwargs)
            return handle(original, *args, **kwargs)

    patched.__assay_original__ = original  # type: ignore[attr-defined]
    return patched
