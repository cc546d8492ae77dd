"""A model of a framework that is not installed: one clear line, a 4xx, never a traceback.

The framework is made missing for real: `sys.modules[NAME] = None` makes Python refuse
to import it, in a subprocess (by a sitecustomize module) or in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from assay.store.objects import hash_file
from assay.workspace import Workspace

from . import fake_models

with warnings.catch_warnings():
    # Starlette 1.10 prefers httpx2 for its test client; plain httpx works the same.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.one_backend


def model_file(framework: str, folder: Path) -> Path:
    if framework == "xgboost":
        model, _ = fake_models.xgb_classifier()
        path = folder / "model.json"
        model.save_model(path)
    else:
        model, _ = fake_models.lgbm_classifier()
        path = folder / "model.txt"
        model.booster_.save_model(str(path))
    return path


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_the_cli_names_the_missing_package_and_how_to_install_it(
    tmp_path: Path, env: dict[str, str], framework: str
) -> None:
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(f"import sys\nsys.modules[{framework!r}] = None\n")
    path = model_file(framework, tmp_path)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    environ.update(env, PYTHONPATH=str(blocker))

    def assay(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "assay", *args],
            cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    assert assay("init").returncode == 0
    done = assay("models", "register", path.name, "--name", "m")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert framework in lines[0]
    assert "pip install 'assay[boosting]'" in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_the_api_answers_400_naming_the_missing_package(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, framework: str
) -> None:
    from assay.server.app import create_app

    _, secret = ws.tokens.create("w", "write")
    api = TestClient(create_app(ws), headers={"Authorization": f"Bearer {secret}"})
    path = model_file(framework, tmp_path)
    upload = api.post("/api/v1/uploads").json()["id"]
    sent = api.put(
        f"/api/v1/uploads/{upload}",
        params={"path": path.name},
        content=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert sent.status_code == 200, sent.text
    monkeypatch.setitem(sys.modules, framework, None)  # the server cannot import it now
    answer = api.post(
        "/api/v1/models/m/versions",
        json={"upload": upload, "filename": path.name, "hash": hash_file(path)},
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert framework in error["message"]
    assert "pip install 'assay[boosting]'" in error["message"]
    assert error["details"]["package"] == framework
