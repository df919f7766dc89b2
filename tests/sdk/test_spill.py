"""A sink that stays down costs the pipeline nothing and loses nothing uncounted: transient
failures are retried, the backlog goes to a bounded spill (oldest evicted past its cap, counted),
the caller never waits past ``max_block``, and ``close(timeout)`` keeps its timeout."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import record_chain
from live import start_server
from opslineage import Tracer, open_store
from opslineage.sdk import MAX_BLOCK, MemoryTransport, Spill

SLACK = 3.0  # seconds a close(timeout) may overrun on a loaded machine


def _events(chains: int) -> list[dict[str, Any]]:
    """``chains`` recorded chains as OpenLineage events, every one distinct."""
    source = Tracer.in_memory("spill.test")
    for _ in range(chains):
        record_chain(source)
    assert isinstance(source.transport, MemoryTransport)
    return source.transport.events


def _emit_all(tracer: Tracer, events: list[dict[str, Any]]) -> float:
    """Emit every event; the longest the caller waited for one, in seconds."""
    worst = 0.0
    for event in events:
        started = time.perf_counter()
        tracer.emit(event)
        worst = max(worst, time.perf_counter() - started)
    return worst


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: connections to it are refused


def _spilled_run_ids(directory: Path) -> list[str]:
    import json  # noqa: PLC0415

    return [
        json.loads(line)["run"]["runId"]
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def test_a_store_locked_past_its_busy_timeout_loses_nothing_and_never_blocks_the_caller(
    tmp_path: Path,
) -> None:
    db = tmp_path / "lineage.db"
    url = f"sqlite:///{db}"
    events = _events(40)
    tracer = Tracer("locked", store=url, queue_size=200, spill_dir=tmp_path / "spill")
    tracer.emit(events[0])
    assert tracer.flush(timeout=30)  # the store is open before another process locks it
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        # (In WAL mode locking_mode=EXCLUSIVE cannot be had while the store's connection is open;
        # BEGIN EXCLUSIVE holds the write lock, which is what ingest needs.)
        lock = sqlite3.connect(db, isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(60)
        lock.execute("ROLLBACK")
        lock.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert locked.wait(10)
    try:
        worst = _emit_all(tracer, events[1:])
        deadline = time.monotonic() + 30  # past the store's 10 s busy timeout: a try has failed
        while tracer.stats.retries == 0 and tracer.status().available and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tracer.status().available and tracer.status().in_spill > 0
    finally:
        release.set()
        holder.join(10)
    assert tracer.flush(timeout=60), tracer.status()
    tracer.close()
    status = tracer.status()
    assert (status.delivered, status.dropped, status.evicted, status.refused) == (len(events), 0, 0, 0)
    assert worst < 10 * MAX_BLOCK, f"the caller waited {worst:.2f} s for one event"
    with open_store(url) as store:
        assert store.counts()["events"] == len(events)
    assert list((tmp_path / "spill").glob("*.jsonl")) == []  # delivered, so deleted


def test_an_http_endpoint_that_is_down_spills_close_keeps_its_timeout_and_the_next_tracer_delivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openlineage.client")
    from opslineage.sdk.openlineage_client import OpenLineageClientTransport  # noqa: PLC0415
    from opslineage.server import ServerSettings  # noqa: PLC0415

    for name in [name for name in os.environ if name.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    spill = tmp_path / "spill"
    events = _events(20)

    def http(url: str) -> OpenLineageClientTransport:
        return OpenLineageClientTransport(config={"transport": {"type": "http", "url": url}})

    port = _dead_port()
    down = Tracer("ol.http", transport=http(f"http://127.0.0.1:{port}"), spill_dir=spill)
    worst = _emit_all(down, events)
    deadline = time.monotonic() + 30
    while down.status().in_spill < len(events) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    down.close(timeout=2)
    took = time.monotonic() - started
    status = down.status()
    assert took < 2 + SLACK, f"close(timeout=2) took {took:.1f} s"
    assert (status.delivered, status.refused, status.dropped, status.evicted) == (0, 0, 0, 0)
    assert status.in_spill == status.pending == len(events) and down.stats.spilled >= len(events)
    assert worst < 10 * MAX_BLOCK
    assert {path.stat().st_mode & 0o777 for path in spill.glob("*.jsonl")} == {0o600}
    assert spill.stat().st_mode & 0o777 == 0o700

    store_url = f"sqlite:///{tmp_path / 'served.db'}"
    open_store(store_url).close()
    elsewhere = Tracer("ol.http", transport=MemoryTransport(), spill_dir=spill)
    elsewhere.emit(events[0])
    assert elsewhere.flush(timeout=10)
    elsewhere.close(timeout=5)
    assert elsewhere.transport.events == [events[0]]  # another sink's backlog is not delivered here
    server, thread, live = start_server(ServerSettings(store=store_url), port=port)
    try:
        up = Tracer("ol.http", transport=http(live), spill_dir=spill)
        up.emit(events[-1])  # starts the writer, which replays the spill first
        assert up.flush(timeout=60), up.status()
        up.close(timeout=10)
    finally:
        server.should_exit = True
        thread.join(10)
    assert up.stats.errors == 0, up.stats.last_error
    assert up.status().delivered == len(events) + 1
    with open_store(store_url) as store:
        assert store.counts()["events"] == len(events)
    assert list(spill.glob("*.jsonl")) == []


def test_a_full_spill_evicts_the_oldest_counts_them_keeps_the_newest_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="opslineage")
    spill, cap = tmp_path / "spill", 64 * 1024
    events = _events(60)
    tracer = Tracer("capped", store="postgresql://127.0.0.1:1/x", spill_dir=spill, spill_cap=cap)
    _emit_all(tracer, events)
    deadline = time.monotonic() + 30
    while tracer.status().pending > tracer.status().in_spill and time.monotonic() < deadline:
        time.sleep(0.05)
    warnings = [r.getMessage() for r in caplog.records if "given up on" in r.getMessage()]
    tracer.close(timeout=2)
    status = tracer.status()
    assert status.evicted > 0 and status.in_spill > 0
    assert status.in_spill + status.evicted + status.dropped == len(events)
    assert sum(path.stat().st_size for path in spill.glob("*.jsonl")) <= cap
    kept = _spilled_run_ids(spill)
    assert len(kept) == status.in_spill
    assert kept[-1] == events[-1]["run"]["runId"] and events[0]["run"]["runId"] not in kept
    assert len(warnings) == 1, warnings  # once per interval, however many were evicted
    assert "postgresql" not in warnings[0]


def test_the_nats_transport_spill_is_capped_the_same_way(tmp_path: Path) -> None:
    pytest.importorskip("nats")
    from opslineage.bus import NatsTransport  # noqa: PLC0415

    spill, cap = tmp_path / "spill", 64 * 1024
    events = _events(60)
    transport = NatsTransport(
        f"nats://127.0.0.1:{_dead_port()}",
        stream="CAPPED",
        spill_dir=spill,
        buffer=50,
        spill_cap=cap,
        close_timeout=0.5,
    )
    for start in range(0, len(events), 50):
        transport.emit(events[start : start + 50])
    started = time.monotonic()
    transport.close()
    took = time.monotonic() - started
    stats = transport.stats
    assert took < 0.5 + 1 + SLACK, f"close with close_timeout=0.5 took {took:.1f} s"
    assert stats.evicted > 0 and stats.published == 0
    assert transport.pending + stats.evicted + stats.dropped == len(events)
    assert sum(path.stat().st_size for path in spill.glob("*.jsonl")) <= cap
    kept = _spilled_run_ids(spill)
    assert len(kept) == transport.pending
    assert kept[-1] == events[-1]["run"]["runId"] and events[0]["run"]["runId"] not in kept


def test_a_spill_replays_what_an_ended_process_left_oldest_first_and_never_what_a_live_one_holds(
    tmp_path: Path,
) -> None:
    left = Spill(tmp_path, "sink", cap=1 << 20)
    left.append([b'{"n":1}', b'{"n":2}'])
    held = Spill(tmp_path, "sink", cap=1 << 20)  # its own segment; the first is still locked
    assert held.pending == 0
    held.close()
    left.close()  # the process "ended": its segment stays, unlocked
    other = Spill(tmp_path, "sink-other", cap=1 << 20)
    other.append([b'{"n":9}'])
    again = Spill(tmp_path, "sink", cap=1 << 20)
    assert again.pending == 2
    assert again.read(10) == [b'{"n":1}', b'{"n":2}']
    again.commit(1)
    assert again.read(10) == [b'{"n":2}']
    again.commit(1)
    assert again.pending == 0
    again.close()
    other.close()
    assert [path.name.startswith("sink-other") for path in tmp_path.glob("*.jsonl")] == [True]
