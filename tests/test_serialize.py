"""One JSON shape per entity (`assay.serialize`): every entity survives a trip through
JSON text, computed fields are dumped and ignored when loaded, times carry their zone,
and documents stored by older releases still load."""

from __future__ import annotations

import ast
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from assay.abtests.entities import ABTest, VariantSpec
from assay.auth.entities import Token
from assay.data.entities import (
    CommitResult,
    DataDiff,
    Dataset,
    DataVersion,
    FileChange,
    FileEntry,
    VerifyReport,
)
from assay.data.profiles import ColumnProfile, Histogram, TableProfile
from assay.data.tablediff import RowChange, StatShift, TableDiff
from assay.data.validation import CheckResult, ValidationReport
from assay.lifecycle.entities import Collection, Deleted
from assay.monitoring.entities import (
    Monitor,
    MonitorCheck,
    MonitorConfig,
    OnDrift,
    Retrain,
    Snapshot,
    Thresholds,
    Webhook,
    Window,
)
from assay.pipelines.entities import PipelineInfo, PipelineVersion, StepInfo
from assay.registry.entities import ColumnSpec, Lineage, Model, ModelVersion, OutputSpec, Signature
from assay.runs.entities import Run, StepRun
from assay.serialize import dump, load
from assay.serving.entities import Service, ServiceStatus
from assay.sweeps.entities import Objective, Sweep, Trial

pytestmark = pytest.mark.one_backend

T0 = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
T1 = T0 + timedelta(seconds=90)
SRC = Path(__file__).resolve().parents[1] / "src" / "assay"

SIGNATURE = Signature(
    inputs=(
        ColumnSpec("age", "float", "float64", nullable=True),
        ColumnSpec("city", "str", "object"),
    ),
    output=OutputSpec("int", "int64", (-1,), classes=(0, 1), has_proba=True),
)
STEPS = (StepInfo("load", (), "h1"), StepInfo("train", ("load",), "h2"))
PROFILE = TableProfile(
    rows=3,
    columns=(
        ColumnProfile(
            "age", "float", 1, 1 / 3, 2, min=1.5, max=3.0, mean=2.25, std=1.06,
            quantiles={"0.5": 2.25}, histogram=Histogram((1.5, 2.25, 3.0), (1, 1)),
        ),
        ColumnProfile("city", "text", 0, 0.0, 2, top=(("x", 2), ("y", 1)), odd=(("?", 1),)),
    ),
    delimiter=",", encoding="utf-8", warnings=("a column name given twice",),
)  # fmt: skip
TABLE_DIFF = TableDiff(
    rows_old=3, rows_new=4, rows_added=1, rows_removed=0,
    columns_added=("b",), columns_removed=(), columns_retyped=(("a", "integer", "float"),),
    stat_shifts=(StatShift("a", "mean", 1.0, None),), rows_changed=1, rows_unchanged=2,
    match="key", key="id", changed_columns=(("a", 1),),
    examples=(RowChange("id=2", "a", "1", "2"),), added_rows=("id=4",),
)  # fmt: skip
REPORT = ValidationReport.from_results(
    [
        CheckResult("t.csv", "age", "min", False, 1, "1 row below 0", ({"row": 2, "value": -1},)),
        CheckResult("t.csv", None, "row_count", True, 0, "ok"),
    ]
)
VERSION = DataVersion("churn", 3, "m" * 64, "hi", "ann", T0, 2, 4, 1024, "passed", ("gold",))
RUN = Run(
    id="r" * 32, name="brave-otter", experiment="churn", status="succeeded", created_at=T0,
    pipeline="churn-train", pipeline_version=2, dataset="churn", data_version=3,
    params_dataset="params/churn-train", params_version=3, started_at=T0, ended_at=T1,
    model="churn", model_flavor="sklearn", code="c" * 64, resources={"cpu_s": 1.5},
    environment={"python": "3.11"}, extra={"note": [1, 2]}, params={"C": 1.0, "k": "rbf"},
    metrics={"f1": 0.9, "gone": None},
    steps=(StepRun(0, "load", "succeeded", True, 0.1, "o1", "parquet"),
           StepRun(1, "train", "succeeded", False, None, None)),
)  # fmt: skip
SERVICE = Service(
    "churn-api", "churn", 4, "127.0.0.1", 8123, 2, "running", "running", 42, T0, T0, T1,
    {"timeout_s": 30}, None,
)  # fmt: skip
ABTEST = ABTest(
    name="t", variants=(VariantSpec("A", "churn", 3, "a-svc"), VariantSpec("B", "churn", 4)),
    strategy="weighted:50,50", key="user", status="running", state="stopped",
    host="127.0.0.1", port=9000, workers=1, pid=None, alias="champion", auto_promote=False,
    plan={"per_variant": 100}, winner=None, verdict=None, created_at=T0, updated_at=T1,
    extra={"shadow": []},
)  # fmt: skip
TRIAL = Trial(
    0, "complete", "r" * 32, {"C": 1.0}, {"C": "{}"}, [0.9], {1: 0.5, 2: 0.7}, None, T0, T1
)

