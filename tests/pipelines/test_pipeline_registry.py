"""Registering pipeline versions, reading them back, diffing and materializing them.

Every test runs on SQLite and on PostgreSQL (the `ws` fixture).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assay.errors import InvalidArgumentError, NotFoundError
from assay.pipelines.dsl import load_pipeline
from assay.pipelines.service import MAX_FILES
from assay.store.packs import PACKABLE
from assay.workspace import Workspace

from .samples import PIPELINE, write


def test_first_registration_is_version_one_with_its_steps(ws: Workspace, project: Path) -> None:
    v, created = ws.pipelines.register(project / "pipeline.py", message="first cut")
    assert created
    assert (v.pipeline, v.number, v.ref, v.entry) == ("cancer", 1, "cancer@1", "pipeline.py")
    assert (v.message, v.author) == ("first cut", "tester")
    assert [(s.name, s.inputs) for s in v.steps] == [
        ("load", ("data",)),
        ("clean", ("load",)),
        ("train", ("clean", "params")),
        ("evaluate", ("train", "clean")),
    ]
    assert (v.model_step, v.metrics_step) == ("train", "evaluate")
    assert all(len(s.code_hash) == 64 for s in v.steps)
    assert ws.pipelines.resolve("cancer@1") == v


def test_registering_unchanged_source_makes_no_version(ws: Workspace, project: Path) -> None:
    first, _ = ws.pipelines.register(project / "pipeline.py")
    again, created = ws.pipelines.register(project, message="again")
    assert not created
    assert again == first
    assert [v.number for v in ws.pipelines.log("cancer")] == [1]


def test_an_edit_makes_version_two_and_log_is_newest_first(ws: Workspace, project: Path) -> None:
    v1, _ = ws.pipelines.register(project / "pipeline.py")
    write(project / "pipeline.py", PIPELINE.replace("x >= 0", "x > 0"))
    v2, created = ws.pipelines.register(project / "pipeline.py", message="stricter")
    assert created
    assert v2.number == 2
    assert [v.number for v in ws.pipelines.log("cancer")] == [2, 1]
    assert {s.name for s in v2.steps if s.code_hash != v1.step(s.name).code_hash} == {"clean"}  # type: ignore[union-attr]


def test_editing_a_helper_file_is_a_new_version_changing_every_step_hash(
    ws: Workspace, project: Path
) -> None:
    v1, _ = ws.pipelines.register(project)
    (project / "helpers.py").write_text("def scale(x, factor):\n    return x * factor * 1\n")
    v2, created = ws.pipelines.register(project)
    assert created
    assert all(a.code_hash != b.code_hash for a, b in zip(v1.steps, v2.steps, strict=True))


def test_a_pipeline_can_be_registered_under_another_name(ws: Workspace, project: Path) -> None:
    ws.pipelines.register(project)
    v, created = ws.pipelines.register(project, name="cancer-prod")
    assert created
    assert v.ref == "cancer-prod@1"
    assert [(p.name, p.versions, p.latest) for p in ws.pipelines.pipelines()] == [
        ("cancer", 1, 1),
        ("cancer-prod", 1, 1),
    ]


def test_name_picks_one_of_several_pipelines(ws: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "two"
    write(
        root / "pipeline.py",
        "from assay.pipelines.dsl import Pipeline, step\n\n"
        "@step\ndef load(data):\n    return 1\n\n"
        "a = Pipeline('alpha', [load])\nb = Pipeline('beta', [load])\n",
    )
    with pytest.raises(InvalidArgumentError, match="several pipelines: alpha, beta"):
        ws.pipelines.register(root)
    v, _ = ws.pipelines.register(root, name="beta")
    assert v.ref == "beta@1"
    assert load_pipeline(ws.pipelines.materialize(v, tmp_path / "out"), v.pipeline).name == "beta"


def test_the_snapshot_is_source_files_only(ws: Workspace, project: Path) -> None:
    write(project / "lib" / "__init__.py", "")
    write(project / "lib" / "maths.py", "ONE = 1\n")
    write(project / "requirements-dev.txt", "pytest\n")
    write(project / "notes.md", "not source")
    write(project / "data.csv", "a,b\n1,2\n")
    write(project / "__pycache__" / "helpers.cpython-311.pyc", "junk")
    write(project / ".venv" / "lib" / "site.py", "junk")
    write(project / "env" / "pyvenv.cfg", "home = /usr\n")
    write(project / "env" / "lib" / "thing.py", "junk")
    write(project / "node_modules" / "x.py", "junk")
    write(project / ".hidden" / "secret.py", "junk")
    write(project / ".#pipeline.py", "an editor's lock file")
    v, _ = ws.pipelines.register(project)
    assert [f.path for f in ws.pipelines.files(v)] == [
        "helpers.py",
        "lib/__init__.py",
        "lib/maths.py",
        "pipeline.py",
        "requirements-dev.txt",
        "requirements.txt",
    ]


def test_what_runs_is_the_registered_snapshot_not_the_working_copy(
    ws: Workspace, project: Path, tmp_path: Path, values: Path
) -> None:
    v1, _ = ws.pipelines.register(project)
    write(project / "pipeline.py", PIPELINE.replace("x >= 0", "x > 100"))
    write(project / "helpers.py", "def scale(x, factor):\n    return -1\n")
    entry = ws.pipelines.materialize(v1, tmp_path / "run")
    assert entry == tmp_path / "run" / "pipeline.py"
    assert entry.read_text() == PIPELINE
    for f in ws.pipelines.files(v1):
        assert (tmp_path / "run" / f.path).stat().st_size == f.size
    pipeline = load_pipeline(entry, v1.pipeline)
    assert pipeline.execute(values, {"factor": 2})["train"] == {"mean": 4.0}


def test_source_reads_the_entry_file_or_any_other(ws: Workspace, project: Path) -> None:
    v, _ = ws.pipelines.register(project)
    assert ws.pipelines.source(v) == PIPELINE
    assert ws.pipelines.source(v, "requirements.txt") == "numpy\n"
    with pytest.raises(NotFoundError, match=r"cancer@1 has no file 'nope\.py'"):
        ws.pipelines.source(v, "nope.py")


def test_small_files_are_packed_and_large_ones_stored_loose(
    ws: Workspace, project: Path, tmp_path: Path
) -> None:
    big = "TABLE = [\n" + "    1234567890,\n" * (PACKABLE // 14 + 10) + "]\n"
    write(project / "table.py", big)
    v, _ = ws.pipelines.register(project)
    files = {f.path: f for f in ws.pipelines.files(v)}
    assert files["table.py"].size >= PACKABLE
    located = ws.pipelines.blobs.locate(f.hash for f in files.values())
    assert set(located) == {f.hash for p, f in files.items() if p != "table.py"}
    assert ws.store.has(files["table.py"].hash)
    out = ws.pipelines.materialize(v, tmp_path / "out").parent
    assert (out / "table.py").read_text() == big


def test_diff_is_empty_for_identical_source(ws: Workspace, project: Path) -> None:
    ws.pipelines.register(project)
    ws.pipelines.register(project, name="copy")
    assert ws.pipelines.diff("cancer@1", "copy@1") == ""
    assert ws.pipelines.diff("cancer@1", "cancer@latest") == ""


def test_diff_is_unified_over_every_file(ws: Workspace, project: Path) -> None:
    ws.pipelines.register(project)
    write(project / "pipeline.py", PIPELINE.replace("x >= 0", "x > 0"))
    write(project / "extra.py", "X = 1")
    (project / "requirements.txt").unlink()
    ws.pipelines.register(project)
    text = ws.pipelines.diff("cancer@1", "cancer@2")
    assert "--- /dev/null\n+++ b/cancer@2/extra.py\n" in text
    assert "+X = 1\n\\ No newline at end of file\n" in text
    assert "--- a/cancer@1/pipeline.py\n+++ b/cancer@2/pipeline.py\n" in text
    assert "-    return [x for x in load if x >= 0]\n+    return [x for x in load if x > 0]\n" in (
        text
    )
    assert "--- a/cancer@1/requirements.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-numpy\n" in text
    assert "helpers.py" not in text


def test_resolve_takes_a_number_latest_or_a_bare_name(ws: Workspace, project: Path) -> None:
    ws.pipelines.register(project)
    write(project / "pipeline.py", PIPELINE + "\n# v2\n")
    ws.pipelines.register(project)
    assert ws.pipelines.resolve("cancer").number == 2
    assert ws.pipelines.resolve("cancer@latest").number == 2
    assert ws.pipelines.resolve("cancer@1").number == 1


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("nope@1", NotFoundError, r"No pipeline named 'nope'\. List pipelines with"),
        ("nope", NotFoundError, r"No pipeline named 'nope'"),
        ("cancer@9", NotFoundError, r"Pipeline 'cancer' has no version 9\. See its versions"),
        ("cancer@best", InvalidArgumentError, r"'cancer@best' is not valid: write NAME@VERSION"),
        ("cancer@", InvalidArgumentError, r"'cancer@' is not valid"),
        ("bad name@1", InvalidArgumentError, r"Pipeline name 'bad name' is not valid"),
    ],
)
def test_bad_references_say_what_is_wrong(
    ws: Workspace, project: Path, ref: str, error: type[Exception], message: str
) -> None:
    ws.pipelines.register(project)
    with pytest.raises(error, match=message):
        ws.pipelines.resolve(ref)


def test_log_of_an_unknown_pipeline_is_not_found(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="No pipeline named 'nope'"):
        ws.pipelines.log("nope")
    assert ws.pipelines.pipelines() == []


@pytest.mark.parametrize(
    ("files", "target", "error", "message"),
    [
        ({}, "missing", NotFoundError, "does not exist"),
        ({"other.py": "X = 1\n"}, ".", InvalidArgumentError, r"has no pipeline\.py"),
        ({"notes.txt": "x"}, "notes.txt", InvalidArgumentError, "is not a Python file"),
        ({"pipeline.py": "X = 1\n"}, ".", InvalidArgumentError, "defines no assay Pipeline"),
        (
            {"pipeline.py": "import helpers_missing\n"},
            "pipeline.py",
            InvalidArgumentError,
            r"Cannot import pipeline\.py: ModuleNotFoundError",
        ),
    ],
)
def test_bad_registrations_are_refused_and_store_nothing(
    ws: Workspace,
    tmp_path: Path,
    files: dict[str, str],
    target: str,
    error: type[Exception],
    message: str,
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    for rel, text in files.items():
        write(root / rel, text)
    with pytest.raises(error, match=message):
        ws.pipelines.register(root / target)
    assert ws.pipelines.pipelines() == []


def test_a_bad_name_is_refused(ws: Workspace, project: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"Pipeline name '\.\./x' is not valid"):
        ws.pipelines.register(project, name="../x")


def test_a_huge_folder_is_refused(ws: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "home"
    write(root / "pipeline.py", PIPELINE)
    for i in range(MAX_FILES + 1):
        write(root / "junk" / f"m{i}.py", "")
    with pytest.raises(InvalidArgumentError, match="folder of its own"):
        ws.pipelines.register(root)


def test_concurrent_registrations_take_consecutive_numbers(ws: Workspace, project: Path) -> None:
    roots = []
    for i in range(4):
        root = project.parent / f"copy{i}"
        write(root / "pipeline.py", PIPELINE + f"\n# variant {i}\n")
        write(root / "helpers.py", (project / "helpers.py").read_text())
        roots.append(root)
    errors: list[BaseException] = []

    def register(root: Path) -> None:
        try:
            ws.pipelines.register(root)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(r,)) for r in roots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(v.number for v in ws.pipelines.log("cancer")) == [1, 2, 3, 4]


SKLEARN_PIPELINE = """\
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from assay.pipelines.dsl import Pipeline, step


@step
def load(data):
    rows = np.loadtxt(data / "points.csv", delimiter=",")
    return rows[:, :-1], rows[:, -1]


@step
def train(load, params):
    x, y = load
    return LogisticRegression(C=params.get("C", 1.0)).fit(x, y)


@step
def evaluate(train, load):
    x, y = load
    return {"f1": float(f1_score(y, train.predict(x)))}


pipeline = Pipeline("sk", [load, train, evaluate])
"""


def test_a_pipeline_whose_steps_import_sklearn_registers_and_runs(
    ws: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "sk"
    write(root / "pipeline.py", SKLEARN_PIPELINE)
    write(root / "requirements.txt", "scikit-learn\n")
    v, created = ws.pipelines.register(root)
    assert created
    assert (v.model_step, v.metrics_step) == ("train", "evaluate")
    data = write(tmp_path / "d" / "points.csv", "0,0,0\n0,1,0\n1,0,1\n1,1,1\n2,2,1\n-1,0,0\n")
    pipeline = load_pipeline(ws.pipelines.materialize(v, tmp_path / "run"), v.pipeline)
    out = pipeline.execute(data.parent, {"C": 10.0})
    assert out["evaluate"] == {"f1": 1.0}
