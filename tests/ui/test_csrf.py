"""Cross-site request forgery: a signed-in browser's cookie rides along on a form another
origin of the same site posts (another port, a sibling subdomain: SameSite=Strict does not
stop those). Every state-changing dashboard route needs this origin and this session's
token; the API takes no cookie for anything that changes state."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator

import pytest
from fastapi.routing import APIRoute

from assay.server.app import create_app
from assay.ui.app import PAGE_MODULES
from assay.workspace import Workspace

with warnings.catch_warnings():
    # Starlette 1.10 prefers httpx2 for its test client; plain httpx works the same.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.one_backend  # HTTP behaviour, not the database

HOST = "http://testserver"  # the TestClient's own origin
FOREIGN = "http://testserver:18600"  # the same host on another port: the same site
SIBLING = "http://evil.testserver"

# Every state-changing dashboard route, with a body it would take.
FORMS = {
    "/abtests/ab/conclude": {"winner": "a"},
    "/services/s/try": {"body": "{}"},
    "/logout": {},
    "/login": {"token": "assay_x", "next": "/"},
}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page's forms carry no csrf field"
    return found.group(1)


@pytest.fixture
def browser(ws: Workspace) -> Iterator[Callable[[bool], TestClient]]:
    """A TestClient standing in for a browser, signed in as an admin (or with auth off)."""
    _, admin = ws.tokens.create("admin", "admin")
    clients: list[TestClient] = []

    def make(auth: bool = True) -> TestClient:
        client = TestClient(create_app(ws, auth=auth), follow_redirects=False)
        clients.append(client)
        if auth:
            page = client.get("/login")
            signed = client.post(
                "/login",
                data={"token": admin, "next": "/", "csrf": csrf_of(page.text)},
                headers={"Origin": HOST},
            )
            assert signed.status_code == 303, signed.text
        return client

    yield make
    for client in clients:
        client.close()


def refused(answer: object, why: str) -> None:
    status = getattr(answer, "status_code", None)
    text = getattr(answer, "text", "")
    assert status == 403, text
    assert why in text, text


@pytest.mark.parametrize("auth", [True, False])
def test_a_form_from_another_origin_is_refused(
    browser: Callable[[bool], TestClient], auth: bool
) -> None:
    client = browser(auth)
    token = csrf_of(client.get("/abtests").text if auth else client.get("/login").text)
    for path, form in FORMS.items():
        for origin in (FOREIGN, SIBLING, "null"):
            answer = client.post(path, data={**form, "csrf": token}, headers={"Origin": origin})
            refused(answer, "not sent from this server's pages")
        # No Origin: the Referer must name this server instead.
        answer = client.post(
            path, data={**form, "csrf": token}, headers={"Referer": f"{FOREIGN}/attack.html"}
        )
        refused(answer, "not sent from this server's pages")
    # Nothing changed: still signed in (the refused /logout kept the cookie), same token.
    assert csrf_of(client.get("/abtests" if auth else "/login").text) == token
    assert client.get("/abtests").status_code == 200


@pytest.mark.parametrize("auth", [True, False])
def test_a_form_without_the_sessions_token_is_refused(
    browser: Callable[[bool], TestClient], auth: bool
) -> None:
    client = browser(auth)
    for path, form in FORMS.items():
        for token in (None, "", "0" * 64, csrf_of(TestClient(client.app).get("/login").text)):
            data = {**form, "csrf": token} if token is not None else form
            answer = client.post(path, data=data, headers={"Origin": HOST})
            refused(answer, "CSRF token")


def test_the_dashboards_own_forms_pass(browser: Callable[[bool], TestClient]) -> None:
    client = browser(True)
    token = csrf_of(client.get("/abtests").text)
    headers = {"Origin": HOST, "Accept": "text/html"}
    # Through to the service, which says the test does not exist (nothing was refused).
    answer = client.post("/abtests/ab/conclude", data={"winner": "a", "csrf": token},
                         headers=headers)  # fmt: skip
    assert answer.status_code == 404
    assert "No A/B test" in answer.text
    # htmx sends the token as a header; a Referer alone names the origin too.
    answer = client.post(
        "/services/s/try",
        data={"body": "{}"},
        headers={"X-CSRF-Token": token, "Referer": f"{HOST}/services", "HX-Request": "true"},
    )
    assert answer.status_code == 404
    assert "No service" in answer.text
    answer = client.post("/logout", data={"csrf": token}, headers=headers)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"


def test_every_state_changing_dashboard_route_is_covered(
    browser: Callable[[bool], TestClient],
) -> None:
    """Found from the dashboard's routes, so that a route added later is checked too."""
    client = browser(True)
    unsafe = [
        (method, re.sub(r"\{[^}]+\}", "x", route.path))
        for module in PAGE_MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in (route.methods or set()) - {"GET", "HEAD", "OPTIONS"}
    ]
    assert {path for _, path in unsafe} >= {"/login", "/logout", "/abtests/x/conclude"}
    for method, path in unsafe:
        answer = client.request(method, path, headers={"Origin": HOST})
        refused(answer, "CSRF token")


def test_the_api_takes_no_cookie_for_a_change(browser: Callable[[bool], TestClient]) -> None:
    client = browser(True)  # signed in: the cookie is in its jar
    assert client.get("/api/v1/openapi.json").status_code == 200  # reading: allowed
    answer = client.post("/api/v1/tokens", json={"name": "x", "scope": "admin"},
                         headers={"Origin": HOST})  # fmt: skip
    assert answer.status_code == 401
    answer = client.post("/api/v1/abtests/ab/conclude", json={"winner": "a"})
    assert answer.status_code == 401
