"""Flavors: how one framework's models are saved into a bundle and loaded back.

A flavor is found through the entry-point group `assay.flavors`; the built-ins
(sklearn, xgboost, lightgbm, python) register there exactly as a third-party flavor
would, in Assay's own `pyproject.toml`. Each stores the model in the safest format its
framework offers: skops for scikit-learn (no pickle), the native JSON or text formats
of XGBoost and LightGBM, and pickle only for arbitrary Python objects.

Nothing heavy is imported at module level: a serving process imports this module and
pays only for the framework of the model it serves.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import pickle
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from assay.errors import InvalidArgumentError

GROUP = "assay.flavors"
# The folder of a bundle that a flavor's files live in; paths in `mlflow_flavor`'s
# entries are relative to the bundle's root, so they start with it.
MODEL_DIR = "model"
# The built-ins, in the order `flavor_for` asks them: the boosting libraries' wrappers
# are scikit-learn estimators too, and `python` takes anything with a predict.
BUILTINS = ("xgboost", "lightgbm", "sklearn", "python")
PICKLE_PROTOCOL = 5

log = logging.getLogger(__name__)


@runtime_checkable
class Flavor(Protocol):
    """Saves one framework's models into a folder and loads them back.

    `save` writes the model's files under `folder` and returns JSON-safe metadata
    (file names, classes, anything `load` needs); the bundle records it in its
    manifest and hands it back to `load`, after verifying every file's hash.
    `load` returns an object with `predict(X)` (and `predict_proba(X)` when the model
    has it). `mlflow_flavor` returns the `flavors` entries of an MLflow `MLmodel`
    file, with paths relative to the bundle root (the flavor's files are under
    `MODEL_DIR`); `mlflow_needs_pickle` says whether MLflow can only read the model
    from a plain pickle, which an export then writes and names in
    `meta["mlflow_pickle"]`.
    """

    name: str
    mlflow_needs_pickle: bool

    def accepts(self, model: Any) -> bool: ...

    def save(self, model: Any, folder: Path) -> dict[str, Any]: ...

    def load(self, folder: Path, meta: dict[str, Any]) -> Any: ...

    def frameworks(self) -> dict[str, str]: ...

    def requirements(self) -> list[str]: ...

    def mlflow_flavor(self, meta: dict[str, Any]) -> dict[str, Any]: ...


# -- the registry of flavors -------------------------------------------------------


@functools.cache
def flavors() -> dict[str, Flavor]:
    """Every installed flavor by name, read once from the `assay.flavors` entry points."""
    found: dict[str, Flavor] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        try:
            obj = ep.load()
            flavor = obj() if isinstance(obj, type) else obj
        except Exception:  # a broken plugin must not take every other flavor down with it
            log.exception("Flavor entry point %r (%s) failed to load; skipped.", ep.name, ep.value)
            continue
        found[ep.name] = flavor
    return found


def flavor_named(name: str) -> Flavor:
    """The flavor called `name`.

    Raises:
        InvalidArgumentError: no installed flavor has that name.
    """
    known = flavors()
    if name in known:
        return known[name]
    hint = (
        " A built-in is missing: reinstall Assay (`pip install -e .`) so its entry points "
        "are registered."
        if name in BUILTINS
        else f" Install the package that provides it (entry-point group {GROUP!r})."
    )
    raise InvalidArgumentError(
        f"Unknown model flavor {name!r}; the known flavors are {', '.join(sorted(known))}." + hint,
        flavor=name,
        known=sorted(known),
    )


def flavor_for(model: Any) -> Flavor:
    """The flavor that stores `model`, chosen by its type.

    Third-party flavors are asked first (they are the most specific), then XGBoost and
    LightGBM (whose scikit-learn wrappers are scikit-learn estimators too), then
    scikit-learn, and last `python`, which takes any object with a callable `predict`.

    Raises:
        InvalidArgumentError: no flavor accepts it (it has no `predict`).
    """
    known = flavors()
    order = [n for n in known if n not in BUILTINS] + [n for n in BUILTINS if n in known]
    for name in order:
        if known[name].accepts(model):
            return known[name]
    raise InvalidArgumentError(
        f"Cannot store a {_qualname(type(model))}: it has no predict() method, and no "
        f"flavor ({', '.join(order)}) accepts it. Register the fitted estimator itself, "
        "or wrap it in an object with predict(X).",
        type=_qualname(type(model)),
    )


# -- helpers ------------------------------------------------------------------------


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# Each optional framework: its name as its authors write it, and the extra of Assay's
# that installs it.
_FRAMEWORKS = {"xgboost": ("XGBoost", "boosting"), "lightgbm": ("LightGBM", "boosting")}


def framework(module: str) -> Any:
    """Import an optional model framework (`xgboost`, `lightgbm`).

    Raises:
        InvalidArgumentError: it is not installed (or cannot be imported) here; the
            message names the package and how to install it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        title, extra = _FRAMEWORKS.get(module, (module, None))
        how = f"pip install 'assay[{extra}]'" if extra else f"pip install {module}"
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == module
        why = "is not installed" if missing else f"cannot be imported ({exc})"
        raise InvalidArgumentError(
            f"This is a {title} model, and {module} {why} where Assay runs. "
            f"Install it with `{how}` and retry.",
            package=module,
            install=how,
        ) from None


