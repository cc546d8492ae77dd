"""The dashboard in a real browser: pages load without errors, the runs table sorts and
filters, the compare view draws its charts, and stored scripts never run."""

from __future__ import annotations

import re
from typing import Any

from .conftest import XSS, Page, Site


def test_signing_in_is_required_and_a_bad_token_is_refused(browser: Any, site: Site) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(site.url + "/runs")
    assert tab.url.startswith(site.url + "/login")
    tab.fill("input[name=token]", "assay_not-a-token")
    tab.click("button[type=submit]")
    assert "not valid" in tab.inner_text("[role=alert]")
    context.close()


def test_the_overview_and_runs_pages_load(admin_page: Page) -> None:
    admin_page.open("/", "overview")
    assert "Recent runs" in admin_page.tab.inner_text("main")
    admin_page.open("/runs", "runs")
    rows = admin_page.tab.locator("table.runs tbody tr")
    assert rows.count() == 3


def test_the_runs_table_sorts_and_filters_on_the_server(admin_page: Page, site: Site) -> None:
    tab = admin_page.tab
    admin_page.open("/runs?cols=params.C&cols=metrics.val_f1")
    tab.click("a.sort[data-key='params.C']")  # first click: descending
    tab.wait_for_function(
        "document.querySelector(\"a.sort[data-key='params.C']\").textContent.includes('▼')"
    )
    c_values = [
        float(v) for v in tab.locator("table.runs tbody tr td:nth-child(10)").all_inner_texts()
    ]
    assert c_values == sorted(c_values, reverse=True) == [10.0, 1.0, 0.05]
    assert "sort=params.C+desc" in tab.url
    tab.fill("input[name=filter]", "params.C < 5 and metrics.val_f1 > 0")
    tab.press("input[name=filter]", "Enter")
    tab.wait_for_function("document.querySelectorAll('table.runs tbody tr').length === 2")
    assert sorted(
        float(v) for v in tab.locator("table.runs tbody tr td:nth-child(10)").all_inner_texts()
    ) == [0.05, 1.0]
    tab.fill("input[name=filter]", "params.C <")  # malformed: said, not crashed
    tab.press("input[name=filter]", "Enter")
    tab.wait_for_selector("[role=alert]")
    admin_page.check()


def test_a_run_page_draws_its_metric_curves(admin_page: Page, site: Site) -> None:
    run = site.runs[0]
    admin_page.open(f"/runs/{run.id}", "run")
    text = admin_page.tab.inner_text("main")
    assert "cancer@1" in text and "val_f1" in text
    admin_page.tab.wait_for_selector("figure.chart canvas")  # uPlot drew the curve


def test_the_compare_view_draws_curves_and_parallel_coordinates(
    admin_page: Page, site: Site
) -> None:
    ids = "&".join(f"run={r.id}" for r in site.runs)
    admin_page.open(f"/compare?{ids}", "compare")
    tab = admin_page.tab
    assert tab.locator("tr.differs").count() >= 1  # C differs
    tab.wait_for_selector("figure.chart[data-kind=steps] canvas")
    lines = tab.locator("figure.chart[data-kind=parallel] svg polyline")
    assert lines.count() == 3


def test_stored_scripts_show_as_text_and_never_run(admin_page: Page, site: Site) -> None:
    hostile = next(r for r in site.runs if "tiny-C" in r.name)
    for path in ["/", "/runs?cols=params.note", f"/runs/{hostile.id}"]:
        admin_page.open(path)
        assert XSS in admin_page.tab.inner_text("main"), path  # shown, as text
    assert re.search(r"&lt;script&gt;", admin_page.tab.content())
