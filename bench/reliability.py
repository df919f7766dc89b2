"""Crash trials and a mixed load: what ``docs/reliability.md`` publishes.

- Crash trials, ``--trials`` each, for three targets: ``sqlite`` (``opslineage serve`` on a SQLite
  file), ``postgres`` (``opslineage serve`` on a PostgreSQL database made for the run, with the
  server's default settings) and ``worker`` (``opslineage worker`` storing into SQLite from a
  JetStream stream made for the run). In each trial clients send events (HTTP: single POSTs and
  batches of 20; worker: a producer publishing to the stream the whole time), the process is
  ``kill -9``-ed at a random moment, restarted, and every event acknowledged before the kill
  (a 201, an ``accepted`` in a batch answer, a JetStream publish ack) is looked up in the store by
  its digest; for the worker, after its restart had time to take the redelivered messages.
  Figures per target: ``<target>_acknowledged``, ``<target>_lost`` (must be 0), and in ``extra``
  the trials, the events stored that were in flight at the kill, and the slowest restart.
- Mixed load: ``--clients`` clients for ``--load-seconds`` seconds against ``opslineage serve`` on
  SQLite, each request a write (one POST) with probability ``--write-share`` or else a read (why,
  upstream, lineage, one node, a page of nodes): ``load_requests``, ``load_errors`` (a transport
  error or an unexpected status), ``load_p50_ms`` / ``load_p99_ms`` overall and per kind.

Every process, database, stream and file it makes is removed when it ends, also on Ctrl-C or
SIGTERM; every wait has a deadline.

    python bench/reliability.py                                   # 20 trials each, 16 clients for 60 s
    python bench/reliability.py --trials 3 --load-seconds 5       # a quick run
    python bench/reliability.py --targets sqlite,worker --no-load
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import nats
import psycopg

from _common import NATS, Server, database
from corpus import demo_shaped_events, emit
from opslineage.bus.streams import ensure_stream
from opslineage.bus.worker import ensure_consumer
from opslineage.ingest import IngestPipeline
from opslineage.model import parse_event
from opslineage.query import list_nodes
from opslineage.store import open_store

TARGETS = ("sqlite", "postgres", "worker")
HTTP_CLIENTS = 4  # per crash trial: half post single events, half batches
BATCH = 20
ACK_WAIT = 2.0  # the trial consumer's: how soon a killed worker's messages come back
CONVERGE = 60.0  # seconds a restarted worker gets to store what was acknowledged before the kill


class Events:
    """Demo-shaped events as JSON bytes, handed out once each to any number of threads."""

    def __init__(self, seed: int) -> None:
        self._source = demo_shaped_events(10**9, seed=seed)
        self._lock = threading.Lock()

    def take(self, count: int = 1) -> list[bytes]:
        with self._lock:
            return [msgspec.json.encode(next(self._source)) for _ in range(count)]


def stored_digests(url: str) -> set[str]:
    """The digests (hex) of every event in the store, read straight from its table."""
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(f"file:{url[len('sqlite:///') :]}?mode=ro", uri=True)
        try:
            return {bytes(row[0]).hex() for row in db.execute("SELECT digest FROM events")}
        finally:
            db.close()
    with psycopg.connect(url) as conn:
        return {bytes(row[0]).hex() for row in conn.execute("SELECT digest FROM events")}


# Crash trials of `opslineage serve`


def _http_client(
    port: int, events: Events, batches: bool, acked: list[str], refused: list[str], stop: threading.Event
) -> None:
    """Send events until the server goes away (or ``stop``), noting each digest acknowledged and
    any answer that is neither an acknowledgement nor the server going away."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    try:
        while not stop.is_set():
            if batches:
                body = b"\n".join(events.take(BATCH))
                connection.request("POST", "/api/v1/lineage/batch", body=body, headers=headers)
            else:
                connection.request("POST", "/api/v1/lineage", body=events.take()[0], headers=headers)
            response = connection.getresponse()
            body = response.read()
            try:
                answer = json.loads(body)
            except ValueError:
                refused.append(f"{response.status}: {body[:200]!r}")
                return
            if batches and response.status == 200:
                acked.extend(r["digest"] for r in answer["results"] if r["status"] == "accepted")
            elif not batches and response.status == 201:
                acked.append(answer["digest"])
            else:
                refused.append(f"{response.status}: {answer}")
                return
    except (OSError, http.client.HTTPException):
        pass  # the server was killed: what was in flight is not acknowledged
    finally:
        connection.close()


