"""The audit page in Chromium: the log's checkpoints and integrity on the open demo site, and the
access log only for the roles that may read it on the guarded one."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browsing import ORIGINS, Site, axe_violations, sign_in
from live import start_server
from opslineage.cli.main import main as cli
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import checkpoint, init_log
from opslineage.server import ServerSettings
from opslineage.server.pages import audit as audit_page
from opslineage.store import open_store

AIRFLOW = Path(__file__).parents[1] / "data" / "openlineage" / "compatibility-tests" / "airflow" / "events"


@pytest.fixture
def small_site(tmp_path: Path) -> Iterator[Site]:
    """A server on Airflow's 32 events with a signed checkpoint: small enough for the whole check."""
    lines = tmp_path / "events.ndjson"
    lines.write_text(
        "".join(json.dumps(json.loads(p.read_text())) + "\n" for p in sorted(AIRFLOW.glob("line_*.json")))
    )
    store = f"sqlite:///{tmp_path / 'small.db'}"
    assert cli(["ingest", "--store", store, str(lines)]) == 0
    with open_store(store) as opened:
        key, _ = init_log(opened, key=str(tmp_path / "small.key"))
        checkpoint(opened, load_private_key(key))
    server, thread, url = start_server(ServerSettings(store=store))
    ORIGINS.add(url)
    yield Site(url, store)
    server.should_exit = True
    thread.join(timeout=10)


def test_the_audit_page_shows_the_signed_checkpoint_and_no_integrity_findings(
    page: Any, open_site: Site
) -> None:
    checkpoint = httpx.get(f"{open_site.url}/api/v1/log/checkpoint").json()
    page.goto(f"{open_site.url}/audit")
    first = page.locator("table.audit-checkpoints tbody tr").first
    cells = first.locator("td").all_inner_texts()
    assert cells[0] == str(checkpoint["tree_size"])
    assert cells[1] == checkpoint["root_hash"]
    assert checkpoint["timestamp"].replace("T", " ").replace("Z", " UTC") in cells[2]
    size = int(page.inner_text("#log-size").split()[0])
    assert size >= checkpoint["tree_size"]  # labelling after the conftest signed added events
    assert (
        size
        == httpx.get(
            f"{open_site.url}/api/v1/log/proof/consistency", params={"first": 1, "second": size}
        ).json()["second"]
    )
    integrity = page.inner_text(".audit-integrity")
    assert "No findings" in integrity and "Checked on this view: 1 checkpoint" in integrity
    whole = ("The whole check ran on this view", "did not finish within this page's budget")
    assert any(said in integrity for said in whole)  # the page says which result it shows
    assert page.locator("table.audit-access").count() == 1  # everyone is admin on the open site
    assert axe_violations(page) == []


def test_a_whole_check_past_the_pages_budget_goes_on_in_the_background_until_it_is_shown(
    page: Any, small_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_page, "VERIFY_SECONDS", 0.0)  # no view finishes it within its budget
    page.goto(f"{small_site.url}/audit")
    integrity = page.inner_text(".audit-integrity")
    assert "Running" in integrity and "in the background" in integrity
    deadline = time.monotonic() + 60
    while "finished at" not in integrity:
        assert "ended in an error" not in integrity, integrity
        assert time.monotonic() < deadline, "the background check did not finish in 60 s"
        time.sleep(0.2)
        page.reload()
        integrity = page.inner_text(".audit-integrity")
    assert "No findings" in integrity and "32 events rebuilt" in integrity


def test_an_auditor_reads_the_access_log_with_their_sign_in_and_filters_it(
    page: Any, guarded_site: Site
) -> None:
    sign_in(page, guarded_site, "operator")
    page.goto(f"{guarded_site.url}/audit")  # an operator's page has no access log
    assert page.locator("table.audit-access").count() == 0
    assert "access-log:read" in page.inner_text("#access-log-note")
    assert "log:verify" in page.inner_text(".audit-integrity")
    assert axe_violations(page) == []
    operator_refused = httpx.get(
        f"{guarded_site.url}/api/v1/access-log", headers=_bearer(guarded_site, "operator")
    )
    assert operator_refused.status_code == 403
    page.click("text=Sign out")
    sign_in(page, guarded_site, "auditor")
    page.goto(f"{guarded_site.url}/audit?actor=token:web-auditor")
    rows = _rows(page)
    assert ["sign-in", "allowed"] in [[row[3], row[4]] for row in rows]
    assert all(row[2].startswith("token:web-auditor") for row in rows)
    assert axe_violations(page) == []
    page.fill("#actor", "")
    page.select_option("#outcome", "denied")
    page.click("text=Filter")
    page.wait_for_url(re.compile(r".*outcome=denied.*"))
    denied = _rows(page)
    assert denied and {row[4] for row in denied} == {"denied"}
    assert any(row[2].startswith("token:web-operator") and row[3] == "access-log" for row in denied)


def test_bad_filters_are_a_clear_4xx_and_paging_goes_on_after_the_last_row(guarded_site: Site) -> None:
    headers = _bearer(guarded_site, "auditor")
    for query in ("outcome=maybe", "since=yesterday", "after=x"):
        answer = httpx.get(f"{guarded_site.url}/audit?{query}", headers=headers)
        assert answer.status_code == 400, (query, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html")
    for _ in range(51):  # more access events than a page holds
        assert httpx.get(f"{guarded_site.url}/api/v1/log/checkpoint", headers=headers).status_code == 200
    first = httpx.get(f"{guarded_site.url}/audit", headers=headers).text
    assert first.count('<td class="number seq">') == 50
    after = int(first.split('rel="next" href="/audit?after=')[1].split('"')[0])
    second = httpx.get(f"{guarded_site.url}/audit", params={"after": after}, headers=headers).text
    shown = [int(cell.split("<")[0]) for cell in second.split('<td class="number seq">')[1:]]
    assert shown and min(shown) == after + 1


def test_the_whole_check_runs_on_a_small_log_is_kept_until_it_grows_and_finds_a_changed_event(
    page: Any, small_site: Site
) -> None:
    page.goto(f"{small_site.url}/audit")
    integrity = page.inner_text(".audit-integrity")
    assert "No findings" in integrity and "The whole check ran on this view: 32 events" in integrity
    page.reload()
    assert "on an earlier view" in page.inner_text(".audit-integrity")  # not run again for the same log
    path = small_site.store.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:  # tamper behind the store's back, past its append-only trigger
        db.execute("DROP TRIGGER events_append_only_update")
        db.execute(
            "UPDATE events SET body = CAST(replace(CAST(body AS TEXT), 'BQ.copy', 'BQ.cops') AS BLOB) WHERE seq = 5"
        )
    event = json.loads((AIRFLOW / "line_01.json").read_text()) | {"eventTime": "2026-12-04T00:00:00Z"}
    assert httpx.post(f"{small_site.url}/api/v1/lineage", json=event).status_code in (200, 201)
    page.reload()  # the log grew: the whole check runs again
    integrity = page.inner_text(".audit-integrity")
    assert "No findings" not in integrity and "finding" in integrity
    sequences = page.locator("table.audit-findings tbody td.number").all_inner_texts()
    assert "5" in sequences


def _rows(page: Any) -> list[list[str]]:
    return page.locator("table.audit-access tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent.trim()))"
    )


def _bearer(site: Site, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {site.tokens[role]}"}
