"""Sign-in, sessions and CSRF of the web pages, in Chromium and over plain HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from browsing import Site, axe_violations, sign_in
from opslineage.server.auth import ROUTE_PERMISSIONS

PAGES = sorted(
    path
    for (method, path), needs in ROUTE_PERMISSIONS.items()
    if needs and not path.startswith(("/api/", "/metrics", "/openapi"))
)


def test_a_guarded_site_sends_a_stranger_to_sign_in_and_a_token_opens_a_session(
    page: Any, guarded_site: Site
) -> None:
    page.goto(f"{guarded_site.url}/catalog")
    assert page.url.startswith(f"{guarded_site.url}/sign-in")
    assert axe_violations(page) == []
    page.fill("#token", "olt_not-a-token")
    page.click("button[type=submit]")
    assert "not one of this server's" in page.inner_text("[role=alert]")
    sign_in(page, guarded_site, "operator")
    assert "token:web-operator · operator" in page.inner_text("header")
    sections = page.locator("header nav a").all_inner_texts()
    assert "Timeline" in sections and "Effectiveness" not in sections  # an operator holds no analytics:read
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    session = cookies["opslineage_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert guarded_site.tokens["operator"] not in session["value"]
    page.click("text=Sign out")
    page.wait_for_url(f"{guarded_site.url}/sign-in")
    page.goto(f"{guarded_site.url}/catalog")
    assert page.url.startswith(f"{guarded_site.url}/sign-in")  # the session is gone


def test_forms_without_their_csrf_token_are_refused(guarded_site: Site) -> None:
    with httpx.Client(base_url=guarded_site.url, follow_redirects=False) as client:
        form = client.get("/sign-in")
        assert form.status_code == 200
        token = guarded_site.tokens["admin"]
        refused = client.post("/sign-in", data={"token": token, "csrf": "forged"})
        assert refused.status_code == 400 and "CSRF" in refused.text
        assert "opslineage_session" not in refused.cookies
        csrf = _csrf(refused.text)  # each showing of the form has a CSRF token of its own
        signed = client.post("/sign-in", data={"token": token, "csrf": csrf, "next": "//elsewhere.example"})
        assert signed.status_code == 303 and signed.headers["location"] == "/catalog"  # no open redirect
        assert client.get("/catalog").status_code == 200  # the session cookie is kept by the client
        assert client.post("/sign-out", data={"csrf": "forged"}).status_code == 400
        assert client.get("/catalog").status_code == 200  # still signed in


def test_a_session_reads_the_api_but_cannot_write_through_it(guarded_site: Site) -> None:
    with httpx.Client(base_url=guarded_site.url, follow_redirects=False) as client:
        form = client.get("/sign-in")
        client.post("/sign-in", data={"token": guarded_site.tokens["admin"], "csrf": _csrf(form.text)})
        assert client.get("/api/v1/log/checkpoint").status_code == 200
        written = client.post("/api/v1/lineage", json={}, headers={"Content-Type": "application/json"})
        assert written.status_code == 401


def test_every_page_answers_with_a_policy_that_keeps_it_to_its_origin(open_site: Site) -> None:
    answer = httpx.get(f"{open_site.url}/catalog")
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert answer.headers["x-frame-options"] == "DENY"


def test_the_catalog_finds_an_action_and_links_to_its_page(page: Any, open_site: Site) -> None:
    page.goto(f"{open_site.url}/catalog?kind=action")
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 6  # the demo's six remediations
    assert axe_violations(page) == []
    first = rows.first.locator("a")
    href = first.get_attribute("href")
    assert href is not None and href.startswith("/nodes/run:")


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"', maxsplit=1)[0]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_a_caller_without_a_session_to_sign_in(guarded_site: Site, path: str) -> None:
    answer = httpx.get(f"{guarded_site.url}{path.replace('{node_id}', 'policy:cpu-guard@1')}")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in?next=")
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_page_the_role_may_not_open_is_a_403_page(guarded_site: Site) -> None:
    operator = {"Authorization": f"Bearer {guarded_site.tokens['operator']}"}
    answer = httpx.get(f"{guarded_site.url}/effectiveness", headers=operator)
    assert answer.status_code == 403 and answer.headers["content-type"].startswith("text/html")
    assert "analytics:read" in answer.text
