"""Past one machine: ingest into PostgreSQL directly and through NATS JetStream workers, and
``why`` on PostgreSQL next to SQLite with the same events, in the same run.

- ``pg_direct_events_per_s``: parse + ingest batches straight into PostgreSQL.
- ``pg_workers_1_events_per_s`` / ``pg_workers_2_events_per_s``: ``opslineage worker`` processes
  draining a stream that already holds the events (publishing is not timed). Each says what was
  not stored: ``left_in_spill`` (events the transport could not publish within its
  ``close_timeout``), ``evicted`` (past the spill's cap) and ``not_stored`` (missing from the
  store when the workers stopped: no progress for ``--stall`` seconds ends the wait).
- ``pg_why_p50_ms`` / ``pg_why_p99_ms`` next to ``sqlite_why_*``: the why of random actions,
  second pass (steady state), on stores of ``--why-events`` events.
- Then, on each of those two stores, ``opslineage archive`` of all but the newest tenth:
  ``*_archive_events_per_s``; ``*_hot_bytes_before`` and ``*_hot_bytes_after`` (the database,
  compacted after archiving: SQLite ``VACUUM``, PostgreSQL ``VACUUM FULL``); ``*_archive_bytes``
  (the segment files) and ``*_archive_compression_ratio`` (payload bytes as stored hot over
  segment bytes); and ``*_why_archived_p50_ms`` / ``_p99_ms``, the same why questions again,
  now mostly answered from segments.

Each run makes its own PostgreSQL databases and JetStream stream and removes them.

    python bench/scale.py --events 20000 --why-events 1000000
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import msgspec
import nats
import psycopg

from _common import NATS, database
from corpus import demo_shaped_events, emit
from opslineage.bus import NatsTransport
from opslineage.model import parse_event
from opslineage.query import list_nodes, why
from opslineage.store import Store, open_store
from opslineage.store.archive import archive_store

BATCH = 1000
CLOSE_TIMEOUT = 120.0  # seconds the producer may take to publish what it buffered


async def delete_stream(stream: str) -> None:
    """Remove the JetStream stream a run made."""
    connection = await nats.connect(NATS, connect_timeout=2, allow_reconnect=False)
    try:
        await connection.jetstream().delete_stream(stream)
    finally:
        await connection.close()


def ingest(store: Store, events: list[bytes]) -> float:
    start = time.perf_counter()
    for i in range(0, len(events), BATCH):
        store.ingest([parse_event(line) for line in events[i : i + BATCH]])
    return time.perf_counter() - start


def through_workers(
    url: str, events: list[dict], workers: int, spill: Path, stall: float
) -> tuple[float, dict[str, int]]:
    """Fill a fresh stream, then time ``workers`` worker processes storing it; the seconds and
    what was not stored. The stream is deleted after."""
    tag = uuid.uuid4().hex[:12]
    stream, subject = f"OPSLINEAGE_BENCH_{tag}", f"opslineage.bench{tag}.events"
    transport = NatsTransport(
        NATS, stream=stream, subject=subject, spill_dir=spill / tag, close_timeout=CLOSE_TIMEOUT
    )
    try:
        transport.emit(events)
        transport.close()
        left = {"left_in_spill": transport.pending, "evicted": transport.stats.evicted}
        seconds, missing = _store_with_workers(url, stream, subject, len(events), workers, stall)
        return seconds, left | missing
    finally:
        asyncio.run(delete_stream(stream))


def _store_with_workers(
    url: str, stream: str, subject: str, expected: int, workers: int, stall: float
) -> tuple[float, dict[str, int]]:
    command = [
        sys.executable,
        "-m",
        "opslineage.cli.main",
        "worker",
        "--bus",
        NATS,
        "--store",
        url,
        "--stream",
        stream,
        "--subject",
        subject,
        "--batch",
        "500",
    ]
    with open_store(url) as store:
        start = time.perf_counter()
        running = [
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(workers)
        ]
        try:
            stored, progress = 0, time.monotonic()
            while stored < expected and time.monotonic() - progress < stall:
                time.sleep(0.05)
                now = store.counts()["events"]
                if now > stored:
                    stored, progress = now, time.monotonic()
            return time.perf_counter() - start, {"not_stored": expected - stored}
        finally:
            for process in running:
                process.terminate()
                process.wait(timeout=60)


def why_times(store: Store, samples: int) -> list[float]:
    """The steady-state times of ``samples`` why questions; none when the store holds no action."""
    actions = [node.id for node in list_nodes(store, "action", limit=1_000_000)]
    if not actions:
        return []
    picked = random.Random(0).choices(actions, k=samples)
    for action in picked:
        why(store, action)
    times = []
    for action in picked:
        start = time.perf_counter()
        why(store, action)
        times.append(time.perf_counter() - start)
    return sorted(times)


def emit_why(name: str, times: list[float], events: int) -> None:
    if not times:
        print(msgspec.json.encode({"figure": f"{name}_ms", "skipped": f"no action among {events} events",
                                   "events": events}).decode(), flush=True)  # fmt: skip
        return
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        emit(f"{name}_{label}_ms", times[int(q * (len(times) - 1))] * 1000, "ms", events=events)


def pg_bytes(url: str, *, compact: bool = False) -> int:
    """The database's size on disk; ``compact`` first rewrites the tables archiving blanked."""
    with psycopg.connect(url, autocommit=True) as conn:
        if compact:
            conn.execute("VACUUM FULL events, artifacts")
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0


