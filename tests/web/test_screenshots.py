"""A screenshot of every page, made by the tests' Chromium, once each page shows what it is for
(the remediation page once its proof badge has been checked). They go to
``$OPSLINEAGE_SCREENSHOTS`` when it is set (``OPSLINEAGE_SCREENSHOTS=docs/web python -m pytest
tests/web/test_screenshots.py`` makes the pictures of docs/web.md), else to the test's own folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from browsing import Site, producer_events, serve_events
from opslineage.demo import DemoResult

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from serve_events(tmp_path_factory.mktemp("shots-airflow"), producer_events("airflow"))


def test_every_page_is_pictured(
    page: Any, open_site: Site, airflow: Site, demo_run: tuple[Path, DemoResult], tmp_path: Path
) -> None:
    folder = Path(os.environ.get("OPSLINEAGE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    _, result = demo_run
    fixed = next(r for r in result.remediations if r.incident is not None)
    policy = httpx.get(f"{open_site.url}/api/v1/nodes", params={"kind": "policy", "limit": 1}).json()
    upload = "dataset:bigquery:mock-project.test.upload"
    pages = {
        "sign-in": f"{open_site.url}/sign-in",
        "catalog": f"{open_site.url}/catalog?kind=action",
        "node": f"{open_site.url}/nodes/{quote(policy['nodes'][0]['id'], safe=':@')}",
        "remediation": f"{open_site.url}/remediations/run:{fixed.run_id}",
        "timeline": f"{open_site.url}/timeline?target={quote(fixed.target)}",
        "effectiveness": f"{open_site.url}/effectiveness",
        "lineage": f"{airflow.url}/lineage?node={quote(upload)}&depth=3",
        "audit": f"{open_site.url}/audit",
    }
    for name, url in pages.items():
        page.goto(url)
        if name == "remediation":
            page.locator("#proof-badge[data-state=verified]").wait_for()
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 20_000, name  # a picture with something on it
