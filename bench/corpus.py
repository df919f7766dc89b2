"""Events shaped like the demo's, generated fast enough to fill stores of a million events.

Per service and five-minute tick: a snapshot ingest, a rolling-window feature computation over
the last 12 snapshots, an inference; every 20th tick also a policy evaluation that fires, a
remediation and an effect observation. Each step is a START and a COMPLETE event made by the
real SDK, so the facets, references and fan-in are the demo's.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from opslineage import Tracer
from opslineage.sdk import MemoryTransport

__all__ = ["demo_shaped_events", "emit"]

FIELDS = {
    "timestamp": "datetime",
    "cpu": "float",
    "mem": "float",
    "latency_ms": "float",
    "error_rate": "float",
}


def _window_mean(rows: list[list[Any]]) -> dict[str, float]:
    """Mean of each metric over the window."""
    return {name: sum(row[i] for row in rows) / len(rows) for i, name in enumerate(list(FIELDS)[1:], start=1)}


def demo_shaped_events(count: int, *, services: int = 50, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``count`` demo-shaped OpenLineage events."""
    rng = random.Random(seed)
    clock = {"now": datetime(2026, 1, 5, tzinfo=UTC)}
    transport = MemoryTransport()
    tracer = Tracer(
        "aiops.bench",
        transport=transport,
        sync=True,
        agent="bench-pipeline",
        clock=lambda: clock["now"],
        run_ids=lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    )
    model = tracer.model("bench-anomaly", "1", b"bench model", "robust-z")
    policy = tracer.policy(
        "cpu-guard",
        "1",
        rule="cpu_mean > {cpu_mean}",
        thresholds={"cpu_mean": 80.0},
        action="scale_out",
        params={"replicas": 2},
        risk_class="medium",
    )
    names = [f"svc-{i:04d}" for i in range(services)]
    sources = {name: tracer.source(name) for name in names}
    windows: dict[str, deque[Any]] = {name: deque(maxlen=12) for name in names}
    produced, tick = 0, 0
    while produced < count:
        clock["now"] += timedelta(minutes=5)
        now = clock["now"]
        for name in names:
            row = [
                tracer.timestamp(now),
                rng.uniform(5, 95),
                rng.uniform(20, 90),
                rng.uniform(20, 400),
                rng.random() / 50,
            ]
            with tracer.ingest(sources[name]) as step:
                windows[name].append((step.snapshot([row], FIELDS, now - timedelta(minutes=5), now), row))
            if len(windows[name]) == 12:
                snapshots = [snapshot for snapshot, _ in windows[name]]
                with tracer.features(_window_mean, snapshots, subject=name) as step:
                    features = step.feature_set(_window_mean([r for _, r in windows[name]]), now, now)
                with tracer.inference(model, features, subject=name) as step:
                    prediction = step.prediction(rng.uniform(0, 10), "anomaly", {})
                if (tick + hash(name)) % 20 == 0:
                    with tracer.evaluate(policy, prediction, subject=name) as step:
                        step.decide(True, "cpu_mean over 80")
                        with tracer.action("scale_out", target=name, params={"replicas": 2}) as action:
                            pass
                    with tracer.observe_effect(action.record) as step:  # type: ignore[arg-type]
                        step.effect(
                            "resolved",
                            now,
                            now,
                            metric="cpu",
                            before=90.0,
                            after=50.0,
                            samples_before=3,
                            samples_after=3,
                        )
            for event in transport.events:
                if produced < count:
                    yield event
                    produced += 1
            transport.events.clear()
        tick += 1


def emit(figure: str, value: float, unit: str, **extra: Any) -> None:
    """Print one figure as a JSON line: ``{"figure", "value", "unit", ...}``."""
    print(
        msgspec.json.encode({"figure": figure, "value": round(value, 4), "unit": unit, **extra}).decode(),
        flush=True,
    )
