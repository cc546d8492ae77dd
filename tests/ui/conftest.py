"""A workspace with something on every page, served by a real server on loopback, and a
real browser (Debian's Chromium, driven by Playwright) to look at it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from assay import httpclient
from assay.config import Settings
from assay.workspace import Workspace, init_workspace
from servers import free_port, serve_asgi  # type: ignore[import-not-found]  # tests/ is on sys.path

if TYPE_CHECKING:
    from playwright.sync_api import Dialog

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
        if i != 1:
            ws.registry.register_run(run.id)  # cancer@1 and cancer@2
    (folder / "space.yaml").write_text("C: {log-float: [0.01, 10]}\n")
    (folder / "params.json").write_text('{"seed": 7, "model": "logreg"}')
    sweep = ws.sweeps.create(
        "cancer",
        data="cancer@1",
        space_file=folder / "space.yaml",
        trials=4,
        objectives=["val_f1:max"],
        params_file=folder / "params.json",
        name="tuning",
        register="none",
    )
    ws.sweeps.run(sweep.name, _Inline(ws))
    return made


class _Inline:
    """Runs a sweep's trials in this process, one at a time (enough for pages to show)."""

    name = "inline"
    slots = 1

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.queue: list[Any] = []

    def submit(self, job: Any) -> None:
        self.queue.append(job)

    def wait(self, timeout: float) -> list[Any]:
        from assay.runs.executor import Done

        done = []
        while self.queue:
            job = self.queue.pop(0)
            self.ws.runs.execute(job.run_id)
            done.append(Done(job.run_id))
        return done

    def close(self, *, cancel: bool = False) -> None:
        return None


def _traffic(ws: Workspace, folder: Path) -> None:
    """A live service, and an A/B test with answers and feedback for its report."""
    import csv

    ws.services.deploy("cancer-api", "cancer@1", port=free_port())
    ws.abtests.create("ab", ["a=cancer@1", "b=cancer@2"], "weighted:50,50", port=free_port())
    test = ws.abtests.get("ab")
    with open(folder / "raw" / "v1" / "cancer.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:120]
    with httpclient.client(timeout=10) as client:
        for row in rows:
            label = row.pop("diagnosis")
            features = {k: float(v) for k, v in row.items()}
            features["area_per_radius"] = features["mean_area"] / features["mean_radius"]
            answer = client.post(f"{test.url}/predict", json={"instances": [features]})
            body = answer.json()
            assert answer.status_code == 200, body
            client.post(
                f"{test.url}/feedback", json={"request_id": body["request_id"], "label": label}
            )


# For the module (tests/ui/test_browser.py, the only one using them), not the session: the
# worker runs other tests after these, and Playwright's sync API keeps an event loop running
# in this thread while it lives (their `asyncio.run` then fails), and the dashboard's
# service and router would keep running beside them.
@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium)")
    from assay.server.app import create_app

    folder = tmp_path_factory.mktemp("ui")
    env = {"ASSAY_AUTHOR": "tester"}
    settings, _ = init_workspace(Settings.at(folder, env))
    ws = Workspace(settings)
    try:
        runs = _populate(ws, folder)
        _traffic(ws, folder)
        _, admin = ws.tokens.create("admin", "admin")
        _, reader = ws.tokens.create("reader", "read")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with serve_asgi(create_app(ws)) as url:
            yield Site(url, ws, admin, reader, runs)
    finally:  # the router and the service are processes: never leave them running
        for stop in (lambda: ws.abtests.stop("ab"), lambda: ws.services.stop("cancer-api")):
            try:
                stop()
            except Exception:
                continue
        ws.close()


@pytest.fixture(scope="module")
def browser(dashboard: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Page:
    """A signed-in tab that fails the test on any console error or script it should not run."""

    def __init__(self, browser: Any, dashboard: Site, token: str) -> None:
        self.dashboard = dashboard
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.tab = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        # A Content-Security-Policy violation is a console message too (the server's policy
        # allows no inline script or style): any one fails the page.
        self.tab.on(
            "console",
            lambda m: (
                self.errors.append(m.text)
                if m.type == "error" or "Content Security Policy" in m.text
                else None
            ),
        )
        self.tab.on("pageerror", lambda e: self.errors.append(str(e)))

        def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.tab.on("dialog", on_dialog)
        self.tab.goto(f"{dashboard.url}/login")
        self.tab.fill("input[name=token]", token)
        self.tab.click("button[type=submit]")
        self.tab.wait_for_load_state("networkidle")

    def open(self, path: str, shot: str | None = None) -> Any:
        self.errors.clear()  # one signed-in tab serves many tests: judge each page alone
        self.dialogs.clear()
        response = self.tab.goto(self.dashboard.url + path)
        self.tab.wait_for_load_state("networkidle")
        assert response is not None, f"{path}: {response}"
        assert response.status == 200, f"{path}: {response}"
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


@pytest.fixture(scope="module")
def admin_page(browser: Any, dashboard: Site) -> Iterator[Page]:
    page = Page(browser, dashboard, dashboard.admin)
    yield page
    page.close()


@pytest.fixture(scope="module")
def reader_page(browser: Any, dashboard: Site) -> Iterator[Page]:
    page = Page(browser, dashboard, dashboard.reader)
    yield page
    page.close()


os.environ.setdefault("PW_TEST_SCREENSHOT_DIR", str(SCREENSHOTS))
