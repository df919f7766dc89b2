"""Delivery never raises into the pipeline: a store that is down or a URL that is wrong is buffered
(bounded), reported by ``tracer.status()`` and the log, and retried until it works."""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from conftest import POSTGRES_URL
from helpers import CHAIN_EVENTS, record_chain
from opslineage import Tracer, open_store
from opslineage.sdk import MemoryTransport

# Three ingests, features, registration, inference, evaluation, action, effect.
STEPS_PER_CHAIN = CHAIN_EVENTS // 2
CHAINS = -(-1_000 // STEPS_PER_CHAIN)
BAD_URLS = ["postgresql://127.0.0.1:1/x", "garbage://", "", ":::"]


@pytest.mark.parametrize("url", BAD_URLS, ids=["unreachable", "garbage", "empty", "colons"])
def test_a_bad_store_url_records_1000_steps_without_raising_and_with_bounded_memory(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tracemalloc.start()
    try:
        tracer = Tracer("bad.store", store=url, queue_size=500)
        for _ in range(CHAINS):
            record_chain(tracer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    status = tracer.status()
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert status.delivered == 0 and status.refused == 0 and not status.available
    assert status.pending > 0 and status.evicted == 0
    assert status.dropped + status.pending == CHAINS * CHAIN_EVENTS
    assert status.last_error is not None and "store" in status.last_error
    started = time.monotonic()
    assert tracer.flush(timeout=0.3) is False
    assert time.monotonic() - started < 1.5
    tracer.close()
    status = tracer.status()
    assert status.pending == status.in_spill > 0  # kept on disk for the next tracer, not in memory
    assert status.in_spill + status.dropped == CHAINS * CHAIN_EVENTS
    assert list(tmp_path.iterdir()) == []  # nothing was created for a URL that names no store


def test_a_synchronous_tracer_with_a_bad_url_neither_raises_nor_waits() -> None:
    tracer = Tracer("bad.store", store="garbage://", sync=True, queue_size=100)
    started = time.monotonic()
    for _ in range(20):
        record_chain(tracer)
    assert time.monotonic() - started < 5
    status = tracer.status()
    assert (status.pending, status.dropped) == (100, 20 * CHAIN_EVENTS - 100)
    assert tracer.flush(timeout=0.2) is False
    tracer.close()
    assert "unsupported store URL 'garbage://'" in (tracer.status().last_error or "")


def test_a_failure_streak_is_logged_once_and_never_shows_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="opslineage")
    tracer = Tracer("bad.store", store="postgresql://bob:s3cret@127.0.0.1:1/x?password=s3cret")
    for _ in range(3):
        record_chain(tracer)
    deadline = time.monotonic() + 10
    while tracer.stats.retries < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    tracer.close()
    messages = [record.getMessage() for record in caplog.records]
    unavailable = [m for m in messages if "transport unavailable" in m]
    assert tracer.stats.retries >= 2 and len(unavailable) == 1, messages
    assert "127.0.0.1" in unavailable[0] and "***@" in unavailable[0]
    assert not any("s3cret" in m for m in messages)
    assert "s3cret" not in (tracer.status().last_error or "")


def test_events_buffered_while_the_database_is_missing_are_delivered_once_it_exists(
    postgres_server: psycopg.Connection[Any],
) -> None:
    name = f"opslineage_test_{uuid.uuid4().hex}"
    url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    tracer = Tracer("late.db", store=url)
    record_chain(tracer)
    assert tracer.flush(timeout=0.3) is False
    assert tracer.status().available is False and tracer.status().pending == CHAIN_EVENTS
    postgres_server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        assert tracer.flush(timeout=30)
        status = tracer.status()
        assert (status.delivered, status.pending, status.dropped, status.available) == (
            CHAIN_EVENTS,
            0,
            0,
            True,
        )
        tracer.close()
        with open_store(url) as store:
            assert store.counts()["events"] == CHAIN_EVENTS
    finally:
        postgres_server.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize("sync", [False, True], ids=["writer", "sync"])
def test_an_event_that_cannot_be_built_is_counted_and_delivery_goes_on(sync: bool) -> None:
    transport = MemoryTransport()
    tracer = Tracer("builder", transport=transport, sync=sync)

    def broken() -> dict[str, Any]:
        raise KeyError("no such facet")

    tracer.emit(broken)
    record_chain(tracer)
    assert tracer.flush(timeout=5)
    tracer.close()
    assert tracer.stats.errors == 1 and "no such facet" in (tracer.stats.last_error or "")
    assert len(transport.events) == CHAIN_EVENTS and tracer.status().delivered == CHAIN_EVENTS


def test_a_tracer_with_nothing_configured_starts_no_writer_and_builds_nothing() -> None:
    writers = sum(thread.name == "opslineage-emitter" for thread in threading.enumerate())
    tracer = Tracer("nowhere")
    record_chain(tracer)
    assert sum(thread.name == "opslineage-emitter" for thread in threading.enumerate()) == writers
    assert tracer.flush(timeout=0) and tracer.status().delivered == CHAIN_EVENTS
    assert tracer.status().pending == 0
    tracer.close()


class _SlowSink(MemoryTransport):
    """A sink that takes its time over every batch, as a busy store does."""

    def emit(self, events: list[dict[str, Any]]) -> None:
        time.sleep(0.15)  # longer than the default max_block
        super().emit(events)


def test_a_batch_job_that_may_wait_records_everything_a_slow_sink_is_given() -> None:
    """With ``max_block=None`` and no spill (what the demo runs with), a producer faster than its
    sink waits for it: every event is delivered, none dropped; with the default bound and no spill,
    the same producer loses events, counted."""
    events = [{"eventType": "OTHER", "run": {"runId": str(uuid.uuid4())}} for _ in range(12)]
    patient = Tracer("slow", transport=_SlowSink(), queue_size=2, max_block=None, spill_cap=0)
    hurried = Tracer("slow", transport=_SlowSink(), queue_size=2, spill_cap=0)
    for tracer in (patient, hurried):
        for event in events:
            tracer.emit(event)
        tracer.close()
    assert patient.stats.dropped == 0 and patient.transport.events == events  # type: ignore[attr-defined]
    assert hurried.stats.dropped > 0
    assert len(hurried.transport.events) + hurried.stats.dropped == len(events)  # type: ignore[attr-defined]
