"""Deleting and collecting through the server: admin tokens only; the SDK answers as the
service does."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assay.workspace import Workspace

from .conftest import assert_error


@pytest.mark.one_backend
def test_deletes_and_gc_need_an_admin_token_and_say_what_they_did(
    ws: Workspace, tmp_path: Path, local: Callable[..., TestClient]
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.bin").write_bytes(os.urandom(300_000))
    ws.data.commit("raw", tmp_path / "d")
    run = ws.runs.begin("e", data="raw@1")
    ws.runs.finish_here(run.id, "succeeded", None, 0.1, 0.1)

    writer, admin = local("write"), local("admin")
    assert_error(writer.delete("/api/v1/datasets/raw/versions/1"), 403)
    assert_error(writer.post("/api/v1/gc", json={}), 403)
    assert_error(writer.post("/api/v1/runs/delete", json={"runs": [run.id]}), 403)
    refused = assert_error(admin.delete("/api/v1/datasets/raw/versions/1"), 409)
    assert f"run {run.id[:8]}" in refused["message"]
    assert refused["details"]["depends"] == [f"run {run.id[:8]}"]
    forced = admin.delete("/api/v1/datasets/raw/versions/1", params={"force": "true"})
    assert forced.status_code == 200, forced.text
    assert forced.json() == {"what": ["raw@1"], "broke": [f"run {run.id[:8]}"]}
    assert_error(admin.get("/api/v1/versions/raw@1"), 404)

    archived = writer.post("/api/v1/runs/archive", json={"runs": [run.id[:8]]})
    assert archived.json() == {"runs": [run.id], "archived": True}
    assert writer.get("/api/v1/runs").json()["items"] == []
    listed = writer.get("/api/v1/runs", params={"archived": "true"}).json()["items"]
    assert [r["id"] for r in listed] == [run.id]

    dry = admin.post("/api/v1/gc", json={"dry_run": True, "grace_s": 0}).json()
    assert dry["dry_run"]
    assert dry["removed"] == 2
    assert dry["removed_bytes"] > 300_000
    left = set(ws.store.iter_digests())
    done = admin.post("/api/v1/gc", json={"grace_s": 0}).json()
    assert done["removed"] == 2
    assert len(set(ws.store.iter_digests())) == len(left) - 2
    gone = admin.post("/api/v1/runs/delete", json={"runs": [run.id]}).json()
    assert gone == {"what": [run.id], "broke": []}
