"""Shared fixtures: a fresh store per test on every backend, a recorded remediation chain, and one
demo run per session.

``store`` and ``store_url`` are parametrized over the backends (ids ``sqlite`` and ``postgres``).
The PostgreSQL variant creates a database of its own on the server that
``$OPSLINEAGE_TEST_POSTGRES`` names (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
and drops it afterwards; with no server there, those tests are skipped, or fail when
``OPSLINEAGE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from helpers import Chain, record_chain
from opslineage import Tracer, open_store
from opslineage.demo import DemoConfig, DemoResult, run_demo
from opslineage.sdk import MemoryTransport
from opslineage.store import Store

POSTGRES_URL = os.environ.get("OPSLINEAGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgres"]
APPEND_ONLY_TABLES = (
    *("events", "artifacts", "log_nodes", "checkpoints", "ids", "nodes", "edges", "batches"),
    *("access_events", "access_event_nodes", "access_log_nodes", "access_checkpoints"),
)

RunSql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[psycopg.Connection[Any]]:
    """A connection to the PostgreSQL server's maintenance database, for making test databases."""
    try:
        conn = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable: {' '.join(str(error).split())}"
    else:
        yield conn
        conn.close()
        return
    if os.environ.get("OPSLINEAGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (OPSLINEAGE_REQUIRE_SERVICES=1 requires it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_server: psycopg.Connection[Any]) -> Iterator[str]:
    """The URL of a new, empty database of its own (dropped afterwards, whoever is connected)."""
    name = f"opslineage_test_{uuid.uuid4().hex}"
    database = sql.Identifier(name)
    postgres_server.execute(sql.SQL("CREATE DATABASE {}").format(database))
    postgres_server.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(database))
    yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    postgres_server.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(database))


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a store that does not exist yet, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lineage.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def run_sql() -> RunSql:
    """``run_sql(url, *statements, tamper=False)``: run SQL on a store's database as its owner would,
    behind the store's back; ``tamper=True`` first lifts the append-only triggers. Returns the rows
    of the last statement (empty when it returns none)."""

    def run(url: str, *statements: str, tamper: bool = False) -> list[tuple[Any, ...]]:
        if url.startswith("sqlite:///"):
            db = sqlite3.connect(url[len("sqlite:///") :])
            try:
                if tamper:
                    for table in APPEND_ONLY_TABLES:
                        for op in ("update", "delete"):
                            db.execute(f"DROP TRIGGER IF EXISTS {table}_append_only_{op}")
                rows: list[tuple[Any, ...]] = []
                for statement in statements:
                    rows = db.execute(statement).fetchall()
                db.commit()
                return rows
            finally:
                db.close()
        with psycopg.connect(url) as conn:  # one transaction, committed on leaving
            if tamper:
                for table in APPEND_ONLY_TABLES:
                    conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(sql.Identifier(table)))
            cursor = conn.cursor()
            rows = []
            for statement in statements:
                cursor.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
            return rows

    return run


@pytest.fixture(autouse=True)
def checkpoint_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own cache of remembered checkpoints, never the user's (``verify`` writes it)."""
    path = tmp_path_factory.mktemp("checkpoints") / "cache"
    monkeypatch.setenv("OPSLINEAGE_CHECKPOINT_CACHE", str(path))
    return path


@pytest.fixture(autouse=True)
def spill_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own cache directory, so no test replays (or leaves) spilled events of another:
    the SDK's and the NATS transport's default spill directory is under ``$XDG_CACHE_HOME``."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "opslineage" / "spill"


@pytest.fixture
def chain(store: Store) -> Chain:
    tracer = Tracer("test.ns", store=store, sync=True)
    recorded = record_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    return recorded


@pytest.fixture
def captured() -> tuple[Tracer, MemoryTransport, Chain]:
    tracer = Tracer.in_memory("test.ns")
    recorded = record_chain(tracer)
    assert isinstance(tracer.transport, MemoryTransport)
    return tracer, tracer.transport, recorded


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult]:
    """The default demo, run once for the whole session."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with open_store(f"sqlite:///{path}") as opened:
        result = run_demo(opened, DemoConfig())
    return path, result
