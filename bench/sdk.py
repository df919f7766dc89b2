"""What one recorded step costs the pipeline's thread, per step kind and transport.

The same small AIOps pipeline (ingest a window of telemetry, compute features, infer, evaluate a
policy, remediate, observe the effect) runs with recording off, then recording through each
transport: in-memory, a JSON lines file, the embedded SQLite store, and NATS JetStream at
127.0.0.1:4222 (skipped with a note when it is down). Every step is timed on the caller's thread
from entering its ``with`` to leaving it, work included; recording off times the same work.

Figures, one JSON line each: ``sdk_step_p50_us`` and ``sdk_step_p99_us`` per transport and step
kind (``overhead_*`` subtracts the same percentile with recording off, measured in the same run),
and ``sdk_drain_events_per_s`` (how fast the writer then delivered the backlog). Goal: overhead
p50 ≤ 50 µs and p99 ≤ 1 ms for every step kind. Those runs buffer every event in memory
(``queue_size`` 1,000,000), so no back-pressure is timed.

Then the blocking bound, with the default ``queue_size``: ``--blocking-events`` events emitted one
by one into a SQLite store another connection holds locked (``BEGIN EXCLUSIVE``) for past the
store's 10 s busy timeout, each emit timed on the caller's thread. ``sdk_emit_locked`` gives its
p50, p99 and max as ratios against the floor (the same emits into an in-memory transport, same
run), the max against ``MAX_BLOCK``, and what became of the events once the lock was gone
(``delivered``, ``lost``, ``spilled``, ``evicted``, ``dropped``).

    python bench/sdk.py --ticks 2000 [--transports memory,file,sqlite,nats] [--profile memory]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import socket
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opslineage import Tracer
from opslineage.sdk import MAX_BLOCK, FileTransport, MemoryTransport, Transport

KINDS = ("ingest", "features", "inference", "evaluation", "action", "effect")
FIELDS = {"timestamp": "datetime", "cpu": "float", "memory": "float", "latency_ms": "float"}
T0 = datetime(2026, 12, 1, tzinfo=UTC)
NATS = ("127.0.0.1", 4222)
OPTIONS: dict[str, Any] = {"queue_size": 1_000_000}  # room for every event: no back-pressure is timed


def rolling_mean(rows: list[list[Any]]) -> dict[str, float]:
    """Mean CPU, memory and latency over the window."""
    return {
        "cpu_mean": sum(row[1] for row in rows) / len(rows),
        "memory_mean": sum(row[2] for row in rows) / len(rows),
        "latency_mean": sum(row[3] for row in rows) / len(rows),
    }


def window(tick: int) -> tuple[datetime, datetime, list[list[Any]]]:
    """Twelve rows of telemetry for one five-minute window."""
    start = T0 + timedelta(minutes=5 * tick)
    rows = [
        [(start + timedelta(seconds=25 * i)).isoformat(), 50.0 + (tick * 7 + i) % 40, 60.0 + i, 120.0 + i % 5]
        for i in range(12)
    ]
    return start, start + timedelta(minutes=5), rows


class Pipeline:
    """The pipeline's work, with a tracer or with recording off (``tracer=None``)."""

    def __init__(self, tracer: Tracer | None) -> None:
        self.tracer = tracer
        self.times: dict[str, list[int]] = {kind: [] for kind in KINDS}
        if tracer is not None:
            self.source = tracer.source("checkout-api", owner="team-payments")
            self.model = tracer.model("anomaly", "3", b"model-bytes" * 64, "robust-z")
            self.policy = tracer.policy(
                "cpu-guard",
                "2",
                rule="cpu_mean > {cpu_mean}",
                thresholds={"cpu_mean": 60.0},
                action="scale_out",
                params={"replicas": 2},
                risk_class="medium",
            )

    @contextmanager
    def step(self, kind: str, make: Callable[[Tracer], Any]) -> Iterator[Any]:
        """Time one step on this thread: entering, the block's work, and leaving."""
        started = time.perf_counter_ns()
        with make(self.tracer) if self.tracer is not None else nullcontext() as step:
            yield step
        self.times[kind].append(time.perf_counter_ns() - started)

    def tick(self, tick: int) -> None:
        """One pass of the chain, every step kind once."""
        recording = self.tracer is not None
        start, end, rows = window(tick)
        with self.step("ingest", lambda t: t.ingest(self.source)) as step:
            snapshot = step.snapshot(rows, FIELDS, start, end) if recording else None
        with self.step(
            "features", lambda t: t.features(rolling_mean, [snapshot], subject="checkout-api")
        ) as step:
            values = rolling_mean(rows)
            features = step.feature_set(values, start, end) if recording else None
        with self.step(
            "inference", lambda t: t.inference(self.model, features, subject="checkout-api")
        ) as step:
            score = (values["cpu_mean"] - 55.0) / 4.0
            prediction = step.prediction(score, "anomaly" if score > 1 else "normal") if recording else None
        with self.step(
            "evaluation", lambda t: t.evaluate(self.policy, prediction, subject="checkout-api")
        ) as step:
            fired = values["cpu_mean"] > 60.0
            breach = {"input": "cpu_mean", "value": values["cpu_mean"], "op": ">", "threshold": 60.0}
            decision = step.decide(True, "cpu_mean over 60", [breach]) if recording else None
        with self.step(
            "action", lambda t: t.action("scale_out", target="checkout-api", decision=decision)
        ) as step:
            replicas = 2 if fired else 1
        record = step.record if recording else None
        with self.step("effect", lambda t: t.observe_effect(record)) as step:
            after = values["cpu_mean"] / replicas
            if recording:
                step.effect("resolved", end, end + timedelta(minutes=15), metric="cpu", before=values["cpu_mean"],
                            after=after, samples_before=3, samples_after=3)  # fmt: skip

    def run(self, ticks: int, idle: float = 0.0) -> None:
        """Run ``ticks`` chains, waiting ``idle`` seconds after each (for the next window)."""
        for tick in range(ticks):
            self.tick(tick)
            if idle:
                time.sleep(idle)


