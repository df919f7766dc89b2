"""Poison messages on the real NATS, into each backend: every one is dead-lettered with its reason
(in the file and on ``opslineage.deadletter``), the worker keeps running and the valid events
around them are stored."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import nats

from helpers import NATS_URL, record_chain, register_refused_policy, require_nats
from hostile import hostile_cases, valid_event
from jetstream import drop, publish
from opslineage import Tracer, open_store
from opslineage.bus.worker import DEADLETTER_SUBJECT, WorkerStats, run_worker
from opslineage.model import parse_event
from opslineage.sdk import MemoryTransport


def _refused_by_the_store() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A chain, and the registration of its policy version again with other thresholds."""
    tracer, rogue = Tracer.in_memory("poison.ns"), Tracer.in_memory("poison.ns")
    record_chain(tracer)
    register_refused_policy(rogue)
    assert isinstance(tracer.transport, MemoryTransport) and isinstance(rogue.transport, MemoryTransport)
    (complete,) = [e for e in rogue.transport.events if e["eventType"] == "COMPLETE"]
    return tracer.transport.events, complete


async def _watch(stream: str, seen: list[Any], ready: threading.Event, done: threading.Event) -> None:
    nc = await nats.connect(NATS_URL)
    subscription = await nc.subscribe(DEADLETTER_SUBJECT)
    await nc.flush()
    ready.set()
    while not done.is_set():
        try:
            message = await subscription.next_msg(timeout=0.2)
        except nats.errors.TimeoutError:
            continue
        if (message.headers or {}).get("Opslineage-Stream") == stream:
            seen.append(message)
    await nc.close()


def test_poison_messages_are_dead_lettered_and_the_worker_goes_on(store_url: str, tmp_path: Path) -> None:
    require_nats()
    chain, rogue = _refused_by_the_store()
    before = msgspec.json.encode(valid_event("0190a3c4-4444-7abc-8def-0123456789ab"))
    behind = [
        msgspec.json.encode(valid_event(f"0190a3c4-5555-7abc-8def-0000000000{n:02d}")) for n in range(5)
    ]
    cases = hostile_cases()
    payloads = [
        before,
        *(msgspec.json.encode(e) for e in chain),
        *(body for _, body, _ in cases),
        msgspec.json.encode(rogue),
        *behind,
    ]
    poison = {body: says for _, body, says in cases}
    poison[msgspec.json.encode(rogue)] = "already recorded"
    tag = uuid.uuid4().hex[:12]
    stream, subject = f"OPSLINEAGE_TEST_{tag}", f"opslineage.test{tag}.events"
    asyncio.run(publish(stream, subject, payloads, leaf="poison"))
    seen: list[Any] = []
    ready, done, stop = threading.Event(), threading.Event(), threading.Event()
    watcher = threading.Thread(target=lambda: asyncio.run(_watch(stream, seen, ready, done)), daemon=True)
    watcher.start()
    assert ready.wait(10)
    deadletters = tmp_path / "dead.jsonl"
    results: list[WorkerStats | BaseException] = []

    def work() -> None:
        try:
            results.append(
                run_worker(
                    NATS_URL,
                    store_url,
                    stream=stream,
                    subject=subject,
                    durable=f"poison-{tag}",
                    stop=stop,
                    deadletter=deadletters,
                    batch=4,  # poison shares batches with valid events
                )
            )
        except BaseException as error:  # the assertions below name it
            results.append(error)

    valid = [before, *(msgspec.json.encode(e) for e in chain), *behind]
    worker = threading.Thread(target=work, daemon=True)
    try:
        deadline = time.monotonic() + 60
        with open_store(store_url) as store:  # made before the worker opens it
            worker.start()
            while time.monotonic() < deadline and not results:
                dead = deadletters.read_text().count("\n") if deadletters.exists() else 0
                if store.counts()["events"] >= len(valid) and dead >= len(poison):
                    break
                time.sleep(0.2)
            stored = {event.digest for event in store.events()}
        assert not results, f"the worker stopped by itself: {results}"
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(timeout=30)
        done.set()
        watcher.join(timeout=10)
        asyncio.run(drop(stream))
    assert results and isinstance(results[0], WorkerStats), results
    assert stored >= {parse_event(body).digest.hex() for body in valid}
    assert stored.isdisjoint(
        parse_event(body).digest.hex() for body in poison if body == msgspec.json.encode(rogue)
    )
    records = [json.loads(line) for line in deadletters.read_text().splitlines()]
    by_body = {record["data"].encode(): record["reason"] for record in records}
    assert by_body.keys() == poison.keys()
    for body, says in poison.items():
        assert says in by_body[body], (says, by_body[body])
    assert {message.data: message.headers["Opslineage-Reason"] for message in seen}.keys() == poison.keys()
    assert results[0].deadlettered == len(poison) and results[0].retried == 0


def test_a_locked_store_is_an_outage_retried_never_dead_lettered(tmp_path: Path) -> None:
    """SQLite locked by another process past its busy timeout: the worker hands the messages back
    and waits, and stores them once the lock is gone. (A PostgreSQL outage is the lost
    connections of tests/bus/test_nats.py; one of minutes would make every try wait the pool's
    timeout.)"""
    require_nats()
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    events = [
        msgspec.json.encode(valid_event(f"0190a3c4-6666-7abc-8def-0000000000{n:02d}")) for n in range(3)
    ]
    tag = uuid.uuid4().hex[:12]
    stream, subject = f"OPSLINEAGE_TEST_{tag}", f"opslineage.test{tag}.events"
    deadletters = tmp_path / "dead.jsonl"
    open_store(url).close()
    lock = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    asyncio.run(publish(stream, subject, events, leaf="poison"))
    stop = threading.Event()
    results: list[WorkerStats | BaseException] = []

    def work() -> None:
        try:
            results.append(
                run_worker(
                    NATS_URL,
                    url,
                    stream=stream,
                    subject=subject,
                    durable=f"locked-{tag}",
                    stop=stop,
                    deadletter=deadletters,
                    retry_delay=0.5,
                    max_retry_delay=1.0,
                )
            )
        except BaseException as error:  # the assertions below name it
            results.append(error)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        time.sleep(12)  # past the store's 10 s busy timeout: the first try has failed
        assert worker.is_alive() and not deadletters.exists()
        lock.execute("ROLLBACK")
        deadline = time.monotonic() + 30
        with open_store(url) as store:
            while store.counts()["events"] < len(events) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert store.counts()["events"] == len(events)
    finally:
        lock.close()
        stop.set()
        worker.join(timeout=30)
        asyncio.run(drop(stream))
    assert results and isinstance(results[0], WorkerStats), results
    assert (results[0].stored, results[0].deadlettered) == (len(events), 0) and results[0].retried >= len(
        events
    )
    assert not deadletters.exists()