def serve_trials(name: str, url: str, trials: int, directory: Path, rng: random.Random) -> dict[str, Any]:
    """``trials`` kills of ``opslineage serve`` on ``url`` under writes; what was lost."""
    events = Events(seed=rng.randrange(2**32))
    acked: list[str] = []
    refused: list[str] = []
    lost: set[str] = set()
    restarts: list[float] = []
    with Server(url, key=directory / "no.key") as server:
        for _ in range(trials):
            stop = threading.Event()
            clients = [
                threading.Thread(
                    target=_http_client, args=(server.port, events, i % 2 == 1, acked, refused, stop)
                )
                for i in range(HTTP_CLIENTS)
            ]
            for client in clients:
                client.start()
            time.sleep(rng.uniform(0.2, 1.5))
            server.kill()
            stop.set()
            for client in clients:
                client.join(timeout=60)
            started = time.monotonic()
            server.restart()
            restarts.append(time.monotonic() - started)
            lost |= set(acked) - stored_digests(url)
    present = stored_digests(url)
    lost |= set(acked) - present
    return {
        "target": name,
        "trials": trials,
        "acknowledged": len(set(acked)),
        "lost": len(lost),
        "stored_unacknowledged": len(present - set(acked)),
        "slowest_restart_s": round(max(restarts, default=0.0), 2),
        "refused": len(refused),
        "first_refused": refused[:3],
    }


# Crash trials of `opslineage worker`


class Producer:
    """Publishes events to a stream on its own thread until stopped, noting what JetStream acknowledged."""

    def __init__(self, subject: str, events: Events, rate: float) -> None:
        self.acked: list[str] = []
        self.errors = 0
        self.failure: BaseException | None = None
        self._subject, self._events, self._rate = subject, events, rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # reported by check()
            self.failure = error

    async def _run(self) -> None:
        client = await nats.connect(NATS)
        js = client.jetstream()
        try:
            started, sent = time.monotonic(), 0
            while not self._stop.is_set():
                line = self._events.take()[0]
                digest = parse_event(line).digest.hex()
                try:
                    ack = await js.publish(self._subject, line, timeout=5, headers={"Nats-Msg-Id": digest})
                except (nats.errors.Error, TimeoutError):
                    self.errors += 1
                    continue
                if not ack.duplicate:
                    self.acked.append(digest)
                sent += 1
                ahead = sent / self._rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            await client.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def check(self) -> None:
        """Raise what made the producer stop early, if anything did."""
        if self.failure is not None:
            raise RuntimeError(f"the producer failed: {self.failure!r}") from self.failure


class Worker:
    """``opslineage worker`` in a subprocess."""

    def __init__(self, store: str, stream: str, subject: str, durable: str, key: Path) -> None:
        self._command = [
            *(sys.executable, "-m", "opslineage.cli.main", "worker", "--bus", NATS, "--store", store),
            *("--stream", stream, "--subject", subject, "--durable", durable, "--batch", "100"),
        ]
        self._env = {**os.environ, "OPSLINEAGE_KEY": str(key)}
        self.process = self.start()

    def start(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self._env
        )
        return self.process

    def kill(self) -> None:
        """``kill -9`` the worker; raises if it had already ended by itself."""
        if self.process.poll() is not None:
            raise RuntimeError(f"the worker exited by itself with status {self.process.returncode}")
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


async def _stream(stream: str, subject: str, durable: str, *, remove: bool = False) -> None:
    client = await nats.connect(NATS)
    try:
        js = client.jetstream()
        if remove:
            await js.delete_stream(stream)
            return
        await ensure_stream(js, stream, subject)
        await ensure_consumer(js, stream, durable, ack_wait=ACK_WAIT)
    finally:
        await client.close()


