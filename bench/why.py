"""`why` latency (in-process, the full structured answer) on a store of N demo-shaped events.

Next to it, in the same run, the floor: the bare recursive upstream walk from the same actions.
Goal: why p99 under 2 ms at 1M events, and under twice the 100k figure.

    python bench/why.py --events 1000000 [--store PATH]   # PATH is reused when it exists
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from corpus import demo_shaped_events, emit
from opslineage.model import parse_event
from opslineage.query import list_nodes, why
from opslineage.store.sqlite import SQLiteStore

BATCH = 5000


def build(store: SQLiteStore, count: int) -> None:
    """Fill the store with ``count`` events, reporting progress on stderr."""
    batch = []
    started = time.perf_counter()
    for done, event in enumerate(demo_shaped_events(count), start=1):
        batch.append(parse_event(event))
        if len(batch) == BATCH or done == count:
            store.ingest(batch)
            batch = []
            print(
                f"\rbuilt {done}/{count} events ({time.perf_counter() - started:.0f} s)",
                end="",
                file=sys.stderr,
            )
    print(file=sys.stderr)


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of the samples, in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--store", type=Path, help="reuse (or create) the store at this path")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    path = args.store or Path(tempfile.mkdtemp()) / "why.db"
    store = SQLiteStore(path)
    if store.counts()["events"] < args.events:
        build(store, args.events)
    events = store.counts()["events"]
    actions = [node.id for node in list_nodes(store, "action", limit=1_000_000)]
    picked = random.Random(0).choices(actions, k=args.samples)
    for action in picked[:50]:  # warm the page cache the way a serving process would be
        why(store, action)
    answer_times, walk_times = [], []
    for action in picked:
        start = time.perf_counter()
        answer = why(store, action)
        answer_times.append(time.perf_counter() - start)
        assert answer.complete
        start = time.perf_counter()
        store.walk(action, direction="up", depth=12, stop_kinds=("model", "policy", "source", "agent"))
        walk_times.append(time.perf_counter() - start)
    nodes = store.counts()["nodes"]
    emit("why_p50_ms", percentile(answer_times, 0.50), "ms", events=events, nodes=nodes)
    emit("why_p99_ms", percentile(answer_times, 0.99), "ms", events=events, nodes=nodes)
    emit("why_floor_walk_p50_ms", percentile(walk_times, 0.50), "ms", events=events, nodes=nodes)
    emit("why_floor_walk_p99_ms", percentile(walk_times, 0.99), "ms", events=events, nodes=nodes)
    emit("why_mean_ms", statistics.fmean(answer_times) * 1000, "ms", events=events, samples=len(picked))


if __name__ == "__main__":
    main()
