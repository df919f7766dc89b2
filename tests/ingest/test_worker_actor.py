"""The NATS worker writes through the pipeline: its batches are recorded as ``worker:<durable>``."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest

from conftest import RunSql
from helpers import CHAIN_EVENTS, NATS_URL, nats_unavailable, record_chain
from jetstream import drop, publish
from opslineage import Tracer, open_store
from opslineage.bus.worker import run_worker
from opslineage.store import StoreUnavailable


def _stored(store_url: str) -> int:
    """How many events the store holds; 0 while it cannot be opened."""
    try:
        with open_store(store_url) as store:
            return store.log_size()
    except StoreUnavailable:
        return 0


def _store_with_worker(store_url: str, tag: str, linger: float = 0.0, **options: Any) -> Any:
    """Publish the chain to a new stream, run a worker on it until the store holds the chain (or
    60 s pass) and ``linger`` seconds more, stop it; what ``run_worker`` returned."""
    tracer = Tracer.in_memory("test.ns")
    record_chain(tracer)
    payloads = [msgspec.json.encode(e) for e in tracer.transport.events]  # type: ignore[attr-defined]
    stream, subject = f"OPSLINEAGE_TEST_{tag}", f"opslineage.test{tag}.events"
    try:
        asyncio.run(publish(stream, subject, payloads))
    except (OSError, nats.errors.Error) as error:
        nats_unavailable(f"no NATS server at {NATS_URL}: {error}")
    stop = threading.Event()
    results: list[Any] = []

    def work() -> None:
        try:
            results.append(
                run_worker(
                    NATS_URL,
                    store_url,
                    stream=stream,
                    subject=subject,
                    durable=f"ingest-{tag}",
                    stop=stop,
                    **options,
                )
            )
        except BaseException as error:  # the assertions below name it
            results.append(error)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while _stored(store_url) < CHAIN_EVENTS and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(linger)
    finally:
        stop.set()
        worker.join(timeout=30)
        asyncio.run(drop(stream))
    assert results, "the worker did not stop within 30 s of being told to"
    assert not isinstance(results[0], BaseException), f"the worker failed: {results[0]!r}"
    return results[0]


@pytest.mark.parametrize(
    "store_url", ["sqlite"], indirect=True
)  # the backends: tests/ingest/test_pipeline.py
def test_a_workers_batches_name_its_durable_consumer(store_url: str, run_sql: RunSql) -> None:
    tag = uuid.uuid4().hex[:12]
    assert _store_with_worker(store_url, tag).stored == CHAIN_EVENTS
    assert {row[0] for row in run_sql(store_url, "SELECT actor FROM batches")} == {f"worker:ingest-{tag}"}


def test_a_worker_started_while_the_store_is_locked_waits_for_it(tmp_path: Path) -> None:
    """Another process holds the SQLite file exclusively, past the store's 10 s busy timeout,
    while the worker starts: the worker waits for it and then stores everything, instead of dying."""
    path = tmp_path / "locked.db"
    open_store(f"sqlite:///{path}").close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")  # in WAL mode, the only lock readers wait for
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(12.0, holder.close)
    release.start()
    try:
        stats = _store_with_worker(f"sqlite:///{path}", uuid.uuid4().hex[:12], retry_delay=0.2)
    finally:
        release.join()
    assert stats.stored == CHAIN_EVENTS


def test_a_worker_reports_its_progress_between_batches(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="opslineage")
    assert (
        _store_with_worker(store_url, uuid.uuid4().hex[:12], linger=2.5, progress_every=0.2).stored
        == CHAIN_EVENTS
    )
    lines = [r.getMessage() for r in caplog.records if "in the last 0.2 s" in r.getMessage()]
    assert lines, [r.getMessage() for r in caplog.records]
    assert f", {CHAIN_EVENTS} stored, " in lines[-1].split("; ")[1]