def sqlite_bytes(path: Path, *, compact: bool = False) -> int:
    """The store file's size; ``compact`` first runs VACUUM."""
    with sqlite3.connect(path) as conn:
        if compact:
            conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def archive_figures(name: str, store: Store, size: Any, directory: Path, samples: int) -> None:
    """Archive all but the newest tenth of ``store`` and emit the figures the docstring lists."""
    events = store.log_size()
    before = size()
    start = time.perf_counter()
    report = archive_store(store, events - events // 10, directory).to_dict()["moved"]
    seconds = time.perf_counter() - start
    emit(f"{name}_archive_events_per_s", report["events"] / seconds, "events/s", events=report["events"])
    emit(f"{name}_hot_bytes_before", before, "bytes", events=events)
    emit(f"{name}_hot_bytes_after", size(compact=True), "bytes", events=events, archived=report["events"])
    on_disk = sum(path.stat().st_size for path in directory.iterdir())
    emit(f"{name}_archive_bytes", on_disk, "bytes", segments=report["segments"], payload=report["raw_bytes"])
    emit(f"{name}_archive_compression_ratio", report["compression_ratio"], "x", archived=report["events"])
    emit_why(f"{name}_why_archived", why_times(store, samples), events)


def main() -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events for the ingest figures")
    parser.add_argument("--why-events", type=int, default=100_000, help="store size for the why figures")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--stall", type=float, default=60.0, help="seconds without progress that end a wait")
    args = parser.parse_args()
    events: list[dict] = []  # as dicts only the ones the workers get; the rest as canonical bytes
    lines = []
    for event in demo_shaped_events(max(args.events, args.why_events)):
        if len(events) < args.events:
            events.append(event)
        lines.append(parse_event(event).canonical)
    with tempfile.TemporaryDirectory() as tmp:
        with database() as url, open_store(url) as store:
            seconds = ingest(store, lines[: args.events])
            emit("pg_direct_events_per_s", args.events / seconds, "events/s", events=args.events)
        for workers in (1, 2):
            with database() as url:
                seconds, left = through_workers(
                    url, events[: args.events], workers, Path(tmp) / "spill", args.stall
                )
                emit(
                    f"pg_workers_{workers}_events_per_s",
                    args.events / seconds,
                    "events/s",
                    events=args.events,
                    **left,
                )
        with database() as url, open_store(url) as pg, open_store(f"sqlite:///{tmp}/why.db") as lite:
            ingest(pg, lines[: args.why_events])
            ingest(lite, lines[: args.why_events])
            for name, store in (("pg", pg), ("sqlite", lite)):
                emit_why(f"{name}_why", why_times(store, args.samples), args.why_events)
            sizes = {
                "pg": lambda compact=False: pg_bytes(url, compact=compact),
                "sqlite": lambda compact=False: sqlite_bytes(Path(tmp) / "why.db", compact=compact),
            }
            for name, store in (("pg", pg), ("sqlite", lite)):
                archive_figures(name, store, sizes[name], Path(tmp) / f"{name}-archive", args.samples)


if __name__ == "__main__":
    main()