ENTITIES: list[Any] = [
    RUN,
    StepRun(0, "s", "running", False, None, None),
    Run(id="x", name="n", experiment="e", status="queued", created_at=T0),
    Dataset("churn", T0, 3, 3, T1),
    VERSION,
    FileEntry("a.csv", "h" * 64, 10),
    CommitResult(VERSION, True, 3, 1, 100),
    DataDiff(
        "churn@1", "churn@2", (FileEntry("a", "h", 1),), (), (FileChange("b", "h1", "h2", 1, 2),)
    ),
    VerifyReport(10, ("h1",), (("h2", "churn@1:a.csv"),)),
    PROFILE,
    TableProfile.unreadable("it holds NUL bytes"),
    TABLE_DIFF,
    REPORT,
    PipelineVersion("churn-train", 2, "m", "pipeline.py", STEPS, "train", None, "msg", "ann", T0),
    PipelineInfo("churn-train", 2, 2, None),
    SIGNATURE,
    Signature(inputs=(ColumnSpec("x", "int", "int64"),), output=None, tabular=False),
    Lineage(run_id="r", data="churn@3", params="params/churn-train@3", code="c"),
    ModelVersion(
        "churn",
        4,
        "b" * 64,
        "sklearn",
        SIGNATURE,
        {"f1": 0.9},
        {"sklearn": "1.5"},
        Lineage(source="model.pkl"),
        ("champion",),
        "d",
        "ann",
        T0,
        {"k": 1},
    ),
    Model("churn", 4, 4, {"champion": 4}, T0),
    SERVICE,
    ServiceStatus(
        **{f.name: getattr(SERVICE, f.name) for f in dataclasses.fields(SERVICE)},
        uptime_s=12.5,
        traffic={"requests": 3, "errors": 0, "p50_ms": 1.0, "p99_ms": None, "by_version": {}},
        workers_now=[],
        replicas=[],
    ),
    ABTEST,
    Objective("f1", "maximize"),
    TRIAL,
    Sweep(
        1,
        "s",
        "churn-train",
        2,
        "churn",
        3,
        {"k": 1},
        {"C": {"low": 0.1}},
        (Objective("f1", "maximize"), Objective("cost", "minimize")),
        "tpe",
        "median",
        "f1",
        7,
        20,
        2,
        "local",
        1.5,
        None,
        "churn",
        "running",
        None,
        ("r",),
        ("churn@4",),
        T0,
        None,
        pid=12,
        host="h",
        trial_list=(TRIAL,),
    ),
    Token(1, "ci", "write", "asy_ab", T0, "ann", None, T1),
    Window(requests=500),
    Window(seconds=3600.0, end=T1),
    MonitorConfig(
        features={"age": Thresholds(ignore=True)},
        webhook=Webhook("http://hooks.example/x"),
        on_drift=OnDrift("live-churn"),
    ),
    Monitor("m", "service churn-api", "alpha: 0.01\n", "ok", T0, T1, T0, T1),
    MonitorCheck(1, "m", T0, "drift", "churn@4", "churn@3", 1.0, 2.0, 500, {"features": {}}),
    Snapshot("live", 2, "service churn-api", ("churn@4",), 1.0, 2.0, 500, 20, "t.csv", T0),
    Retrain(
        "r",
        "churn@4",
        "live@2",
        "churn@3 + live@2",
        False,
        "registered",
        "churn@5",
        None,
        None,
        None,
        T0,
        T1,
    ),
    Deleted(("run r",), ("model churn@4",)),
    Collection(False, 10, 8, 1, 1, 100, 2, 0, 1, ("h1",)),
]


def _ids(x: Any) -> str:
    return type(x).__name__


@pytest.mark.parametrize("entity", ENTITIES, ids=_ids)
def test_every_entity_comes_back_from_its_json_text_equal(entity: Any) -> None:
    text = json.dumps(dump(entity), allow_nan=False)
    assert load(type(entity), json.loads(text)) == entity


