"""The pipeline DSL: steps, wiring by parameter name, and the checks made on creation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assay.errors import InvalidArgumentError
from assay.pipelines.dsl import RESERVED_INPUTS, Pipeline, Step, step


@step
def load(data: Path) -> str:
    return f"rows from {data.name}"


@step
def clean(load: str) -> str:
    return load.upper()


@step
def train(clean: str, params: Any) -> dict[str, Any]:
    return {"model": clean, "C": params["C"]}


@step(name="evaluate")
def score(train: dict[str, Any], clean: str) -> dict[str, float]:
    return {"val_f1": 0.93 if train["model"] == clean else 0.0}


def test_bare_step_takes_its_name_and_inputs_from_the_function() -> None:
    assert isinstance(clean, Step)
    assert clean.name == "clean"
    assert clean.inputs == ("load",)
    assert train.inputs == ("clean", "params")


def test_a_step_is_still_callable_like_its_function() -> None:
    assert clean("abc") == "ABC"
    assert score({"model": "X"}, "X") == {"val_f1": 0.93}


def test_step_takes_an_explicit_name() -> None:
    assert score.name == "evaluate"
    assert score.inputs == ("train", "clean")
    assert score.func.__name__ == "score"


def test_step_can_rename_an_existing_step() -> None:
    renamed = step(name="load_again")(load)
    assert (renamed.name, renamed.inputs, renamed.func) == ("load_again", ("data",), load.func)


def test_pipeline_defaults_model_and_metrics_to_train_and_evaluate() -> None:
    p = Pipeline("cancer", [load, clean, train, score])
    assert p.step_names == ("load", "clean", "train", "evaluate")
    assert (p.model, p.metrics) == ("train", "evaluate")
    assert len(p) == 4
    assert next(iter(p)) is load
    assert p.step("evaluate") is score


def test_pipeline_without_train_or_evaluate_has_no_model_or_metrics() -> None:
    p = Pipeline("prep", [load, clean])
    assert (p.model, p.metrics) == (None, None)


def test_model_and_metrics_can_be_named_or_switched_off() -> None:
    p = Pipeline("cancer", [load, clean, train, score], model="clean", metrics=None)
    assert (p.model, p.metrics) == ("clean", None)


def test_plain_functions_are_made_steps() -> None:
    def tidy(load: str) -> str:
        return load.strip()

    p = Pipeline("tidy", [load, tidy])
    assert p.step("tidy").inputs == ("load",)


def test_pipeline_is_immutable() -> None:
    p = Pipeline("prep", [load])
    with pytest.raises(AttributeError):
        p.name = "other"


@pytest.mark.parametrize("reserved", ["data", "params"])
def test_a_step_may_not_be_named_like_a_reserved_input(reserved: str) -> None:
    assert reserved in RESERVED_INPUTS

    def fn(x: Any) -> Any:
        return x

    with pytest.raises(InvalidArgumentError, match=f"Step name '{reserved}' is reserved"):
        step(name=reserved)(fn)


def test_execute_passes_each_step_the_outputs_it_names() -> None:
    p = Pipeline("cancer", [load, clean, train, score])
    out = p.execute(Path("/tmp/cancer"), {"C": 2})
    assert out == {
        "load": "rows from cancer",
        "clean": "ROWS FROM CANCER",
        "train": {"model": "ROWS FROM CANCER", "C": 2},
        "evaluate": {"val_f1": 0.93},
    }


def test_params_reach_a_step_read_only() -> None:
    @step
    def meddle(params: Any) -> None:
        params["C"] = 5

    with pytest.raises(TypeError):
        Pipeline("meddle", [meddle]).execute(Path("."), {"C": 1})


def test_binding_picks_each_input_by_name_keyword_only_included() -> None:
    @step
    def combine(load: str, clean: str, *, params: Any) -> str:
        return f"{load}|{clean}|{params['k']}"

    values = {"load": "a", "clean": "b", "params": {"k": 1}, "unused": 0}
    assert combine.arguments(values) == {"load": "a", "clean": "b", "params": {"k": 1}}
    assert combine.run(values) == "a|b|1"


def test_binding_names_missing_inputs() -> None:
    with pytest.raises(InvalidArgumentError, match=r"Step 'train' needs clean, params"):
        train.run({"load": 1})


def _boom(*args: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Pipeline("p", [load, train]),
            r"Step 'train' of pipeline 'p' takes parameter 'clean', which is not one of its "
            r"inputs \(available there: data, params, load\)\. Rename the parameter",
        ),
        (
            lambda: Pipeline("p", [load, train, clean]),
            r"parameter 'clean'.*'clean' is a later step: move it before 'train'",
        ),
        (
            lambda: Pipeline("p", [load, clean, step(name="load")(clean)]),
            r"Pipeline 'p' has two steps named 'load'",
        ),
        (lambda: Pipeline("p", []), r"Pipeline 'p' has no steps"),
        (lambda: Pipeline("p", [load], model="trian"), r"model='trian' names no step.*load"),
        (lambda: Pipeline("p", [load], metrics="eval"), r"metrics='eval' names no step"),
        (lambda: Pipeline("bad name!", [load]), r"Pipeline name 'bad name!' is not valid"),
        (lambda: Pipeline("../up", [load]), r"Pipeline name '../up' is not valid"),
        (lambda: Pipeline("p", load), r"steps must be a list"),  # type: ignore[arg-type]
        (lambda: step(_boom), r"Step '_boom' takes \*args; a step takes named parameters"),
        (lambda: step(name="kw")(lambda **kw: 0), r"Step 'kw' takes \*\*kw"),
        (
            lambda: step(name="pos")(lambda data, /: data),
            r"Step 'pos' takes 'data' as positional-only \(before '/'\)",
        ),
        (lambda: step(lambda data: data), r"Step name '<lambda>' is not a Python identifier"),
        (lambda: step(name="my-step")(_boom), r"Step name 'my-step' is not a Python identifier"),
        (lambda: step(name="class")(_boom), r"Step name 'class' is not a Python identifier"),
        (lambda: step(name="data")(clean), r"Step name 'data' is reserved"),
        (lambda: Pipeline("p", [42]), r"A step must be a function"),  # type: ignore[list-item]
    ],
)
def test_bad_definitions_are_refused_naming_the_step_and_parameter(
    build: Any, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        build()


def test_unknown_input_error_carries_details() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Pipeline("p", [load, train])
    assert info.value.details == {"pipeline": "p", "step": "train", "parameter": "clean"}
