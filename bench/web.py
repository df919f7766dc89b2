"""The web pages: how long the server takes to render the remediation page, and how long Chromium
takes to draw the biggest graphs.

1. ``page_remediation_p50_ms`` / ``_p99_ms``: ``GET /remediations/{id}`` of random actions of a
   store of N demo-shaped events (``--store`` is reused, as bench/why.py builds it), over HTTP
   from ``opslineage serve``; the floor, in the same run and from the same server, is
   ``GET /api/v1/why/{id}`` of the same actions (the JSON the page is drawn from), so
   ``page_remediation_ratio_to_why`` is what drawing the page costs on top of the answer.
2. ``draw_chain_500_ms``: in Chromium (Debian's, driven by Playwright), from navigation start until
   the frame after the page's load event, for the remediation page of a chain with 500 snapshots,
   all drawn (``?snapshots=all``); ``draw_lineage_1000_ms`` the same for the lineage explorer on a
   neighbourhood of 1,000 jobs and datasets. The floor is the sign-in page, a page with no graph,
   loaded the same way in the same run. Goal: both under 1 s (OpenMetadata's lineage view breaks
   near 1,000 nodes).

    python bench/web.py [--events 1000000] [--store PATH] [--samples 300] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from playwright.sync_api import sync_playwright

from _common import Server
from corpus import emit
from opslineage import Tracer, open_store
from opslineage.model import parse_event
from opslineage.query import list_nodes
from opslineage.store import Store
from why import build, percentile

T0 = datetime(2026, 1, 5, tzinfo=UTC)
CHROMIUM_ARGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]
DRAWN = """() => new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(() =>
    resolve(performance.now()))))"""


def wide_chain(store: Store, snapshots: int) -> str:
    """Record one remediation whose features were computed from ``snapshots`` snapshots; its action id."""
    tracer = Tracer("bench.web", store=store, sync=True)
    clock = iter(T0 + timedelta(seconds=i) for i in range(10 * snapshots + 100))
    tracer.clock = lambda: next(clock)
    source = tracer.source("svc-wide")
    fields = {"timestamp": "datetime", "cpu": "float"}
    taken = []
    for i in range(snapshots):
        with tracer.ingest(source) as step:
            when = T0 + timedelta(minutes=5 * i)
            taken.append(
                step.snapshot([[tracer.timestamp(when), 50.0]], fields, when, when + timedelta(minutes=5))
            )
    with tracer.features(_mean, taken, subject="svc-wide") as step:
        features = step.feature_set({"cpu_mean": 91.0}, T0, T0 + timedelta(minutes=5 * snapshots))
    model = tracer.model("wide", "1", b"wide model", "robust-z")
    policy = tracer.policy(
        "wide-guard", "1", rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 85.0}, action="scale_out"
    )
    with tracer.inference(model, features, subject="svc-wide") as step:
        prediction = step.prediction(6.5, "anomaly", {"cpu_mean": 6.5})
    with tracer.evaluate(policy, prediction, subject="svc-wide") as step:
        step.decide(
            True, "cpu_mean 91 > 85", [{"input": "cpu_mean", "value": 91.0, "op": ">", "threshold": 85.0}]
        )
        with tracer.action("scale_out", target="svc-wide") as action:
            pass
    tracer.close()
    assert action.record is not None
    return f"run:{action.record.run_id}"


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {"cpu_mean": sum(row["cpu"] for row in rows) / len(rows)}


def fan_lineage(store: Store, jobs: int = 50, outputs: int = 19) -> str:
    """``jobs`` jobs each reading one dataset and writing ``outputs`` datasets of their own (with
    ``jobs = 50, outputs = 19``: 1,000 nodes within two hops of it); the dataset's node id."""
    events = []
    for j in range(jobs):
        when = (T0 + timedelta(minutes=j)).isoformat().replace("+00:00", "Z")
        events.append(
            {
                "eventType": "COMPLETE",
                "eventTime": when,
                "producer": "https://example.com/bench-web",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": str(uuid.UUID(int=j + 1, version=4))},
                "job": {"namespace": "bench.warehouse", "name": f"job_{j:02d}"},
                "inputs": [{"namespace": "bench.warehouse", "name": "raw.events"}],
                "outputs": [
                    {"namespace": "bench.warehouse", "name": f"mart_{j:02d}.table_{o:02d}"}
                    for o in range(outputs)
                ],
            }
        )
    store.ingest([parse_event(event) for event in events])
    return next(node.id for node in list_nodes(store, "dataset", limit=10_000) if node.name == "raw.events")