def _from_library(model: Any, library: str) -> bool:
    """Whether any class in the model's MRO comes from `library`; cheap (no import)."""
    return any(c.__module__.partition(".")[0] == library for c in type(model).__mro__)


def installed(*distributions: str) -> tuple[str, str] | None:
    """The first of `distributions` that is installed, with its version."""
    for dist in distributions:
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _pins(*distributions: tuple[str, ...]) -> dict[str, str]:
    """{distribution: version} for each group of alternative distribution names."""
    out: dict[str, str] = {}
    for alternatives in distributions:
        found = installed(*alternatives)
        if found:
            out[found[0]] = found[1]
    return out


def _class_in(dotted: str, library: str) -> type:
    """The class at `dotted`, refused unless it belongs to `library`.

    The manifest is verified before load, but a class name is still only ever looked up
    in the framework it claims to be from.
    """
    module, _, attr = dotted.rpartition(".")
    if module.partition(".")[0] != library:
        raise InvalidArgumentError(
            f"Model class {dotted!r} is not from {library}; the bundle's manifest is "
            "malformed. Register the model again."
        )
    cls = getattr(importlib.import_module(module), attr)
    if not isinstance(cls, type):
        raise InvalidArgumentError(f"{dotted!r} is not a class; register the model again.")
    return cls


# -- scikit-learn -------------------------------------------------------------------


class SklearnFlavor:
    """scikit-learn estimators and pipelines, stored with skops (no pickle).

    skops writes the object's state as JSON and `.npy` arrays and only constructs the
    types it is told to trust. Assay records the types skops does not trust by default
    at save time and trusts exactly those at load: the file's hash was verified by the
    bundle first, so they are the types Assay itself wrote.
    """

    name = "sklearn"
    mlflow_needs_pickle = True  # MLflow cannot read skops

    def accepts(self, model: Any) -> bool:
        if not _from_library(model, "sklearn"):
            return False
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator) and callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        import skops.io as sio

        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "model.skops"
        sio.dump(model, path)
        trusted = sio.get_untrusted_types(file=path)
        # skops writes some objects it cannot read back (enums, compiled regexes,
        # lambdas); finding out now lets the bundle fall back to pickle instead of
        # storing a model that never loads.
        sio.load(path, trusted=trusted)
        return {"file": path.name, "estimator": _qualname(type(model)), "trusted": trusted}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        import skops.io as sio

        return sio.load(folder / meta["file"], trusted=list(meta.get("trusted", [])))

    def frameworks(self) -> dict[str, str]:
        return _pins(("scikit-learn",), ("skops",), ("numpy",))

    def requirements(self) -> list[str]:
        return [f"{d}=={v}" for d, v in self.frameworks().items()]

    def mlflow_flavor(self, meta: dict[str, Any]) -> dict[str, Any]:
        path = meta.get("mlflow_pickle")
        if not path:
            return {}  # without a pickle there is nothing MLflow can load
        return _mlflow_sklearn_pickle(path)


