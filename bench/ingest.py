"""Batch-ingest throughput against a floor measured in the same run.

The floor is plain SQLite inserts of the same serialized event bytes (one BLOB column, same
pragmas, same batch size). Goal: at least half the floor's rate. Ours goes through the ingest
pipeline as `opslineage ingest` does: parse and validate every event, store, append to the log.

Besides the end-to-end figure, the run times its two halves on their own, per event: parsing
(``parse_us_per_event``, the model's ``parse_event``) and storing events already parsed
(``store_us_per_event``: planning, the graph index, artifacts, the log, the commit), so that
``store_ratio_to_floor`` says how far the store alone is from the floor.

What syncing every commit costs (the store runs with ``PRAGMA synchronous=FULL``, so that a
commit survives an OS crash or power loss): the same pipeline with the connection switched to
NORMAL (synced only at checkpoints), in the same run, best of ``--sync-rounds`` alternating
passes each (the machine's noise is larger than the cost at large batches): the
first ``--sync-events`` at ``--batch`` events per transaction
(``ingest_sync_full_to_normal_ratio``), and the first ``--single-events`` at one event per
transaction (``ingest_single_sync_full_to_normal_ratio``: a lone HTTP client's case).

    python bench/ingest.py --events 100000 [--batch 1000] [--sync-events 20000] [--single-events 2000]
        [--sync-rounds 3]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import msgspec

from corpus import demo_shaped_events, emit
from opslineage.ingest import IngestPipeline
from opslineage.model import parse_event
from opslineage.store.sqlite import SQLiteStore


def floor(path: Path, lines: list[bytes], batch: int) -> float:
    """Events/s of plain executemany inserts of the bytes."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # as the store
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    start = time.perf_counter()
    for i in range(0, len(lines), batch):
        db.execute("BEGIN")
        db.executemany("INSERT INTO events (body) VALUES (?)", [(line,) for line in lines[i : i + batch]])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return len(lines) / elapsed


def ours(path: Path, lines: list[bytes], batch: int) -> float:
    """Events/s of parse + validate + ingest through the pipeline, from the same bytes."""
    store = SQLiteStore(path)
    pipeline = IngestPipeline(store)
    start = time.perf_counter()
    for i in range(0, len(lines), batch):
        pipeline.ingest(lines[i : i + batch], actor="sdk:bench")
    elapsed = time.perf_counter() - start
    assert store.counts()["events"] == len(lines)
    store.close()
    return len(lines) / elapsed


def synced(path: Path, lines: list[bytes], batch: int, synchronous: str) -> float:
    """Events/s of :func:`ours` with the store's connection set to ``synchronous``."""
    for stale in path.parent.glob(f"{path.name}*"):
        stale.unlink()
    store = SQLiteStore(path)
    store.db.execute(f"PRAGMA synchronous={synchronous}")
    pipeline = IngestPipeline(store)
    start = time.perf_counter()
    for i in range(0, len(lines), batch):
        pipeline.ingest(lines[i : i + batch], actor="sdk:bench")
    elapsed = time.perf_counter() - start
    store.close()
    return len(lines) / elapsed


def sync_cost(directory: Path, lines: list[bytes], batch: int, rounds: int) -> dict[str, float]:
    """Best events/s of ``rounds`` alternating passes with NORMAL and with FULL."""
    best = {"NORMAL": 0.0, "FULL": 0.0}
    for _ in range(rounds):
        for mode, rate in best.items():
            best[mode] = max(rate, synced(directory / f"sync-{batch}.db", lines, batch, mode))
    return best


def halves(path: Path, lines: list[bytes], batch: int) -> tuple[float, float]:
    """Microseconds per event of parsing alone, and of storing the parsed events alone."""
    store = SQLiteStore(path)
    parsing = storing = 0.0
    for i in range(0, len(lines), batch):
        start = time.perf_counter()
        parsed = [parse_event(line) for line in lines[i : i + batch]]
        middle = time.perf_counter()
        store.ingest(parsed, actor="sdk:bench")
        parsing += middle - start
        storing += time.perf_counter() - middle
    store.close()
    return parsing / len(lines) * 1e6, storing / len(lines) * 1e6


def parse_only(lines: list[bytes], rounds: int = 3) -> tuple[float, float]:
    """Microseconds per event of ``parse_event`` alone, best of ``rounds``: wall clock and CPU
    time of this process (the second moves less when other processes share the cores)."""
    best_wall = best_cpu = float("inf")
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for line in lines:
            parse_event(line)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall / len(lines) * 1e6, best_cpu / len(lines) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="events per transaction, for both sides")
    parser.add_argument("--sync-events", type=int, default=20_000, help="events for the sync cost at --batch")
    parser.add_argument("--sync-rounds", type=int, default=3, help="alternating passes per sync setting")
    parser.add_argument(
        "--single-events", type=int, default=2000, help="events stored one per transaction for the sync cost"
    )
    args = parser.parse_args()
    lines = [msgspec.json.encode(event) for event in demo_shaped_events(args.events)]
    mean_bytes = sum(map(len, lines)) / len(lines)
    with tempfile.TemporaryDirectory() as tmp:
        base = floor(Path(tmp) / "floor.db", lines, args.batch)
        rate = ours(Path(tmp) / "ours.db", lines, args.batch)
        parse_us, store_us = halves(Path(tmp) / "halves.db", lines, args.batch)
        batched = sync_cost(Path(tmp), lines[: args.sync_events], args.batch, args.sync_rounds)
        single = sync_cost(Path(tmp), lines[: args.single_events], 1, args.sync_rounds)
    emit(
        "ingest_events_per_s",
        rate,
        "events/s",
        events=len(lines),
        batch=args.batch,
        mean_event_bytes=round(mean_bytes),
    )
    emit("ingest_floor_events_per_s", base, "events/s", events=len(lines), batch=args.batch)
    emit("ingest_ratio_to_floor", rate / base, "ratio", events=len(lines), batch=args.batch)
    emit("parse_us_per_event", parse_us, "us", events=len(lines))
    emit("store_us_per_event", store_us, "us", events=len(lines), batch=args.batch)
    emit("store_ratio_to_floor", 1e6 / store_us / base, "ratio", events=len(lines), batch=args.batch)
    for name, rates, count, batch in (
        ("ingest", batched, min(args.sync_events, len(lines)), args.batch),
        ("ingest_single", single, min(args.single_events, len(lines)), 1),
    ):
        emit(f"{name}_sync_normal_events_per_s", rates["NORMAL"], "events/s", events=count, batch=batch)
        emit(f"{name}_sync_full_events_per_s", rates["FULL"], "events/s", events=count, batch=batch)
        ratio = rates["FULL"] / rates["NORMAL"]
        emit(f"{name}_sync_full_to_normal_ratio", ratio, "ratio", events=count, batch=batch)
    wall, cpu = parse_only(lines)
    emit("parse_only_us_per_event", wall, "µs", events=len(lines), mean_event_bytes=round(mean_bytes))
    emit("parse_only_cpu_us_per_event", cpu, "µs", events=len(lines), mean_event_bytes=round(mean_bytes))


if __name__ == "__main__":
    main()
