"""The node page and the catalog search in Chromium: a policy's versions and their diff, a
restricted snapshot redacted for an operator and shown to an auditor, edges that lead to other
node pages, the search by namespace and by facet value with the API's totals, and the HTML 404."""

from __future__ import annotations

import re
from typing import Any

import httpx

from browsing import RESTRICTED_NAMESPACE, Site, axe_violations, sign_in
from live import start_server
from opslineage.ledger.access_log import AccessLog
from opslineage.server import ServerSettings
from opslineage.store import open_store

DASH = "\N{EN DASH}"  # between the first and last of a page's count, as in "1 to 50 of 1,728"


def _api(site: Site, path: str, role: str | None = None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {site.tokens[role]}"} if role else {}
    answer = httpx.get(f"{site.url}{path}", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _count(page: Any) -> str:
    return str(page.inner_text(".count")).strip()


def test_a_policy_page_shows_every_version_and_the_diff_of_two(page: Any, open_site: Site) -> None:
    policy = _api(open_site, "/api/v1/nodes/policy:cpu-guard@2")
    page.goto(f"{open_site.url}/nodes/policy:cpu-guard@2")
    assert page.inner_text("h1") == "policy cpu-guard @2"
    assert policy["digest"] in page.inner_text("dl.facts")
    rows = page.locator("table.node-versions tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("th").inner_text() == "1"
    assert '"cpu_mean": 70' in rows.nth(0).inner_text() and '"cpu_mean": 65' in rows.nth(1).inner_text()
    assert "(this one)" in rows.nth(1).inner_text()
    assert "Changes from version 1 to 2" in page.inner_text("#diff")
    removed = page.locator(".node-diff .node-removed").all_inner_texts()
    added = page.locator(".node-diff .node-added").all_inner_texts()
    assert any('-    "cpu_mean": 70,' in line for line in removed)
    assert any('+    "cpu_mean": 65,' in line for line in added)
    spoken = page.locator(".node-diff .node-removed").all_text_contents()
    assert all(line.startswith("removed: -") for line in spoken)  # in words and signs, not colour only
    assert axe_violations(page) == []
    page.goto(f"{open_site.url}/nodes/policy:cpu-guard@1?compare=2")  # the other way round
    assert any('+    "cpu_mean": 70,' in line for line in page.locator(".node-added").all_inner_texts())
    missing = httpx.get(f"{open_site.url}/nodes/policy:cpu-guard@2", params={"compare": "7"})
    assert missing.status_code == 400 and "has no version &#39;7&#39;" in missing.text


def test_a_model_page_lists_its_versions_with_their_parameters(page: Any, open_site: Site) -> None:
    models = _api(open_site, "/api/v1/nodes", kind="model")["nodes"]
    assert len(models) == 2
    page.goto(f"{open_site.url}/nodes/{models[1]['id']}")
    rows = page.locator("table.node-versions tbody tr")
    assert rows.count() == 2
    for row, model in zip(range(2), reversed(models), strict=True):
        content = _api(open_site, f"/api/v1/nodes/{model['id']}")["content"]
        text = rows.nth(row).inner_text()
        assert (
            model["version"] in text and f'"training_rows": {content["parameters"]["training_rows"]}' in text
        )
    assert page.locator("#diff").count() == 0  # a diff is drawn for policies only
    assert axe_violations(page) == []


def test_a_restricted_snapshot_is_redacted_for_an_operator_and_shown_to_an_auditor(
    page: Any, guarded_site: Site
) -> None:
    found = _api(guarded_site, "/api/v1/nodes", "auditor", kind="snapshot", namespace=RESTRICTED_NAMESPACE)
    snapshot = found["nodes"][0]["id"]
    sign_in(page, guarded_site, "operator")
    page.goto(f"{guarded_site.url}/nodes/{snapshot}")
    assert "redacted: restricted" in page.inner_text(".node-redacted")
    assert "not cleared for the label restricted" in page.inner_text(".node-redacted")
    assert page.inner_text(".node-level") == "restricted"
    assert "redacted: restricted" in page.inner_text("#content + *")
    assert "rows" not in page.inner_text("main")
    assert _api(guarded_site, f"/api/v1/nodes/{snapshot}", "operator")["content"] == {
        "redacted": "restricted"
    }
    assert axe_violations(page) == []
    page.click("text=Sign out")
    sign_in(page, guarded_site, "auditor")
    page.goto(f"{guarded_site.url}/nodes/{snapshot}")
    assert page.locator(".node-redacted").count() == 0
    shown = _api(guarded_site, f"/api/v1/nodes/{snapshot}", "auditor")["content"]
    assert '"rows"' in page.inner_text("#content ~ details pre") and shown["rows"]
    assert str(shown["row_count"]) in page.inner_text("main")


def test_a_node_page_is_one_access_event_with_its_redaction(guarded_site: Site) -> None:
    with open_store(guarded_site.store) as store, AccessLog(store) as trail:
        server, thread, url = start_server(ServerSettings(store=guarded_site.store), trail=trail)
        try:
            operator = {"Authorization": f"Bearer {guarded_site.tokens['operator']}"}
            found = httpx.get(
                f"{url}/api/v1/nodes", params={"kind": "snapshot", "limit": 1}, headers=operator
            )
            snapshot = found.json()["nodes"][0]["id"]
            admin = {"Authorization": f"Bearer {guarded_site.tokens['admin']}"}
            params = {"actor": "token:web-operator", "node": snapshot, "limit": 1000}
            before = httpx.get(f"{url}/api/v1/access-log", params=params, headers=admin).json()
            assert httpx.get(f"{url}/nodes/{snapshot}", headers=operator).status_code == 200
            after = {
                **params,
                "after": max(event["seq"] for event in before),
            }  # the site's other tests read it too
            events = httpx.get(f"{url}/api/v1/access-log", params=after, headers=admin).json()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    assert [event["name"] for event in events] == ["node-page"]
    assert "nodes" in [event["name"] for event in before]  # the search that found it
    pages = [event for event in events if event["name"] == "node-page" and event["target"] == snapshot]
    assert [event["outcome"] for event in pages] == ["redacted"]  # the whole page: one audited read
    assert "restricted" in pages[0]["reason"]


def test_edges_link_to_the_pages_of_the_nodes_at_their_other_end(page: Any, open_site: Site) -> None:
    actions = _api(open_site, "/api/v1/nodes", kind="action", limit=1)["nodes"]
    action = actions[0]["id"]
    detail = _api(open_site, f"/api/v1/nodes/{action}")
    page.goto(f"{open_site.url}/nodes/{action}")
    assert page.get_attribute(".node-links a:text-is('Remediation')", "href") == f"/remediations/{action}"
    up = page.locator(".node-edges a[data-direction=up]")
    assert up.count() == len(detail["edges"]["out"])
    decision = next(edge for edge in detail["edges"]["out"] if edge["kind"] == "used")["dst"]
    link = page.locator(f".node-edges a[href='/nodes/{decision}']")
    listed = page.locator(".node-edges li", has=page.locator(f"a[href='/nodes/{decision}']"))
    assert listed.inner_text().startswith("used ")
    assert axe_violations(page) == []
    link.click()
    page.wait_for_url(f"{open_site.url}/nodes/{decision}")
    assert page.inner_text("h1").startswith("decision")
    back = page.locator(f".node-edges a[data-direction=down][href='/nodes/{action}']")
    assert back.count() == 1  # the action used the decision: it is below it
    job = _api(open_site, "/api/v1/nodes", kind="job", limit=1)["nodes"][0]["id"]
    page.goto(f"{open_site.url}/nodes/{job}")
    assert (
        page.get_attribute(".node-links a:text-is('Lineage')", "href")
        == f"/lineage?{httpx.QueryParams(node=job)}"
    )


def test_the_catalog_searches_by_namespace_and_facet_value_with_the_apis_totals(
    page: Any, open_site: Site
) -> None:
    snapshots = _api(open_site, "/api/v1/nodes", kind="snapshot", namespace=RESTRICTED_NAMESPACE)
    page.goto(f"{open_site.url}/catalog")
    page.select_option("#kind", "snapshot")
    page.fill("#namespace", RESTRICTED_NAMESPACE)
    page.click("form.search button[type=submit]")
    page.wait_for_url(re.compile(r".*namespace=aiops\.demo.*"))
    assert _count(page) == f"1{DASH}50 of {snapshots['total']:,}" and snapshots["total"] > 1000
    assert page.locator("table.results tbody tr").count() == 50
    assert axe_violations(page) == []
    page.click("a[rel=next]")
    assert _count(page) == f"51{DASH}100 of {snapshots['total']:,}"
    assert _api(open_site, "/api/v1/nodes", namespace="no.such.namespace")["total"] == 0

    facet = _api(open_site, "/api/v1/nodes", facet="team-capacity")
    assert "policy:cpu-guard@2" in {node["id"] for node in facet["nodes"]}
    page.goto(f"{open_site.url}/catalog")
    page.fill("#facet", "team-capacity")
    page.click("form.search button[type=submit]")
    page.wait_for_url(re.compile(r".*facet=team-capacity.*"))
    assert _count(page) == f"1{DASH}{facet['total']} of {facet['total']}"
    assert page.locator("table.results a[href='/nodes/policy:cpu-guard@2']").count() == 1
    assert "newest 5,000 events" in page.inner_text("#facet-note")
    page.click("nav.kinds a:text-is('policy')")  # a kind filter keeps the facet value
    assert "facet=team-capacity" in page.url and "kind=policy" in page.url
    assert page.locator("table.results tbody tr").count() == 1
    assert axe_violations(page) == []


def test_an_operator_may_not_search_facet_values_it_is_not_cleared_for(guarded_site: Site) -> None:
    headers = {"Authorization": f"Bearer {guarded_site.tokens['operator']}"}
    refused = httpx.get(f"{guarded_site.url}/api/v1/nodes", params={"facet": "cpu"}, headers=headers)
    assert refused.status_code == 403 and "not cleared for" in refused.json()["detail"]
    allowed = _api(guarded_site, "/api/v1/nodes", "auditor", facet="cpu", limit=1)
    assert allowed["total"] >= 1


def test_a_missing_node_gets_the_html_not_found_page(page: Any, open_site: Site) -> None:
    answer = page.goto(f"{open_site.url}/nodes/policy:no-such-policy@1")
    assert answer is not None and answer.status == 404
    assert page.inner_text("h1") == "Not found"
    assert "no node policy:no-such-policy@1" in page.inner_text("[role=alert]")
    assert axe_violations(page) == []
    long = httpx.get(f"{open_site.url}/catalog", params={"q": "x" * 201})
    assert long.status_code == 400 and "over 200 characters" in long.text