def _mlflow_sklearn_pickle(path: str) -> dict[str, Any]:
    """MLflow's sklearn flavor over a plain pickle; its pyfunc wrapper calls `predict`."""
    sklearn = installed("scikit-learn")
    entry: dict[str, Any] = {
        "pickled_model": path,
        "serialization_format": "pickle",
        "code": None,
    }
    if sklearn:
        entry["sklearn_version"] = sklearn[1]
    return {
        "python_function": {
            "loader_module": "mlflow.sklearn",
            "model_path": path,
            "predict_fn": "predict",
        },
        "sklearn": entry,
    }


# -- XGBoost ------------------------------------------------------------------------


class XGBoostBoosterModel:
    """A bare `xgboost.Booster` with `predict(X)`: builds the DMatrix it needs."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, X: Any) -> Any:
        xgb = framework("xgboost")
        names = self.booster.feature_names
        if hasattr(X, "columns") or names is None:
            matrix = xgb.DMatrix(X)
        else:  # an array: give it the names the booster was trained with
            matrix = xgb.DMatrix(X, feature_names=names)
        return self.booster.predict(matrix)


class XGBoostFlavor:
    """XGBoost models in XGBoost's own JSON format: the scikit-learn wrappers
    (`XGBClassifier`, `XGBRegressor`, ...) and bare `Booster`s."""

    name = "xgboost"
    mlflow_needs_pickle = False

    def accepts(self, model: Any) -> bool:
        if isinstance(model, XGBoostBoosterModel):
            return True
        if not _from_library(model, "xgboost"):
            return False
        xgb = framework("xgboost")
        return isinstance(model, xgb.XGBModel | xgb.Booster)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        xgb = framework("xgboost")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "model.json"
        if isinstance(model, XGBoostBoosterModel):
            model = model.booster
        model.save_model(str(path))
        if isinstance(model, xgb.XGBModel):
            return {"file": path.name, "kind": "sklearn", "class": _qualname(type(model))}
        return {"file": path.name, "kind": "booster", "class": "xgboost.core.Booster"}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        xgb = framework("xgboost")
        path = str(folder / meta["file"])
        if meta.get("kind") == "sklearn":
            model = _class_in(meta["class"], "xgboost")()
            model.load_model(path)
            return model
        return XGBoostBoosterModel(xgb.Booster(model_file=path))

    def frameworks(self) -> dict[str, str]:
        return _pins(("xgboost", "xgboost-cpu"), ("numpy",))

    def requirements(self) -> list[str]:
        return [f"{d}=={v}" for d, v in self.frameworks().items()]

    def mlflow_flavor(self, meta: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "data": f"{MODEL_DIR}/{meta['file']}",
            "model_class": meta.get("class", "xgboost.core.Booster"),
            "model_format": "json",
            "code": None,
        }
        found = installed("xgboost", "xgboost-cpu")
        if found:
            entry["xgb_version"] = found[1]
        # No `data` in python_function: MLflow then hands its loader the bundle root,
        # where it finds the MLmodel and reads `data` from the xgboost entry.
        return {"python_function": {"loader_module": "mlflow.xgboost"}, "xgboost": entry}


# -- LightGBM -----------------------------------------------------------------------


class LightGBMModel:
    """A LightGBM regressor or bare booster loaded from its text format: `predict`
    returns the booster's values.

    X goes to the booster as it is, so a DataFrame keeps its column names (and
    categorical columns their categories).
    """

    def __init__(self, booster: Any, *, objective: str | None = None) -> None:
        self.booster = booster
        self.objective = objective

    def predict(self, X: Any) -> Any:
        return self.booster.predict(X)


class LightGBMClassifierModel(LightGBMModel):
    """A LightGBM classifier loaded from its text format, predicting like the
    `LGBMClassifier` it was saved from: labels from `predict`, probabilities from
    `predict_proba` (a loaded booster alone predicts probabilities)."""

    def __init__(self, booster: Any, *, classes: list[Any], objective: str | None = None) -> None:
        import numpy as np

        super().__init__(booster, objective=objective)
        self.classes_ = np.asarray(classes)

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        raw = np.asarray(self.booster.predict(X))
        if raw.ndim == 1:  # binary: the booster gives the positive class only
            return np.vstack((1.0 - raw, raw)).T
        return raw

    def predict(self, X: Any) -> Any:
        import numpy as np

        # LGBMClassifier.predict is this argmax too, so ties break the same way.
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class LightGBMFlavor:
    """LightGBM models in LightGBM's own text format: `LGBMClassifier` (its classes
    and objective recorded so labels and probabilities come back), `LGBMRegressor`,
    and bare `Booster`s."""

    name = "lightgbm"
    # MLflow reads the native text file as a Booster: a classifier then predicts
    # probabilities there, which is better than handing MLflow a pickle of ours.
    mlflow_needs_pickle = False

    def accepts(self, model: Any) -> bool:
        if isinstance(model, LightGBMModel):
            return True
        if not _from_library(model, "lightgbm"):
            return False
        lgb = framework("lightgbm")
        return isinstance(model, lgb.LGBMModel | lgb.Booster)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        lgb = framework("lightgbm")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "model.txt"
        meta: dict[str, Any] = {"file": path.name}
        if isinstance(model, LightGBMModel):  # a loaded one, stored again (an export)
            model.booster.save_model(str(path))
            classes = getattr(model, "classes_", None)
            objective: Any = model.objective
            kind = "classifier" if classes is not None else "booster"
            cls = "lightgbm.basic.Booster"
        elif isinstance(model, lgb.LGBMModel):
            model.booster_.save_model(str(path))
            classes = getattr(model, "classes_", None)
            objective = model.objective_
            kind = "classifier" if classes is not None else "regressor"
            cls = _qualname(type(model))
        else:
            model.save_model(str(path))
            classes, objective, kind, cls = None, None, "booster", "lightgbm.basic.Booster"
        from assay.registry.signature import json_value

        meta.update(
            kind=kind,
            **{"class": cls},
            objective=objective if isinstance(objective, str) else None,
            classes=[json_value(c) for c in classes] if classes is not None else None,
        )
        return meta

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        lgb = framework("lightgbm")
        booster = lgb.Booster(model_file=str(folder / meta["file"]))
        if meta.get("classes") is not None:
            return LightGBMClassifierModel(
                booster, classes=meta["classes"], objective=meta.get("objective")
            )
        return LightGBMModel(booster, objective=meta.get("objective"))

    def frameworks(self) -> dict[str, str]:
        return _pins(("lightgbm",), ("numpy",))

    def requirements(self) -> list[str]:
        return [f"{d}=={v}" for d, v in self.frameworks().items()]

    def mlflow_flavor(self, meta: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "data": f"{MODEL_DIR}/{meta['file']}",
            "model_class": "lightgbm.basic.Booster",
            "code": None,
        }
        found = installed("lightgbm")
        if found:
            entry["lgb_version"] = found[1]
        return {"python_function": {"loader_module": "mlflow.lightgbm"}, "lightgbm": entry}


# -- any Python object with predict ---------------------------------------------------


class PythonFlavor:
    """Any object with a callable `predict`, pickled: the last resort.

    Unpickling runs code named by the file, so a bundle's pickle is only ever loaded
    after the bundle has verified its hash against the manifest Assay wrote.
    """

    name = "python"
    mlflow_needs_pickle = False  # its own file already is one

    def accepts(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "model.pkl"
        with open(path, "wb") as fh:
            pickle.dump(model, fh, protocol=PICKLE_PROTOCOL)
        return {"file": path.name, "class": _qualname(type(model))}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        # Safe only because load_bundle verified this file's hash against the manifest
        # before calling us: these are the bytes Assay pickled, not someone else's.
        with open(folder / meta["file"], "rb") as fh:
            return pickle.load(fh)

    def frameworks(self) -> dict[str, str]:
        return {}

    def requirements(self) -> list[str]:
        return []

    def mlflow_flavor(self, meta: dict[str, Any]) -> dict[str, Any]:
        return _mlflow_sklearn_pickle(f"{MODEL_DIR}/{meta['file']}")
