"""Driving the web pages in the tests: the Chromium to launch, the servers' origins, signing in
through the form and axe-core's accessibility check (fixtures: tests/web/conftest.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from live import start_server
from opslineage.cli.main import main as cli
from opslineage.governance.tokens import create_token
from opslineage.server import ServerSettings
from opslineage.store import open_store

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


PRODUCERS = Path(__file__).parent / "data" / "openlineage" / "compatibility-tests"
"""Real producers' OpenLineage events (Airflow, Spark …), Apache 2.0, see tests/data/openlineage/SOURCE.md."""


def producer_events(scenario: str) -> list[dict[str, Any]]:
    """The events of one compatibility-test scenario (``airflow``, ``CLL`` …), in the order sent."""
    paths = sorted((PRODUCERS / scenario / "events").glob("*.json"), key=lambda p: (len(p.stem), p.stem))
    return [json.loads(path.read_text()) for path in paths]


def serve_events(
    folder: Path, events: list[dict[str, Any]], tokens: dict[str, list[str]] | None = None
) -> Iterator[Site]:
    """A server on a store of ``events``, with an operator token of each of ``tokens``' namespaces."""
    lines = folder / "events.ndjson"
    lines.write_text("".join(json.dumps(event) + "\n" for event in events))
    store = f"sqlite:///{folder / 'lineage.db'}"
    assert cli(["ingest", "--store", store, str(lines)]) == 0
    secrets = {}
    with open_store(store) as opened:
        for name, namespaces in (tokens or {}).items():
            secrets[name], _ = create_token(
                opened,
                name=name,
                role="operator",
                namespaces=namespaces,
                created_by="tests",
                now=datetime.now(UTC),
            )
    server, thread, url = start_server(ServerSettings(store=store))
    ORIGINS.add(url)
    yield Site(url, store, secrets)
    server.should_exit = True
    thread.join(timeout=10)