def test_every_entity_class_with_a_dump_is_covered() -> None:
    """A new entity in an `entities.py` joins `ENTITIES` (alone or inside another), so
    its round trip is tested."""
    covered: set[str] = set()

    def walk(value: Any) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            covered.add(type(value).__name__)
            for f in dataclasses.fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(ENTITIES)
    declared = set()
    for path in SRC.glob("*/entities.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "id", "") == "dataclass"
                for d in node.decorator_list
            ):
                declared.add(node.name)
    # Values that never travel alone: parsed from user input, or only inside a config.
    declared -= {"Ref", "Candidate", "MetricPoint"}
    assert declared - covered == set()


def test_no_hand_written_json_methods_or_doc_types_remain() -> None:
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name in ("to_dict", "from_dict"):
                found.append(f"{path.relative_to(SRC)}: def {node.name}")
            if isinstance(node, ast.ClassDef) and node.name.endswith("Doc"):
                found.append(f"{path.relative_to(SRC)}: class {node.name}")
    assert found == []


def test_a_run_has_one_shape_with_its_inputs_by_name_and_number() -> None:
    doc = dump(RUN)
    assert (doc["pipeline"], doc["pipeline_version"]) == ("churn-train", 2)
    assert (doc["dataset"], doc["data_version"]) == ("churn", 3)
    assert (doc["params_dataset"], doc["params_version"]) == ("params/churn-train", 3)
    assert doc["duration_s"] == 90.0
    assert doc["steps"][0] == {
        "position": 0, "name": "load", "status": "succeeded", "cached": True, "seconds": 0.1,
        "output": "o1", "output_format": "parquet",
    }  # fmt: skip


def test_times_are_iso_8601_with_their_zone() -> None:
    doc = dump(RUN)
    assert doc["created_at"] == "2026-05-01T10:00:00.123456Z"
    assert datetime.fromisoformat(doc["ended_at"]) == T1
    assert dump(Window(start=T0))["start"] == "2026-05-01T10:00:00.123456Z"


def test_computed_fields_are_dumped_and_ignored_when_loaded() -> None:
    service = dump(SERVICE)
    assert (service["url"], service["model_ref"]) == ("http://127.0.0.1:8123", "churn@4")
    test = dump(ABTEST)
    assert test["url"] == "http://127.0.0.1:9000/abtests/t"
    assert [v["model_ref"] for v in test["variants"]] == ["churn@3", "churn@4"]
    assert dump(VERSION)["ref"] == "churn@3"
    assert dump(TRIAL)["seconds"] == 90.0
    assert dump(TRIAL)["intermediate"] == {"1": 0.5, "2": 0.7}
    # A client that sends a stale computed field back changes nothing.
    assert load(Service, {**service, "url": "http://elsewhere:1"}) == SERVICE


def test_entities_inside_plain_containers_dump_in_their_own_shape() -> None:
    doc = dump({"run": RUN, "versions": [VERSION], "n": 1, "when": T0})
    assert doc["run"] == dump(RUN)
    assert doc["versions"] == [dump(VERSION)]
    assert (doc["n"], doc["when"]) == (1, "2026-05-01T10:00:00.123456Z")


def test_a_document_that_is_not_the_type_is_refused() -> None:
    with pytest.raises(ValidationError):
        load(Run, {"id": "x"})
    with pytest.raises(ValidationError):
        load(TableProfile, {"rows": 1, "columns": [{"name": "a", "type": "complex"}]})


# ---- documents stored by older releases ------------------------------------------------------


def test_a_signature_stored_before_dtypes_loads_with_its_kinds_as_dtypes() -> None:
    # As assay.json and the model_versions table held it before dtypes were recorded.
    old = {"inputs": [{"name": "age", "kind": "float"}], "output": {"kind": "int", "shape": None}}
    assert load(Signature, old) == Signature(
        inputs=(ColumnSpec("age", "float", "float"),), output=OutputSpec("int", "int")
    )
    assert load(Signature, {"output": {}}) == Signature(inputs=())


def test_a_profile_stored_before_formats_were_numbered_is_of_format_1() -> None:
    stored = dump(PROFILE)
    del stored["format"]
    old = load(TableProfile, stored)
    assert old.format == 1
    assert old.columns == PROFILE.columns


def test_a_lineage_of_any_stored_age_loads() -> None:
    assert load(Lineage, {}) == Lineage()
    assert load(Lineage, {"run_id": "r", "retired_key": 1}) == Lineage(run_id="r")
