"""What only the PostgreSQL backend has: schema migrations, errors naming the server, reconnecting,
several writers sharing one log, and the same content giving the same answers as SQLite."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import CHAIN_EVENTS, record_chain
from opslineage import Tracer, open_store
from opslineage.demo import DemoConfig, run_demo
from opslineage.ledger.log import root
from opslineage.ledger.verify import verify_store
from opslineage.model import ParsedEvent, parse_event
from opslineage.query import list_nodes, upstream, why
from opslineage.store import StoreError, postgres
from opslineage.store.archive import archive_store
from opslineage.store.postgres import PostgresStore


def _chain_events(subject: str) -> list[ParsedEvent]:
    tracer = Tracer.in_memory()
    record_chain(tracer, subject=subject)
    return [parse_event(event) for event in tracer.transport.events]  # type: ignore[attr-defined]


def _query(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]


def test_open_store_takes_both_schemes_and_a_new_database_is_at_the_latest_version(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        assert isinstance(store, PostgresStore)
    with open_store(postgres_url.replace("postgresql://", "postgres://", 1), create=False) as store:
        assert isinstance(store, PostgresStore) and store.log_size() == 0
    versions = _query(postgres_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(number,) for number in range(1, len(postgres.MIGRATIONS) + 1)]


def test_an_older_store_is_migrated_forward_and_stays_queryable(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    events = _chain_events("svc-01")
    with monkeypatch.context() as first_release:  # a store made by the first schema, before archiving
        first_release.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:1])
        with open_store(postgres_url) as store:
            store.ingest(events)
    assert _query(postgres_url, "SELECT version FROM schema_migrations") == [(1,)]
    with open_store(f"sqlite:///{tmp_path / 'same.db'}") as same:  # the same content, for comparison
        same.ingest(events)
        action = list_nodes(same, "action")[0].id
        before = same.state_digest(), why(same, action).to_dict()
    with open_store(postgres_url, create=False) as store:  # reading a store migrates it too
        assert (store.state_digest(), why(store, action).to_dict()) == before
        assert store.ingest(_chain_events("svc-02")).accepted == CHAIN_EVENTS
        assert archive_store(store, 18, tmp_path / "archive").to_dict()["moved"]["events"] == 18
        assert why(store, action).to_dict() == before[1] and verify_store(store, None).ok
    versions = _query(postgres_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(number,) for number in range(1, len(postgres.MIGRATIONS) + 1)]


def test_a_failing_migration_changes_nothing(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    open_store(postgres_url).close()
    shipped = len(postgres.MIGRATIONS)
    broken = ("ALTER TABLE nodes ADD COLUMN label text", "SELECT no_such_function()")
    monkeypatch.setattr(postgres, "MIGRATIONS", (*postgres.MIGRATIONS, broken))
    with pytest.raises(StoreError, match="no_such_function"):
        open_store(postgres_url)
    assert _query(postgres_url, "SELECT max(version) FROM schema_migrations") == [(shipped,)]
    assert (
        _query(
            postgres_url,
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'nodes' AND column_name = 'label'",
        )
        == []
    )


def test_a_store_from_a_newer_opslineage_is_refused(postgres_url: str) -> None:
    open_store(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (99)")
    with pytest.raises(StoreError, match="has schema 99, newer than this opslineage"):
        open_store(postgres_url)


def test_no_server_no_database_and_no_store_are_clear_errors(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="no store at") as missing:
        open_store(postgres_url, create=False)
    assert _query(postgres_url, "SELECT to_regclass('schema_migrations')") == [(None,)]
    assert "opslineage init" in str(missing.value)
    absent = postgres_url.rsplit("/", 1)[0] + "/opslineage_no_such_database"
    with pytest.raises(StoreError, match='database "opslineage_no_such_database" does not exist'):
        open_store(absent)
    with pytest.raises(
        StoreError, match=re.escape("cannot open store postgresql://alice:***@127.0.0.1:1/x")
    ) as down:
        PostgresStore("postgresql://alice:s3cret@127.0.0.1:1/x", timeout=2)
    assert "s3cret" not in str(down.value)


def test_a_store_reconnects_after_the_server_closed_its_connections(
    postgres_url: str, postgres_server: psycopg.Connection[Any]
) -> None:
    database = postgres_url.rsplit("/", 1)[1]

    def terminate() -> int:
        rows = postgres_server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchall()
        return len(rows)

    with open_store(postgres_url) as store:
        store.ingest(_chain_events("svc-01"))
        readers = [threading.Thread(target=store.log_size) for _ in range(4)]  # grow the pool a little
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        assert terminate() >= 1
        assert store.log_size() == CHAIN_EVENTS  # a read goes on with a fresh connection
        assert terminate() >= 1
        assert store.ingest(_chain_events("svc-02")).accepted == CHAIN_EVENTS  # and so does a write
        assert terminate() >= 1
        store.set_meta("after", "reconnecting")
        assert store.get_meta("after") == "reconnecting" and verify_store(store, None).ok


def test_two_writers_share_one_log_and_store_each_event_once(postgres_url: str) -> None:
    shared = _chain_events("svc-00")
    own = {writer: [e for i in range(3) for e in _chain_events(f"svc-{writer}{i}")] for writer in (1, 2)}
    stores = {writer: open_store(postgres_url) for writer in own}
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            start.wait()
            events = own[writer] + shared
            for at in range(0, len(events), 4):  # many small transactions, interleaving with the other's
                stores[writer].ingest(events[at : at + 4])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(writer,)) for writer in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    every = {event.digest for events in [shared, *own.values()] for event in events}
    store = stores[1]
    stored = [bytes.fromhex(event.digest) for event in store.events()]
    assert len(stored) == len(every) == store.log_size() and set(stored) == every
    assert [seq for seq, _, _ in store.raw_events(limit=10_000)] == list(range(1, len(every) + 1))
    assert verify_store(store, None).ok
    assert root(stores[1]) == root(stores[2])
    for opened in stores.values():
        opened.close()


def test_threads_may_share_one_store(postgres_url: str) -> None:
    chains = {subject: _chain_events(subject) for subject in ("svc-01", "svc-02", "svc-03", "svc-04")}
    errors: list[BaseException] = []
    with open_store(postgres_url) as store:

        def work(subject: str) -> None:
            try:
                store.ingest(chains[subject])
                assert list_nodes(store, "action", limit=10)
                assert store.node(f"source:test:{subject}") is not None
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(subject,)) for subject in chains]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and store.log_size() == 4 * CHAIN_EVENTS and verify_store(store, None).ok


def test_the_same_content_gives_the_same_digest_and_answers_as_sqlite(
    postgres_url: str, tmp_path: Path
) -> None:
    with open_store(f"sqlite:///{tmp_path / 'demo.db'}") as demo:
        run_demo(demo, DemoConfig(services=2, hours=6, seed=3))
        events = [parse_event(stored.event) for stored in demo.events()]
    stores = [open_store(f"sqlite:///{tmp_path / 'copy.db'}"), open_store(postgres_url)]
    for store in stores:
        for at in range(0, len(events), 50):  # the same chunks, so the same interned ids
            store.ingest(events[at : at + 50])
    sqlite, pg = stores
    assert pg.state_digest() == sqlite.state_digest()
    assert list(pg.counts().items()) == list(sqlite.counts().items())
    assert pg.find_nodes(limit=100_000) == sqlite.find_nodes(limit=100_000)
    assert pg.checkpoints() == sqlite.checkpoints() and root(pg) == root(sqlite)
    actions = list_nodes(sqlite, "action", limit=1000)
    assert actions
    for action in actions:
        assert why(pg, action.id).to_dict() == why(sqlite, action.id).to_dict()
        assert upstream(pg, action.id, depth=30) == upstream(sqlite, action.id, depth=30)
    ids = [node.id for node in actions] + [node.id for node in list_nodes(sqlite, "source")]
    for direction in ("up", "down"):
        assert pg.edges(ids, direction=direction) == sqlite.edges(ids, direction=direction)
        assert pg.walk(ids[-1], direction=direction, depth=3, stop_kinds=["run"]) == sqlite.walk(
            ids[-1], direction=direction, depth=3, stop_kinds=["run"]
        )
    assert [(e.seq, e.event) for e in pg.events(limit=200)] == [
        (e.seq, e.event) for e in sqlite.events(limit=200)
    ]
    for store in stores:
        store.close()


def test_text_postgresql_cannot_hold_is_refused_and_nothing_is_written(postgres_url: str) -> None:
    event = {
        "eventType": "START",
        "eventTime": "2026-01-05T12:00:00Z",
        "run": {"runId": "0190a3c4-1111-7abc-8def-0123456789ab"},
        "job": {"namespace": "nul\u0000space", "name": "load"},
        "producer": "https://example.test/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
    }
    with open_store(postgres_url) as store:
        store.ingest(_chain_events("svc-01"))
        before = store.state_digest()
        with pytest.raises(StoreError, match="NUL"):
            store.ingest([*_chain_events("svc-02"), parse_event(event)])
        assert store.state_digest() == before
        assert store.ingest(_chain_events("svc-02")).accepted == CHAIN_EVENTS and verify_store(store, None).ok
