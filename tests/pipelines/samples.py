"""Sample pipeline sources the pipeline tests write to disk."""

from __future__ import annotations

from pathlib import Path

PIPELINE = """\
from assay.pipelines.dsl import Pipeline, step

from helpers import scale

THRESHOLD = 0.5


@step
def load(data):
    return [float(x) for x in (data / "values.txt").read_text().split()]


@step
def clean(load):
    return [x for x in load if x >= 0]


@step
def train(clean, params):
    return {"mean": scale(sum(clean) / len(clean), params.get("factor", 1))}


@step(name="evaluate")
def score(train, clean):
    return {"above": train["mean"] > THRESHOLD, "n": len(clean)}


pipeline = Pipeline("cancer", [load, clean, train, score])
"""

HELPERS = "def scale(x, factor):\n    return x * factor\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
