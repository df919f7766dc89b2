"""The access log: every read as a leaf of a Merkle log of its own, on both backends; searched by
actor, node, time and outcome; proven with the merkle module; written by many threads into one
tree; checked by verify (a changed byte names its access event); signed under ``<origin>/access``;
and fail-closed: a read whose event cannot be written is refused."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from conftest import RunSql
from helpers import Chain
from opslineage import open_store
from opslineage.governance import AccessDenied, AccessEvent, Principal
from opslineage.ledger.access_log import (
    ACCESS_SUFFIX,
    AccessLog,
    AccessLogUnavailable,
    access_checkpoint,
    access_consistency,
    access_inclusion,
    access_row,
    verify_access_log,
)
from opslineage.ledger.checkpoint import parse_note, sign
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import init_log
from opslineage.ledger.verify import verify_store
from opslineage.merkle import leaf_hash, verify_consistency, verify_inclusion
from opslineage.model import InvalidEvent
from opslineage.query import Reader
from opslineage.query.reader import AccessRecord
from opslineage.store import Store
from trail import one_byte_changed, refuse_access_writes

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _event(i: int, *, actor: str = "token:ops", outcome: str = "allowed", at: datetime = T0) -> AccessEvent:
    return AccessEvent(
        name="why",
        actor=actor,
        role="operator",
        at=(at + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
        client="10.0.0.7:51000",
        outcome=outcome,  # type: ignore[arg-type]
        reason="lineage:read needed" if outcome == "denied" else None,
        target=f"run:{i}",
        nodes=[f"entity:n{i}", "policy:guard@1"],
    )


def test_events_are_appended_and_found_by_every_filter(store: Store) -> None:
    with AccessLog(store) as log:
        for i in range(6):
            log.record(
                _event(
                    i,
                    actor="token:ops" if i % 2 else "token:audit",
                    outcome="denied" if i == 4 else "allowed",
                )
            )
    assert store.access_size() == 6
    rows = store.access_rows()
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].body == access_row(_event(0, actor="token:audit")).body
    assert store.access_log_node(0, 0) == leaf_hash(rows[0].body)

    assert [r.seq for r in store.search_access(actor="token:ops")] == [2, 4, 6]
    assert [r.seq for r in store.search_access(outcome="denied")] == [5]
    assert [r.seq for r in store.search_access(node="entity:n3")] == [4]
    assert [r.seq for r in store.search_access(node="run:2")] == [3], "the target is indexed too"
    assert len(store.search_access(node="policy:guard@1")) == 6
    assert [r.seq for r in store.search_access(since=T0 + timedelta(seconds=4))] == [5, 6]
    assert [r.seq for r in store.search_access(since=T0 + timedelta(hours=2, seconds=4))] == []
    assert [r.seq for r in store.search_access(limit=2, after=3)] == [4, 5]
    assert [r.seq for r in store.search_access(actor="token:audit", node="entity:n4", outcome="denied")] == [
        5
    ]


def test_inclusion_and_consistency_proofs_verify(store: Store) -> None:
    with AccessLog(store) as log:
        for i in range(11):
            log.record(_event(i))
    rows = {row.seq: row for row in store.access_rows()}
    for seq in (1, 6, 11):
        proof = access_inclusion(store, seq)
        assert proof["leaf_hash"] == leaf_hash(rows[seq].body).hex()
        verify_inclusion(
            leaf_hash(rows[seq].body),
            seq - 1,
            11,
            [bytes.fromhex(node) for node in proof["audit_path"]],
            bytes.fromhex(proof["root_hash"]),
        )
    reader = Reader(store, Principal.token("audit", "auditor"))
    assert reader.access_inclusion_proof(6).to_dict() == access_inclusion(store, 6)
    assert reader.access_consistency_proof(5, 11).to_dict() == access_consistency(store, 5, 11)
    with pytest.raises(AccessDenied, match="access-log:read"):
        Reader(store, Principal.token("oncall", "operator")).access_inclusion_proof(6)
    proof = access_consistency(store, 5, 11)
    verify_consistency(
        5,
        11,
        bytes.fromhex(proof["first_root"]),
        bytes.fromhex(proof["second_root"]),
        [bytes.fromhex(node) for node in proof["proof"]],
    )
    with pytest.raises(ValueError, match="between 1 and the tree size"):
        access_inclusion(store, 12)


def _in_eight_threads(work: Callable[[int, threading.Barrier], None]) -> None:
    """Run ``work(n, start)`` in 8 threads (n = 0 … 7), which wait at ``start`` to begin together."""
    start = threading.Barrier(8)
    threads = [threading.Thread(target=work, args=(n, start)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_eight_threads_on_one_log_share_transactions_and_one_tree(store: Store) -> None:
    log = AccessLog(store)

    def read(thread: int, start: threading.Barrier) -> None:
        start.wait()
        for i in range(25):
            log.record(_event(thread * 100 + i, actor=f"token:t{thread}"))

    _in_eight_threads(read)
    log.close()
    assert store.access_size() == 200
    assert log.commits < 200, "records made at the same time were written together"
    assert all(len(store.search_access(actor=f"token:t{n}", limit=1000)) == 25 for n in range(8))
    report = verify_access_log(store, None)
    assert (report.ok, report.events) == (True, 200), report.findings[:3]


def test_eight_writers_with_stores_of_their_own_land_in_one_tree(store_url: str) -> None:
    open_store(store_url).close()

    def write(thread: int, start: threading.Barrier) -> None:
        with open_store(store_url) as own, AccessLog(own) as log:
            start.wait()
            for i in range(10):
                log.record(_event(thread * 100 + i, actor=f"token:w{thread}"))

    _in_eight_threads(write)
    with open_store(store_url) as store:
        assert [row.seq for row in store.access_rows()] == list(range(1, 81))
        report = verify_access_log(store, None)
        assert (report.ok, report.events) == (True, 80), report.findings[:3]


def test_a_changed_byte_in_an_access_event_fails_verify_naming_it(store_url: str, run_sql: RunSql) -> None:
    with open_store(store_url) as store, AccessLog(store) as log:
        for i in range(5):
            log.record(_event(i))
        assert verify_store(store, None).ok
    run_sql(store_url, one_byte_changed(store_url, 4, "run:3", "run:9"), tamper=True)
    with open_store(store_url) as store:
        report = verify_store(store, None)
    assert not report.ok and report.findings == [], "the lineage log itself is intact"
    assert report.access is not None
    assert {finding.seq for finding in report.access.findings} == {4}
    assert "does not match its log leaf" in report.access.findings[0].what


def test_a_deleted_access_event_fails_verify(store_url: str, run_sql: RunSql) -> None:
    with open_store(store_url) as store, AccessLog(store) as log:
        for i in range(3):
            log.record(_event(i))
    run_sql(store_url, "DELETE FROM access_events WHERE seq = 2", tamper=True)
    with open_store(store_url) as store:
        report = verify_access_log(store, None)
    assert [(f.seq, f.what) for f in report.findings] == [
        (2, "access event is missing (deleted from the store)")
    ]


def test_checkpoints_are_signed_under_the_access_origin(store: Store, tmp_path: Path) -> None:
    key_file = tmp_path / "log.key"
    _, origin = init_log(store, key=str(key_file), origin="example.org/lineage")
    with AccessLog(store, key=str(key_file)) as log:
        log.record(_event(0))  # the first event is due a checkpoint (none yet)
        log.record(_event(1))  # not due again for CHECKPOINT_SECONDS
    signed = Reader(store, Principal.token("audit", "auditor")).access_checkpoint()
    assert signed is not None and (signed.origin, signed.tree_size) == (origin + ACCESS_SUFFIX, 1)
    key = load_private_key(key_file)
    signed.verify(key.public_key())
    made = access_checkpoint(store, key)
    assert made.tree_size == 2 and parse_note(made.note).origin == "example.org/lineage/access"
    report = verify_access_log(store, key.public_key())
    assert (report.ok, report.checkpoints, report.size) == (True, 2, 2)

    # a checkpoint of the access log signed under the lineage log's origin is not an access checkpoint
    with AccessLog(store) as more:
        more.record(_event(2))
    forged = sign(key, origin, 3, made.root_hash, T0)
    store.add_access_checkpoint(3, forged.root_hash, forged.note)
    findings = verify_access_log(store, key.public_key()).findings
    assert any("not 'example.org/lineage/access'" in f.what for f in findings)
    assert any("root differs" in f.what for f in findings)


def test_a_read_whose_event_cannot_be_written_is_refused(
    store_url: str, chain: Chain, run_sql: RunSql
) -> None:
    refuse_access_writes(run_sql, store_url)
    with open_store(store_url) as store:
        log = AccessLog(store)
        reader = Reader(store, Principal.local_admin(), log, "cli")
        with pytest.raises(AccessLogUnavailable, match="the read is refused"):
            reader.why("run:" + chain.action.run_id)
        with pytest.raises(AccessLogUnavailable, match="access events refused"):
            reader.access_log()
        assert store.access_size() == 0
        log.close()
        with pytest.raises(AccessLogUnavailable, match="closed"):
            log.record(_event(0))


def test_a_read_waits_no_longer_than_the_timeout_behind_a_stuck_write(store_url: str) -> None:
    """Another writer holds the database, so the first reader's write waits for its lock; a second
    reader, queued behind that write, is refused after the timeout and its event left out (its
    read was not answered). The first goes through once the lock is let go."""
    open_store(store_url).close()
    sqlite = store_url.startswith("sqlite:///")
    holder: Any
    if sqlite:
        holder = sqlite3.connect(store_url[len("sqlite:///") :], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    else:
        holder = psycopg.connect(store_url)
        holder.execute("LOCK TABLE access_events IN EXCLUSIVE MODE")
    with open_store(store_url) as store:
        log = AccessLog(store, timeout=0.5)
        first = threading.Thread(target=log.record, args=(_event(0),))
        first.start()
        deadline = time.monotonic() + 5
        while not log._busy and time.monotonic() < deadline:  # the first write is under way
            time.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(AccessLogUnavailable, match=r"within 0\.5 s: the read is refused"):
            log.record(_event(1))
        assert time.monotonic() - started < 3
        holder.execute("ROLLBACK") if sqlite else holder.rollback()
        holder.close()
        first.join()
        log.close()
        assert [row.body for row in store.access_rows()] == [access_row(_event(0)).body]


def test_queued_mode_refuses_reads_once_a_write_fails_and_keeps_the_events(
    store_url: str, run_sql: RunSql
) -> None:
    open_store(store_url).close()
    with open_store(store_url) as store:
        log = AccessLog(store, wait=False, timeout=2)
        log.record(_event(0))
        log.flush()
        assert store.access_size() == 1 and log.commits == 1
        refuse_access_writes(run_sql, store_url)
        log.record(_event(1))  # queued: the read is answered, its event not yet written
        with pytest.raises(AccessLogUnavailable, match=r"1 access event\(s\) are not written"):
            log.flush(timeout=1)
        with pytest.raises(
            AccessLogUnavailable,
            match=r"cannot be written \((.|\n)*access events refused(.|\n)*the read is refused",
        ):
            log.record(_event(2))
        run_sql(
            store_url,
            "DROP TRIGGER no_access" + ("" if store_url.startswith("sqlite") else " ON access_events"),
        )
        log.flush()  # the writer tried again: the kept event is written, in order
        log.record(_event(3))
        log.close()
        assert [row.body for row in store.access_rows()] == [access_row(_event(i)).body for i in (0, 1, 3)]


def test_queued_mode_refuses_reads_when_the_queue_is_too_far_behind(store_url: str) -> None:
    open_store(store_url).close()
    holder = (
        sqlite3.connect(store_url[len("sqlite:///") :], isolation_level=None)
        if store_url.startswith("sqlite")
        else psycopg.connect(store_url)
    )
    holder.execute(
        "BEGIN IMMEDIATE" if store_url.startswith("sqlite") else "LOCK TABLE access_events IN EXCLUSIVE MODE"
    )
    with open_store(store_url) as store:
        log = AccessLog(store, wait=False, backlog=2, lag=60)
        log.record(_event(0))  # taken by the writer, which waits for the lock
        log.record(_event(1))
        with pytest.raises(AccessLogUnavailable, match=r"2 event\(s\) behind: the read is refused"):
            log.record(_event(2))
        holder.execute("ROLLBACK") if store_url.startswith("sqlite") else holder.rollback()
        holder.close()
        log.close()
        assert store.access_size() == 2


def test_denied_reads_are_access_events_with_the_au3_fields(store: Store, chain: Chain) -> None:
    log = AccessLog(store)
    operator = Reader(store, Principal.token("oncall", "operator"), log, "10.1.2.3:4444")
    with pytest.raises(AccessDenied, match="access-log:read"):
        operator.access_log()
    producer = Reader(store, Principal.token("ingest", "producer"), log, "10.1.2.4:5555")
    with pytest.raises(AccessDenied):
        producer.why("run:" + chain.action.run_id)
    Reader(store, Principal.anonymous(), log, "10.1.2.5:6666").refuse("why", "no token", "run:x")
    auditor = Reader(store, Principal.token("audit", "auditor"), log, "10.9.9.9:1")
    denied = auditor.access_log(outcome="denied")
    assert [(r.name, r.actor, r.role, r.client, r.outcome) for r in denied] == [
        ("access-log", "token:oncall", "operator", "10.1.2.3:4444", "denied"),
        ("why", "token:ingest", "producer", "10.1.2.4:5555", "denied"),
        ("why", "anonymous", None, "10.1.2.5:6666", "denied"),
    ]
    assert (denied[2].reason, denied[2].target) == ("no token", "run:x")
    assert "access-log:read" in (denied[0].reason or "") and denied[1].target == "run:" + chain.action.run_id
    assert all(datetime.fromisoformat(r.at) > datetime.now(UTC) - timedelta(minutes=5) for r in denied)
    everything = auditor.access_log()
    assert everything[-1].name == "access-log" and everything[-1].actor == "token:audit", (
        "reading the access log is itself recorded"
    )
    assert [r.seq for r in auditor.access_log(node="run:" + chain.action.run_id)] == [2]
    log.close()


def test_the_access_log_answer_is_typed_and_json_ready(store: Store) -> None:
    log = AccessLog(store)
    reader = Reader(store, Principal.local_admin(), log, "cli")
    log.record(_event(0))
    (record,) = reader.access_log(limit=1)
    assert (
        isinstance(record, AccessRecord)
        and record.seq == 1
        and record.nodes == ["entity:n0", "policy:guard@1"]
    )
    as_json = msgspec.json.decode(msgspec.json.encode(record.to_dict()))
    assert next(iter(as_json)) == "seq" and as_json["client"] == "10.0.0.7:51000"
    with pytest.raises(InvalidEvent, match="outcome must be one of"):
        reader.access_log(outcome="maybe")
    with pytest.raises(InvalidEvent, match="limit must be"):
        reader.access_log(limit=0)
    log.close()


def test_reads_append_access_events_and_never_change_the_lineage(store: Store, chain: Chain) -> None:
    before = (store.state_digest(), store.log_size())
    with AccessLog(store) as log:
        reader = Reader(store, Principal.local_admin(), log, "cli")
        reader.why("run:" + chain.action.run_id)
        reader.detail(chain.decision.id)
        reader.search(kind="run")
    assert (store.state_digest(), store.log_size()) == before
    assert [row.name for row in store.access_rows()] == ["why", "node", "search"]
