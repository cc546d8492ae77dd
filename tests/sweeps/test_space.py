"""The space file's language: what parses, what each malformed entry says, what a
pipeline reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from assay.errors import InvalidArgumentError
from assay.sweeps.space import (
    Space,
    check_names,
    load_space,
    merge,
    params_read,
    parse_document,
    parse_space,
)

SELECTION = """
model:
  choice:
    logreg: {C: {log-float: [0.01, 100]}}
    random_forest:
      n_estimators: {int: [10, 200], step: 10}
      max_depth: {int: [2, 12]}
optimizer: {lr: {float: [0.001, 0.1], log: true}, momentum: {float: [0.0, 0.9], step: 0.1}}
kernel: {choice: [linear, rbf]}
seed: 7
"""


def _sample(space: Space, seed: int, n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    points: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for _ in range(n):
        trial = study.ask()
        points.append((space.sample(trial), dict(trial.params)))
        study.tell(trial, 0.0)
    return points


def test_conditional_choice_samples_only_the_chosen_options_params() -> None:
    space = parse_space(parse_document(SELECTION, "space.yaml"))
    points = _sample(space, seed=1, n=60)
    models = {p["model"] for p, _ in points}
    assert models == {"logreg", "random_forest"}
    for point, optuna_params in points:
        assert point["seed"] == 7
        assert point["kernel"] in ("linear", "rbf")
        assert set(point["optimizer"]) == {"lr", "momentum"}
        assert 0.001 <= point["optimizer"]["lr"] <= 0.1
        assert "optimizer.lr" in optuna_params  # Optuna's name is the dotted path
        if point["model"] == "logreg":
            assert 0.01 <= point["C"] <= 100
            assert "n_estimators" not in point
            assert "max_depth" not in point
        else:
            assert "C" not in point
            assert point["n_estimators"] % 10 == 0
            assert 10 <= point["n_estimators"] <= 200
            assert 2 <= point["max_depth"] <= 12


def test_merge_lays_a_point_over_base_params_key_by_key() -> None:
    base: dict[str, Any] = {"seed": 1, "optimizer": {"lr": 0.5, "nesterov": True}, "C": 1.0}
    assert merge(base, {"optimizer": {"lr": 0.01}, "C": 3.0}) == {
        "seed": 1,
        "optimizer": {"lr": 0.01, "nesterov": True},
        "C": 3.0,
    }
    assert base["optimizer"]["lr"] == 0.5  # not mutated


def test_grid_size_counts_every_branch() -> None:
    space = parse_space(
        parse_document(
            "model: {choice: {a: {k: {int: [1, 3]}}, b: {c: {choice: [x, y]}}}}\n"
            "lr: {float: [0.1, 0.3], step: 0.1}\n",
            "s.yaml",
        )
    )
    assert space.grid_size() == (3 + 2) * 3
    continuous = parse_space(parse_document('{"C": {"float": [0, 1]}}', "s.json"))
    with pytest.raises(InvalidArgumentError, match="'C' is a continuous float"):
        continuous.grid_size()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("C: {float: [1, 0]}", "'C': low must not exceed high"),
        ("C: {log-float: [0, 1]}", "'C': a log scale needs bounds above 0"),
        ("C: {float: [0, 1], lg: true}", "'C' has unknown key 'lg'"),
        ("C: {float: [0, 1], int: [0, 1]}", "declares float and int"),
        ("n: {int: [1.5, 3]}", "'n': int bounds must be whole numbers"),
        ("n: {int: [1, 3], step: 0}", "'n': step must be a whole number"),
        ("C: {float: [0, 1, 2]}", "float takes [low, high]"),
        ("k: {choice: []}", "'k': choice needs at least one value"),
        ("k: {choice: [a, a]}", "'k': a choice is listed twice"),
        ("k: {choice: [[1, 2]]}", "'k': choices must be strings"),
        ("k: [1, 2]", "'k' is a bare list"),
        ("m: {choice: {a: 3}}", "option 'a' must map to its own parameters"),
        ("g: {}", "'g' is an empty group"),
        (
            "m: {choice: {a: {d: {int: [1, 2]}}, b: {d: {choice: [x]}}}}",
            "'d' is an int in one option and a choice",
        ),
        ("- 1\n- 2", "must map parameter names"),
        ("C: {float: [0, 1]", "is not valid YAML"),
    ],
)
def test_malformed_spaces_name_the_entry_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=_escape(message)):
        parse_space(parse_document(text, "space.yaml"))


def test_json_space_errors_give_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "space.json"
    path.write_text('{"C": {"float": [0, 1]},\n "k": }')
    with pytest.raises(InvalidArgumentError, match=r"not valid JSON: .* line 2"):
        load_space(path)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        load_space(tmp_path / "missing.yaml")


def test_params_read_finds_literal_reads_and_gives_up_on_opaque_use() -> None:
    pipeline = (
        "def train(split, params):\n"
        "    a = params['C']\n"
        "    b = params.get('max_depth', 3)\n"
        "    if 'kernel' in params: pass\n"
        "    return params['model']\n"
    )
    assert params_read({"p.py": pipeline}) == {"C", "max_depth", "kernel", "model"}
    assert params_read({"p.py": pipeline, "q.py": "def f(params):\n    g(**params)\n"}) is None
    assert params_read({"p.py": "def f(params):\n    return helper(params)\n"}) is None


def test_a_name_neither_the_params_nor_the_pipeline_knows_is_refused() -> None:
    space = parse_space(parse_document("n_estimator: {int: [1, 5]}", "s.yaml"))
    with pytest.raises(InvalidArgumentError, match="Did you mean 'n_estimators'"):
        check_names(space, {"seed": 1}, {"n_estimators", "seed"}, "cancer@1")
    check_names(space, {"n_estimator": 3}, {"seed"}, "cancer@1")  # in the params file: fine
    check_names(space, {}, None, "cancer@1")  # the pipeline passes params on: cannot tell


def _escape(text: str) -> str:
    import re

    return re.escape(text)
