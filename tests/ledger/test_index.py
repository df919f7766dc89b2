"""The graph index (``ids``, ``nodes``, ``edges``) cannot be edited unseen: its tables refuse
UPDATE, DELETE and TRUNCATE like the log's, and ``verify`` rebuilds it from the verified events
and compares it row by row, so an edit made behind the triggers' back fails ``verify``; the
``batches`` must cover the log exactly once.

Every tamper case edits the database directly, on each backend, lifting the append-only triggers
first, as someone with access to it would (the ``run_sql`` fixture).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import RunSql
from helpers import CHAIN_EVENTS, Chain, record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.ledger.verify import INDEX_REPORTED, verify_store
from opslineage.model import parse_event
from opslineage.query import list_nodes, upstream
from opslineage.store import Store, postgres
from opslineage.store.archive import archive_store
from opslineage.store.sqlite_schema import SCHEMA_VERSION

V6_STORE = Path(__file__).parents[1] / "data" / "stores" / "sqlite-v6.db"
V6_STATE = "2bd7077a8849207e6f8ae827feadc9ed2da6ba6ea86b9c9ded0f98100d78bca9"  # as schema 6 computed it
INDEX_TABLES = ("ids", "nodes", "edges", "batches")
AGENT = "agent:opslineage-sdk"
FORGED = "run:00000000-0000-4000-8000-000000000bad"


def _verify(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    """``opslineage verify --json`` on the store: its exit status and its report."""
    status = main(["verify", "--store", url, "--json"])
    return status, json.loads(capsys.readouterr().out)


def _action(store: Store) -> str:
    """The id of the chain's action run (the node `why` and `upstream` start from)."""
    return list_nodes(store, "action")[0].id


def _nid(node_id: str) -> str:
    return f"(SELECT nid FROM ids WHERE id = '{node_id}')"


def test_deleting_an_actions_edges_and_renaming_it_changes_upstream_and_fails_verify(
    store: Store, store_url: str, chain: Chain, run_sql: RunSql, capsys: pytest.CaptureFixture[str]
) -> None:
    action = _action(store)
    assert len(upstream(store, action, depth=1).nodes) == 4
    status, report = _verify(store_url, capsys)
    assert status == 0 and report["index_differences"] == 0 and report["index_rows_checked"] > CHAIN_EVENTS
    run_sql(
        store_url,
        f"DELETE FROM edges WHERE src = {_nid(action)}",
        f"UPDATE nodes SET name = 'remediation.noop' WHERE nid = {_nid(action)}",
        f"UPDATE ids SET id = '{FORGED}' WHERE id = '{action}'",
        tamper=True,
    )
    assert [node["id"] for node in upstream(store, FORGED, depth=1).nodes] == [FORGED]
    status, report = _verify(store_url, capsys)
    assert status == 1 and not report["ok"]
    findings = [finding["what"] for finding in report["findings"]]
    assert f"ids: {action} is missing (event 16 names it)" in findings
    assert f"nodes: {action} is missing (event 16 adds it)" in findings
    assert f"nodes: {FORGED} is extra: event 16 does not add it" in findings
    deleted = [f for f in findings if f.startswith(f"edges: {action} -") and "is missing (event " in f]
    assert len(deleted) == 3 and report["index_differences"] == len(findings)


def test_the_verify_command_prints_what_differs_in_the_index(
    store: Store, store_url: str, chain: Chain, run_sql: RunSql, capsys: pytest.CaptureFixture[str]
) -> None:
    action = _action(store)
    run_sql(store_url, f"DELETE FROM edges WHERE src = {_nid(action)} AND kind = 'used'", tamper=True)
    assert main(["verify", "--store", store_url]) == 1
    out = capsys.readouterr().out
    assert "FAILED at sequence 17: 1 finding(s)" in out
    assert f"seq 17: edges: {action} -used-> entity:sha256:" in out and "is missing (event 17 adds it)" in out


