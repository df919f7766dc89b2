"""Ingestion workers: from a JetStream stream into a store, losing nothing and storing nothing twice.

This module owns the consumer side of the bus (the producer side is
:mod:`opslineage.bus.transport`). :func:`run_worker` pulls batches from a durable JetStream consumer,
parses every message once, stores the valid ones through the ingest pipeline
(:meth:`~opslineage.ingest.IngestPipeline.ingest_each`: one transaction, recorded as written by
``worker:<durable>``) and acknowledges each message only after its event was committed.
Delivery is at least once (a worker that dies before acknowledging has its messages redelivered
to another after the consumer's ack wait); the store's idempotency on the event digest makes the
result exactly once. Workers sharing a durable consumer name share the work.

What can never be stored, for a reason of its own, is dead-lettered: a message the parser
refuses (whatever went wrong in it), an event the store refuses, or one that makes the store fail
in another way when stored alone. It is written to the dead-letter file (when one is given) and
published on ``opslineage.deadletter`` with its reason, then terminated so it is not redelivered;
the messages behind it go on. Only an outage of the store (a lost connection, a locked or full
SQLite file) makes the worker retry: the batch is negatively acknowledged, never acknowledged or
dead-lettered, with a delay that doubles with each delivery (up to ``max_retry_delay``), and the
worker waits as long before it fetches again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError, ServiceUnavailableError

from opslineage.bus.streams import (
    DEFAULT_STREAM,
    DEFAULT_SUBJECT,
    TlsRefused,
    check_bus_url,
    check_tls,
    connect_options,
    describe,
    ensure_stream,
    offers_tls,
)
from opslineage.ingest import STORE_OUTAGES, IngestPipeline, IngestResult, Outcome, actor, parse
from opslineage.model import InvalidEvent, ParsedEvent
from opslineage.store import Store, StoreError, StoreUnavailable, open_store

__all__ = [
    "DEADLETTER_SUBJECT",
    "DEFAULT_DURABLE",
    "WorkerStats",
    "ensure_consumer",
    "run_worker",
]

DEFAULT_DURABLE = "opslineage-worker"
DEADLETTER_SUBJECT = "opslineage.deadletter"
_FETCH_WAIT = 1.0  # seconds a fetch waits for messages: also how soon a stop request is seen
_SETUP_WAIT = 10.0  # seconds to wait for JetStream to answer at start (it lags a starting server)
PROGRESS_EVERY = 60.0
"""Seconds between two progress lines of a worker, by default."""
_MAX_ACK_PENDING = 20_000  # messages delivered and not yet acknowledged, across all workers

log = logging.getLogger("opslineage")


@dataclass
class WorkerStats:
    """What a worker did: batches committed, events stored and already stored (``duplicates``),
    messages dead-lettered, and messages handed back for redelivery (``retried``)."""

    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    deadlettered: int = 0
    retried: int = 0


async def ensure_consumer(
    js: JetStreamContext, stream: str, durable: str = DEFAULT_DURABLE, *, ack_wait: float = 30.0
) -> api.ConsumerInfo:
    """The durable pull consumer, created when missing (explicit acks, every message from the start).

    An existing consumer is used as it is, whatever its ack wait.
    """
    try:
        return await js.consumer_info(stream, durable)
    except NotFoundError:
        config = api.ConsumerConfig(
            name=durable,
            durable_name=durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=ack_wait,
            max_ack_pending=_MAX_ACK_PENDING,
        )
        return await js.add_consumer(stream, config)


def run_worker(
    bus_url: str,
    store_url: str | None,
    *,
    stream: str = DEFAULT_STREAM,
    durable: str = DEFAULT_DURABLE,
    batch: int = 500,
    stop: threading.Event | None = None,
    subject: str = DEFAULT_SUBJECT,
    deadletter: str | Path | None = None,
    ack_wait: float = 30.0,
    retry_delay: float = 5.0,
    max_retry_delay: float = 60.0,
    connect_timeout: float | None = None,
    progress_every: float = PROGRESS_EVERY,
    tls: ssl.SSLContext | None = None,
) -> WorkerStats:
    """Store what the stream holds until stopped (``stop`` set, SIGTERM or SIGINT); returns what it did.

    Waits for NATS when it is not up yet, and rides out outages. The stream (``<subject>.>``) and
    the consumer are created when missing. Signals are handled when called on the main thread.

    Args:
        bus_url: the NATS server, e.g. ``nats://127.0.0.1:4222``.
        store_url: the store (default: :func:`~opslineage.store.default_store_url`).
        stream: the JetStream stream.
        durable: the durable consumer's name; workers with the same name share the work.
        batch: most messages fetched, and ingested in one transaction, at once.
        stop: set it to stop the worker (after the batch in hand is committed and acknowledged).
        subject: the subject prefix a stream created here takes.
        deadletter: a JSON-lines file that receives every dead-lettered message.
        ack_wait: seconds before a delivered, unacknowledged message is redelivered (for a consumer
            created here).
        retry_delay: seconds before a message is redelivered after its first delivery met a store
            outage; doubled on each delivery after that.
        max_retry_delay: the longest delay between redeliveries, and between fetches in an outage.
        connect_timeout: seconds to keep trying to reach NATS at start (None: as long as it takes);
            every failed attempt is logged.
        progress_every: seconds between two progress lines in the log (what was stored,
            dead-lettered and retried since the last one, and in all).
        tls: the TLS context for NATS (:func:`~opslineage.bus.streams.tls_context`); with one, or
            a ``tls://`` URL, a server that does not offer TLS is refused.

    Raises:
        ValueError: ``bus_url`` is not a NATS URL, or ``batch`` is below 1.
        TimeoutError: NATS did not answer within ``connect_timeout``.
        StoreError: the store cannot be opened.
        StreamMismatch: the stream exists and does not take ``<subject>.>``.
        nats.errors.Error: JetStream refused to create the stream or the consumer, or the server
            does not offer the TLS asked for (:class:`~opslineage.bus.streams.TlsRefused`).
    """
    check_bus_url(bus_url)
    if batch < 1:
        raise ValueError("batch must be at least 1")
    worker = _Worker(
        bus_url, stream, durable, batch, subject, deadletter, ack_wait, retry_delay, max_retry_delay, stop
    )
    worker.connect_timeout = connect_timeout
    worker.progress_every = progress_every
    worker.tls = tls
    return asyncio.run(worker.run(store_url))


class _Worker:
    """One worker's connection, consumer and counters."""

    def __init__(
        self,
        bus_url: str,
        stream: str,
        durable: str,
        batch: int,
        subject: str,
        deadletter: str | Path | None,
        ack_wait: float,
        retry_delay: float,
        max_retry_delay: float,
        stop: threading.Event | None,
    ) -> None:
        self.bus_url = bus_url
        self.stream = stream
        self.durable = durable
        self.batch = batch
        self.subject = subject
        self.deadletter_path = Path(deadletter) if deadletter is not None else None
        self.ack_wait = ack_wait
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.outages = 0  # batches in a row that met a store outage
        self.stop = stop
        self.actor = actor("worker", durable)
        self.stats = WorkerStats()
        self.stopping = asyncio.Event()
        self.nc: Client | None = None
        self.connect_timeout: float | None = None
        self.progress_every = PROGRESS_EVERY
        self.tls: ssl.SSLContext | None = None
        self.downgraded = False  # the server came back without the TLS asked for
        self.deadletter_file: IO[bytes] | None = None

    def stopped(self) -> bool:
        return self.stopping.is_set() or (self.stop is not None and self.stop.is_set())

    async def run(self, store_url: str | None) -> WorkerStats:
        signals = self._handle_signals()
        try:
            store = await self._open(store_url)
            if store is None:
                return self.stats
            with store:
                self.nc = await self._connect()
                if self.nc is None:
                    return self.stats
                try:
                    await self._consume(IngestPipeline(store), self.nc.jetstream())
                finally:
                    self.stopping.set()  # what follows is no outage
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.nc.close(), 5)
        finally:
            for signum in signals:
                asyncio.get_running_loop().remove_signal_handler(signum)
            if self.deadletter_file is not None:
                self.deadletter_file.close()
        log.info("opslineage worker: stopped after %s", self.stats)
        if self.downgraded:
            raise TlsRefused(
                f"the NATS server at {self.bus_url} came back without TLS; stopped after {self.stats}"
            )
        return self.stats

    def _handle_signals(self) -> list[int]:
        if threading.current_thread() is not threading.main_thread():
            return []
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        return [signal.SIGTERM, signal.SIGINT]

    async def _open(self, store_url: str | None) -> Store | None:
        """Open the store, waiting out an outage (PostgreSQL down, a SQLite file another process
        holds locked) with the retry back-off, as long as it takes; None when stopped first. A
        refusal (no such store, a newer schema) is raised at once."""
        attempt = 0
        while not self.stopped():
            try:
                return await asyncio.to_thread(open_store, store_url)
            except StoreUnavailable as error:
                log.warning("opslineage worker: waiting for the store (%s)", _reason(error))
            attempt += 1
            await self._pause(self._backoff(attempt))
        return None

    async def _connect(self) -> Client | None:
        """Connect, waiting for NATS up to ``connect_timeout`` (logging each failed attempt);
        None when stopped first."""
        attempts = 0
        last = ""

        def failed(error: Exception, errors: int) -> None:
            nonlocal attempts, last
            if self.nc is None and not connecting.done():  # until connected, each error is an attempt
                attempts, last = errors, describe(error)
                log.warning(
                    "opslineage worker: NATS at %s: attempt %d failed (%s); retrying",
                    self.bus_url,
                    attempts,
                    describe(error),
                )

        async def disconnected() -> None:
            if not self.stopped():
                log.warning("opslineage worker: lost NATS at %s; reconnecting", self.bus_url)

        async def reconnected() -> None:
            if self.nc is not None and not offers_tls(self.nc, self.bus_url, self.tls):
                log.error("opslineage worker: NATS at %s came back without TLS; stopping", self.bus_url)
                self.downgraded = True
                self.stopping.set()
                return
            log.info("opslineage worker: NATS at %s is back", self.bus_url)

        options = connect_options(
            self.bus_url, failed, self.tls, disconnected_cb=disconnected, reconnected_cb=reconnected
        )
        deadline = None if self.connect_timeout is None else time.monotonic() + self.connect_timeout
        connecting = asyncio.ensure_future(nats.connect(**options))
        while not connecting.done():
            await asyncio.wait({connecting}, timeout=0.5)
            late = deadline is not None and time.monotonic() > deadline
            if (self.stopped() or late) and not connecting.done():
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await connecting
                if late:
                    raise TimeoutError(
                        f"no NATS server answered at {self.bus_url} within {self.connect_timeout:g} s"
                        f" ({attempts} attempt(s){'; last: ' + last if last else ''})"
                    )
                return None
        nc = connecting.result()
        await check_tls(nc, self.bus_url, self.tls)
        return nc

    async def _subscribe(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        """The stream, the consumer and a pull subscription on it; JetStream just starting up is
        waited for (up to ``_SETUP_WAIT`` seconds)."""
        deadline = time.monotonic() + _SETUP_WAIT
        while True:
            try:
                await ensure_stream(js, self.stream, self.subject)
                await ensure_consumer(js, self.stream, self.durable, ack_wait=self.ack_wait)
                return await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
            except (ServiceUnavailableError, NoRespondersError, TimeoutError):
                if time.monotonic() > deadline or self.stopped():
                    raise
                await asyncio.sleep(0.5)

    async def _consume(self, pipeline: IngestPipeline, js: JetStreamContext) -> None:
        subscription = await self._subscribe(js)
        log.info(
            "opslineage worker: storing stream %s (consumer %s) from %s into %s",
            self.stream,
            self.durable,
            self.bus_url,
            pipeline.store.url,
        )
        reported, at = asdict(self.stats), time.monotonic()
        while not self.stopped():
            if time.monotonic() - at >= self.progress_every:
                reported, at = self._progress(reported), time.monotonic()
            try:
                messages = await subscription.fetch(self.batch, timeout=_FETCH_WAIT)
            except TimeoutError:  # nothing to fetch: nats-py raises asyncio's TimeoutError or its own
                continue
            except NatsError as error:  # disconnected, or JetStream busy: wait and fetch again
                log.debug("opslineage worker: fetch: %s: %s", type(error).__name__, error)
                await asyncio.sleep(_FETCH_WAIT)
                continue
            await self._handle(pipeline, messages)

    def _progress(self, before: dict[str, int]) -> dict[str, int]:
        """Log what was done since the last report (also when nothing was: the worker is alive)."""
        now = asdict(self.stats)
        log.info(
            "opslineage worker: %s in the last %g s; %s in all",
            ", ".join(f"{now[name] - before[name]} {name}" for name in now),
            self.progress_every,
            ", ".join(f"{value} {name}" for name, value in now.items()),
        )
        return now

    async def _handle(self, pipeline: IngestPipeline, messages: list[Msg]) -> None:
        """Store one fetched batch, then acknowledge, dead-letter or hand back each message."""
        valid: list[tuple[Msg, ParsedEvent]] = []
        for message in messages:
            try:
                valid.append((message, parse(message.data)))
            except Exception as error:  # InvalidEvent, or any other failure of this message alone
                await self._deadletter(message, f"invalid event: {_reason(error)}")
        if valid:
            try:
                outcomes = await asyncio.to_thread(
                    pipeline.ingest_each, [[event] for _, event in valid], actor=self.actor
                )
            except STORE_OUTAGES as error:
                await self._retry([message for message, _ in valid], error)
            except Exception:  # one of them makes the store fail: find which, storing each alone
                await self._each_alone(pipeline, valid)
            else:
                await self._settle_outcomes([message for message, _ in valid], outcomes)
        assert self.nc is not None
        with contextlib.suppress(NatsError, TimeoutError):  # unsent acknowledgements mean redelivery
            await self.nc.flush(timeout=5)

    async def _settle_outcomes(self, messages: list[Msg], outcomes: list[Outcome]) -> None:
        """Acknowledge what was stored; dead-letter what the store refused (it costs only itself)."""
        self.outages = 0
        refused = False
        for message, outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, IngestResult):
                await self._settle(message.ack())
                self.stats.stored += outcome.accepted
                self.stats.duplicates += outcome.duplicates
            else:
                refused = True
                await self._deadletter(message, f"refused by the store: {outcome}")
        if not refused:
            self.stats.batches += 1

    async def _each_alone(self, pipeline: IngestPipeline, valid: list[tuple[Msg, ParsedEvent]]) -> None:
        """Store each message of a batch the store failed on alone: the one that fails alone (not
        for an outage) is dead-lettered; an outage hands back it and every one after it."""
        for index, (message, event) in enumerate(valid):
            try:
                outcome = await asyncio.to_thread(pipeline.ingest, [event], actor=self.actor)
            except STORE_OUTAGES as error:
                await self._retry([later for later, _ in valid[index:]], error)
                return
            except StoreError as refusal:
                await self._deadletter(message, f"refused by the store: {refusal}")
            except Exception as error:
                await self._deadletter(message, f"the store failed on it: {_reason(error)}")
            else:
                await self._settle_outcomes([message], [outcome])

    async def _retry(self, messages: list[Msg], error: BaseException) -> None:
        """The store is down: hand every message back with a growing delay, and wait before the
        next fetch (the pause doubles with each batch in a row that meets the outage)."""
        log.warning("opslineage worker: store unavailable (%s); retrying later", _reason(error))
        for message in messages:
            delay = self._backoff(message.metadata.num_delivered)
            await self._settle(message.nak(delay=delay))
        self.stats.retried += len(messages)
        self.outages += 1
        await self._pause(self._backoff(self.outages))

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the worker is told to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopped() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th try met an outage: doubling, up to the cap."""
        return min(self.max_retry_delay, self.retry_delay * 2 ** min(max(attempt, 1) - 1, 30))

    async def _deadletter(self, message: Msg, reason: str) -> None:
        """Record a message that will never be stored, then terminate it so it is not redelivered."""
        sequence = message.metadata.sequence.stream
        record = {
            "reason": reason,
            "stream": self.stream,
            "stream_seq": sequence,
            "subject": message.subject,
            "deadlettered_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "data": message.data.decode("utf-8", "replace"),
        }
        if self.deadletter_path is not None:
            try:
                if self.deadletter_file is None:
                    self.deadletter_file = self.deadletter_path.open("ab")
                self.deadletter_file.write(msgspec.json.encode(record) + b"\n")
                self.deadletter_file.flush()
            except OSError as error:  # not recorded: keep the message
                log.error("opslineage worker: cannot write %s: %s", self.deadletter_path, error)
                await self._settle(message.nak(delay=self._backoff(message.metadata.num_delivered)))
                self.stats.retried += 1
                return
        assert self.nc is not None
        headers = {"Opslineage-Stream": self.stream, "Opslineage-Stream-Seq": str(sequence)}
        with contextlib.suppress(NatsError):
            await self.nc.publish(
                DEADLETTER_SUBJECT, message.data, headers={**headers, "Opslineage-Reason": _header(reason)}
            )
        await self._settle(message.term())
        self.stats.deadlettered += 1
        log.warning(
            "opslineage worker: dead-lettered message %d of stream %s: %s", sequence, self.stream, reason
        )

    @staticmethod
    async def _settle(reply: Any) -> None:
        """Send an ack, nak or term; one lost on a broken connection means redelivery, not loss."""
        with contextlib.suppress(NatsError):
            await reply


def _reason(error: BaseException) -> str:
    """An error as a reason: its message, with its type unless it is one of ours."""
    if isinstance(error, InvalidEvent | StoreError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _header(reason: str) -> str:
    """A reason as a NATS header value: one line, at most 1,000 characters."""
    return " ".join(reason.split())[:1000]