def _converged(url: str, wanted: set[str], seconds: float) -> set[str]:
    """What of ``wanted`` is still not stored after waiting up to ``seconds`` for it."""
    deadline = time.monotonic() + seconds
    missing = wanted - stored_digests(url)
    while missing and time.monotonic() < deadline:
        time.sleep(0.25)
        missing -= stored_digests(url)
    return missing


def worker_trials(trials: int, directory: Path, rng: random.Random, rate: float) -> dict[str, Any]:
    """``trials`` kills of a worker while a producer publishes; what JetStream acknowledged and
    the restarted worker never stored."""
    tag = uuid.uuid4().hex[:12]
    stream, subject, durable = f"OPSLINEAGE_RELIABILITY_{tag}", f"opslineage.reliability{tag}", f"w{tag}"
    url = f"sqlite:///{directory / 'worker.db'}"
    open_store(url).close()
    asyncio.run(_stream(stream, subject, durable))
    lost: set[str] = set()
    slowest = 0.0
    producer: Producer | None = None
    worker: Worker | None = None
    try:
        producer = Producer(f"{subject}.bench", Events(seed=rng.randrange(2**32)), rate)
        worker = Worker(url, stream, subject, durable, directory / "no.key")
        for _ in range(trials):
            time.sleep(rng.uniform(0.5, 3.0))
            producer.check()
            worker.kill()
            before = set(producer.acked)
            worker.start()
            started = time.monotonic()
            lost |= _converged(url, before, CONVERGE)
            slowest = max(slowest, time.monotonic() - started)
        producer.stop()
        producer.check()
        acked = set(producer.acked)
        lost |= _converged(url, acked, CONVERGE)
    finally:
        if producer is not None:
            producer.stop()
        if worker is not None:
            worker.stop()
        asyncio.run(_stream(stream, subject, durable, remove=True))
    present = stored_digests(url)
    return {
        "target": "worker",
        "trials": trials,
        "acknowledged": len(acked),
        "lost": len(lost),
        "stored_unacknowledged": len(present - acked),
        "slowest_catch_up_s": round(slowest, 2),
        "publish_errors": producer.errors,
    }


# Mixed load


def _percentile(times: list[float], q: float) -> float:
    return sorted(times)[int(q * (len(times) - 1))] * 1000 if times else 0.0


def mixed_load(directory: Path, clients: int, seconds: float, write_share: float) -> dict[str, Any]:
    """``clients`` clients reading and writing for ``seconds`` against serve on SQLite."""
    url = f"sqlite:///{directory / 'load.db'}"
    events = Events(seed=7)
    with open_store(url) as store:
        IngestPipeline(store).ingest(events.take(2000), actor="sdk:bench")
        actions = [node.id for node in list_nodes(store, "action", limit=1000)]
        entities = [node.id for node in list_nodes(store, "prediction", limit=1000)]
    reads: list[tuple[str, Callable[[random.Random], str]]] = [
        ("why", lambda r: f"/api/v1/why/{quote(r.choice(actions), safe=':')}"),
        ("upstream", lambda r: f"/api/v1/upstream/{quote(r.choice(entities), safe=':')}?depth=5"),
        ("lineage", lambda r: f"/api/v1/lineage?nodeId={quote(r.choice(entities), safe='')}&depth=2"),
        ("node", lambda r: f"/api/v1/nodes/{quote(r.choice(entities), safe=':')}"),
        ("nodes", lambda r: f"/api/v1/nodes?kind=feature&limit=50&offset={r.randrange(0, 200)}"),
    ]
    samples: dict[str, list[float]] = {kind: [] for kind in ["write", *(kind for kind, _ in reads)]}
    errors: list[str] = []
    lock = threading.Lock()

    def client(index: int, port: int, deadline: float) -> None:
        rng = random.Random(index)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: dict[str, list[float]] = {kind: [] for kind in samples}
        while time.monotonic() < deadline:
            if rng.random() < write_share:
                kind, method, path, body, expected = "write", "POST", "/api/v1/lineage", events.take()[0], 201
            else:
                kind, make = rng.choice(reads)
                method, path, body, expected = "GET", make(rng), None, 200
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                status: int | str = response.status
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
                connection.close()
            elapsed = time.perf_counter() - started
            if status != expected:
                with lock:
                    errors.append(f"{kind} {path}: {status}")
            mine[kind].append(elapsed)
        connection.close()
        with lock:
            for kind, times in mine.items():
                samples[kind].extend(times)

    with Server(url, key=directory / "no.key") as server:
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=(i, server.port, deadline)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=seconds + 120)
        alive = server.process.poll() is None
    every = [t for times in samples.values() for t in times]
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(every),
        "errors": len(errors),
        "first_errors": errors[:5],
        "server_survived": alive,
        "p50_ms": _percentile(every, 0.5),
        "p99_ms": _percentile(every, 0.99),
        "kinds": {
            kind: {"requests": len(t), "p50_ms": _percentile(t, 0.5), "p99_ms": _percentile(t, 0.99)}
            for kind, t in samples.items()
        },
    }


