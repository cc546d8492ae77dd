"""Classify breast-cancer measurements: the example pipeline of `assay demo`.

Six steps, each a plain function. A parameter named after an earlier step receives
that step's output; `data` is the checked-out data version, `params` the run's
parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import assay


@assay.step
def load(data: Path) -> pd.DataFrame:
    return pd.read_csv(next(data.glob("*.csv")))


@assay.step
def clean(load: pd.DataFrame) -> pd.DataFrame:
    return load.dropna().reset_index(drop=True)


@assay.step
def features(clean: pd.DataFrame) -> pd.DataFrame:
    out = clean.copy()
    out["area_per_radius"] = out["mean_area"] / out["mean_radius"]
    return out


@assay.step
def split(features: pd.DataFrame, params: dict[str, Any]) -> assay.Split:
    return assay.split(
        features,
        target="diagnosis",
        seed=params["seed"],
        test_size=0.2,
        val_size=0.2,
        stratify=True,
    )


@assay.step
def train(split: assay.Split, params: dict[str, Any]) -> Any:
    if params.get("model", "logreg") == "random_forest":
        model = RandomForestClassifier(
            n_estimators=params.get("n_estimators", 100),
            max_depth=params.get("max_depth"),
            random_state=params["seed"],
        )
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=params["C"], max_iter=2000))
    # A learning curve: validation F1 as the training set grows.
    X, y = split.X("train"), split.y("train")
    for step, share in enumerate((0.25, 0.5, 0.75, 1.0), start=1):
        n = max(10, int(len(X) * share))
        model.fit(X[:n], y[:n])
        assay.log_metric(
            "curve_val_f1",
            f1_score(split.y("val"), model.predict(split.X("val")), pos_label="malignant"),
            step=step,
        )
    return model


@assay.step
def evaluate(train: Any, split: assay.Split) -> dict[str, float]:
    val, test = train.predict(split.X("val")), train.predict(split.X("test"))
    return {
        "val_f1": f1_score(split.y("val"), val, pos_label="malignant"),
        "val_accuracy": accuracy_score(split.y("val"), val),
        "test_f1": f1_score(split.y("test"), test, pos_label="malignant"),
    }


pipeline = assay.Pipeline("cancer", [load, clean, features, split, train, evaluate])
