"""Every answer, the API's and the dashboard's, errors included, carries a strict
Content-Security-Policy (scripts only from this server), refuses framing, and forbids
content sniffing; the dashboard's templates hold nothing the policy would block."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from assay.workspace import Workspace

from .conftest import TestClient

pytestmark = pytest.mark.one_backend  # HTTP behaviour, not the database

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "assay" / "ui" / "templates"


def assert_secured(answer: httpx.Response) -> None:
    what = f"{answer.request.method} {answer.request.url.path} -> {answer.status_code}"
    policy = answer.headers.get("content-security-policy", "")
    directives = {}
    for directive in filter(None, (d.strip() for d in policy.split(";"))):
        name, _, value = directive.partition(" ")
        directives[name] = value
    assert directives.get("script-src") == "'self'", what
    assert directives.get("default-src") == "'self'", what
    assert directives.get("frame-ancestors") == "'none'", what
    assert directives.get("object-src") == "'none'", what
    assert "unsafe" not in policy, what
    assert answer.headers.get("x-frame-options") == "DENY", what
    assert answer.headers.get("x-content-type-options") == "nosniff", what
    assert answer.headers.get("referrer-policy") == "same-origin", what


def test_every_kind_of_answer_carries_the_headers(
    ws: Workspace, local: Callable[..., TestClient], secrets: dict[str, str]
) -> None:
    api = local("admin")
    anonymous = local(None)
    html = {"Accept": "text/html"}
    answers = [
        anonymous.get("/api/v1/health"),  # 200, no token needed
        anonymous.get("/api/v1/runs"),  # 401
        local("read").post("/api/v1/tokens", json={"name": "x", "scope": "read"}),  # 403
        api.get("/api/v1/runs"),  # 200
        api.get("/api/v1/nope"),  # 404
        api.get("/api/v1/runs/nope"),  # an AssayError
        api.post("/api/v1/tokens", json={"name": "x" * 100_000, "scope": "read"}),  # 413
        api.post("/api/v1/tokens", content=b"{}", headers={"Content-Type": "text/plain"}),  # 415
        api.post("/api/v1/tokens", json={"scope": "read"}),  # 422
        api.get("/api/v1/openapi.json"),
        api.get("/api/v1/docs"),
        anonymous.get("/login"),
        anonymous.get("/", follow_redirects=False),  # 303 to sign in
        anonymous.get("/static/app.js"),
        anonymous.get("/static/nope.js"),
    ]
    signed_in = local(None)
    signed_in.cookies.set("assay_token", secrets["read"])
    answers += [
        signed_in.get("/runs", headers=html),
        signed_in.get("/models/nope", headers=html),  # an error page
        signed_in.post("/abtests/ab/conclude", data={"winner": "a"}, headers=html),  # 403
    ]
    statuses = {a.status_code for a in answers}
    assert statuses >= {200, 303, 401, 403, 404, 413, 415, 422}, statuses
    for answer in answers:
        assert_secured(answer)


def test_an_unexpected_failure_carries_them_too(
    local: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = local("admin")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(type(api.app.state.workspace.runs), "search", broken)  # type: ignore[attr-defined]
    answer = api.get("/api/v1/runs")
    assert answer.status_code == 500
    assert "boom" not in answer.text
    assert_secured(answer)


def test_the_templates_hold_no_inline_script_style_or_handler() -> None:
    """What a strict policy would block: the pages would break in a browser (the browser
    tests see the same as console errors)."""
    found = []
    for template in sorted(TEMPLATES.glob("*.html")):
        text = template.read_text()
        for pattern in (
            r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")",  # inline code
            r"\son[a-z]+\s*=",  # onclick=, onsubmit=, …
            r"\sstyle\s*=",  # style attributes
            r"<style",
            r"javascript:",
        ):
            found += [f"{template.name}: {m.group(0)!r}" for m in re.finditer(pattern, text)]
    assert found == []
