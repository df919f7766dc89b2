"""The incident timeline and effectiveness pages in Chromium: the demo's incident is on its
target's timeline with its action, the effectiveness figures are the API's, and an operator's
timeline leaves the restricted snapshots out."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from browsing import Site, axe_violations, sign_in
from opslineage.demo import DemoResult


def test_the_timeline_of_an_incident_marks_its_action_and_links_to_its_remediation(
    page: Any, open_site: Site, demo_run: tuple[Path, DemoResult]
) -> None:
    _, result = demo_run
    fixed = next(r for r in result.remediations if r.incident is not None)
    page.goto(f"{open_site.url}/timeline")
    page.click(f"ul.targets a:text-is('{fixed.target}')")
    page.wait_for_url(f"{open_site.url}/timeline?target={fixed.target}")
    action = page.locator(f"svg.chart a.mark.action[href='/remediations/run:{fixed.run_id}']")
    assert action.count() >= 1  # on every metric's chart
    assert page.locator("svg.chart polyline.series").count() >= 1
    assert page.locator("svg.chart a.mark.decision-fired").count() >= 1
    api = httpx.get(f"{open_site.url}/api/v1/timeline", params={"target": fixed.target}).json()
    effect = next(
        m["effect"] for m in api["marks"] if m["kind"] == "action" and m["run"] == f"run:{fixed.run_id}"
    )
    marked = page.locator(f"svg.chart a.mark.effect[href='/nodes/{effect['id']}']")
    assert marked.count() >= 1 and effect["outcome"] in str(marked.first.locator("title").text_content())
    row = page.locator("table.marks tr.mark-action")
    assert fixed.action in row.first.inner_text()
    assert axe_violations(page) == []
    action.first.click()
    page.wait_for_url(f"{open_site.url}/remediations/run:{fixed.run_id}")


def test_the_timeline_shows_version_changes_and_takes_a_range(
    page: Any, open_site: Site, demo_run: tuple[Path, DemoResult]
) -> None:
    _, result = demo_run
    fixed = next(r for r in result.remediations if r.incident is not None)
    api = httpx.get(f"{open_site.url}/api/v1/timeline", params={"target": fixed.target}).json()
    changes = [mark for mark in api["marks"] if mark["kind"].endswith("_change")]
    page.goto(f"{open_site.url}/timeline?target={quote(fixed.target)}")
    assert page.locator("table.marks tr.mark-model_change, table.marks tr.mark-policy_change").count() == len(
        changes
    )
    since = fixed.decided_at.strftime("%Y-%m-%dT%H:%M:%S")
    page.goto(f"{open_site.url}/timeline?target={quote(fixed.target)}&since={since}")
    shown = page.locator("table.marks tbody tr").count()
    assert 0 < shown < len([m for m in api["marks"] if m["kind"] not in ("snapshot", "prediction")])
    bad = httpx.get(f"{open_site.url}/timeline", params={"target": fixed.target, "since": "yesterday"})
    assert (
        bad.status_code == 400 and "since" in bad.text and bad.headers["content-type"].startswith("text/html")
    )


def test_the_effectiveness_page_shows_the_apis_figures(page: Any, open_site: Site) -> None:
    api = httpx.get(f"{open_site.url}/api/v1/effectiveness").json()
    page.goto(f"{open_site.url}/effectiveness")
    assert axe_violations(page) == []
    for grouping, groups in api["groups"].items():
        assert groups, grouping
        for group in groups:
            row = page.locator(f"table[data-grouping='{grouping}'] tr[data-key='{group['key']}']")
            for figure in (
                "actions",
                "resolved",
                "unchanged",
                "worsened",
                "insufficient_data",
                "unverifiable",
            ):
                assert row.locator(f"td[data-figure='{figure}']").inner_text() == str(group[figure]), (
                    grouping,
                    figure,
                )
            rate = row.locator("td[data-figure='resolved_rate']").inner_text()
            assert rate == f"{group['resolved_rate'] * 100:.1f}%"
            interval = row.locator("td[data-figure='interval']").inner_text()
            assert interval == f"{group['lower'] * 100:.1f}–{group['upper'] * 100:.1f}%"  # noqa: RUF001
    total = sum(group["actions"] for group in api["groups"]["action"])
    assert total == 6  # the demo's remediations
    assert page.locator("svg.chart circle.dot").count() >= len(api["groups"]["policy"])
    latencies = page.locator("#latencies tbody tr")
    assert latencies.count() == len(api["latencies"]) > 0


def test_an_operators_timeline_withholds_the_restricted_snapshots_an_auditors_draws_them(
    page: Any, guarded_site: Site, demo_run: tuple[Path, DemoResult]
) -> None:
    _, result = demo_run
    target = result.remediations[0].target
    sign_in(page, guarded_site, "operator")
    page.goto(f"{guarded_site.url}/timeline?target={quote(target)}")
    assert "withheld from you" in page.inner_text("main")
    charts = page.locator("svg.chart .chart-title").all_text_contents()
    assert charts == ["prediction score"]  # no metric drawn from the restricted snapshots' rows
    assert page.locator("table.marks tr.mark-action").count() >= 1  # the action itself is not restricted
    page.click("text=Sign out")
    sign_in(page, guarded_site, "auditor")
    page.goto(f"{guarded_site.url}/timeline?target={quote(target)}")
    assert "withheld from you" not in page.inner_text("main")
    assert "cpu" in page.locator("svg.chart .chart-title").all_text_contents()