# (table, edit, SQL making it, what the finding says): a row deleted, a row inserted, a column changed.
EDITS = [
    (
        "nodes",
        "deleted",
        "DELETE FROM nodes WHERE nid = {action_nid}",
        "nodes: {action} is missing (event 16 adds it)",
    ),
    (
        "nodes",
        "inserted",
        "INSERT INTO ids VALUES (100000, '{forged}');"
        " INSERT INTO nodes VALUES (100000, 'run', 'action', 'test.ns', 'evil', NULL, NULL, 16)",
        "nodes: {forged} is extra: event 16 does not add it",
    ),
    (
        "nodes",
        "changed",
        "UPDATE nodes SET name = 'remediation.noop' WHERE nid = {action_nid}",
        "nodes: {action}: name is 'remediation.noop', the events say 'remediation.scale_out'",
    ),
    (
        "edges",
        "deleted",
        "DELETE FROM edges WHERE src = {action_nid} AND kind = 'wasAssociatedWith'",
        "edges: {action} -wasAssociatedWith-> {agent} is missing (event 16 adds it)",
    ),
    (
        "edges",
        "inserted",
        "INSERT INTO edges VALUES ({action_nid}, {agent_nid}, 'wasInformedBy', NULL, 16)",
        "edges: {action} -wasInformedBy-> {agent} is extra: event 16 does not add it",
    ),
    (
        "edges",
        "changed",
        "UPDATE edges SET role = 'bystander' WHERE src = {action_nid} AND kind = 'wasAssociatedWith'",
        "edges: {action} -wasAssociatedWith-> {agent}: role is 'bystander', the events say 'executor'",
    ),
    (
        "ids",
        "deleted",
        "DELETE FROM ids WHERE id = '{action}'",
        "ids: {action} is missing (event 16 names it)",
    ),
    (
        "ids",
        "inserted",
        "INSERT INTO ids VALUES (100000, '{forged}')",
        "ids: {forged} (nid 100000) is extra: no node or edge uses it",
    ),
    (
        "ids",
        "changed",
        "UPDATE ids SET id = '{forged}' WHERE id = '{action}'",
        "ids: {action} is missing (event 16 names it)",
    ),
    (
        "batches",
        "deleted",
        "DELETE FROM batches WHERE first_seq = 14",
        "batches: batch 15 covers events 15 to 15, but the batches before it end at event 13",
    ),
    (
        "batches",
        "inserted",
        "INSERT INTO batches (first_seq, last_seq, recorded_at) VALUES (21, 21, '2026-01-07T00:00:00+00:00')",
        "batches: the batches end at event 21, the log at 20",
    ),
    (
        "batches",
        "changed",
        "UPDATE batches SET last_seq = 15 WHERE first_seq = 14",
        "batches: batch 15 covers events 15 to 15, but the batches before it end at event 15",
    ),
]


@pytest.mark.parametrize(
    ("table", "edit", "statements", "finding"), EDITS, ids=[f"{t}-{e}" for t, e, _, _ in EDITS]
)
def test_every_kind_of_edit_of_every_index_table_fails_verify(
    store: Store,
    store_url: str,
    chain: Chain,
    run_sql: RunSql,
    capsys: pytest.CaptureFixture[str],
    table: str,
    edit: str,
    statements: str,
    finding: str,
) -> None:
    action = _action(store)
    names = {
        "action": action,
        "agent": AGENT,
        "forged": FORGED,
        "action_nid": _nid(action),
        "agent_nid": _nid(AGENT),
    }
    assert _verify(store_url, capsys)[0] == 0
    run_sql(store_url, *statements.format(**names).split("; "), tamper=True)
    status, report = _verify(store_url, capsys)
    assert status == 1
    assert finding.format(**names) in [f["what"] for f in report["findings"]]
    assert all(f["what"].startswith(("ids: ", "nodes: ", "edges: ", "batches: ")) for f in report["findings"])


def test_the_first_differences_are_listed_and_all_are_counted(
    store: Store, store_url: str, chain: Chain, run_sql: RunSql, capsys: pytest.CaptureFixture[str]
) -> None:
    strays = INDEX_REPORTED + 5
    values = ", ".join(f"({100000 + i}, 'run:stray-{i}')" for i in range(strays))
    run_sql(store_url, f"INSERT INTO ids VALUES {values}", tamper=True)
    report = verify_store(store, None)
    assert not report.ok and report.index_differences == strays
    assert len(report.findings) == INDEX_REPORTED
    assert report.findings[0].what.startswith("ids: run:stray-0 (nid 100000)")
    assert main(["verify", "--store", store_url]) == 1
    out = capsys.readouterr().out
    assert f"differs from the events in {strays} rows; the first {INDEX_REPORTED} are listed" in out


