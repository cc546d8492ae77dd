"""A workspace with something on every page, served by a real server on loopback, and a
real browser (Debian's Chromium, driven by Playwright) to look at it."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assay.config import Settings
from assay.workspace import Workspace, init_workspace

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "ui" / "screenshots"  # git ignores it: look, don't commit
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Things a user typed, each a script that must show as text and never run.
XSS = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=1>"


@dataclass
class Site:
    url: str
    ws: Workspace
    admin: str
    reader: str
    runs: list[Any]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _populate(ws: Workspace, folder: Path) -> list[Any]:
    """Data, a pipeline, runs with curves and hostile names, a registered model, a sweep."""
    from assay.cli.demo import _write_data

    v1, _ = _write_data(folder / "raw")
    ws.data.commit("cancer", v1, f"as received {XSS}")
    (folder / "xss").mkdir()
    (folder / "xss" / f"notes{XSS.replace('/', '_')}.txt").write_text("hello")
    ws.data.commit("notes", folder / "xss", XSS)
    example = ROOT / "src" / "assay" / "examples" / "cancer"
    (folder / "pipeline").mkdir()
    shutil.copyfile(example / "pipeline.py", folder / "pipeline" / "pipeline.py")
    ws.pipelines.register(folder / "pipeline" / "pipeline.py")
    made = []
    for i, (c, name) in enumerate([(1.0, "baseline"), (0.05, f"tiny-C {XSS}"), (10.0, None)]):
        run = ws.runs.prepare(
            "cancer",
            data="cancer@1",
            params={"seed": 7, "model": "logreg", "C": c, "note": XSS},
            name=name,
        )
        made.append(ws.runs.execute(run.id))
        if i == 0:
            ws.registry.register_run(run.id)
    return made


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium)")
    import uvicorn

    from assay.server.app import create_app

    folder = tmp_path_factory.mktemp("ui")
    env = {"ASSAY_AUTHOR": "tester"}
    settings, _ = init_workspace(Settings.at(folder, env))
    ws = Workspace(settings)
    runs = _populate(ws, folder)
    _, admin = ws.tokens.create("admin", "admin")
    _, reader = ws.tokens.create("reader", "read")
    port = _port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(ws), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield Site(f"http://127.0.0.1:{port}", ws, admin, reader, runs)
    server.should_exit = True
    thread.join(timeout=10)
    ws.close()


@pytest.fixture(scope="session")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Page:
    """A signed-in tab that fails the test on any console error or script it should not run."""

    def __init__(self, browser: Any, site: Site, token: str) -> None:
        self.site = site
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.tab = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.tab.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.tab.on("pageerror", lambda e: self.errors.append(str(e)))
        self.tab.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.tab.goto(f"{site.url}/login")
        self.tab.fill("input[name=token]", token)
        self.tab.click("button[type=submit]")
        self.tab.wait_for_load_state("networkidle")

    def open(self, path: str, shot: str | None = None) -> Any:
        response = self.tab.goto(self.site.url + path)
        self.tab.wait_for_load_state("networkidle")
        assert response is not None and response.status == 200, f"{path}: {response}"
        self.check()
        if shot:
            self.tab.screenshot(path=str(SCREENSHOTS / f"{shot}.png"), full_page=True)
        return response

    def check(self) -> None:
        assert not self.errors, self.errors
        assert not self.dialogs, self.dialogs
        assert self.tab.evaluate("window.__pwned === undefined"), "a stored script ran"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def admin_page(browser: Any, site: Site) -> Iterator[Page]:
    page = Page(browser, site, site.admin)
    yield page
    page.close()


@pytest.fixture
def reader_page(browser: Any, site: Site) -> Iterator[Page]:
    page = Page(browser, site, site.reader)
    yield page
    page.close()


os.environ.setdefault("PW_TEST_SCREENSHOT_DIR", str(SCREENSHOTS))
