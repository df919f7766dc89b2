"""Durability past the process (issue 10, defect 8): what a store acknowledged survives an OS crash
or a power loss, not only a ``kill -9``.

SQLite: ``synchronous`` is a setting of each connection, not of the file, so every connection a
store opens must run with FULL (2), which in WAL mode syncs the WAL at every commit; with NORMAL
(1) a commit is synced only at the next checkpoint. PostgreSQL: the store's sessions leave
``synchronous_commit`` on, so a commit returns only once its WAL is flushed.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec
import psycopg
import pytest
from psycopg import sql

from conftest import POSTGRES_URL
from helpers import CHAIN_EVENTS, record_chain
from live import start_server
from opslineage import Tracer, open_store
from opslineage.server import ServerSettings

FULL = 2


@pytest.fixture
def opened_connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """Every SQLite connection opened while the test runs (real connections, only recorded)."""
    opened: list[sqlite3.Connection] = []
    connect = sqlite3.connect
    lock = threading.Lock()

    def recording(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        with lock:
            opened.append(connection)
        return connection

    monkeypatch.setattr(sqlite3, "connect", recording)
    return opened


def _synchronous(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA synchronous").fetchone()[0])


def _events() -> list[dict[str, Any]]:
    tracer = Tracer.in_memory("test.ns")
    record_chain(tracer)
    return list(tracer.transport.events)  # type: ignore[attr-defined]


def test_a_sqlite_store_syncs_every_commit(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'lineage.db'}") as store:
        assert _synchronous(store.db) == FULL  # type: ignore[attr-defined]
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # type: ignore[attr-defined]


def test_every_connection_the_server_opens_syncs_every_commit(
    tmp_path: Path, opened_connections: list[sqlite3.Connection]
) -> None:
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    server, thread, base = start_server(ServerSettings(store=url, token="s3cret"))
    try:
        with httpx.Client(
            base_url=base,
            headers={"Authorization": "Bearer s3cret", "Content-Type": "application/json"},
            timeout=30,
        ) as client:
            events = _events()
            assert len(events) == CHAIN_EVENTS
            for event in events:  # through the group committer's connection
                response = client.post("/api/v1/lineage", content=msgspec.json.encode(event))
                assert response.status_code == 201, response.text

            def read() -> None:  # on the worker threads' own connections
                assert client.get("/api/v1/nodes").status_code == 200

            readers = [threading.Thread(target=read) for _ in range(4)]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join()
        live = [c for c in opened_connections if _is_open(c)]
        # the committer's and at least one reading thread's, beside any the startup closed
        assert len(live) >= 2
        assert [_synchronous(c) for c in live] == [FULL] * len(live)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _is_open(connection: sqlite3.Connection) -> bool:
    try:
        connection.execute("SELECT 1")
    except sqlite3.ProgrammingError:  # closed
        return False
    return True


@pytest.fixture
def default_database(postgres_server: psycopg.Connection[Any]) -> Iterator[str]:
    """A new database with the server's own settings (the suite's others turn synchronous_commit
    off for speed), dropped afterwards."""
    name = f"opslineage_test_{uuid.uuid4().hex}"
    postgres_server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    postgres_server.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_postgres_store_leaves_synchronous_commit_on(default_database: str) -> None:
    with open_store(default_database) as store:
        tracer = Tracer("test.ns", store=store, sync=True)
        record_chain(tracer)
        tracer.close()
        assert store.counts()["events"] == CHAIN_EVENTS
        with store._pool.connection() as conn:  # type: ignore[attr-defined]  (one the writes used)
            row = conn.execute("SHOW synchronous_commit").fetchone()
    assert row is not None
    assert row[0] == "on"
