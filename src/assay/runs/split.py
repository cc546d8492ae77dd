"""Reproducible train / validation / test splits, with their fingerprints on the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.errors import InvalidArgumentError
from assay.store.objects import hash_bytes

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Split:
    """The parts of a split; `X`/`y` accessors drop or take the target column."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    target: str | None
    leaked_rows: int

    def X(self, part: str) -> pd.DataFrame:
        frame: pd.DataFrame = getattr(self, part)
        return frame.drop(columns=[self.target]) if self.target else frame

    def y(self, part: str) -> pd.Series[Any]:
        if not self.target:
            raise InvalidArgumentError("This split has no target column; pass target= to split().")
        series: pd.Series[Any] = getattr(self, part)[self.target]
        return series


def _fingerprint(frame: pd.DataFrame) -> str:
    import pandas as pd

    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hash_bytes(rows.tobytes())


def split(
    frame: pd.DataFrame,
    *,
    seed: int,
    test_size: float = 0.2,
    val_size: float = 0.0,
    target: str | None = None,
    stratify: bool = False,
) -> Split:
    """Shuffle with `seed` and cut into train / validation / test.

    The same frame and seed always give the same parts. Inside a run, the sizes
    and content hash of each part are recorded, and rows present in both the
    training and the test part (duplicates in the data) are counted as leakage.
    """
    import numpy as np

    if not 0 < test_size < 1 or not 0 <= val_size < 1 or test_size + val_size >= 1:
        raise InvalidArgumentError(
            f"split(): test_size={test_size} and val_size={val_size} must be fractions "
            "that leave rows for training."
        )
    if target is not None and target not in frame.columns:
        raise InvalidArgumentError(f"split(): target column {target!r} is not in the frame.")
    rng = np.random.default_rng(seed)
    n = len(frame)
    if stratify and target is not None:
        parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
        for _, idx in frame.groupby(target, sort=True).indices.items():
            idx = rng.permutation(idx)
            n_test, n_val = round(len(idx) * test_size), round(len(idx) * val_size)
            parts["test"].extend(idx[:n_test])
            parts["val"].extend(idx[n_test : n_test + n_val])
            parts["train"].extend(idx[n_test + n_val :])
        order = {k: np.sort(np.array(v, dtype=int)) for k, v in parts.items()}
    else:
        perm = rng.permutation(n)
        n_test, n_val = round(n * test_size), round(n * val_size)
        order = {
            "test": perm[:n_test],
            "val": perm[n_test : n_test + n_val],
            "train": perm[n_test + n_val :],
        }
    train, val, test = (
        frame.iloc[order[k]].reset_index(drop=True) for k in ("train", "val", "test")
    )

    import pandas as pd

    train_rows = set(pd.util.hash_pandas_object(train, index=False).tolist())
    test_hashes = pd.util.hash_pandas_object(test, index=False).tolist()
    leaked = sum(1 for h in test_hashes if h in train_rows)
    result = Split(train, val, test, target, leaked)

    from assay.runs import tracking

    if tracking.current_run_id() is not None:
        tracking.active().split_info = {
            "seed": seed,
            "sizes": {"train": len(train), "val": len(val), "test": len(test)},
            "hashes": {
                k: _fingerprint(v) for k, v in (("train", train), ("val", val), ("test", test))
            },
            "leaked_rows": leaked,
        }
    return result
