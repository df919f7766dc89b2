"""`why` latency (in-process, the full structured answer) on a store of N demo-shaped events.

Two passes over the same random actions: ``why_cold_*`` is the first touch of each chain's pages,
``why_*`` the second (a serving process in steady state). Next to it, in the same run, the floor:
the bare recursive upstream walk from the same actions. Goal: why p99 under 2 ms at 1M events,
and under twice the 100k figure.

    python bench/why.py --events 1000000 [--store PATH]   # PATH is reused when it exists
    python bench/why.py --events 100000 --url postgresql://USER@HOST/DB   # any store URL, reused too

Against PostgreSQL, run ``ANALYZE`` on a freshly built store first (the planner needs statistics).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from corpus import demo_shaped_events, emit
from opslineage import open_store
from opslineage.model import parse_event
from opslineage.query import list_nodes, why
from opslineage.store import Store

BATCH = 5000
STOP = ("model", "policy", "source", "agent")


def build(store: Store, count: int) -> None:
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
    parser.add_argument("--url", help="a store URL instead of --store (e.g. postgresql://…)")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    path = args.store or Path(tempfile.mkdtemp()) / "why.db"
    store = open_store(args.url or f"sqlite:///{path}")
    if store.counts()["events"] < args.events:
        build(store, args.events)
    events = store.counts()["events"]
    actions = [node.id for node in list_nodes(store, "action", limit=1_000_000)]
    picked = random.Random(0).choices(actions, k=args.samples)
    cold = [timed(why, store, action) for action in picked]  # first touch of each chain's pages
    warm = [timed(why, store, action) for action in picked]  # a serving process, steady state
    walks = [timed(store.walk, action, direction="up", depth=12, stop_kinds=STOP) for action in picked]
    assert all(why(store, action).complete for action in picked[:100])
    nodes = store.counts()["nodes"]
    backend = store.url.partition(":")[0]
    for name, samples in (("why", warm), ("why_cold", cold), ("why_floor_walk", walks)):
        emit(f"{name}_p50_ms", percentile(samples, 0.50), "ms", events=events, nodes=nodes, store=backend)
        emit(f"{name}_p99_ms", percentile(samples, 0.99), "ms", events=events, nodes=nodes, store=backend)
    emit(
        "why_mean_ms", statistics.fmean(warm) * 1000, "ms", events=events, samples=len(picked), store=backend
    )


def timed(call: Callable[..., object], *args: object, **kwargs: object) -> float:
    """Seconds one call took."""
    start = time.perf_counter()
    call(*args, **kwargs)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
