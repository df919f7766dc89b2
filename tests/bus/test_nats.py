"""Capture through NATS JetStream and the ingestion workers, on real NATS servers.

Each test uses its own stream (and subjects), deleted afterwards. The fault tests run their own
nats-server on a free port with JetStream storage in the test's directory. Without a NATS server
the tests are skipped, unless OPSLINEAGE_REQUIRE_SERVICES=1 (then they fail).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest

from helpers import CHAIN_EVENTS, NATS_URL, listening, nats_unavailable, record_chain, register_refused_policy
from opslineage import Tracer, open_store
from opslineage.bus import NatsTransport, event_subject
from opslineage.bus.worker import (
    DEADLETTER_SUBJECT,
    DEFAULT_DURABLE,
    WorkerStats,
    ensure_consumer,
    run_worker,
)
from opslineage.cli.main import main
from opslineage.ledger.verify import verify_store
from opslineage.model import parse_event
from opslineage.query import why
from opslineage.sdk import MemoryTransport
from opslineage.store import Store

ROOT = Path(__file__).parents[2]


def _corpus() -> Any:
    spec = importlib.util.spec_from_file_location("bench_corpus", ROOT / "bench" / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo_shaped_events = _corpus().demo_shaped_events


@dataclass
class Bus:
    """A NATS server and a stream of this test's own."""

    url: str
    stream: str
    subject: str

    def transport(self, spill_dir: Path, **options: Any) -> NatsTransport:
        return NatsTransport(
            self.url, stream=self.stream, subject=self.subject, spill_dir=spill_dir, **options
        )

    def options(self, **more: Any) -> dict[str, Any]:
        """``run_worker`` options for this stream."""
        return {"stream": self.stream, "subject": self.subject, **more}

    def js(self, call: Callable[[Any], Any]) -> Any:
        """Run ``await call(jetstream_context)`` on a connection of its own."""

        async def run() -> Any:
            nc = await nats.connect(self.url, connect_timeout=2, allow_reconnect=False)
            try:
                return await call(nc.jetstream())
            finally:
                await nc.close()

        return asyncio.run(run())

    def consumer(self, durable: str = DEFAULT_DURABLE) -> Any:
        return self.js(lambda js: js.consumer_info(self.stream, durable))

    def messages(self) -> int:
        return int(self.js(lambda js: js.stream_info(self.stream)).state.messages)

    def delete(self) -> None:
        async def drop(js: Any) -> None:
            with suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(self.stream)

        self.js(drop)


def _new_bus(url: str) -> Bus:
    tag = uuid.uuid4().hex[:12]
    return Bus(url, f"OPSLINEAGE_TEST_{tag}", f"opslineage.test{tag}.events")


@pytest.fixture
def bus() -> Iterator[Bus]:
    address = urllib.parse.urlsplit(NATS_URL)
    try:
        socket.create_connection((address.hostname, address.port or 4222), timeout=2).close()
    except OSError as error:
        nats_unavailable(f"no NATS server at {NATS_URL}: {error}")
    made = _new_bus(NATS_URL)
    yield made
    made.delete()


