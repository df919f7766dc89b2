"""The web pages' fixtures: Debian's Chromium driven by Playwright, servers on copies of the demo
store, and a page that records every request it makes.

The demo copies have a signed checkpoint and a label rule that makes every snapshot of the demo's
``aiops.demo`` namespace restricted. ``open_site`` has no tokens (everyone reads as admin);
``guarded_site`` has an admin, an operator and an auditor token. Every page of every test records
its requests, and the test fails if one left the origins of these servers. Chromium is
``$OPSLINEAGE_CHROMIUM`` or /usr/bin/chromium; without it the tests skip, or fail under
``OPSLINEAGE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from browsing import CHROMIUM, CHROMIUM_ARGS, ORIGINS, RESTRICTED_NAMESPACE, Site, ours
from live import start_server
from opslineage.cli.main import main as cli
from opslineage.demo import DemoResult
from opslineage.governance.tokens import create_token
from opslineage.ledger.access_log import AccessLog
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import checkpoint, init_log
from opslineage.server import ServerSettings
from opslineage.store import open_store


def _demo_copy(demo_run: tuple[Path, DemoResult], folder: Path) -> str:
    """A copy of the session's demo store in ``folder``, with its log signed and snapshots restricted."""
    source, _ = demo_run
    path = folder / "demo.db"
    with sqlite3.connect(source) as original, sqlite3.connect(path) as copy:
        original.backup(copy)
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        key, _ = init_log(store, key=str(folder / "demo.key"))
        checkpoint(store, load_private_key(key))
    labelled = ["label", "set", "--store", url, "--namespace", RESTRICTED_NAMESPACE, "--kind", "snapshot"]
    assert cli([*labelled, "--level", "restricted"]) == 0
    return url


def _serve(store: str) -> Iterator[str]:
    """Serve ``store`` with its access log as the trail, as ``opslineage serve`` does."""
    with open_store(store) as trail_store, AccessLog(trail_store) as trail:
        server, thread, url = start_server(ServerSettings(store=store), trail=trail)
        ORIGINS.add(url)
        yield url
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def open_site(demo_run: tuple[Path, DemoResult], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server without tokens on a copy of the demo store: every caller is its admin."""
    store = _demo_copy(demo_run, tmp_path_factory.mktemp("open-site"))
    for url in _serve(store):
        yield Site(url, store)


@pytest.fixture(scope="session")
def guarded_site(
    demo_run: tuple[Path, DemoResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A server with tokens on a copy of the demo store: ``tokens[role]`` for admin, operator and auditor."""
    store = _demo_copy(demo_run, tmp_path_factory.mktemp("guarded-site"))
    tokens = {}
    with open_store(store) as opened:
        for role in ("admin", "operator", "auditor"):
            tokens[role], _ = create_token(
                opened, name=f"web-{role}", role=role, created_by="tests", now=datetime.now(UTC)
            )
    for url in _serve(store):
        yield Site(url, store, tokens)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, for one test module. Not for the session: while Playwright's
    sync API runs, its event loop is the thread's running loop, so any later test calling
    ``asyncio.run`` (the NATS alerts, the bus) would fail."""
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set OPSLINEAGE_CHROMIUM)"
        if os.environ.get("OPSLINEAGE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; OPSLINEAGE_REQUIRE_SERVICES=1 requires it", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new browser page; the test fails if the page asked anything of another origin."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
    elsewhere = [url for url in requested if not ours(url)]
    assert elsewhere == [], f"requests left the server's origin: {elsewhere}"
    assert requested, "the page made no request at all"
