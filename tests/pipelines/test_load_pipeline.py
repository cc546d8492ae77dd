"""Loading a pipeline from its file: found by type, imported in isolation, errors in one line."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from assay.errors import InvalidArgumentError, NotFoundError
from assay.pipelines.dsl import Pipeline, load_pipeline

from .samples import HELPERS, PIPELINE, write

TWO = """\
from assay.pipelines.dsl import Pipeline, step

@step
def load(data):
    return 1

@step
def train(load):
    return load + 1

a = Pipeline("alpha", [load])
b = Pipeline("beta", [load, train])
"""


def test_loads_the_one_pipeline_a_file_defines(project: Path, values: Path) -> None:
    p = load_pipeline(project / "pipeline.py")
    assert isinstance(p, Pipeline)
    assert p.name == "cancer"
    assert p.step_names == ("load", "clean", "train", "evaluate")
    out = p.execute(values, {"factor": 2})
    assert out["train"] == {"mean": 4.0}
    assert out["evaluate"] == {"above": True, "n": 3}


def test_one_pipeline_is_returned_whatever_name_is_asked(project: Path) -> None:
    assert load_pipeline(project / "pipeline.py", "renamed").name == "cancer"


def test_a_file_without_a_pipeline_says_how_to_make_one(tmp_path: Path) -> None:
    entry = write(tmp_path / "p" / "pipeline.py", "X = 1\n")
    with pytest.raises(
        InvalidArgumentError,
        match=r"pipeline\.py defines no assay Pipeline; "
        r"create one with Pipeline\(name, \[steps\]\)",
    ):
        load_pipeline(entry)


def test_several_pipelines_need_a_name(tmp_path: Path) -> None:
    entry = write(tmp_path / "p" / "pipeline.py", TWO)
    with pytest.raises(
        InvalidArgumentError, match=r"defines several pipelines: alpha, beta; pick one with --name"
    ):
        load_pipeline(entry)
    assert load_pipeline(entry, "beta").step_names == ("load", "train")
    with pytest.raises(InvalidArgumentError, match=r"no pipeline named 'gamma'.*alpha, beta"):
        load_pipeline(entry, "gamma")


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        load_pipeline(tmp_path / "nope.py")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "import os\nraise ValueError('bad\\nthing')\n",
            r"Cannot import pipeline\.py: ValueError: bad thing\. Fix the error and retry\.",
        ),
        ("def broken(:\n    pass\n", r"Cannot import pipeline\.py: SyntaxError: "),
        ("import no_such_module_here\n", r"ModuleNotFoundError: No module named"),
        ("import sys\nsys.exit(3)\n", r"Cannot import pipeline\.py: SystemExit: 3"),
        (
            "from assay.pipelines.dsl import Pipeline, step\n"
            "@step\ndef train(clean):\n    return clean\n"
            "pipeline = Pipeline('p', [train])\n",
            r"InvalidArgumentError: Step 'train' of pipeline 'p' takes parameter 'clean'",
        ),
    ],
)
def test_an_error_while_importing_is_one_line_naming_file_and_exception(
    tmp_path: Path, source: str, message: str
) -> None:
    entry = write(tmp_path / "p" / "pipeline.py", source)
    with pytest.raises(InvalidArgumentError, match=message) as info:
        load_pipeline(entry)
    assert "\n" not in info.value.message
    assert "Traceback" in info.value.details["traceback"]


def test_loading_leaves_sys_path_and_sys_modules_as_they_were(project: Path) -> None:
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    load_pipeline(project / "pipeline.py")
    assert sys.path == path_before
    added = set(sys.modules) - modules_before
    assert "helpers" not in sys.modules
    assert not [m for m in added if m.startswith("_assay_pipeline_")]
    assert not [
        m for m in added if str(project) in str(getattr(sys.modules[m], "__file__", "") or "")
    ]


def test_loading_writes_no_bytecode_into_the_folder(project: Path) -> None:
    load_pipeline(project / "pipeline.py")
    assert not (project / "__pycache__").exists()


def test_two_versions_of_one_module_and_its_helpers_load_side_by_side(
    tmp_path: Path, values: Path
) -> None:
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    for root, factor in ((v1, 10), (v2, 100)):
        write(root / "pipeline.py", PIPELINE)
        write(root / "helpers.py", f"def scale(x, factor):\n    return x * {factor}\n")
    first = load_pipeline(v1 / "pipeline.py")
    second = load_pipeline(v2 / "pipeline.py")
    assert first.execute(values)["train"] == {"mean": 20.0}
    assert second.execute(values)["train"] == {"mean": 200.0}
    assert first.step("train").func.__module__ != second.step("train").func.__module__


def test_a_helper_imported_earlier_from_elsewhere_is_set_aside_not_reused(
    project: Path, values: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = types.ModuleType("helpers")
    stale.scale = lambda x, factor: -1  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "helpers", stale)
    p = load_pipeline(project / "pipeline.py")
    assert p.execute(values)["train"] == {"mean": 2.0}
    assert sys.modules["helpers"] is stale


def test_a_pipeline_may_use_dataclasses_and_postponed_annotations(tmp_path: Path) -> None:
    entry = write(
        tmp_path / "p" / "pipeline.py",
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "from assay.pipelines.dsl import Pipeline, step\n\n"
        "@dataclass\nclass Split:\n    rows: int\n\n"
        "@step\ndef load(data) -> Split:\n    return Split(3)\n\n"
        "pipeline = Pipeline('dc', [load])\n",
    )
    assert load_pipeline(entry).execute(tmp_path)["load"].rows == 3


def test_helpers_in_subpackages_are_imported_from_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root / "lib" / "__init__.py", "")
    write(root / "lib" / "maths.py", "def double(x):\n    return 2 * x\n")
    write(
        root / "pipeline.py",
        "from assay.pipelines.dsl import Pipeline, step\nfrom lib.maths import double\n\n"
        "@step\ndef load(data):\n    return double(21)\n\npipeline = Pipeline('sub', [load])\n",
    )
    assert load_pipeline(root / "pipeline.py").execute(root)["load"] == 42
    assert "lib" not in sys.modules
    assert "lib.maths" not in sys.modules


def test_helper_module_unchanged_is_still_shared_with_helpers_text(project: Path) -> None:
    # The steps keep the helper module they were imported with, after sys.modules forgets it.
    p = load_pipeline(project / "pipeline.py")
    assert p.step("train").func.__globals__["scale"](3, 2) == 6
    assert HELPERS in (project / "helpers.py").read_text()
