"""The NATS worker writes through the pipeline: its batches are recorded as ``worker:<durable>``."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from typing import Any

import msgspec
import nats
import pytest

from conftest import RunSql
from helpers import CHAIN_EVENTS, record_chain
from opslineage import Tracer, open_store
from opslineage.bus.worker import run_worker

NATS_URL = os.environ.get("OPSLINEAGE_TEST_NATS", "nats://127.0.0.1:4222")


async def _publish(stream: str, subject: str, payloads: list[bytes]) -> None:
    nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{subject}.>"])
        for payload in payloads:
            await js.publish(f"{subject}.test", payload)
    finally:
        await nc.close()


async def _drop(stream: str) -> None:
    nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


@pytest.mark.parametrize(
    "store_url", ["sqlite"], indirect=True
)  # the backends: tests/ingest/test_pipeline.py
def test_a_workers_batches_name_its_durable_consumer(store_url: str, run_sql: RunSql) -> None:
    tracer = Tracer.in_memory("test.ns")
    record_chain(tracer)
    payloads = [msgspec.json.encode(e) for e in tracer.transport.events]  # type: ignore[attr-defined]
    tag = uuid.uuid4().hex[:12]
    stream, subject = f"OPSLINEAGE_TEST_{tag}", f"opslineage.test{tag}.events"
    try:
        asyncio.run(_publish(stream, subject, payloads))
    except (OSError, nats.errors.Error) as error:
        if os.environ.get("OPSLINEAGE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"NATS is required (OPSLINEAGE_REQUIRE_SERVICES=1): {error}")
        pytest.skip(f"no NATS server at {NATS_URL}: {error}")
    stop = threading.Event()
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(
            run_worker(
                NATS_URL, store_url, stream=stream, subject=subject, durable=f"ingest-{tag}", stop=stop
            )
        ),
        daemon=True,
    )
    worker.start()
    try:
        deadline = time.monotonic() + 60
        with open_store(store_url) as store:
            while store.log_size() < CHAIN_EVENTS and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=30)
        asyncio.run(_drop(stream))
    assert results and results[0].stored == CHAIN_EVENTS
    assert {row[0] for row in run_sql(store_url, "SELECT actor FROM batches")} == {f"worker:ingest-{tag}"}