def percentile(values: list[int], q: float) -> float:
    """The ``q`` quantile (nearest rank) of nanosecond values, in µs."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def busy(n: int) -> int:
    """Pure Python work on the caller's thread, about ``n`` / 30 µs long."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def noise(target_us: float, samples: int) -> tuple[float, float]:
    """p50 and p99 (µs) of a step-long stretch of pure computation with no other thread running:
    what the machine's scheduling alone does to a step's p99 (the floor for the p99 figures)."""
    n = 1000
    started = time.perf_counter_ns()
    busy(n)
    n = max(1, int(n * target_us * 1000 / max(time.perf_counter_ns() - started, 1)))
    times = []
    for _ in range(samples):
        started = time.perf_counter_ns()
        busy(n)
        times.append(time.perf_counter_ns() - started)
    return percentile(times, 0.5), percentile(times, 0.99)


def nats_up() -> bool:
    """Whether something listens at 127.0.0.1:4222."""
    try:
        socket.create_connection(NATS, timeout=1).close()
    except OSError:
        return False
    return True


def delete_stream(stream: str) -> None:
    """Remove the benchmark's JetStream stream."""
    import nats  # noqa: PLC0415 (only with the NATS transport)

    async def run() -> None:
        connection = await nats.connect(f"nats://{NATS[0]}:{NATS[1]}")
        try:
            await connection.jetstream().delete_stream(stream)
        finally:
            await connection.close()

    asyncio.run(run())


