"""Group commit on every backend: concurrent single-event POSTs share transactions, and each
request still gets its own all-or-nothing answer."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from conftest import RunSql
from helpers import CHAIN_EVENTS, record_chain
from live import LiveServer, start_server
from opslineage import Tracer, open_store
from opslineage.ingest import GroupCommitter, IngestPipeline, IngestResult
from opslineage.model import InvalidEvent, parse_event
from opslineage.server import ServerSettings
from opslineage.store import StoreError, postgres

JSON = {"Content-Type": "application/json"}
AUTH = {"Authorization": "Bearer s3cret", **JSON}


@pytest.fixture
def live(store_url: str) -> Iterator[LiveServer]:
    """A server with a token on a store of each backend (as tests/server has)."""
    server, thread, url = start_server(ServerSettings(store=store_url, token="s3cret"))
    yield LiveServer(url, store_url)
    server.should_exit = True
    thread.join(timeout=10)


def _chain(subject: str) -> list[dict[str, Any]]:
    tracer = Tracer.in_memory("test.ns")
    record_chain(tracer, subject=subject)
    return list(tracer.transport.events)  # type: ignore[attr-defined]


def _rogue_policy() -> dict[str, Any]:
    tracer = Tracer.in_memory("test.ns")
    policy = tracer.policy(
        "cpu-guard", "1", rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 99.0}, action="scale_out"
    )
    tracer.register_policy(policy)
    return tracer.transport.events[-1]  # type: ignore[attr-defined]


@contextmanager
def _writer_held(store_url: str) -> Iterator[None]:
    """Hold the store's write lock from outside, so that writes queue up behind it."""
    if store_url.startswith("sqlite:///"):
        db = sqlite3.connect(store_url[len("sqlite:///") :], isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()
        return
    with psycopg.connect(store_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (postgres._WRITER_LOCK,))
        yield
        conn.execute("SELECT pg_advisory_unlock(%s)", (postgres._WRITER_LOCK,))


def _batches(run_sql: RunSql, url: str) -> list[tuple[Any, ...]]:
    return run_sql(url, "SELECT first_seq, last_seq, actor FROM batches ORDER BY id")


def test_units_submitted_together_share_one_transaction(store_url: str, run_sql: RunSql) -> None:
    events = _chain("svc-01")
    committer = GroupCommitter(lambda: IngestPipeline(open_store(store_url)))

    async def submit_all() -> list[IngestResult]:
        try:
            return await asyncio.gather(*(committer.ingest([event], actor="sdk:test") for event in events))
        finally:
            await committer.close()

    results = asyncio.run(submit_all())
    assert [r.first_seq for r in results] == list(range(1, CHAIN_EVENTS + 1))
    assert all(r.accepted == 1 and r.first_seq == r.last_seq for r in results)
    assert committer.commits == 1 and _batches(run_sql, store_url) == [(1, CHAIN_EVENTS, "sdk:test")]
    with pytest.raises(StoreError, match="closed"):
        asyncio.run(committer.ingest([events[0]], actor="sdk:test"))


def test_a_refused_or_invalid_unit_costs_only_itself(store_url: str, run_sql: RunSql) -> None:
    stored, others = _chain("svc-01"), _chain("svc-02")
    with open_store(store_url) as store:
        IngestPipeline(store).ingest(stored, actor="cli:alice")
    committer = GroupCommitter(lambda: IngestPipeline(open_store(store_url)))
    units: list[list[Any]] = [*([event] for event in others[:4]), [_rogue_policy()], [b"{}"], [stored[0]]]

    async def submit_all() -> list[Any]:
        try:
            return await asyncio.gather(
                *(committer.ingest(unit, actor="http:token") for unit in units), return_exceptions=True
            )
        finally:
            await committer.close()

    *good, rogue, broken, again = asyncio.run(submit_all())
    assert [result.accepted for result in good] == [1, 1, 1, 1]
    assert isinstance(rogue, StoreError) and "already recorded" in str(rogue)
    assert isinstance(broken, InvalidEvent) and "eventTime is missing" in broken.reason
    assert again == IngestResult(0, 1, None, None, duplicates_at=(0,))
    assert [row[2] for row in _batches(run_sql, store_url)] == ["cli:alice"] + ["http:token"] * 4
    with open_store(store_url) as store:
        assert store.log_size() == CHAIN_EVENTS + 4


def test_a_store_that_cannot_be_opened_fails_the_waiting_units_and_is_tried_again(tmp_path: Path) -> None:
    target = tmp_path / "later.db"
    target.mkdir()  # a directory where the store file should be: it cannot be opened
    committer = GroupCommitter(lambda: IngestPipeline(open_store(f"sqlite:///{target}")))
    events = _chain("svc-01")

    async def twice() -> tuple[list[Any], IngestResult]:
        first = await asyncio.gather(
            *(committer.ingest([event], actor="sdk:test") for event in events[:3]), return_exceptions=True
        )
        target.rmdir()
        second = await committer.ingest(events[:3], actor="sdk:test")
        await committer.close()
        return first, second

    first, second = asyncio.run(twice())
    assert all(isinstance(error, StoreError) and "cannot open store" in str(error) for error in first)
    assert second == IngestResult(3, 0, 1, 3)


def _post_all(url: str, bodies: list[bytes], hold: str | None = None) -> list[httpx.Response]:
    """POST each body on its own connection, all at once (behind a held write lock, if given)."""

    def post(body: bytes) -> httpx.Response:
        return httpx.post(f"{url}/api/v1/lineage", content=body, headers=AUTH, timeout=30)

    with ThreadPoolExecutor(len(bodies)) as pool:
        if hold is None:
            return list(pool.map(post, bodies))
        with _writer_held(hold):
            futures = [pool.submit(post, body) for body in bodies]
            time.sleep(1.0)  # every request is parsed and waits for the committer
        return [future.result() for future in futures]


def test_concurrent_posts_are_grouped_and_each_gets_its_own_answer(live: LiveServer, run_sql: RunSql) -> None:
    events = [msgspec.json.encode(event) for event in _chain("svc-01")[:8]]
    responses = _post_all(live.url, events, hold=live.store)
    assert [response.status_code for response in responses] == [201] * 8
    answers = [response.json() for response in responses]
    assert [answer["digest"] for answer in answers] == [parse_event(e).digest.hex() for e in events]
    assert sorted(answer["seq"] for answer in answers) == list(range(1, 9))
    assert not any(answer["duplicate"] for answer in answers)
    batches = _batches(run_sql, live.store)
    assert len(batches) < len(events) and {row[2] for row in batches} == {"http:token"}
    with open_store(live.store) as store:
        for answer in answers:  # the seq each request was told holds its event
            assert store.events(after=answer["seq"] - 1, limit=1)[0].digest == answer["digest"]


def test_a_bad_or_conflicting_post_does_not_fail_its_neighbours(live: LiveServer) -> None:
    with open_store(live.store) as store:
        IngestPipeline(store).ingest(_chain("svc-01"), actor="cli:alice")
    others = [msgspec.json.encode(event) for event in _chain("svc-02")[:5]]
    rogue = msgspec.json.encode(_rogue_policy())
    bodies = [*others[:2], rogue, b'{"eventTime": "2026-01-05T12:00:00Z"}', *others[2:]]
    responses = _post_all(live.url, bodies, hold=live.store)
    assert [response.status_code for response in responses] == [201, 201, 409, 400, 201, 201, 201]
    assert responses[2].json()["error"] == "conflict" and "already recorded" in responses[2].json()["detail"]
    assert responses[3].json()["error"] == "invalid_event"
    with open_store(live.store) as store:
        assert store.log_size() == CHAIN_EVENTS + len(others)


def test_without_a_token_writes_are_anonymous(store_url: str, run_sql: RunSql) -> None:
    server, thread, url = start_server(ServerSettings(store=store_url))
    events = [msgspec.json.encode(event) for event in _chain("svc-01")]
    with httpx.Client(base_url=url, timeout=30) as client:
        codes = [client.post("/api/v1/lineage", content=event, headers=JSON).status_code for event in events]
    assert codes == [201] * CHAIN_EVENTS
    server.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert {row[2] for row in _batches(run_sql, store_url)} == {"http:anonymous"}
