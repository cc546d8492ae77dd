"""Schemathesis, every check, over every operation of the API, against the live server.

What an outside fuzzer runs (`schemathesis run --checks all`): each operation's examples,
its coverage cases (boundaries, missing and malformed parameters, undeclared methods) and
generated cases, positive and negative, each answer checked by every check schemathesis
has: not a server error, documented status, content type, headers and body, schema-valid
requests accepted and schema-invalid ones rejected, undeclared methods answered 405 with
`Allow`, and auth not ignored. The document must say what the server does, exactly.

Writes included, on a throwaway workspace served for this module alone (SQLite: the
contract is HTTP's, not the database's), behind a token the fuzzer cannot name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay import httpclient
from assay.config import Settings
from assay.workspace import Workspace, init_workspace

from .conftest import serve_app

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

# Cases per operation in the generate phase (coverage and examples come on top); enough to
# find a constraint the document does not state, few enough for the test to stay quick.
GENERATED = 5


# Bodies that carry a document in another language, which OpenAPI cannot describe: a
# schema-valid request may still hold YAML that is no search space, or bytes that are no
# batch. For these operations alone the server may refuse schema-valid data, and only
# with 400 (its own parse of that content); 422, a body the document itself refuses,
# still fails. Every other operation accepts what its document allows.
FOREIGN_CONTENT = {
    ("POST", "/api/v1/sweeps"): "`space`: a search space, in YAML or JSON",
    ("POST", "/api/v1/validations/{ref}"): "`checks`: a checks file, in YAML",
    ("POST", "/api/v1/uploads/{upload_id}/batch"): "a JSON line of files, then their bytes",
    ("GET", "/api/v1/runs"): "`filter` and `sort`: expressions in the search language",
}
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' own


def _config() -> str:
    """schemathesis.toml: the exceptions above, and nothing else."""
    lines = []
    for (method, path), why in FOREIGN_CONTENT.items():
        statuses = ", ".join(f'"{s}"' for s in [*ACCEPTED, "400"])
        lines += [
            f"# {why}",
            "[[operations]]",
            f'include-path = "{path}"',
            f'include-method = "{method}"',
            f"checks.positive_data_acceptance.expected-statuses = [{statuses}]",
            "",
        ]
    return "\n".join(lines)


class Fuzzed:
    """The server under test: its URL and the fuzzer's admin token."""

    def __init__(self, ws: Workspace, url: str, secret: str) -> None:
        self.ws = ws
        self.url = url
        self.headers = {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root: Path = tmp_path_factory.mktemp("fuzzed")
    settings, _ = init_workspace(Settings.at(root, {"ASSAY_AUTHOR": "tester"}))
    ws = Workspace(settings)
    # Unguessable: revoking tokens is an operation under test, not this one.
    _, secret = ws.tokens.create(f"fuzzer-{uuid.uuid4().hex}", "admin")
    try:
        with serve_app(ws) as url:
            _seed(url, secret)
            yield Fuzzed(ws, url, secret)
    finally:
        ws.close()


def _seed(url: str, secret: str) -> None:
    """Something for reads to find: a dataset version and a tracked run with a metric."""
    from .test_data_api import upload_dataset

    with httpclient.client(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as api:
        upload_dataset(api, "d", {"a.txt": b"hello"})
        run = api.post("/api/v1/experiments/e/runs", json={"params": {"k": 1}}).json()["id"]
        api.post(f"/api/v1/runs/{run}/metrics", json={"metrics": [{"key": "loss", "value": 0.5}]})


@pytest.mark.one_backend
@pytest.mark.timeout(600)  # about 4,000 requests: a minute alone, several on a busy machine
def test_the_server_keeps_to_its_document(fuzzed: Fuzzed, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config())
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
        "run", f"{fuzzed.url}/api/v1/openapi.json",
        "--checks", "all",
        "--max-examples", str(GENERATED),
        "--generation-deterministic",  # the same cases every run: a find is never flaky
        "--workers", "1",
        "--header", f"Authorization: {fuzzed.headers['Authorization']}",
        "--request-timeout", "120",  # 10,000 children at once, on a loaded machine
        "--no-color", "--output-truncate", "false",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    summary = json.loads(report.read_text()) if report.exists() else {}
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
    # It did test: every operation, and many cases (examples, coverage, generated, stateful).
    operations = summary["operations"]
    assert operations["selected"] == operations["tested"] >= 100, operations
    assert summary["test_cases"]["generated"] >= 1000, summary["test_cases"]
    assert not summary["failures"]
    assert not summary["errors"]