def transports(
    names: list[str], directory: Path
) -> Iterator[tuple[str, Callable[[], Tracer], Callable[[], None]]]:
    """Each transport's name, a tracer factory and a cleanup."""
    for name in names:
        if name == "memory":
            yield name, lambda: Tracer("bench", transport=MemoryTransport(), **OPTIONS), lambda: None
        elif name == "file":
            yield (
                name,
                lambda: Tracer("bench", transport=FileTransport(directory / "events.jsonl"), **OPTIONS),
                lambda: None,
            )
        elif name == "sqlite":
            yield (
                name,
                lambda: Tracer("bench", store=f"sqlite:///{directory / 'lineage.db'}", **OPTIONS),
                lambda: None,
            )
        elif name == "nats":
            if not nats_up():
                print(json.dumps({"figure": "sdk_nats", "skipped": "no NATS server at 127.0.0.1:4222"}))
                continue
            from opslineage.bus import NatsTransport  # noqa: PLC0415 (only with the NATS transport)

            tag = uuid.uuid4().hex[:8]
            stream, subject = f"OPSLINEAGE_SDK_BENCH_{tag}", f"opslineage.sdkbench{tag}.events"

            def make(stream: str = stream, subject: str = subject) -> Tracer:
                nats_transport: Transport = NatsTransport(
                    f"nats://{NATS[0]}:{NATS[1]}", stream=stream, subject=subject,
                    spill_dir=directory / "spill", buffer=1_000_000,
                )  # fmt: skip
                return Tracer("bench", transport=nats_transport, **OPTIONS)

            yield name, make, lambda stream=stream: delete_stream(stream)
        else:
            raise SystemExit(f"unknown transport {name!r} (memory, file, sqlite, nats)")


