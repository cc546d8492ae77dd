"""What one caller stores cannot break a read for another: params, sweep spaces and other
free-form JSON are bounded where they come in (a 4xx naming the limit, nothing stored),
and what was stored before the bounds held is read back cut to them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select, update

from assay.limits import CUT, MAX_DEPTH
from assay.runs.tables import run_params, runs
from assay.runs.values import param_row
from assay.workspace import Workspace

from .conftest import TestClient, assert_error

Local = Callable[..., TestClient]


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_body(field: str, depth: int) -> bytes:
    """A JSON object whose `field` nests `depth` arrays (written out: json.dumps recurses)."""
    return f'{{"{field}": {{"x": {"[" * depth}1{"]" * depth}}}}}'.encode()


JSON = {"Content-Type": "application/json"}


def test_params_nested_too_deep_are_refused_and_no_run_is_stored(
    ws: Workspace, local: Local
) -> None:
    api = local("write")
    for depth in (MAX_DEPTH, 300, 500):
        answer = api.post("/api/v1/experiments/e/runs", content=deep_body("params", depth),
                          headers=JSON)  # fmt: skip
        error = assert_error(answer, 400)
        assert f"more than {MAX_DEPTH} levels" in error["message"], depth
        assert error["details"]["limit"] == MAX_DEPTH
    huge = {"params": {f"k{i}": "v" * 1000 for i in range(300)}}
    error = assert_error(api.post("/api/v1/experiments/e/runs", json=huge), 400)
    assert "262,144 bytes" in error["message"]
    long_name = {"params": {"a" * 200: {"b" * 100: 1}}}  # `a….b…` is one param, too long
    assert_error(api.post("/api/v1/experiments/e/runs", json=long_name), 400)
    assert ws.runs.search() == []
    listed = api.get("/api/v1/runs")
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    # Within the bounds, the run is stored and reads back as it was sent.
    fine = {"params": {"x": nested(MAX_DEPTH - 2), "model": {"C": 1.0}}}
    made = api.post("/api/v1/experiments/e/runs", json=fine)
    assert made.status_code == 201, made.text
    assert made.json()["params"] == {"x": nested(MAX_DEPTH - 2), "model.C": 1.0}


def test_a_run_stored_with_deep_params_does_not_break_listing(ws: Workspace, local: Local) -> None:
    """Stored before the bounds held (here: written straight to the tables, as a params
    row and in the run's params document, as migration 0016 leaves such a run), a run
    with params 500 deep is listed, shown and searched, cut to the bound."""
    api = local("read")
    run = ws.runs.begin("e", params={"seed": 1})
    with ws.db.session() as conn:
        conn.execute(insert(run_params), [param_row(run.id, "deep", nested(500))])
        doc = json.dumps({"deep": nested(500), "seed": 1})
        conn.execute(update(runs).where(runs.c.id == run.id).values(params_doc=doc))
    for url in ("/api/v1/runs", f"/api/v1/runs/{run.id}", "/api/v1/runs?filter=params.seed=1"):
        answer = api.get(url)
        assert answer.status_code == 200, (url, answer.text)
    [item] = api.get("/api/v1/runs").json()["items"]
    assert item["params"]["seed"] == 1
    assert item["params"]["deep"] == nested(MAX_DEPTH, leaf=CUT)
    assert ws.runs.get(run.id).params["deep"] == nested(MAX_DEPTH, leaf=CUT)
    json.dumps([r.params for r in ws.runs.search()])


def test_a_run_without_a_params_document_is_listed_with_its_params_rows(ws: Workspace) -> None:
    """A run whose `params_doc` is empty (written by a version before 0016 and not
    migrated since) reads its params from the rows; `log_params` then writes the whole
    document, and later ones add to it."""
    run = ws.runs.begin("e", params={"C": 0.5, "kind": "a"})
    with ws.db.session() as conn:
        conn.execute(update(runs).where(runs.c.id == run.id).values(params_doc=None))
    assert ws.runs.get(run.id).params == {"C": 0.5, "kind": "a"}
    assert [r.params for r in ws.runs.search()] == [{"C": 0.5, "kind": "a"}]
    ws.runs.log_params(run.id, {"extra": 1})
    with ws.db.read() as conn:
        doc = conn.scalar(select(runs.c.params_doc).where(runs.c.id == run.id))
    assert doc is not None
    assert json.loads(doc) == {"C": 0.5, "extra": 1, "kind": "a"}
    ws.runs.log_params(run.id, {"more": [1, 2], "C": 9})  # a param logged once stays
    assert ws.runs.get(run.id).params == {"C": 0.5, "extra": 1, "kind": "a", "more": [1, 2]}


def test_a_sweep_with_a_deep_space_is_a_client_error(local: Local) -> None:
    api = local("write")
    base = {"pipeline": "p", "data": "d", "trials": 1, "objectives": ["val_f1:max"]}
    for depth in (40, 5000):
        space = json.dumps({"C": {"choice": [1, 2]}})[:-1] + f', "x": {"[" * depth}1{"]" * depth}}}'
        for name in ("space.json", "space.yaml"):
            answer = api.post("/api/v1/sweeps", json={**base, "space": space, "space_file": name})
            error = assert_error(answer, 400)
            assert "levels" in error["message"] or "deep" in error["message"], (depth, name)
    nested_groups = "a:\n" + "".join("  " * i + "  b:\n" for i in range(60)) + "  " * 61 + "c: 1\n"
    answer = api.post("/api/v1/sweeps", json={**base, "space": nested_groups})
    assert "levels" in assert_error(answer, 400)["message"]
    params = {**base, "space": '{"C": {"choice": [1, 2]}}', "space_file": "s.json"}
    deep_params = {**params, "params": {"x": nested(300)}}
    assert "levels" in assert_error(api.post("/api/v1/sweeps", json=deep_params), 400)["message"]
    assert api.get("/api/v1/sweeps").json()["items"] == []


def test_what_a_tracked_run_adds_later_is_bounded_too(ws: Workspace, local: Local) -> None:
    """Params logged later, candidates recorded inside a run, and its `extra`: each is
    refused past the bounds, and an old deep `extra` is listed cut."""
    api = local("write")
    rid = api.post("/api/v1/experiments/e/runs", json={"params": {"seed": 1}}).json()["id"]
    deep = {"x": nested(300)}
    for method, url, body in (
        ("POST", f"/api/v1/runs/{rid}/params", {"params": deep}),
        ("POST", f"/api/v1/runs/{rid}/children", {"children": [{"params": deep}]}),
        ("PATCH", f"/api/v1/runs/{rid}/extra", {"extra": deep}),
    ):
        error = assert_error(api.request(method, url, json=body), 400)
        assert f"more than {MAX_DEPTH} levels" in error["message"], url
    [run] = api.get("/api/v1/runs").json()["items"]
    assert run["params"] == {"seed": 1}
    assert run["extra"] == {}
    assert api.get(f"/api/v1/runs/{rid}/children").json() == []

    from assay.runs.repository import RunRepository

    with ws.db.session() as conn:  # stored before the bounds held
        RunRepository(conn).update(rid, extra={"deep": nested(500)})
    [run] = api.get("/api/v1/runs").json()["items"]
    assert run["extra"]["deep"] == nested(MAX_DEPTH - 1, leaf=CUT)
