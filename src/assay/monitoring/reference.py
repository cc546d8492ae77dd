"""The reference a monitor compares live traffic with: the model's own training data.

By default it is the data version in the model's lineage (`Lineage.data`); a monitor's
config or the caller may name another. Of that version's tabular files, the one holding
most of the signature's input columns is the training table; the column it has beyond
the inputs (when there is exactly one, or the config names it) is the label.

The model's outputs are compared with what the same model predicts for the training
rows (a seeded sample of at most `PREDICTION_SAMPLE`), so prediction drift means the
outputs moved, not that the model is imperfect. Reduced references are kept in memory
per (data manifest, file, model bundle): a monitor checked every few minutes reads its
training data once.
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assay.data.entities import is_tabular_path
from assay.data.reading import read_table
from assay.errors import InvalidArgumentError
from assay.monitoring.drift import Reference, guess_kind

if TYPE_CHECKING:
    from assay.data.entities import DataVersion
    from assay.data.service import DataService
    from assay.registry.entities import ModelVersion
    from assay.registry.service import RegistryService

PREDICTION_SAMPLE = 20_000
CACHED = 8


@dataclass
class Training:
    """A model's training table and what monitoring reduces it to."""

    version: DataVersion | None
    path: str | None
    table: pd.DataFrame | None
    label: str | None
    features: dict[str, Reference] = field(default_factory=dict)
    prediction: Reference | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str | None:
        return self.version.ref if self.version else None


class References:
    """Builds (and remembers) the training references of model versions."""

    def __init__(self, data: DataService, registry: RegistryService) -> None:
        self.data = data
        self.registry = registry
        self._cache: OrderedDict[tuple[str, str | None, str | None], Training] = OrderedDict()

    def training(
        self, mv: ModelVersion, data_ref: str | None = None, label: str | None = None
    ) -> Training:
        """The reference for `mv`: its lineage's data version, or `data_ref`.

        Raises:
            NotFoundError: `data_ref` names no data version.
            InvalidArgumentError: the version has no table with the model's inputs.
        """
        ref = data_ref or mv.lineage.data
        if ref is None:
            return Training(
                None,
                None,
                None,
                None,
                notes=[
                    f"{mv.ref} has no training data in its lineage (it was registered from a "
                    "file); name a reference with --reference DATASET@V."
                ],
            )
        dv = self.data.resolve(ref)
        key = (dv.manifest, mv.bundle, label)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        built = self._build(mv, dv, label)
        self._cache[key] = built
        while len(self._cache) > CACHED:
            self._cache.popitem(last=False)
        return built

    def _build(self, mv: ModelVersion, dv: DataVersion, label: str | None) -> Training:
        names = mv.signature.names if mv.signature else []
        path, table = self.table(dv, names)
        training = Training(dv, path, table, label_column(table, names, label, dv.ref))
        kinds = {c.name: c.kind for c in (mv.signature.inputs if mv.signature else ())}
        for name in names:
            if name not in table.columns:
                training.notes.append(
                    f"{name!r} is not a column of {dv.ref}:{path} (the pipeline computes it?): "
                    "not compared."
                )
                continue
            column = table[name].to_numpy()
            training.features[name] = Reference.of(name, column, guess_kind(column, kinds[name]))
        training.prediction = self._predictions(mv, table, names, training.notes)
        return training

    def table(self, dv: DataVersion, names: list[str]) -> tuple[str, pd.DataFrame]:
        """The version's tabular file with most of `names` as columns, read."""
        best: tuple[int, str, pd.DataFrame] | None = None
        for entry in self.data.files(dv):
            if not is_tabular_path(entry.path):
                continue
            try:
                frame = read_table(self.data.read_file(dv, entry.path), entry.path)
            except InvalidArgumentError:
                continue
            score = sum(n in frame.columns for n in names)
            if best is None or score > best[0]:
                best = (score, entry.path, frame)
        if best is None or (names and best[0] == 0):
            raise InvalidArgumentError(
                f"{dv.ref} has no table with the model's input columns to compare live "
                "traffic with; name another with --reference DATASET@V.",
                data=dv.ref,
            )
        return best[1], best[2]

    def _predictions(
        self, mv: ModelVersion, table: pd.DataFrame, names: list[str], notes: list[str]
    ) -> Reference | None:
        """What the model predicts for (a sample of) its training rows."""
        if not names or any(n not in table.columns for n in names):
            return None
        rows = table[names]
        if len(rows) > PREDICTION_SAMPLE:
            rows = rows.sample(PREDICTION_SAMPLE, random_state=0)
        rows = rows.dropna()
        if not len(rows):
            return None
        try:
            out = predict(self.registry, mv, rows)
        except Exception as exc:  # the model's own failure: prediction drift is skipped
            notes.append(
                f"{mv.ref} could not predict its training rows ({exc}): "
                "prediction drift is not compared."
            )
            return None
        out = np.asarray(out)
        if out.ndim != 1:
            return None
        kind = prediction_kind(mv, out)
        return Reference.of("prediction", out, kind)


def predict(registry: RegistryService, mv: ModelVersion, rows: pd.DataFrame) -> Any:
    """`mv`'s predictions for `rows`, loaded from its stored bundle."""
    from assay.registry.bundle import load_bundle

    with tempfile.TemporaryDirectory(prefix="assay-monitor-") as tmp:
        loaded = load_bundle(registry.materialize(mv, Path(tmp) / "bundle"))
    model = loaded.model
    if getattr(model, "feature_names_in_", None) is not None or (
        mv.signature is not None
        and mv.signature.tabular
        and getattr(model, "n_features_in_", None) is None
    ):
        return model.predict(rows)
    return model.predict(rows.to_numpy())


def prediction_kind(mv: ModelVersion, out: Any) -> str:
    """A classifier's outputs are categories; a regressor's numbers."""
    spec = mv.signature.output if mv.signature else None
    if spec is not None and (spec.classes is not None or spec.kind in ("str", "bool", "int")):
        return "categorical"
    return guess_kind(np.asarray(out))


def label_column(
    table: pd.DataFrame, names: list[str], configured: str | None, where: str
) -> str | None:
    """The training table's label: the configured column, or the only one that is not
    an input.

    Raises:
        InvalidArgumentError: the configured column is not in the table.
    """
    if configured is not None:
        if configured not in table.columns:
            raise InvalidArgumentError(
                f"The label column {configured!r} is not in {where}; its columns are "
                f"{', '.join(map(str, table.columns))}.",
                label=configured,
            )
        return configured
    others = [c for c in table.columns if c not in names]
    return str(others[0]) if len(others) == 1 else None