def measure(
    make: Callable[[], Tracer] | None, ticks: int, idle: float
) -> tuple[dict[str, list[int]], tuple[int, float]]:
    """Step times of ``ticks`` chains, and the events still buffered when the pipeline ended with
    the rate the writer then delivered them at."""
    tracer = make() if make is not None else None
    pipeline = Pipeline(tracer)
    pipeline.run(max(ticks // 10, 20))  # warm up: imports, caches, the writer thread, the store
    if tracer is not None:
        tracer.flush()
    pipeline.times = {kind: [] for kind in KINDS}
    gc.collect()
    pipeline.run(ticks, idle)
    backlog, rate = 0, 0.0
    if tracer is not None:
        ended = time.perf_counter()
        backlog = tracer.status().pending
        tracer.flush()
        rate = backlog / max(time.perf_counter() - ended, 1e-9)
        tracer.close()
        assert tracer.stats.errors == 0 and tracer.stats.dropped == 0, tracer.stats
    return pipeline.times, (backlog, rate)


def report(mode: str, name: str, times: dict[str, list[int]], off: dict[str, list[int]]) -> None:
    """One JSON line per step kind and percentile, and the worst of them against the goal."""
    worst = {"p50": 0.0, "p99": 0.0}
    for kind in KINDS:
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            value = percentile(times[kind], q)
            line = {
                "figure": f"sdk_step_{label}_us",
                "mode": mode,
                "transport": name,
                "kind": kind,
                "value": round(value, 1),
            }
            if name != "off":
                line["overhead"] = round(value - percentile(off[kind], q), 1)
                worst[label] = max(worst[label], line["overhead"])
            print(json.dumps({**line, "unit": "µs"}))
    if name != "off":
        met = worst["p50"] <= 50 and worst["p99"] <= 1000
        print(json.dumps({"figure": "sdk_worst_overhead_us", "mode": mode, "transport": name,
                          "p50": worst["p50"], "p99": worst["p99"], "goal_met": met, "unit": "µs"}))  # fmt: skip


def emit_times(tracer: Tracer, events: list[dict[str, Any]]) -> list[int]:
    """Each emit's time on the caller's thread, in ns, sorted."""
    times = []
    for event in events:
        started = time.perf_counter_ns()
        tracer.emit(event)
        times.append(time.perf_counter_ns() - started)
    return sorted(times)


def blocking(directory: Path, count: int) -> None:
    """The caller's cost per emit while the store is locked, against the floor of the same emits
    into memory, and what was delivered, spilled, evicted and dropped once it is free."""
    source = Tracer("bench.blocking", transport=MemoryTransport(), sync=True)
    pipeline = Pipeline(source)
    while len(source.transport.events) < count:  # type: ignore[attr-defined]
        pipeline.run(100)
    events = source.transport.events[:count]  # type: ignore[attr-defined]
    floor_tracer = Tracer("bench.floor", transport=MemoryTransport())
    floor = emit_times(floor_tracer, events)
    floor_tracer.close()
    db = directory / "locked.db"
    url = f"sqlite:///{db}"
    tracer = Tracer("bench.locked", store=url, spill_dir=directory / "spill")
    tracer.emit(events[0])
    tracer.flush(timeout=60)  # the store is open before the lock is taken
    lock = sqlite3.connect(db, isolation_level=None, timeout=30, check_same_thread=False)
    lock.execute("BEGIN EXCLUSIVE")
    locked_at = time.monotonic()
    times = emit_times(tracer, events[1:])
    time.sleep(max(0.0, locked_at + 12 - time.monotonic()))  # past the 10 s busy timeout
    lock.execute("ROLLBACK")
    lock.close()
    released = time.perf_counter()
    tracer.flush(timeout=300)
    drained = time.perf_counter() - released
    tracer.close(timeout=10)
    status = tracer.status()
    floor_p50, floor_p99 = percentile(floor, 0.5), percentile(floor, 0.99)
    print(json.dumps({
        "figure": "sdk_emit_locked", "events": count, "queue_size": 10_000,
        "p50_ratio": round(percentile(times, 0.5) / floor_p50, 2),
        "p99_ratio": round(percentile(times, 0.99) / floor_p99, 2),
        "max_ratio": round(times[-1] / floor[-1], 2),
        "floor_p50_us": round(floor_p50, 2), "floor_p99_us": round(floor_p99, 2),
        "max_ms": round(times[-1] / 1e6, 2), "bound_ms": MAX_BLOCK * 1000,
        "max_over_bound": round(times[-1] / 1e9 / MAX_BLOCK, 2),
        "delivered": status.delivered, "lost": count - status.delivered,
        "spilled": tracer.stats.spilled, "evicted": status.evicted, "dropped": status.dropped,
        "retries": tracer.stats.retries, "drain_s": round(drained, 2),
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2000, help="chains per run (six steps each)")
    parser.add_argument("--transports", default="memory,file,sqlite,nats")
    parser.add_argument(
        "--modes", default="paced,tight", help="paced: wait --idle-ms after each chain; tight: none"
    )
    parser.add_argument(
        "--idle-ms", type=float, default=2.0, help="the paced pipeline's wait for its next window"
    )
    parser.add_argument(
        "--profile", metavar="TRANSPORT", help="print a cProfile of the caller's thread (tight)"
    )
    parser.add_argument(
        "--blocking-events", type=int, default=30_000, help="events for the blocking bound (0: skip it)"
    )
    args = parser.parse_args()
    floor_p50, floor_p99 = noise(50.0, 6 * args.ticks)
    print(json.dumps({"figure": "sdk_noise_p99_us", "value": round(floor_p99, 1), "p50": round(floor_p50, 1),
                      "unit": "µs", "note": "a 50 µs stretch of pure computation, no other thread"}))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if args.profile:
            for _name, make, cleanup in transports([args.profile], directory):
                profiler = cProfile.Profile()
                profiler.enable()
                try:
                    measure(make, args.ticks, 0.0)
                finally:
                    profiler.disable()
                    cleanup()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        for mode in args.modes.split(","):
            idle = args.idle_ms / 1000 if mode == "paced" else 0.0
            off, _ = measure(None, args.ticks, idle)
            report(mode, "off", off, off)
            for name, make, cleanup in transports(args.transports.split(","), directory):
                try:
                    times, drain = measure(make, args.ticks, idle)
                finally:
                    cleanup()
                report(mode, name, times, off)
                backlog, rate = drain
                print(json.dumps({"figure": "sdk_drain_events_per_s", "mode": mode, "transport": name,
                                  "value": round(rate) if backlog else None, "backlog": backlog,
                                  "unit": "events/s"}))  # fmt: skip
                (directory / "lineage.db").unlink(missing_ok=True)
                (directory / "events.jsonl").unlink(missing_ok=True)
        if args.blocking_events:
            blocking(directory, args.blocking_events)


if __name__ == "__main__":
    main()