def test_rows_stamped_beyond_the_log_are_extra(
    store: Store, store_url: str, chain: Chain, run_sql: RunSql
) -> None:
    run_sql(
        store_url,
        f"INSERT INTO edges VALUES ({_nid(_action(store))}, {_nid(AGENT)}, 'wasInformedBy', NULL, {CHAIN_EVENTS + 1})",
        tamper=True,
    )
    report = verify_store(store, None)
    assert [(f.seq, f.what.split(" is ")[-1]) for f in report.findings] == [
        (CHAIN_EVENTS + 1, f"extra: event {CHAIN_EVENTS + 1} does not add it")
    ]


def test_the_index_of_archived_events_is_checked_from_their_segments(
    store: Store, store_url: str, chain: Chain, run_sql: RunSql, tmp_path: Path
) -> None:
    archive_store(store, store.log_size(), tmp_path / "archive")
    clean = verify_store(store, None)
    assert clean.ok and clean.segments == 1 and clean.index_rows > CHAIN_EVENTS
    action = _action(store)
    run_sql(store_url, f"UPDATE nodes SET type = 'effect' WHERE nid = {_nid(action)}", tamper=True)
    report = verify_store(store, None)
    assert [f.what for f in report.findings] == [
        f"nodes: {action}: type is 'effect', the events say 'action'"
    ]


@pytest.mark.parametrize("table", INDEX_TABLES)
def test_the_index_tables_refuse_updates_deletes_and_truncation(
    store: Store, store_url: str, chain: Chain, run_sql: RunSql, table: str
) -> None:
    before = store.state_digest(), run_sql(store_url, f"SELECT count(*) FROM {table}")
    statements = [
        f"UPDATE {table} SET seq = seq" if table != "ids" else "UPDATE ids SET id = id",
        f"DELETE FROM {table}",
    ]
    if table == "batches":
        statements[0] = "UPDATE batches SET actor = 'someone else'"
    if store_url.startswith("postgres"):
        statements.append(f"TRUNCATE {table}")
    for statement in statements:
        with pytest.raises(
            (sqlite3.IntegrityError, psycopg.IntegrityError), match=f"{table} are append-only"
        ):
            run_sql(store_url, statement)
    assert (store.state_digest(), run_sql(store_url, f"SELECT count(*) FROM {table}")) == before


def test_a_sqlite_store_of_schema_6_is_migrated_verifies_and_its_index_is_append_only(
    tmp_path: Path, run_sql: RunSql
) -> None:
    path = tmp_path / "v6.db"
    shutil.copy(V6_STORE, path)
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        report = verify_store(store, None)
        assert store.state_digest() == V6_STATE and report.ok and report.index_rows > CHAIN_EVENTS
    for table in INDEX_TABLES:
        with pytest.raises(sqlite3.IntegrityError, match=f"{table} are append-only"):
            run_sql(url, f"DELETE FROM {table}")
    run_sql(url, "UPDATE nodes SET name = 'renamed' WHERE kind = 'run' AND type = 'action'", tamper=True)
    with open_store(url) as store:
        assert [f.what.split(": ")[-1] for f in verify_store(store, None).findings] == [
            "name is 'renamed', the events say 'remediation.scale_out'"
        ]


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_a_postgresql_store_of_the_step_before_is_migrated_verifies_and_its_index_is_append_only(
    store_url: str, monkeypatch: pytest.MonkeyPatch, run_sql: RunSql
) -> None:
    tracer = Tracer.in_memory()
    record_chain(tracer)
    events = [parse_event(e) for e in tracer.transport.events]  # type: ignore[attr-defined]
    with monkeypatch.context() as earlier:  # a store made by the schema before this step
        earlier.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:3])
        with open_store(store_url) as old:
            old.ingest(events)
            before = old.state_digest()
        run_sql(store_url, "UPDATE batches SET actor = actor")  # nothing refused it then
        run_sql(store_url, "UPDATE nodes SET name = name")
    assert run_sql(store_url, "SELECT max(version) FROM schema_migrations") == [(3,)]
    with open_store(store_url) as store:
        assert store.state_digest() == before and verify_store(store, None).ok
    assert run_sql(store_url, "SELECT max(version) FROM schema_migrations") == [(len(postgres.MIGRATIONS),)]
    for table in INDEX_TABLES:
        with pytest.raises(psycopg.IntegrityError, match=f"{table} are append-only"):
            run_sql(store_url, f"TRUNCATE {table}")
