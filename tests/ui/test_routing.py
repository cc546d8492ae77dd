"""The dashboard's routes come from one router per page module, included by `ui.app` in
the order it names; a page module imports without the app (no cycle)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.routing import APIRoute

from assay.ui.app import PAGE_MODULES, router

PAGES = [
    "login_pages",
    "pages",
    "data_pages",
    "pipeline_pages",
    "model_pages",
    "sweep_pages",
    "service_pages",
    "monitor_pages",
]


def test_every_page_module_is_included_in_its_place() -> None:
    assert [m.__name__.rsplit(".", 1)[1] for m in PAGE_MODULES] == PAGES
    # The app's router holds the page routers themselves, in PAGE_MODULES' order.
    # (FastAPI's included-router routes carry `original_router`; BaseRoute does not say so.)
    assert [getattr(included, "original_router", None) for included in router.routes] == [
        m.router for m in PAGE_MODULES
    ]
    module_paths = {
        route.path
        for module in PAGE_MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute)
    }
    assert {"/login", "/", "/runs/{run_id}", "/abtests/{name:path}/conclude"} <= module_paths


@pytest.mark.parametrize("module", PAGES)
def test_a_page_module_imports_on_its_own_without_the_app(module: str) -> None:
    code = (
        f"import assay.ui.{module} as m, sys; "
        "assert 'assay.ui.app' not in sys.modules, 'imported the app'; "
        "assert m.router.routes"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
