"""Tracked runs through the API: open, log metrics, close, search and page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from assay.workspace import Workspace

from .conftest import assert_error, listing


def open_run(api: httpx.Client, experiment: str = "e", **params: object) -> dict[str, object]:
    answer = api.post(f"/api/v1/experiments/{experiment}/runs", json={"params": params})
    assert answer.status_code == 201, answer.text
    run: dict[str, object] = answer.json()
    return run


def test_a_tracked_run_from_open_to_end(api: httpx.Client) -> None:
    run = open_run(api, "notebook", lr=0.1, layers=3, opt="adam")
    assert run["status"] == "running"
    assert run["experiment"] == "notebook"
    assert run["params"] == {"lr": 0.1, "layers": 3, "opt": "adam"}
    rid = run["id"]

    points = [{"key": "loss", "value": 1 / (s + 1), "step": s} for s in range(5)]
    points.append({"key": "acc", "value": 0.9})
    logged = api.post(f"/api/v1/runs/{rid}/metrics", json={"metrics": points})
    assert logged.status_code == 204
    assert logged.content == b""

    series = api.get(f"/api/v1/runs/{rid}/metrics", params={"key": "loss"}).json()
    assert [(p["step"], p["value"]) for p in series] == [(s, 1 / (s + 1)) for s in range(5)]

    ended = api.post(f"/api/v1/runs/{rid}/end", json={})
    assert ended.status_code == 200
    assert ended.json()["status"] == "succeeded"
    assert ended.json()["metrics"] == {"loss": 0.2, "acc": 0.9}
    assert ended.json()["ended_at"] is not None

    shown = api.get(f"/api/v1/runs/{str(rid)[:8]}").json()  # a prefix finds it
    assert shown["id"] == rid
    assert shown["status"] == "succeeded"
    assert_error(api.post(f"/api/v1/runs/{rid}/metrics", json={"metrics": points}), 409)
    assert_error(api.post(f"/api/v1/runs/{rid}/end", json={}), 409)
    assert listing(api, "/api/v1/experiments") == [{"name": "notebook", "runs": 1}]


def test_a_run_ends_failed_with_its_error(api: httpx.Client) -> None:
    rid = open_run(api)["id"]
    error = assert_error(api.post(f"/api/v1/runs/{rid}/end", json={"status": "weird"}), 422)
    assert "body.status" in str(error["message"])
    assert "killed" in str(error["message"])
    ended = api.post(f"/api/v1/runs/{rid}/end", json={"status": "failed", "error": "OOM"})
    assert (ended.json()["status"], ended.json()["error"]) == ("failed", "OOM")
    assert_error(api.get("/api/v1/runs/" + "f" * 32), 404)


def test_search_speaks_the_cli_filter_language(api: httpx.Client) -> None:
    for k, loss in ((1, 2.0), (2, 0.5), (3, 0.25), (4, None)):
        rid = open_run(api, "search", k=k)["id"]
        if loss is not None:
            api.post(
                f"/api/v1/runs/{rid}/metrics", json={"metrics": [{"key": "loss", "value": loss}]}
            )
        api.post(f"/api/v1/runs/{rid}/end", json={})
    open_run(api, "other", k=9)

    def ks(**query: Any) -> list[object]:
        answer = api.get("/api/v1/runs", params=query)
        assert answer.status_code == 200, answer.text
        return [r["params"]["k"] for r in answer.json()["items"]]

    assert ks(filter="metrics.loss < 1", sort="metrics.loss") == [3, 2]
    assert ks(filter="metrics.loss < 1", sort="metrics.loss desc") == [2, 3]
    assert ks(filter="params.k >= 2 and status = 'succeeded'", sort="-params.k") == [4, 3, 2]
    assert ks(filter="metrics.loss is null", experiment="search") == [4]
    assert ks(filter="params.k in (1, 9)", sort="params.k") == [1, 9]
    assert ks(experiment="search", sort="params.k") == [1, 2, 3, 4]
    assert ks(filter="status = 'running'") == [9]

    for bad in ("metrics.loss <", "params.k >> 1", "nonsense = 1", "(params.k = 1"):
        error = assert_error(api.get("/api/v1/runs", params={"filter": bad}), 400)
        assert error["type"] == "InvalidArgumentError"
        assert "filter" in str(error["message"]).lower(), error
    assert_error(api.get("/api/v1/runs", params={"sort": "params.k sideways"}), 400)
    assert_error(api.get("/api/v1/runs", params={"experiment": "nope"}), 404)
    assert_error(api.get("/api/v1/runs", params={"limit": 0}), 422)


def test_pages_cover_every_run_exactly_once(api: httpx.Client) -> None:
    made = {open_run(api, "pages", i=i)["id"] for i in range(7)}
    seen: list[object] = []
    token = None
    pages = 0
    while True:
        query: dict[str, Any] = {"limit": 3, "experiment": "pages"}
        if token:
            query["page_token"] = token
        page = api.get("/api/v1/runs", params=query).json()
        pages += 1
        seen += [r["id"] for r in page["items"]]
        token = page.get("next_page_token")
        if not token:
            break
        assert len(page["items"]) == 3
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == made
    # Sorted pages too.
    by_i = []
    token = None
    while True:
        query = {"limit": 3, "sort": "params.i desc", **({"page_token": token} if token else {})}
        page = api.get("/api/v1/runs", params=query).json()
        by_i += [r["params"]["i"] for r in page["items"]]
        if not (token := page.get("next_page_token")):
            break
    assert by_i == list(range(6, -1, -1))

    for bad in ("zzz", "!!!", "-1", "eyJvIjogMX0", "1" * 16):  # not a token this server gives
        error = assert_error(api.get("/api/v1/runs", params={"page_token": bad}), 422)
        assert "page_token" in str(error["message"])


def test_a_run_cannot_name_a_file_on_the_servers_disk(
    ws: Workspace, api: httpx.Client, tmp_path: Path
) -> None:
    """`assay run PATH` registers a local file first; through the API, that file would be
    the server's: refused, and nothing is registered."""
    secret = tmp_path / "secret"
    secret.write_text("import assay\n")
    for ref in ("pipeline.py", str(secret)):
        body = {"pipeline": ref, "data": "d@1"}
        # The document says so (a NAME[@VERSION] pattern): refused before the route runs.
        error = assert_error(api.post("/api/v1/runs", json=body), 422)
        assert "never a path" in str(error["message"]), ref
    error = assert_error(api.post("/api/v1/runs", json={"pipeline": "../x@1", "data": "d"}), 422)
    assert "never a path" in str(error["message"])
    assert ws.pipelines.pipelines() == []