def postgres_settings(url: str) -> dict[str, str]:
    """What makes a PostgreSQL commit durable, as the trial database sees it."""
    with psycopg.connect(url) as conn:
        return {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in ("synchronous_commit", "fsync", "full_page_writes", "wal_sync_method")
        }


def _interrupted(signum: int, _: Any) -> None:
    raise SystemExit(128 + signum)  # so every `finally` cleans up


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cores": os.cpu_count(), "load_average": [round(x, 2) for x in load]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="kill -9 trials per target (default 20)")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"some of {','.join(TARGETS)}")
    parser.add_argument("--clients", type=int, default=16, help="mixed-load clients (default 16)")
    parser.add_argument("--load-seconds", type=float, default=60.0, help="mixed-load duration (default 60)")
    parser.add_argument("--write-share", type=float, default=0.5, help="share of writes in the load")
    parser.add_argument("--publish-rate", type=float, default=500.0, help="worker trials: events/s published")
    parser.add_argument("--no-load", action="store_true", help="crash trials only")
    parser.add_argument("--seed", type=int, default=None, help="for the kill moments (default: random)")
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown targets {sorted(unknown)} (known: {', '.join(TARGETS)})")
    signal.signal(signal.SIGTERM, _interrupted)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    emit("machine_load_average_1m", os.getloadavg()[0], "load", seed=seed, **machine())
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for target in targets:
            started = time.monotonic()
            if target == "sqlite":
                result = serve_trials(
                    target, f"sqlite:///{directory / 'serve.db'}", args.trials, directory, rng
                )
            elif target == "postgres":
                with database() as url:
                    settings = postgres_settings(url)
                    result = serve_trials(target, url, args.trials, directory, rng) | settings
            else:
                result = worker_trials(args.trials, directory, rng, args.publish_rate)
            result["seconds"] = round(time.monotonic() - started, 1)
            emit(f"{target}_acknowledged", result["acknowledged"], "events", **result)
            emit(f"{target}_lost", result["lost"], "events", target=target, trials=args.trials)
        if not args.no_load:
            load = mixed_load(directory, args.clients, args.load_seconds, args.write_share)
            kinds = load.pop("kinds")
            emit("load_requests", load["requests"], "requests", **load, load_after=machine()["load_average"])
            emit("load_errors", load["errors"], "requests", clients=args.clients, seconds=args.load_seconds)
            emit("load_p50_ms", load["p50_ms"], "ms", clients=args.clients)
            emit("load_p99_ms", load["p99_ms"], "ms", clients=args.clients)
            for kind, figures in kinds.items():
                emit(f"load_{kind}_p50_ms", figures["p50_ms"], "ms", requests=figures["requests"])
                emit(f"load_{kind}_p99_ms", figures["p99_ms"], "ms", requests=figures["requests"])


if __name__ == "__main__":
    main()
