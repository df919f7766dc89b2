"""Every backend: idempotent, deduplicated, append-only, all-or-nothing, and exact as of a time.

The ``store`` fixture runs each test on SQLite and on PostgreSQL; checks of one backend's own
machinery are marked as such.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import T0, Chain, record_chain
from opslineage import Tracer, open_store
from opslineage.model import parse_event
from opslineage.sdk import MemoryTransport
from opslineage.store import Cut, Store, StoreError

RunSql = Callable[..., list[tuple[Any, ...]]]  # the run_sql fixture (tests/conftest.py)


def _events(transport: MemoryTransport) -> list:
    return [parse_event(event) for event in transport.events]


def test_ingesting_the_same_events_twice_changes_nothing(
    store: Store, captured: tuple[Tracer, MemoryTransport, Chain]
) -> None:
    _, transport, _ = captured
    first = store.ingest(_events(transport))
    counts, digest = store.counts(), store.state_digest()
    second = store.ingest(_events(transport))
    assert first.accepted == len(transport.events) and first.duplicates == 0
    assert second.accepted == 0 and second.duplicates == len(transport.events)
    assert store.counts() == counts and store.state_digest() == digest


def test_duplicates_inside_one_batch_are_stored_once(
    store: Store, captured: tuple[Tracer, MemoryTransport, Chain]
) -> None:
    _, transport, _ = captured
    result = store.ingest(_events(transport) * 2)
    assert result.accepted == len(transport.events) == store.counts()["events"]


def test_identical_artifacts_are_stored_once(store: Store) -> None:
    tracer = Tracer("dedup", store=store, sync=True)
    source = tracer.source("svc")
    when = datetime(2026, 1, 5, tzinfo=UTC)
    for _ in range(3):
        with tracer.ingest(source) as step:
            step.snapshot([[1.0]], {"cpu": "float"}, when, when, captured_at=when)
    assert store.counts()["events"] == 6
    assert store.counts()["artifacts"] == 1
    assert store.counts()["entity:snapshot"] == 1


def test_events_artifacts_and_the_log_cannot_be_updated_or_deleted(
    store: Store, store_url: str, chain: Chain, run_sql: RunSql
) -> None:
    store.add_checkpoint(1, store.log_node(0, 0), "a checkpoint")
    before = store.state_digest(), store.checkpoints(), store.log_range(0, 0, 100)
    statements = [
        "UPDATE events SET body = body",
        "DELETE FROM events",
        "DELETE FROM artifacts",
        "UPDATE artifacts SET content = content",
        "UPDATE log_nodes SET hash = hash",
        "DELETE FROM checkpoints",
    ]
    if store_url.startswith("postgres"):  # TRUNCATE skips row triggers, so it has a trigger of its own
        statements += [f"TRUNCATE {table}" for table in ("events", "artifacts", "log_nodes", "checkpoints")]
    for statement in statements:
        with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError), match="append-only"):
            run_sql(store_url, statement)
    assert (store.state_digest(), store.checkpoints(), store.log_range(0, 0, 100)) == before


def test_a_policy_version_cannot_change_content_and_nothing_is_written(store: Store, chain: Chain) -> None:
    tracer = Tracer.in_memory()
    policy = tracer.policy(
        "cpu-guard", "1", rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 50.0}, action="scale_out"
    )
    tracer.register_policy(policy)
    before = store.state_digest()
    with pytest.raises(StoreError, match="policy:cpu-guard@1 is already recorded"):
        store.ingest(_events(tracer.transport))  # type: ignore[arg-type]
    assert store.state_digest() == before


def test_an_error_while_streaming_chunks_writes_nothing(store: Store, chain: Chain) -> None:
    other = Tracer.in_memory()
    record_chain(other, subject="svc-02")
    before = store.state_digest()

    def chunks():
        yield _events(other.transport)[:5]  # type: ignore[arg-type]
        raise ValueError("line 6: bad event")

    with pytest.raises(ValueError, match="bad event"):
        store.ingest_many(chunks())
    assert store.state_digest() == before


def test_as_of_answers_as_the_store_stood(store: Store) -> None:
    first, second = Tracer.in_memory(), Tracer.in_memory()
    record_chain(first, subject="svc-01")
    record_chain(second, subject="svc-02")
    store.ingest(_events(first.transport))  # type: ignore[arg-type]
    between = datetime.now(UTC)
    time.sleep(0.01)
    store.ingest(_events(second.transport))  # type: ignore[arg-type]
    seq = store.as_of_seq(between)
    assert seq == len(first.transport.events)  # type: ignore[attr-defined]
    assert store.node("source:test:svc-02") is not None
    assert store.node("source:test:svc-02", as_of=seq) is None
    assert store.node("source:test:svc-01", as_of=seq) is not None
    assert store.as_of_seq(datetime(2000, 1, 1, tzinfo=UTC)) == 0


def _shifted(events: list[dict[str, Any]], by: timedelta) -> list:
    """``events`` parsed, each eventTime moved by ``by``."""
    moved = []
    for event in events:
        when = datetime.fromisoformat(event["eventTime"]) + by
        moved.append(parse_event({**event, "eventTime": when.isoformat()}))
    return moved


def test_an_event_time_cut_shows_what_had_happened_whenever_it_was_stored(store: Store) -> None:
    """A replay of last week stored today: --as-of cannot see it on any earlier day, an
    eventTime cut shows exactly what had happened by then, and the two combine."""
    late, early = Tracer.in_memory(), Tracer.in_memory()
    record_chain(late, subject="svc-02")
    record_chain(early, subject="svc-01")
    store.ingest(_shifted(late.transport.events, timedelta(days=1)))  # type: ignore[attr-defined]
    only_late = store.log_size()
    store.ingest(_events(early.transport))  # type: ignore[arg-type]
    between = T0 + timedelta(hours=12)
    assert store.node("source:test:svc-01", as_of=Cut(None, between)) is not None
    assert store.node("source:test:svc-02", as_of=Cut(None, between)) is None
    assert store.node("source:test:svc-02", as_of=Cut(None, between + timedelta(days=1))) is not None
    assert store.node("source:test:svc-01", as_of=Cut(only_late, between + timedelta(days=1))) is None
    assert store.node("source:test:svc-02", as_of=Cut(only_late, between + timedelta(days=1))) is not None
    assert store.node("source:test:svc-01", as_of=Cut(None, T0 - timedelta(seconds=1))) is None
    kinds = store.find_nodes(kind="source", as_of=Cut(None, between))
    assert [node.name for node in kinds] == ["svc-01"]
    action = store.find_nodes(kind="run", type="action", as_of=Cut(None, between))[0].id
    whole = store.walk(action, direction="up", depth=10)
    cut = store.walk(action, direction="up", depth=10, as_of=Cut(None, between))
    late_runs = {f"run:{event['run']['runId']}" for event in late.transport.events}  # type: ignore[attr-defined]
    assert late_runs & set(whole.depths), "the shared policy's first registration is the late one"
    assert not late_runs & set(cut.depths) and set(cut.depths) < set(whole.depths)
    assert store.node("policy:cpu-guard@1", as_of=Cut(None, between)) is not None, "used early, stored late"
    before = store.walk(action, direction="up", depth=10, as_of=Cut(None, T0 - timedelta(seconds=1)))
    assert len(before.depths) <= 1 and before.edges == []


def test_events_come_back_whole(store: Store, captured: tuple[Tracer, MemoryTransport, Chain]) -> None:
    _, transport, chain = captured
    store.ingest(_events(transport))
    stored = store.events(run_id=chain.action.run_id)
    assert [e.event_type for e in stored] == ["START", "COMPLETE"]
    assert (
        stored[1].event
        == transport.events[[e["run"]["runId"] for e in transport.events].index(chain.action.run_id) + 1]
    )


def test_a_missing_sqlite_store_is_an_error_when_not_creating(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        open_store(f"sqlite:///{tmp_path / 'absent.db'}", create=False)
    with pytest.raises(StoreError, match="unsupported store URL"):
        open_store("mysql://localhost/x")


def test_opening_a_sqlite_store_waits_for_another_processs_lock(tmp_path: Path) -> None:
    """Two processes creating one store at once (a worker and a reader, say): the second waits
    for the first's lock instead of failing with 'database is locked'."""
    path = tmp_path / "shared.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(1.0, holder.execute, ("COMMIT",))
    release.start()
    try:
        with open_store(f"sqlite:///{path}") as store:
            assert store.log_size() == 0
    finally:
        release.join()
        holder.close()


