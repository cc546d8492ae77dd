"""Step code hashes: a step's own lines plus the module around it, minus the other steps."""

from __future__ import annotations

from pathlib import Path

from assay.pipelines.dsl import load_pipeline, step_code_hashes

from .samples import HELPERS, PIPELINE, write


def hashes_of(root: Path, source: str, helpers: str = HELPERS) -> dict[str, str]:
    entry = write(root / "pipeline.py", source)
    helper = write(root / "helpers.py", helpers)
    pipeline = load_pipeline(entry)
    return step_code_hashes(source, pipeline, str(entry), others={str(helper): helpers})


def changed(a: dict[str, str], b: dict[str, str]) -> set[str]:
    return {name for name in a if a[name] != b[name]}


def test_every_step_gets_a_distinct_blake3_hash(tmp_path: Path) -> None:
    hashes = hashes_of(tmp_path / "a", PIPELINE)
    assert list(hashes) == ["load", "clean", "train", "evaluate"]
    assert all(len(h) == 64 for h in hashes.values())
    assert len(set(hashes.values())) == 4


def test_the_same_source_hashes_the_same_wherever_it_lies(tmp_path: Path) -> None:
    assert hashes_of(tmp_path / "a", PIPELINE) == hashes_of(tmp_path / "elsewhere" / "b", PIPELINE)


def test_editing_one_step_body_changes_only_that_step(tmp_path: Path) -> None:
    before = hashes_of(tmp_path / "a", PIPELINE)
    edited = PIPELINE.replace("if x >= 0]", "if x > 0]")
    assert changed(before, hashes_of(tmp_path / "b", edited)) == {"clean"}


def test_editing_a_steps_decorator_changes_only_that_step(tmp_path: Path) -> None:
    before = hashes_of(tmp_path / "a", PIPELINE)
    edited = PIPELINE.replace("@step\ndef clean(load):", '@step(name="clean")\ndef clean(load):')
    assert changed(before, hashes_of(tmp_path / "b", edited)) == {"clean"}


def test_moving_a_step_down_the_file_changes_no_hash(tmp_path: Path) -> None:
    before = hashes_of(tmp_path / "a", PIPELINE)
    clean = "@step\ndef clean(load):\n    return [x for x in load if x >= 0]\n"
    moved = PIPELINE.replace(clean, "").replace(
        "\npipeline = Pipeline", "\n" + clean + "\n\npipeline = Pipeline"
    )
    assert moved != PIPELINE
    assert hashes_of(tmp_path / "b", moved) == before


def test_editing_a_module_level_helper_changes_every_step(tmp_path: Path) -> None:
    source = PIPELINE.replace(
        "THRESHOLD = 0.5\n", "THRESHOLD = 0.5\n\n\ndef twice(x):\n    return 2 * x\n"
    )
    before = hashes_of(tmp_path / "a", source)
    after = hashes_of(tmp_path / "b", source.replace("return 2 * x", "return 3 * x"))
    assert changed(before, after) == set(before)


def test_editing_a_constant_or_an_import_changes_every_step(tmp_path: Path) -> None:
    before = hashes_of(tmp_path / "a", PIPELINE)
    constant = hashes_of(tmp_path / "b", PIPELINE.replace("0.5", "0.6"))
    imports = hashes_of(tmp_path / "c", "import math\n" + PIPELINE)
    assert changed(before, constant) == set(before)
    assert changed(before, imports) == set(before)


def test_editing_a_helper_module_of_the_snapshot_changes_every_step(tmp_path: Path) -> None:
    before = hashes_of(tmp_path / "a", PIPELINE)
    after = hashes_of(tmp_path / "b", PIPELINE, HELPERS.replace("x * factor", "x * factor + 0"))
    assert changed(before, after) == set(before)


def test_a_step_defined_in_another_snapshot_file_is_hashed_from_that_file(
    tmp_path: Path,
) -> None:
    steps = (
        "from assay.pipelines.dsl import step\n\n"
        "@step\ndef load(data):\n    return 1\n\n"
        "@step\ndef train(load):\n    return load + 1\n"
    )
    entry = "from assay.pipelines.dsl import Pipeline\nfrom helpers import load, train\n\n"
    entry += "pipeline = Pipeline('split', [load, train])\n"
    before = hashes_of(tmp_path / "a", entry, steps)
    after = hashes_of(tmp_path / "b", entry, steps.replace("load + 1", "load + 2"))
    assert changed(before, after) == {"train"}


def test_a_step_from_outside_the_snapshot_falls_back_to_its_own_source(tmp_path: Path) -> None:
    outside = write(
        tmp_path / "lib" / "shared_steps.py",
        "from assay.pipelines.dsl import step\n\n@step\ndef load(data):\n    return 7\n",
    )
    entry = write(
        tmp_path / "p" / "pipeline.py",
        f"import sys\nsys.path.insert(0, {str(outside.parent)!r})\n"
        "from shared_steps import load\nsys.path.pop(0)\n"
        "from assay.pipelines.dsl import Pipeline\npipeline = Pipeline('ext', [load])\n",
    )
    pipeline = load_pipeline(entry)
    first = step_code_hashes(entry.read_text(), pipeline, str(entry))
    outside.write_text(outside.read_text().replace("return 7", "return 8"))
    import linecache

    linecache.checkcache(str(outside))
    second = step_code_hashes(entry.read_text(), pipeline, str(entry))
    assert first["load"] != second["load"]
