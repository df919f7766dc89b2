"""Every page by keyboard alone and at 200% zoom: the skip link comes first and moves focus to the
content, the graph's boxes take focus in turn, and at twice the size (half the CSS width) no page
is wider than its window, but for the graphs and charts, which scroll inside their own boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from browsing import Site
from opslineage.demo import DemoResult

WIDE_INSIDE = "svg.graph, svg.chart, pre, table"  # may scroll inside their own boxes


def _pages(site: Site, result: DemoResult) -> list[str]:
    fixed = next(r for r in result.remediations if r.incident is not None)
    policy = httpx.get(f"{site.url}/api/v1/nodes", params={"kind": "policy", "limit": 1}).json()["nodes"][0]
    return [
        "/sign-in",
        "/catalog",
        f"/nodes/{quote(policy['id'], safe=':@')}",
        f"/remediations/run:{fixed.run_id}",
        f"/timeline?target={quote(fixed.target)}",
        "/effectiveness",
        "/lineage",
        "/audit",
    ]


@pytest.fixture
def zoomed(browser: Any) -> Any:
    """A page of a 1280-pixel window at 200% zoom: 640 CSS pixels wide, each two device pixels."""
    context = browser.new_context(viewport={"width": 640, "height": 450}, device_scale_factor=2)
    yield context.new_page()
    context.close()


def test_at_200_percent_zoom_no_page_is_wider_than_its_window(
    zoomed: Any, open_site: Site, demo_run: tuple[Path, DemoResult]
) -> None:
    _, result = demo_run
    for path in _pages(open_site, result):
        zoomed.goto(f"{open_site.url}{path}")
        overflow = zoomed.evaluate(
            """(inside) => [...document.querySelectorAll('body *')]
                .filter(e => !e.closest(inside) && e.getBoundingClientRect().right > innerWidth + 1)
                .map(e => e.tagName + '.' + e.className).slice(0, 5)""",
            WIDE_INSIDE,
        )
        assert overflow == [], path


def test_the_keyboard_reaches_the_content_and_every_box_of_the_chain(
    page: Any, open_site: Site, demo_run: tuple[Path, DemoResult]
) -> None:
    _, result = demo_run
    fixed = next(r for r in result.remediations if r.incident is not None)
    page.goto(f"{open_site.url}/remediations/run:{fixed.run_id}")
    moment = page.locator("time[datetime]").first  # times are UTC, with the local time on hover
    assert "UTC" in moment.inner_text() and "(local time)" in str(moment.get_attribute("title"))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    boxes = page.locator("svg.graph a.node").count()
    reached: set[str] = set()
    for _ in range(200):
        page.keyboard.press("Tab")
        node = page.evaluate("document.activeElement.getAttribute('data-node')")
        if node:
            reached.add(node)
        if len(reached) == boxes:
            break
    assert boxes >= 7 and len(reached) == boxes
    page.keyboard.press("Enter")  # the focused box is a link to its node's page
    page.wait_for_url("**/nodes/**")