class NatsServer:
    """A nats-server of the test's own, with JetStream storage in the test's directory."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            nats_unavailable("no nats-server binary to run a server of the test's own")
        self.binary = binary
        self.storage = directory / "jetstream"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.storage)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(lambda: listening(self.port), 10, "the test's nats-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.kill()


def _wait_for(condition: Callable[[], bool], timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(failure)
        time.sleep(0.05)


@contextmanager
def _worker(url: str, store: str, **options: Any) -> Iterator[WorkerStats]:
    """A worker on a thread; stopped (and its stats filled in) when the block ends."""
    stop = threading.Event()
    stats = WorkerStats()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            done = run_worker(url, store, stop=stop, **options)
            stats.__dict__.update(done.__dict__)
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield stats
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the worker did not stop"
    assert not failures, failures


def _stored(store: Store) -> int:
    return store.counts()["events"]


def _digests(events: list[dict[str, Any]]) -> set[str]:
    return {parse_event(event).digest.hex() for event in events}


def _stored_digests(store: Store) -> list[str]:
    return [event.digest for event in store.events()]


def _drained(bus: Bus, durable: str = DEFAULT_DURABLE) -> bool:
    """Every message of the stream was delivered to a worker and settled."""
    try:
        info = bus.consumer(durable)
    except nats.js.errors.NotFoundError:  # no worker made the consumer yet
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


class _Tee:
    """A transport that hands every batch to two others."""

    def __init__(self, *transports: Any) -> None:
        self.transports = transports

    def emit(self, events: list[dict[str, Any]]) -> None:
        for transport in self.transports:
            transport.emit(events)

    def close(self) -> None:
        for transport in self.transports:
            transport.close()


def test_subjects_are_the_job_namespace_as_safe_tokens() -> None:
    event = {"job": {"namespace": "aiops.demo", "name": "x"}}
    assert event_subject(event) == "opslineage.events.aiops.demo"
    assert (
        event_subject({"job": {"namespace": "postgres://db:5432"}}) == "opslineage.events.postgres___db_5432"
    )
    assert event_subject({"dataset": {"namespace": "a..b*>"}}, "p") == "p.a._.b__"
    assert event_subject({"job": {"namespace": "x y"}}, namespace="fixed.ns") == "opslineage.events.fixed.ns"
    assert event_subject({}) == "opslineage.events._"
    with pytest.raises(ValueError, match="subject prefix"):
        NatsTransport(subject="bad.>")


def test_a_chain_published_through_nats_is_stored_once_and_explained(bus: Bus, tmp_path: Path) -> None:
    sent = MemoryTransport()
    transport = bus.transport(tmp_path / "spill")
    tracer = Tracer("test.ns", transport=_Tee(transport, sent))
    chain = record_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    assert (transport.stats.published, transport.pending) == (CHAIN_EVENTS, 0)

    again = bus.transport(tmp_path / "spill")  # the same events again: JetStream drops them by Nats-Msg-Id
    again.emit(sent.events)
    again.close()
    assert (again.stats.published, again.stats.duplicates) == (0, CHAIN_EVENTS)
    assert bus.messages() == CHAIN_EVENTS

    url = f"sqlite:///{tmp_path / 'x.db'}"
    with open_store(url) as store, _worker(bus.url, url, **bus.options()) as stats:
        _wait_for(lambda: _stored(store) == CHAIN_EVENTS and _drained(bus), 20, "the chain was not stored")
        assert sorted(_stored_digests(store)) == sorted(_digests(sent.events))
        assert why(store, "run:" + chain.action.run_id).complete
    assert (stats.stored, stats.duplicates, stats.deadlettered) == (CHAIN_EVENTS, 0, 0)


def test_a_worker_killed_mid_batch_loses_nothing_and_stores_nothing_twice(bus: Bus, tmp_path: Path) -> None:
    events = list(demo_shaped_events(5000))
    transport = bus.transport(tmp_path / "spill")
    for start in range(0, len(events), 500):
        transport.emit(events[start : start + 500])
    transport.close()
    assert transport.stats.published == len(events)
    bus.js(lambda js: ensure_consumer(js, bus.stream, ack_wait=2.0))  # the dead worker's batch returns in 2 s
    db = tmp_path / "x.db"
    url = f"sqlite:///{db}"
    store = open_store(url)
    command = [sys.executable, "-m", "opslineage.cli.main", "worker", "--bus", bus.url, "--store", url]
    command += ["--stream", bus.stream, "--subject", bus.subject, "--batch", "500"]

    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        _wait_for(lambda: _stored(store) >= 1000, 30, "the first worker stored nothing")
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the worker's next commit waits: it holds a batch it cannot store
        # Pending acks seen twice, half a second apart: not acks of a stored batch still in flight.
        _wait_for(
            lambda: (
                bus.consumer().num_ack_pending > 0
                and not time.sleep(0.5)
                and bus.consumer().num_ack_pending > 0
            ),
            10,
            "the worker fetched no batch",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        lock.execute("ROLLBACK")
        lock.close()
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    stored_when_killed = _stored(store)
    assert 1000 <= stored_when_killed < len(events)

    second = subprocess.Popen(
        [*command, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    )
    try:
        _wait_for(
            lambda: _stored(store) == len(events) and _drained(bus), 30, "the second worker did not finish"
        )
        second.send_signal(signal.SIGTERM)  # a graceful stop
        out, err = second.communicate(timeout=15)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, err.decode()
    assert json.loads(out)["stored"] == len(events) - stored_when_killed
    assert bus.consumer().delivered.consumer_seq > len(events)  # the killed worker's batch came back
    digests = _stored_digests(store)
    assert len(digests) == len(set(digests)) == len(events)
    assert set(digests) == _digests(events)
    assert verify_store(store, None).ok
    store.close()


def test_a_nats_restart_while_publishing_loses_nothing(own_server: NatsServer, tmp_path: Path) -> None:
    bus = _new_bus(own_server.url)
    events = list(demo_shaped_events(3000, seed=1))
    spill = tmp_path / "spill"
    transport = bus.transport(spill, buffer=200, ack_timeout=1.0)
    tracer = Tracer("producer", transport=transport)
    raised: list[BaseException] = []

    def produce(batch: list[dict[str, Any]]) -> None:
        try:
            for event in batch:
                tracer.emit(event)
            assert tracer.flush(30)
        except BaseException as error:
            raised.append(error)

    url = f"sqlite:///{tmp_path / 'x.db'}"
    with open_store(url) as store, _worker(own_server.url, url, **bus.options(), ack_wait=2.0):
        produce(events[:1000])
        _wait_for(lambda: transport.stats.published == 1000, 20, "the first third was not published")

        own_server.kill()
        produce(events[1000:2000])  # NATS is down: buffered, and spilled past 200 events
        assert transport.pending >= 800
        assert list(spill.glob("*.jsonl")), "nothing was spilled"

        own_server.start()
        produce(events[2000:])
        assert transport.flush(30), f"{transport.pending} event(s) still pending"
        assert not list(spill.glob("*.jsonl")), "the spill was not deleted after it was replayed"
        _wait_for(lambda: _stored(store) == len(events), 30, "not every event reached the store")
        assert set(_stored_digests(store)) == _digests(events)
    tracer.close()
    assert raised == []
    assert tracer.stats.errors == 0 and tracer.stats.dropped == 0
    assert transport.stats.refused == 0 and transport.stats.spilled >= 800
    assert transport.stats.published + transport.stats.duplicates >= len(events)


def test_events_a_closed_transport_could_not_send_are_sent_by_the_next(
    own_server: NatsServer, tmp_path: Path
) -> None:
    bus = _new_bus(own_server.url)
    events = list(demo_shaped_events(300, seed=2))
    own_server.kill()
    spill = tmp_path / "spill"
    transport = bus.transport(spill, close_timeout=0.5)
    transport.emit(events)  # never raises while NATS is away
    transport.close()
    (left,) = spill.glob("*.jsonl")
    spilled = left.read_bytes().splitlines()
    assert [json.loads(line) for line in spilled] == events

    with left.open("ab") as damaged:  # a blank line, and a line a crash cut short
        damaged.write(b"\n" + spilled[0][:40])

    own_server.start()
    successor = bus.transport(spill)
    assert successor.flush(20)
    successor.close()
    assert (successor.stats.published, successor.stats.refused) == (len(events), 1)
    assert not left.exists()
    assert bus.messages() == len(events)
    assert bus.js(lambda js: _stream_payloads(js, bus.stream, len(events))) == [
        json.loads(line) for line in spilled
    ]  # replayed in the order recorded


async def _stream_payloads(js: Any, stream: str, count: int) -> list[Any]:
    return [json.loads((await js.get_msg(stream, seq)).data) for seq in range(1, count + 1)]


def test_an_invalid_message_is_dead_lettered_once_and_the_valid_ones_around_it_are_stored(
    bus: Bus, tmp_path: Path
) -> None:
    tracer = Tracer.in_memory("test.ns")
    record_chain(tracer)
    assert isinstance(tracer.transport, MemoryTransport)
    first, second = tracer.transport.events[:2]
    subject = f"{bus.subject}.test.ns"
    payloads = [
        json.dumps(first).encode(),
        b"not json",
        b'{"eventTime": "2026-01-05T12:00:00Z", "run": {}}',  # JSON, but no producer
        json.dumps(second).encode(),
    ]
    bus.js(lambda js: _publish_all(js, bus, subject, payloads))
    deadletters = tmp_path / "dead.jsonl"
    url = f"sqlite:///{tmp_path / 'x.db'}"

    async def watch(seen: list[Any], ready: threading.Event, done: threading.Event) -> None:
        nc = await nats.connect(bus.url)
        subscription = await nc.subscribe(DEADLETTER_SUBJECT)
        await nc.flush()
        ready.set()
        while not done.is_set():
            try:
                message = await subscription.next_msg(timeout=0.2)
            except nats.errors.TimeoutError:
                continue
            if (message.headers or {}).get("Opslineage-Stream") == bus.stream:
                seen.append(message)
        await nc.close()

    seen: list[Any] = []
    ready, done = threading.Event(), threading.Event()
    watcher = threading.Thread(target=lambda: asyncio.run(watch(seen, ready, done)), daemon=True)
    watcher.start()
    assert ready.wait(10)
    with (
        open_store(url) as store,
        _worker(bus.url, url, **bus.options(), deadletter=deadletters, ack_wait=1.0) as stats,
    ):
        _wait_for(lambda: _stored(store) == 2 and _drained(bus), 20, "the valid events were not stored")
        time.sleep(2.5)  # past two ack waits: a message that was not terminated would be back by now
        info = bus.consumer()
        assert (info.delivered.consumer_seq, info.num_ack_pending, info.num_pending) == (4, 0, 0)
        assert set(_stored_digests(store)) == _digests([first, second])
    done.set()
    watcher.join(timeout=10)
    assert (stats.stored, stats.deadlettered, stats.retried) == (2, 2, 0)
    records = [json.loads(line) for line in deadletters.read_text().splitlines()]
    assert [(r["stream_seq"], r["data"]) for r in records] == [(2, "not json"), (3, payloads[2].decode())]
    assert "malformed JSON" in records[0]["reason"] and "producer" in records[1]["reason"]
    assert [m.data for m in seen] == payloads[1:3]
    assert seen[0].headers["Opslineage-Stream-Seq"] == "2"


def test_an_event_the_store_refuses_costs_only_itself(bus: Bus, tmp_path: Path) -> None:
    tracer = Tracer.in_memory("test.ns")
    chain = record_chain(tracer)
    rogue = Tracer.in_memory("test.ns")  # cpu-guard@1 again, with another threshold: the store refuses it
    register_refused_policy(rogue)
    assert isinstance(tracer.transport, MemoryTransport) and isinstance(rogue.transport, MemoryTransport)
    transport = bus.transport(tmp_path / "spill")
    transport.emit(tracer.transport.events + rogue.transport.events)  # one batch for the worker
    transport.close()
    deadletters = tmp_path / "dead.jsonl"
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with open_store(url) as store, _worker(bus.url, url, **bus.options(), deadletter=deadletters) as stats:
        _wait_for(lambda: _drained(bus), 20, "the batch was not settled")
        assert _stored(store) == CHAIN_EVENTS + 1  # the rogue registration's START is harmless
        assert why(store, "run:" + chain.action.run_id).complete
    assert (stats.stored, stats.deadlettered, stats.retried) == (CHAIN_EVENTS + 1, 1, 0)
    (record,) = [json.loads(line) for line in deadletters.read_text().splitlines()]
    assert "already recorded" in record["reason"] and record["stream_seq"] == CHAIN_EVENTS + 2


async def _publish_all(js: Any, bus: Bus, subject: str, payloads: list[bytes]) -> None:
    await js.add_stream(name=bus.stream, subjects=[f"{bus.subject}.>"])
    for payload in payloads:
        await js.publish(subject, payload)


def test_two_workers_on_one_durable_share_the_work_and_store_each_event_once(
    bus: Bus, tmp_path: Path
) -> None:
    events = list(demo_shaped_events(3000, seed=3))
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with (
        open_store(url) as store,
        _worker(bus.url, url, **bus.options(), batch=100) as one,
        _worker(bus.url, url, **bus.options(), batch=100) as two,
    ):
        _wait_for(lambda: _consumer_waiting(bus) >= 2, 20, "the workers did not both subscribe")
        transport = bus.transport(tmp_path / "spill")
        for start in range(0, len(events), 250):
            transport.emit(events[start : start + 250])
        transport.close()
        _wait_for(lambda: _stored(store) == len(events) and _drained(bus), 30, "not every event was stored")
        digests = _stored_digests(store)
        assert len(digests) == len(set(digests)) == len(events)
        assert set(digests) == _digests(events)
        assert verify_store(store, None).ok
    assert one.stored > 0 and two.stored > 0, (one, two)
    assert one.stored + two.stored == len(events)


def _consumer_waiting(bus: Bus) -> int:
    try:
        return int(bus.consumer().num_waiting)
    except nats.js.errors.NotFoundError:
        return 0


def test_the_distributed_demo_is_two_commands(
    bus: Bus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    flags = ["--bus", bus.url, "--stream", bus.stream, "--subject", bus.subject]
    with open_store(url) as store, _worker(bus.url, url, **bus.options()):
        assert main(["demo", *flags, "--hours", "6", "--services", "2", "--json"]) == 0
        sent = json.loads(capsys.readouterr().out)
        assert sent["published"] == sent["events"] > 0 and sent["pending"] == 0
        _wait_for(lambda: _stored(store) == sent["events"] and _drained(bus), 30, "the demo was not stored")
    assert main(["why", sent["example"], "--store", url]) == 0
    assert "decision" in capsys.readouterr().out


def test_a_worker_goes_on_when_its_postgresql_connections_are_closed(
    bus: Bus, postgres_url: str, postgres_server: Any, tmp_path: Path
) -> None:
    events = list(demo_shaped_events(2000, services=20, seed=7))
    database = urllib.parse.urlsplit(postgres_url).path.lstrip("/")
    with open_store(postgres_url) as store, _worker(bus.url, postgres_url, **bus.options(batch=100)) as stats:
        first = bus.transport(tmp_path / "spill")
        first.emit(events[:1000])
        first.close()
        _wait_for(
            lambda: _stored(store) >= 300, 30, "the worker stored nothing before the connections closed"
        )
        killed = postgres_server.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()[0]
        second = bus.transport(tmp_path / "spill")
        second.emit(events[1000:])
        second.close()
        _wait_for(
            lambda: _stored(store) == len(events) and _drained(bus),
            60,
            "the worker did not go on after its connections were closed",
        )
        assert sorted(_stored_digests(store)) == sorted(_digests(events))
        assert verify_store(store, None).ok
    assert killed >= 1
    assert stats.stored == len(events) and stats.deadlettered == 0
