"""Driving the web pages in the tests: the Chromium to launch, the servers' origins, signing in
through the form and axe-core's accessibility check (fixtures: tests/web/conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("OPSLINEAGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]
AXE = Path(__file__).parent / "web" / "vendor" / "axe-core" / "axe.min.js"
RESTRICTED_NAMESPACE = "aiops.demo"
ORIGINS: set[str] = set()  # every server these fixtures started


@dataclass
class Site:
    """A server of the pages: its base URL, its store URL and, when guarded, a token per role."""

    url: str
    store: str
    tokens: dict[str, str] = field(default_factory=dict)


def ours(url: str) -> bool:
    """Whether ``url`` is one of the test servers' (or a data: or about: URL)."""
    if url.startswith(("data:", "about:")):
        return True
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" in ORIGINS


def sign_in(page: Any, site: Site, role: str) -> None:
    """Sign ``page`` in to ``site`` with its token of ``role``, through the sign-in form."""
    page.goto(f"{site.url}/sign-in")
    page.fill("#token", site.tokens[role])
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/catalog")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The serious and critical accessibility violations axe-core finds on the page as it stands."""
    page.evaluate(
        AXE.read_text()
    )  # evaluated by the test, not loaded by the page (its CSP allows no inline script)
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