def _open_at_once(url: str, openers: int = 6) -> list[BaseException]:
    """Opens the store at `url` from `openers` threads released together; returns what they raised."""
    ready = threading.Barrier(openers)
    failures: list[BaseException] = []

    def opener() -> None:
        ready.wait()
        try:
            open_store(url).close()
        except BaseException as error:  # the assertion names it
            failures.append(error)

    threads = [threading.Thread(target=opener) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return failures


def test_many_openers_of_a_new_store_at_once_all_succeed(store_url: str) -> None:
    """A worker, a server and a CLI started together on a store that does not exist yet: every one
    opens it (one creates it, the others wait for that and find it made)."""
    assert _open_at_once(store_url) == []
    with open_store(store_url, create=False) as store:
        assert store.log_size() == 0


def test_openers_racing_to_switch_a_new_sqlite_file_to_wal_all_succeed(tmp_path: Path) -> None:
    """SQLite refuses one of two connections switching a new file to WAL at once without waiting;
    before the store waited itself, about one round in twelve failed, so forty rounds find it."""
    for round_ in range(40):
        assert _open_at_once(f"sqlite:///{tmp_path / f'{round_}.db'}") == [], f"round {round_}"


def test_a_closed_store_refuses_to_be_used_with_a_store_error(store_url: str) -> None:
    store = open_store(store_url)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.log_size()
    store.close()  # closing again does nothing


def test_walks_follow_edges_both_ways_within_depth(store: Store, chain: Chain) -> None:
    up = store.walk("run:" + chain.action.run_id, direction="up", depth=20)
    assert {s.id for s in chain.snapshots} <= set(up.depths)
    assert "source:test.ns:svc-01" in up.depths
    near = store.walk("run:" + chain.action.run_id, direction="up", depth=1)
    assert set(near.depths) == {
        "run:" + chain.action.run_id,
        chain.decision.id,
        "agent:opslineage-sdk",
        f"run:{chain.decision.run_id}",
    }
    down = store.walk("source:test.ns:svc-01", direction="down", depth=30)
    assert chain.effect.id in down.depths and chain.action.record.id in down.depths  # type: ignore[union-attr]


def test_the_latest_checkpoint_is_the_largest_kept(store: Store) -> None:
    assert store.latest_checkpoint() is None
    for size in (7, 3, 5):
        store.add_checkpoint(size, bytes([size]) * 32, f"note {size}")
    assert store.latest_checkpoint() == (7, bytes([7]) * 32, "note 7") == store.checkpoints()[-1]