def draw_time(page: Any, url: str) -> float:
    """Milliseconds from navigation start to the frame after ``url``'s load event."""
    page.goto(url, wait_until="load")
    return float(page.evaluate(DRAWN))


def serve_times(server: Server, actions: list[str]) -> tuple[list[float], list[float]]:
    """Seconds of each ``GET /remediations/{id}`` and ``GET /api/v1/why/{id}``, interleaved."""
    pages, answers = [], []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for action in actions:
            for path, into in (
                (f"/remediations/{quote(action)}", pages),
                (f"/api/v1/why/{quote(action)}", answers),
            ):
                started = time.perf_counter()
                response = client.get(path)
                into.append(time.perf_counter() - started)
                response.raise_for_status()
    return pages, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, help="reuse (or create) the store of --events at this path")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5, help="page loads per figure in Chromium (median)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    path = args.store or Path(tempfile.mkdtemp()) / "web.db"
    with open_store(f"sqlite:///{path}") as store:
        if store.counts()["events"] < args.events:
            build(store, args.events)
        events = store.counts()["events"]
        actions = [node.id for node in list_nodes(store, "action", limit=1_000_000)]
    picked = random.Random(0).choices(actions, k=args.samples)
    with Server(path) as server:
        serve_times(server, picked[:20])  # warm the server's connections and caches
        pages, answers = serve_times(server, picked)
    for name, samples in (("page_remediation", pages), ("why_api_floor", answers)):
        emit(f"{name}_p50_ms", percentile(samples, 0.50), "ms", events=events)
        emit(f"{name}_p99_ms", percentile(samples, 0.99), "ms", events=events)
    emit(
        "page_remediation_ratio_to_why",
        statistics.median(pages) / statistics.median(answers),
        "ratio",
        events=events,
    )

    graphs = Path(tempfile.mkdtemp()) / "graphs.db"
    with open_store(f"sqlite:///{graphs}") as store:
        action = wide_chain(store, 500)
        focus = fan_lineage(store)
    print("drawing in Chromium", file=sys.stderr)
    with Server(graphs) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        targets = {
            "draw_floor_sign_in": f"{server.url}/sign-in",
            "draw_chain_500": f"{server.url}/remediations/{quote(action)}?snapshots=all",
            "draw_lineage_1000": f"{server.url}/lineage?node={quote(focus)}&depth=2",
        }
        drawn = {name: [draw_time(page, url) for _ in range(args.rounds)] for name, url in targets.items()}
        boxes = {
            "draw_chain_500": _boxes(page, targets["draw_chain_500"]),
            "draw_lineage_1000": _boxes(page, targets["draw_lineage_1000"]),
        }
        browser.close()
    floor = statistics.median(drawn["draw_floor_sign_in"])
    for name, samples in drawn.items():
        emit(f"{name}_ms", statistics.median(samples), "ms", rounds=args.rounds, boxes=boxes.get(name))
        if name != "draw_floor_sign_in":
            emit(f"{name}_ratio_to_floor", statistics.median(samples) / floor, "ratio")


def _boxes(page: Any, url: str) -> int:
    page.goto(url, wait_until="load")
    return int(page.evaluate("() => document.querySelectorAll('svg.graph .node').length"))


if __name__ == "__main__":
    main()
