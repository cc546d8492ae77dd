"""Models to and from other tools: files trained elsewhere, for `assay models register
FILE`, and a version exported as a folder MLflow reads, for `assay models export`.

In: a `.skops` file, an XGBoost or LightGBM native model, or a pickle. A pickle runs any
code it holds when loaded, so it is refused unless the user trusts its source; a
`.skops` file holding types beyond scikit-learn's own is refused the same way.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.registry import bundle as bundles
from assay.registry.flavors import flavor_for, flavor_named, framework

if TYPE_CHECKING:
    from assay.registry.entities import ModelVersion
    from assay.store.objects import ObjectStore

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
SUPPORTED_FILES = (
    ".skops (scikit-learn), XGBoost .json or .ubj, LightGBM text models, and with "
    "--trust pickles (.pkl, .pickle, .joblib)"
)
# Classes of scikit-learn (and numpy's dtype) that fitted standard estimators hold but
# that skops 0.16 does not trust by default: trees and tree predictors, neighbour
# indexes and their metric, MLP optimizers. Constructing them runs only that library's
# own code on the file's data, so a `.skops` file needs --trust only for other types
# (functions above all, which a model could call when it predicts).
SKOPS_SAFE_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)


def load_model_file(path: Path, *, trust: bool) -> tuple[Any, str]:
    """A model file trained elsewhere (`assay models register FILE`), and the name of
    the flavor that stores it.

    Recognised by extension and content: `.skops`; XGBoost's `.json` (with a `learner`)
    and `.ubj`; LightGBM's text format; pickles (`.pkl`, `.pickle`, `.joblib`), which
    run code when loaded and so only with `trust`. A `.skops` file holding types skops
    does not trust by default (other than `SKOPS_SAFE_TYPES`) also needs `trust`.

    Raises:
        NotFoundError: no such file.
        InvalidArgumentError: an unknown format, a file its framework cannot read, or
            one that needs `trust` without it.
    """
    if not path.is_file():
        raise NotFoundError(f"No model file at {path}. Check the path.", path=str(path))
    suffix = path.suffix.lower()
    if suffix == ".skops":
        model = _load_skops(path, trust)
    elif suffix in PICKLE_SUFFIXES:
        model = _load_pickle(path, trust)
    elif suffix == ".ubj" or (suffix == ".json" and _is_xgboost_json(path)):
        model = _load_xgboost(path)
    elif _is_lightgbm_text(path):
        model = _load_lightgbm(path)
    else:
        raise InvalidArgumentError(
            f"Cannot tell what kind of model {path.name} is. Supported: {SUPPORTED_FILES}.",
            path=str(path),
        )
    return model, flavor_for(model).name


def export_folder(store: ObjectStore, mv: ModelVersion, dest: Path) -> Path:
    """Write `mv` as a self-contained folder at `dest`: the model, signature,
    requirements, an input example, and an `MLmodel` file (with a pickle MLflow can read).

    Raises:
        ConflictError: `dest` exists and is not an empty folder.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConflictError(f"{dest} exists and is not empty; pick a new folder.")
    with tempfile.TemporaryDirectory(prefix="assay-export-") as tmp:
        # The stored bundle as it is; loaded only where MLflow needs a pickle of it.
        staging = bundles.materialize(store, mv.bundle, Path(tmp) / "export")
        if getattr(flavor_named(mv.flavor), "mlflow_needs_pickle", False):
            bundles.add_mlflow_pickle(staging, bundles.load_bundle(staging).model)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest.rmdir()
        shutil.move(str(staging), str(dest))
    return dest


def _unreadable(path: Path, what: str, exc: Exception) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{path.name} looks like {what}, but it could not be read "
        f"({type(exc).__name__}: {exc}). Check that the file is complete and was written "
        f"by a compatible version.",
        path=str(path),
    )


def _load_skops(path: Path, trust: bool) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise _unreadable(path, "a skops file", exc) from exc
    unknown = [t for t in untrusted if t not in SKOPS_SAFE_TYPES]
    if unknown and not trust:
        raise InvalidArgumentError(
            f"{path.name} holds types skops does not trust by default: "
            f"{', '.join(unknown)}. Loading it constructs them; pass --trust if you "
            "trust its source.",
            path=str(path),
            types=unknown,
        )
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise _unreadable(path, "a skops file", exc) from exc


def _load_pickle(path: Path, trust: bool) -> Any:
    if not trust:
        raise InvalidArgumentError(
            f"{path.name} is a pickle, which can run arbitrary code when loaded; pass "
            "--trust if you trust its source. Assay then stores the model in a safe format "
            "where one exists (skops for scikit-learn).",
            path=str(path),
        )
    try:
        try:
            import joblib
        except ImportError:  # joblib comes with scikit-learn; a plain pickle needs neither
            with open(path, "rb") as fh:
                return pickle.load(fh)
        return joblib.load(path)
    except ModuleNotFoundError as exc:
        raise InvalidArgumentError(
            f"{path.name} needs the module {exc.name!r}, which is not installed. Install "
            "the library that defines the model's class and retry.",
            path=str(path),
        ) from exc
    except Exception as exc:
        raise _unreadable(path, "a pickle", exc) from exc


def _is_xgboost_json(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and "learner" in doc


def _load_xgboost(path: Path) -> Any:
    xgb = framework("xgboost")
    try:
        booster = xgb.Booster(model_file=str(path))
        # The scikit-learn wrappers leave their type in an attribute of the file.
        sklearn_meta = json.loads(booster.attr("scikit_learn") or "{}")
        cls = {
            "classifier": xgb.XGBClassifier,
            "regressor": xgb.XGBRegressor,
            "ranker": xgb.XGBRanker,
        }.get(sklearn_meta.get("_estimator_type"))
        if cls is None:
            return booster
        model = cls()
        model.load_model(str(path))
        return model
    except Exception as exc:
        raise _unreadable(path, "an XGBoost model", exc) from exc


def _is_lightgbm_text(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return head.startswith(b"tree\n") or b"\nversion=v" in head[:200]


def _load_lightgbm(path: Path) -> Any:
    lgb = framework("lightgbm")
    try:
        return lgb.Booster(model_file=str(path))
    except Exception as exc:
        raise _unreadable(path, "a LightGBM model", exc) from exc
