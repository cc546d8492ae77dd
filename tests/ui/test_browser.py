"""The dashboard in a real browser: pages load without errors, the runs table sorts and
filters, the compare view draws its charts, and stored scripts never run."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .conftest import XSS, Page, Site


def test_signing_in_is_required_and_a_bad_token_is_refused(browser: Any, dashboard: Site) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(dashboard.url + "/runs")
    assert tab.url.startswith(dashboard.url + "/login")
    tab.fill("input[name=token]", "assay_not-a-token")
    tab.click("button[type=submit]")
    assert "not valid" in tab.inner_text("[role=alert]")
    context.close()


def test_the_overview_and_runs_pages_load(admin_page: Page) -> None:
    admin_page.open("/", "overview")
    assert "Recent runs" in admin_page.tab.inner_text("main")
    admin_page.open("/runs", "runs")
    rows = admin_page.tab.locator("table.runs tbody tr")
    assert rows.count() == 3 + 4  # three runs and the sweep's four trials


def test_the_runs_table_sorts_and_filters_on_the_server(admin_page: Page, dashboard: Site) -> None:
    from playwright.sync_api import expect

    tab = admin_page.tab
    admin_page.open("/runs?experiment=cancer&cols=params.C&cols=metrics.val_f1")
    tab.click("a.sort[data-key='params.C']")  # first click: descending
    # Waits in Python, not with wait_for_function: Playwright evaluates its predicate from
    # a string, and the dashboard's Content-Security-Policy refuses eval.
    tab.wait_for_selector("a.sort[data-key='params.C']:has-text('▼')")
    c_values = [
        float(v) for v in tab.locator("table.runs tbody tr td:nth-child(10)").all_inner_texts()
    ]
    assert c_values == sorted(c_values, reverse=True) == [10.0, 1.0, 0.05]
    assert "sort=params.C+desc" in tab.url
    tab.fill("input[name=filter]", "params.C < 5 and metrics.val_f1 > 0")
    tab.press("input[name=filter]", "Enter")
    expect(tab.locator("table.runs tbody tr")).to_have_count(2)
    assert sorted(
        float(v) for v in tab.locator("table.runs tbody tr td:nth-child(10)").all_inner_texts()
    ) == [0.05, 1.0]
    tab.fill("input[name=filter]", "params.C <")  # malformed: said, not crashed
    tab.press("input[name=filter]", "Enter")
    tab.wait_for_selector("[role=alert]")
    admin_page.check()


def test_a_run_page_draws_its_metric_curves(admin_page: Page, dashboard: Site) -> None:
    run = dashboard.runs[0]
    admin_page.open(f"/runs/{run.id}", "run")
    text = admin_page.tab.inner_text("main")
    assert "cancer@1" in text
    assert "val_f1" in text
    admin_page.tab.wait_for_selector("figure.chart canvas")  # uPlot drew the curve


def test_the_compare_view_draws_curves_and_parallel_coordinates(
    admin_page: Page, dashboard: Site
) -> None:
    ids = "&".join(f"run={r.id}" for r in dashboard.runs)
    admin_page.open(f"/compare?{ids}", "compare")
    tab = admin_page.tab
    assert tab.locator("tr.differs").count() >= 1  # C differs
    tab.wait_for_selector("figure.chart[data-kind=steps] canvas")
    lines = tab.locator("figure.chart[data-kind=parallel] svg polyline")
    assert lines.count() == 3


def test_stored_scripts_show_as_text_and_never_run(admin_page: Page, dashboard: Site) -> None:
    hostile = next(r for r in dashboard.runs if "tiny-C" in r.name)
    for path in ["/", "/runs?cols=params.note", f"/runs/{hostile.id}"]:
        admin_page.open(path)
        assert XSS in admin_page.tab.inner_text("main"), path  # shown, as text
    assert re.search(r"&lt;script&gt;", admin_page.tab.content())


PAGES = {
    "data": "/data",
    "dataset": "/data/cancer",
    "data-version": "/data/cancer@1",
    "data-diff": "/data-diff?old=params/cancer@1&new=params/cancer@2",
    "pipelines": "/pipelines",
    "pipeline": "/pipelines/cancer",
    "sweeps": "/sweeps",
    "sweep": "/sweeps/tuning",
    "models": "/models",
    "model": "/models/cancer",
    "model-version": "/models/cancer/1",
    "services": "/services",
    "abtests": "/abtests",
    "abtest": "/abtests/ab",
}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_page_loads_without_errors(admin_page: Page, name: str) -> None:
    admin_page.open(PAGES[name], name)
    assert admin_page.tab.locator("main h1").count() >= 1


def test_pages_draw_their_charts_and_graphs(admin_page: Page) -> None:
    tab = admin_page.tab
    admin_page.open("/sweeps/tuning")
    tab.wait_for_selector("figure.chart[data-kind=steps] canvas")  # optimization history
    assert tab.locator("figure.chart[data-kind=parallel] svg polyline").count() == 4
    admin_page.open("/pipelines/cancer")
    assert "def train" in tab.inner_text("main")  # the source, highlighted
    admin_page.open("/models/cancer/1")
    assert tab.locator(".tree a[href^='/runs/']").count() >= 1  # lineage back to the run
    admin_page.open("/data/cancer@1")
    assert tab.locator(".hist").count() >= 1  # a histogram per column


def test_the_ab_page_shows_the_verdict_and_only_admins_may_conclude(
    admin_page: Page, reader_page: Page
) -> None:
    admin_page.open("/abtests/ab")
    text = admin_page.tab.inner_text("main")
    first_cells = admin_page.tab.locator("h2:text('Variants') + table tbody tr td:first-child")
    variants = [cell.split()[0] for cell in first_cells.all_inner_texts()]
    assert variants == ["a", "b"]  # the control first
    assert re.search(r"wins|not enough evidence|Not enough evidence", text)
    admin_page.tab.wait_for_selector("figure.chart[data-kind=bands] canvas")
    assert admin_page.tab.locator("form[action$='/conclude'] button").count() == 2
    reader_page.open("/abtests/ab")
    assert reader_page.tab.locator("form[action$='/conclude']").count() == 0


def test_a_missing_thing_is_a_page_that_says_so(admin_page: Page) -> None:
    response = admin_page.tab.goto(admin_page.dashboard.url + "/models/nope")
    assert response is not None
    assert response.status == 404
    assert "No model" in admin_page.tab.inner_text("[role=alert]")


def test_stored_scripts_in_data_show_as_text(admin_page: Page) -> None:
    admin_page.open("/data/notes")
    assert XSS in admin_page.tab.inner_text("main")
    admin_page.open("/data/notes@1")
    assert "notes" in admin_page.tab.inner_text("main")


def test_the_api_docs_render_from_the_server_alone(reader_page: Page, dashboard: Site) -> None:
    """Swagger UI and the document both come from the server (no CDN: this machine has no
    internet), for a browser signed in to the dashboard."""
    tab = reader_page.tab
    outside: list[str] = []
    tab.on("request", lambda r: None if r.url.startswith(dashboard.url) else outside.append(r.url))
    reader_page.open("/api/v1/docs", "api-docs")
    tab.wait_for_selector(".opblock-summary")
    text = tab.inner_text(".swagger-ui")
    assert "/api/v1/runs" in text
    assert "Search runs" in text
    assert outside == [], outside
    reader_page.open("/runs")
    assert tab.locator("nav a[href='/api/v1/docs']").count() == 1


@pytest.fixture
def elsewhere() -> Iterator[Callable[[str], str]]:
    """A page served from another port of this host (the same site, another origin):
    `elsewhere(html)` serves `html` there and returns its URL."""
    import http.server
    import threading

    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def serve(html: str) -> str:
        path = f"/page{len(pages)}.html"
        pages[path] = html.encode()
        return f"http://127.0.0.1:{server.server_address[1]}{path}"

    yield serve
    server.shutdown()
    server.server_close()


def test_a_form_posted_from_another_port_cannot_conclude_a_test(
    browser: Any, dashboard: Site, elsewhere: Callable[[str], str]
) -> None:
    """The audit's attack: a signed-in admin opens a page on 127.0.0.1:OTHER that posts a
    form to /abtests/ab/conclude. The cookie goes along (same dashboard), the server refuses."""
    page = Page(browser, dashboard, dashboard.admin)
    attack = elsewhere(
        f'<form id="f" method="post" action="{dashboard.url}/abtests/ab/conclude">'
        '<input name="winner" value="b"></form>'
        "<script>document.getElementById('f').submit()</script>"
    )
    try:
        with page.tab.expect_response(lambda r: r.url.endswith("/conclude")) as sent:
            page.tab.goto(attack)
        answer = sent.value
        assert answer.status == 403
        assert answer.request.headers["origin"] == attack.rsplit("/", 1)[0]
        page.tab.wait_for_load_state()
        assert "not sent from this server's pages" in page.tab.inner_text("[role=alert]")
        test = dashboard.ws.abtests.get("ab")
        assert test.status == "running"
        assert test.winner is None
    finally:
        page.close()


def test_the_dashboards_own_forms_work(browser: Any, dashboard: Site) -> None:
    """Its forms carry the session's token: a prediction tried through htmx, an A/B test
    concluded after the confirmation, signing out; no CSP violation on the way."""
    context = browser.new_context()
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("dialog", lambda d: d.accept())
    dashboard.ws.abtests.create("ab-forms", ["a=cancer@1", "b=cancer@2"], "weighted:50,50")
    try:
        tab.goto(f"{dashboard.url}/login")
        tab.fill("input[name=token]", dashboard.admin)
        tab.click("button[type=submit]")
        tab.wait_for_load_state("networkidle")

        tab.goto(f"{dashboard.url}/services")
        tab.click("details.try summary")
        tab.click("details.try button[type=submit]")
        tab.wait_for_selector("details.try pre")  # the service's answer, swapped in by htmx
        assert "predictions" in tab.inner_text("details.try")

        tab.goto(f"{dashboard.url}/abtests/ab-forms")
        tab.click("form[action$='/conclude']:has(input[value=b]) button")
        tab.wait_for_load_state("networkidle")
        assert tab.url == f"{dashboard.url}/abtests/ab-forms"
        assert dashboard.ws.abtests.get("ab-forms").winner == "b"

        tab.click("header form[action='/logout'] button")
        tab.wait_for_url(f"{dashboard.url}/login")
        assert errors == [], errors
    finally:
        dashboard.ws.abtests.stop("ab-forms")
        context.close()
