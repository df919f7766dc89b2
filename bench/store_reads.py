"""Reading events back through the store interface, against a floor in the same run.

- ``read_events_per_s``: ``Store.events`` in chunks of 1,000 (what exports and bundles read):
  full events, split-out artifacts joined back in.
- ``read_raw_events_per_s``: ``Store.raw_events`` in chunks of 1,000 (what ``verify`` reads).
- ``read_floor_events_per_s``: one plain SELECT of the same rows' bodies per chunk on a second
  connection, each body decoded with msgspec; ``read_events_ratio_to_floor`` is the floor's time
  over ``events``'s. The three take turns on every chunk; each figure is the best of three rounds.

    python bench/store_reads.py --events 100000 [--read 30000] [--store PATH]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import msgspec

from corpus import emit
from opslineage.store.sqlite import SQLiteStore
from why import build

CHUNK = 1000
ROUNDS = 3


def one_round(store: SQLiteStore, db: sqlite3.Connection, count: int) -> dict[str, float]:
    """Seconds each way took to read the first ``count`` events, chunk by chunk, the three ways
    taking turns on every chunk so that the machine's load hits them alike."""
    decode = msgspec.json.decode
    totals = dict.fromkeys(("events", "raw_events", "floor"), 0.0)
    for after in range(0, count, CHUNK):
        limit = min(CHUNK, count - after)
        start = time.perf_counter()
        store.events(after=after, limit=limit)
        middle = time.perf_counter()
        store.raw_events(after=after, limit=limit)
        floor = time.perf_counter()
        for _, body in db.execute(
            "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        ):
            decode(body)
        end = time.perf_counter()
        totals["events"] += middle - start
        totals["raw_events"] += floor - middle
        totals["floor"] += end - floor
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the store")
    parser.add_argument("--read", type=int, default=30_000, help="events read per round")
    parser.add_argument("--store", type=Path, help="reuse (or create) the store at this path")
    args = parser.parse_args()
    path = args.store or Path(tempfile.mkdtemp()) / "reads.db"
    store = SQLiteStore(path)
    if store.counts()["events"] < args.events:
        build(store, args.events)
    count = min(args.read, store.log_size())
    db = sqlite3.connect(path)
    rounds = [one_round(store, db, count) for _ in range(ROUNDS)]
    best = {name: min(seconds[name] for seconds in rounds) for name in rounds[0]}
    emit("read_events_per_s", count / best["events"], "events/s", events=count, rounds=ROUNDS)
    emit("read_raw_events_per_s", count / best["raw_events"], "events/s", events=count, rounds=ROUNDS)
    emit("read_floor_events_per_s", count / best["floor"], "events/s", events=count, rounds=ROUNDS)
    emit("read_events_ratio_to_floor", best["floor"] / best["events"], "ratio", events=count)
    db.close()
    store.close()


if __name__ == "__main__":
    main()
