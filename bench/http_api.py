"""HTTP ingest and query rates of ``opslineage serve``, against in-process ingest in the same run.

- ``http_single_events_per_s_1_client`` / ``..._8_clients``: one event per POST /api/v1/lineage,
  each client on its own keep-alive connection (``http.client``: the clients share the machine's
  two cores with the server, so they should cost little); ``events_per_commit`` says how many
  requests the server's group commit put in one transaction.
- ``http_batch_events_per_s``: POST /api/v1/lineage/batch with 1000 events per request.
- ``inprocess_batch_events_per_s``: the reference, parse + ingest of the same events in-process
  through the same pipeline, 1000 per transaction.
- ``http_why_p50_ms`` / ``http_why_p99_ms``: GET /api/v1/why/{id} on the store given by
  ``--why-store`` (e.g. the 1M-event store ``bench/why.py --store`` built), second pass over the
  same random actions.

The server runs in its own process (``opslineage serve``) on a free loopback port.

    python bench/http_api.py --events 20000 --why-store /tmp/why1m.db
"""

from __future__ import annotations

import argparse
import http.client
import random
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec

from _common import Server
from corpus import demo_shaped_events, emit
from opslineage.ingest import IngestPipeline
from opslineage.query import list_nodes
from opslineage.store.sqlite import SQLiteStore

BATCH = 1000
NDJSON = {"Content-Type": "application/x-ndjson"}


def post_each(port: int, lines: list[bytes]) -> None:
    """POST each event alone, in turn, on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    try:
        for line in lines:
            connection.request("POST", "/api/v1/lineage", body=line, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"POST /api/v1/lineage answered {response.status}")
    finally:
        connection.close()


def rate_single(directory: Path, lines: list[bytes], clients: int) -> tuple[float, float]:
    """Events/s of single-event POSTs from ``clients`` clients, and events per transaction."""
    path = directory / f"single{clients}.db"
    with Server(path) as server:
        shares = [lines[i::clients] for i in range(clients)]
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda share: post_each(server.port, share), shares))
        rate = len(lines) / (time.perf_counter() - start)
    with sqlite3.connect(path) as db:
        (commits,) = db.execute("SELECT count(*) FROM batches").fetchone()
    return rate, len(lines) / commits


def rate_batch(directory: Path, lines: list[bytes]) -> float:
    with Server(directory / "batch.db") as server, httpx.Client(base_url=server.url, timeout=120) as client:
        start = time.perf_counter()
        for i in range(0, len(lines), BATCH):
            client.post(
                "/api/v1/lineage/batch", content=b"\n".join(lines[i : i + BATCH]), headers=NDJSON
            ).raise_for_status()
        return len(lines) / (time.perf_counter() - start)


def rate_inprocess(directory: Path, lines: list[bytes]) -> float:
    store = SQLiteStore(directory / "inprocess.db")
    pipeline = IngestPipeline(store)
    start = time.perf_counter()
    for i in range(0, len(lines), BATCH):
        pipeline.ingest(lines[i : i + BATCH], actor="sdk:bench")
    elapsed = time.perf_counter() - start
    store.close()
    return len(lines) / elapsed


def why_latency(path: Path, samples: int) -> tuple[list[float], int]:
    with SQLiteStore(path, create=False) as store:
        actions = [node.id for node in list_nodes(store, "action", limit=1_000_000)]
        events = store.log_size()
    picked = random.Random(0).choices(actions, k=samples)
    with Server(path) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for action in picked:  # first pass: the first touch of every chain
            client.get(f"/api/v1/why/{action}").raise_for_status()
        times = []
        for action in picked:
            start = time.perf_counter()
            client.get(f"/api/v1/why/{action}").raise_for_status()
            times.append(time.perf_counter() - start)
    return sorted(times), events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--why-store", type=Path, help="a store to time GET /api/v1/why on")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    lines = [msgspec.json.encode(event) for event in demo_shaped_events(args.events)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        reference = rate_inprocess(directory, lines)
        emit("inprocess_batch_events_per_s", reference, "events/s", events=len(lines))
        for clients in (1, 8):
            rate, grouped = rate_single(directory, lines, clients)
            emit(
                f"http_single_events_per_s_{clients}_client{'s' if clients > 1 else ''}",
                rate,
                "events/s",
                events=len(lines),
                ratio_to_inprocess=round(rate / reference, 3),
                events_per_commit=round(grouped, 2),
            )
        rate = rate_batch(directory, lines)
        emit(
            "http_batch_events_per_s",
            rate,
            "events/s",
            events=len(lines),
            ratio_to_inprocess=round(rate / reference, 3),
        )
    if args.why_store:
        times, events = why_latency(args.why_store, args.samples)
        emit("http_why_p50_ms", times[len(times) // 2] * 1000, "ms", events=events)
        emit("http_why_p99_ms", times[int(len(times) * 0.99)] * 1000, "ms", events=events)


if __name__ == "__main__":
    main()
