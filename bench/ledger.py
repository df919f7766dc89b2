"""What the transparency log costs and how fast it proves, each against a floor in the same run.

- ``ledger_overhead_ratio``: ingest time with the log over the same ingest without it, minus one,
  best of three alternating rounds each (goal: under 0.15).
- ``inclusion_proof_p99_ms``: an RFC 9162 inclusion proof read from the store at ``--leaves``
  leaves (goal: under 1 ms at 1M).
- ``verify_events_per_s`` and ``verify_ratio_to_sha256_floor``: full ``verify`` against SHA-256
  over the same canonical bytes (goal: at least 0.25).
- ``verify_index_ratio``: what checking the graph index against the events adds to ``verify``,
  over ``verify`` without that check on the same store, best of three alternating rounds each.

    python bench/ledger.py --events 50000 --leaves 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from pathlib import Path

import msgspec

from corpus import demo_shaped_events, emit
from opslineage.ledger import verify
from opslineage.ledger._index import IndexCheck
from opslineage.ledger.verify import verify_store
from opslineage.merkle import CompactRange, inclusion_proof, leaf_hash
from opslineage.model import ParsedEvent, parse_event
from opslineage.store.sqlite import SQLiteStore

BATCH = 1000
ROUNDS = 4
VERIFY_ROUNDS = 3


class _NoLogStore(SQLiteStore):
    """The same store with the log appends left out: the baseline of the overhead figure."""

    def _append_log(self, size: int, events: list[ParsedEvent]) -> None:
        return None


class _NoIndexCheck(IndexCheck):
    """The index check left out: the baseline of the index figure."""

    def check(self, *args: object) -> None:
        return None

    def finish(self, size: int) -> None:
        return None


def verify_seconds(store: SQLiteStore, *, index: bool) -> float:
    verify.IndexCheck = IndexCheck if index else _NoIndexCheck  # type: ignore[misc]
    start = time.perf_counter()
    report = verify_store(store, None)
    seconds = time.perf_counter() - start
    verify.IndexCheck = IndexCheck  # type: ignore[misc]
    assert report.ok and (report.index_rows > 0) == index, report.findings[:3]
    return seconds


def ingest_seconds(store: SQLiteStore, lines: list[bytes]) -> float:
    start = time.perf_counter()
    for i in range(0, len(lines), BATCH):
        store.ingest([parse_event(line) for line in lines[i : i + BATCH]])
    return time.perf_counter() - start


def proof_times(directory: Path, leaves: int, samples: int) -> list[float]:
    """Build a log of ``leaves`` leaves in a store and time inclusion proofs from it."""
    store = SQLiteStore(directory / "proofs.db")
    tree = CompactRange()
    rows = []
    for i in range(leaves):
        rows.extend(tree.append(leaf_hash(i.to_bytes(8, "big"))))
        if len(rows) > 200_000 or i == leaves - 1:
            store.db.execute("BEGIN")
            store.db.executemany("INSERT INTO log_nodes VALUES (?, ?, ?)", rows)
            store.db.execute("COMMIT")
            rows = []
    rng = random.Random(0)
    times = []
    for _ in range(samples):
        index = rng.randrange(leaves)
        start = time.perf_counter()
        inclusion_proof(index, leaves, store.log_node)
        times.append(time.perf_counter() - start)
    store.close()
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=50_000, help="events for the overhead and verify figures"
    )
    parser.add_argument("--leaves", type=int, default=1_000_000, help="log size for the proof figure")
    parser.add_argument("--samples", type=int, default=5000)
    args = parser.parse_args()
    lines = [msgspec.json.encode(event) for event in demo_shaped_events(args.events)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        without: list[float] = []
        with_log: list[float] = []
        for round_ in range(ROUNDS):  # alternate which goes first, so drift and warm-up hit both alike
            runs = [(without, _NoLogStore), (with_log, SQLiteStore)]
            for times, kind in runs if round_ % 2 == 0 else runs[::-1]:
                with kind(directory / f"{kind.__name__}{round_}.db") as store:
                    times.append(ingest_seconds(store, lines))
        emit(
            "ledger_overhead_ratio",
            min(with_log) / min(without) - 1,
            "fraction",
            events=len(lines),
            rounds=ROUNDS,
            ingest_events_per_s=round(len(lines) / min(with_log)),
        )
        store = SQLiteStore(directory / f"SQLiteStore{ROUNDS - 1}.db")

        timed: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(VERIFY_ROUNDS):
            for index in (True, False) if round_ % 2 == 0 else (False, True):
                timed[index].append(verify_seconds(store, index=index))
        seconds = min(timed[True])
        emit(
            "verify_index_ratio",
            seconds / min(timed[False]) - 1,
            "fraction",
            events=len(lines),
            rounds=VERIFY_ROUNDS,
            index_rows=verify_store(store, None).index_rows,
            without_index_events_per_s=round(len(lines) / min(timed[False])),
        )
        canonical = [parse_event(line).canonical for line in lines]
        start = time.perf_counter()
        for data in canonical:
            hashlib.sha256(b"\x00" + data).digest()
        floor_seconds = time.perf_counter() - start
        emit("verify_events_per_s", len(lines) / seconds, "events/s", events=len(lines))
        emit("verify_sha256_floor_events_per_s", len(lines) / floor_seconds, "events/s", events=len(lines))
        emit("verify_ratio_to_sha256_floor", floor_seconds / seconds, "ratio", events=len(lines))
        store.close()

        times = proof_times(directory, args.leaves, args.samples)
        emit("inclusion_proof_p50_ms", times[len(times) // 2] * 1000, "ms", leaves=args.leaves)
        emit("inclusion_proof_p99_ms", times[int(len(times) * 0.99)] * 1000, "ms", leaves=args.leaves)


if __name__ == "__main__":
    main()
