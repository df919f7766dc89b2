"""Capture through NATS JetStream: :class:`NatsTransport`, the producer side of the bus.

This module owns the producer side of the bus: how an event becomes a JetStream message (its
subject ``<subject>.<namespace>`` and its ``Nats-Msg-Id``, the event's digest), and what
happens while NATS is away. Events are published with a JetStream acknowledgement awaited for
each; until it arrives an event stays pending. While
NATS is unreachable, pending events wait in a bounded in-memory buffer that spills to
append-only OpenLineage JSON-lines files, which are replayed in order (and then deleted) once
NATS is back, by this transport or, after the process ended, by the next one for the same
stream. An outage is buffering, not refusal: nothing raises into the pipeline.

The stream's definition is :mod:`opslineage.bus.streams`; the consumer side, which stores what
the stream holds, is :mod:`opslineage.bus.worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import nats
from nats.aio.client import Client
from nats.errors import BadHeaderError, BadSubjectError, MaxPayloadError
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NoStreamResponseError

from opslineage.bus.streams import (
    DEFAULT_STREAM,
    DEFAULT_SUBJECT,
    DEFAULT_URL,
    MSG_ID_HEADER,
    StreamMismatch,
    TlsRefused,
    check_prefix,
    check_tls,
    connect_options,
    describe,
    ensure_stream,
    event_subject,
    offers_tls,
)
from opslineage.model import digest_of
from opslineage.sdk._spill import DEFAULT_SPILL_CAP, LossLog, Spill, default_spill_dir
from opslineage.sdk.transports import TransportError

__all__ = ["NatsStats", "NatsTransport", "default_spill_dir"]

_CHUNK = 500  # messages in flight before their acknowledgements are awaited
_RETRY_AFTER = 1.0  # seconds before publishing again after NATS stopped answering
_CLOSE_WAIT = 1.0  # seconds close() gives the connection to close, after close_timeout

log = logging.getLogger("opslineage")


@dataclass
class NatsStats:
    """What a :class:`NatsTransport` did: events JetStream stored (``published``), events it
    acknowledged as already held (``duplicates``, by ``Nats-Msg-Id``), events written to a spill
    file, events refused (not JSON, or refused by the server), spilled events deleted unsent because
    the spill reached its cap (``evicted``, the oldest first), and events too big for the spill
    (``dropped``)."""

    published: int = 0
    duplicates: int = 0
    spilled: int = 0
    refused: int = 0
    evicted: int = 0
    dropped: int = 0


_Item = tuple[str, str, bytes]  # subject, message id, payload


class NatsTransport:
    """Publishes events to a JetStream stream, buffering (and spilling to disk) while NATS is away.

    Each event goes to ``<subject>.<namespace>`` with its digest as ``Nats-Msg-Id``, so the server
    drops a publish it already holds within the stream's duplicate window, and counts as sent
    when JetStream acknowledged it. nats-py is asyncio: the transport runs its own event loop on
    a background thread, so :meth:`emit` is an ordinary blocking call (made by the SDK's emitter
    thread, never by the pipeline). The stream is created when missing.

    While NATS is unreachable, or stops acknowledging, events wait in memory; past ``buffer``
    events they are appended to the bounded spill (:class:`~opslineage.sdk.Spill`) in
    ``spill_dir``: JSON-lines files (OpenLineage events, one a line, which ``opslineage ingest``
    also reads) of at most ``spill_cap`` bytes, past which the oldest are evicted and counted.
    When NATS is back everything pending is published oldest first and the spill files are
    deleted. Events still pending at :meth:`close` are spilled, and the next transport for the
    same stream and spill directory sends them.

    Args:
        url: the NATS server.
        stream: the JetStream stream.
        namespace: publish every event under this namespace instead of its own job namespace.
        spill_dir: where spill files go (default :func:`default_spill_dir`).
        buffer: events held in memory before they are spilled to disk.
        spill_cap: bytes the spill holds at most (default 64 MiB).
        subject: the subject prefix; the stream takes ``<subject>.>``.
        ack_timeout: seconds to wait for JetStream to acknowledge a chunk of publishes.
        close_timeout: seconds :meth:`close` spends sending what is pending before spilling it
            (it returns within about a second more).
        tls: the TLS context for NATS (:func:`~opslineage.bus.streams.tls_context`: a CA file,
            a client certificate); with one, or a ``tls://`` URL, a server that does not offer
            TLS is refused (logged; events are buffered).

    Raises:
        ValueError: ``subject`` is not subject-safe tokens, or ``buffer`` is below 1.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        stream: str = DEFAULT_STREAM,
        namespace: str | None = None,
        spill_dir: str | Path | None = None,
        buffer: int = 10_000,
        subject: str = DEFAULT_SUBJECT,
        ack_timeout: float = 5.0,
        close_timeout: float = 5.0,
        spill_cap: int = DEFAULT_SPILL_CAP,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        self.url = url
        self.stream = stream
        self.tls = tls
        self.namespace = namespace
        self.subject = check_prefix(subject)
        self.spill_dir = Path(spill_dir) if spill_dir is not None else default_spill_dir()
        self.buffer = buffer
        self.ack_timeout = ack_timeout
        self.close_timeout = close_timeout
        self.stats = NatsStats()
        self._memory: deque[_Item] = deque()
        self._spill = Spill(self.spill_dir, stream, cap=spill_cap)
        self._losses = LossLog(f"NATS spill {self.spill_dir} ({spill_cap} bytes) for stream {stream}")
        self._unreported = 0  # refusals found while replaying, reported with the next batch
        self._retry_at = 0.0
        self._give_up_at: float | None = None  # set by close(): stop publishing then
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._stream_ready = False
        self._stream_warned = False
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="opslineage-nats", daemon=True)
        self._thread.start()
        self._call(self._start())

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by JetStream (in memory or in spill files)."""
        return len(self._memory) + self._spill.pending

    @property
    def connected(self) -> bool:
        """Whether the transport is connected to NATS and the stream is ready."""
        return self._nc is not None and self._nc.is_connected and self._stream_ready

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Publish a batch, waiting for JetStream's acknowledgements; buffer it while NATS is away.

        Raises:
            TransportError: events that are not JSON, or that the server refused (those found while
                replaying earlier events are reported here too); everything else was accepted.
        """
        if self._closed:
            raise TransportError("the NATS transport is closed", refused=len(events))
        refused = self._call(self._accept(events))
        if refused:
            raise TransportError(f"{refused} event(s) refused by NATS or not JSON", refused=refused)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event handed to :meth:`emit` was acknowledged (or refused); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending and not self._closed:
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._loop.call_soon_threadsafe(self._wake.set)
            time.sleep(0.02)
        return not self.pending

    def close(self) -> None:
        """Send what is pending (for up to ``close_timeout`` seconds), spill the rest, disconnect."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    # On the transport's event loop from here on.

    async def _start(self) -> None:
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._connect()),
            asyncio.create_task(self._keep_sending()),
        ]

    async def _connect(self) -> None:
        def unreachable(error: Exception, errors: int) -> None:
            if errors == 1 and self._nc is None:  # a later outage is reported as lost
                log.warning("opslineage: NATS at %s unreachable (%s); buffering events", self.url, error)

        async def disconnected() -> None:
            if not self._closed:
                log.warning("opslineage: lost NATS at %s; buffering events", self.url)

        async def reconnected() -> None:
            if self._nc is not None and not offers_tls(self._nc, self.url, self.tls):
                log.error(
                    "opslineage: NATS at %s came back without TLS; disconnected, events are buffered",
                    self.url,
                )
                await self._nc.close()
                return
            log.info("opslineage: NATS at %s is back; %d event(s) to replay", self.url, self.pending)
            self._retry_at = 0.0
            self._wake.set()

        try:
            nc = await nats.connect(
                **connect_options(
                    self.url, unreachable, self.tls, disconnected_cb=disconnected, reconnected_cb=reconnected
                )
            )
            await check_tls(nc, self.url, self.tls)
        except TlsRefused as error:
            log.error("opslineage: %s; events are buffered", error)
            return
        except Exception as error:  # a URL nats-py cannot use: keep buffering, never raise
            log.error("opslineage: cannot use NATS at %s: %s; events are buffered", self.url, error)
            return
        self._nc = nc
        self._js = self._nc.jetstream(publish_async_max_pending=2 * _CHUNK)
        self._wake.set()

    async def _keep_sending(self) -> None:
        """Prepare the stream once connected, and replay what is pending whenever NATS can take it;
        once the transport is closing, :meth:`_shutdown` sends the rest."""
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()
            try:
                await self._prepare_stream()
                if self.pending and self._can_publish():
                    async with self._lock:
                        await self._drain()
            except Exception as error:  # the background sender must outlive any single failure
                log.warning("opslineage: NATS sender: %s: %s", type(error).__name__, error)

    async def _prepare_stream(self) -> None:
        if self._stream_ready or self._js is None or not (self._nc and self._nc.is_connected):
            return
        if time.monotonic() < self._retry_at:
            return
        try:
            await ensure_stream(self._js, self.stream, self.subject)
        except (NatsError, StreamMismatch, TimeoutError) as error:
            if not self._stream_warned:  # once until it is ready; it is retried every second
                log.warning(
                    "opslineage: stream %s not ready: %s; events are buffered", self.stream, describe(error)
                )
                self._stream_warned = True
            self._retry_at = time.monotonic() + _RETRY_AFTER
            return
        self._stream_ready = True
        self._stream_warned = False

    def _can_publish(self) -> bool:
        now = time.monotonic()
        return (
            self.connected and now >= self._retry_at and (self._give_up_at is None or now < self._give_up_at)
        )

    async def _accept(self, events: list[dict[str, Any]]) -> int:
        refused = 0
        async with self._lock:
            for event in events:
                try:
                    item = (
                        event_subject(event, self.subject, self.namespace),
                        digest_of(event),
                        msgspec.json.encode(event),
                    )
                except (AttributeError, TypeError, ValueError, msgspec.EncodeError) as error:
                    refused += 1
                    self.stats.refused += 1
                    log.warning("opslineage: event refused: %s: %s", type(error).__name__, error)
                    continue
                self._memory.append(item)
            if len(self._memory) > self.buffer:
                self._spill_memory()
            if self._can_publish():
                await self._drain()
        reported = min(len(events), refused + self._unreported)
        self._unreported += refused - reported
        return reported

    def _spill_memory(self) -> None:
        """Move every event held in memory to the end of the spill (evicting the oldest past its cap)."""
        evicted, dropped = self._spill.evicted, self._spill.dropped
        try:
            written = self._spill.append([payload for _, _, payload in self._memory])
        except OSError as error:  # keep them in memory rather than lose them
            log.error("opslineage: cannot spill to %s: %s; holding events in memory", self.spill_dir, error)
            return
        self.stats.spilled += written
        self.stats.evicted += self._spill.evicted - evicted
        self.stats.dropped += self._spill.dropped - dropped
        self._losses.report({"evicted": self.stats.evicted, "dropped": self.stats.dropped})
        self._memory.clear()

    async def _drain(self) -> bool:
        """Publish what is pending, oldest first, until nothing is left (True) or NATS stops answering."""
        while self._can_publish():
            if lines := self._spill.read(_CHUNK):
                items = [self._item_from_line(line) for line in lines]
                valid = [item for item in items if item is not None]
                sent = await self._publish(valid) if valid else 0
                self._spill.commit(_leading(items, sent))
                if sent < len(valid):
                    return self._back_off()
            elif self._memory:
                chunk = [self._memory[index] for index in range(min(_CHUNK, len(self._memory)))]
                sent = await self._publish(chunk)
                for _ in range(sent):
                    self._memory.popleft()
                if sent < len(chunk):
                    return self._back_off()
            else:
                return True
        return not self.pending

    def _back_off(self) -> bool:
        self._retry_at = time.monotonic() + _RETRY_AFTER
        return False

    def _item_from_line(self, line: bytes) -> _Item | None:
        try:
            event = msgspec.json.decode(line)
            return (event_subject(event, self.subject, self.namespace), digest_of(event), line)
        except (AttributeError, TypeError, ValueError, msgspec.DecodeError) as error:
            self._refuse(f"a spilled line is not an event: {error}")
            return None

    def _refuse(self, reason: str) -> None:
        self.stats.refused += 1
        self._unreported += 1
        log.warning("opslineage: event refused: %s", reason)

    async def _publish(self, items: list[_Item]) -> int:
        """Publish in order and await the acknowledgements; how many leading items are done with
        (stored, duplicate, or refused). Stops at the first one NATS did not answer."""
        assert self._js is not None
        outcomes: list[asyncio.Future[api.PubAck] | Exception] = []
        for subject, msg_id, payload in items:
            try:
                outcomes.append(
                    await self._js.publish_async(
                        subject, payload, wait_stall=self.ack_timeout, headers={MSG_ID_HEADER: msg_id}
                    )
                )
            except (MaxPayloadError, BadSubjectError, BadHeaderError) as error:
                outcomes.append(error)
            except NatsError:
                break
        futures = [outcome for outcome in outcomes if isinstance(outcome, asyncio.Future)]
        if futures:
            _, late = await asyncio.wait(futures, timeout=self.ack_timeout)
            for future in late:
                future.cancel()
        done = 0
        errors = [outcome if isinstance(outcome, Exception) else _error_of(outcome) for outcome in outcomes]
        for outcome, failure in zip(outcomes, errors, strict=True):
            if failure is None:
                assert isinstance(outcome, asyncio.Future)
                ack = outcome.result()
                if ack.duplicate:
                    self.stats.duplicates += 1
                else:
                    self.stats.published += 1
            elif isinstance(failure, MaxPayloadError | BadSubjectError | BadHeaderError | BadRequestError):
                self._refuse(f"{type(failure).__name__}: {failure}")
            else:
                if isinstance(failure, NoStreamResponseError):
                    self._stream_ready = False  # deleted, or JetStream is not up yet: prepare it again
                log.info("opslineage: NATS did not take event %d of %d: %r", done + 1, len(items), failure)
                break
            done += 1
        return done

    async def _shutdown(self) -> None:
        self._give_up_at = time.monotonic() + self.close_timeout
        while self.pending and time.monotonic() < self._give_up_at:
            self._retry_at = 0.0
            await self._prepare_stream()
            if self._can_publish():
                async with self._lock:
                    remaining = self._give_up_at - time.monotonic()
                    # cancelled mid-publish, what was not acknowledged stays pending and is spilled
                    with contextlib.suppress(TimeoutError):
                        if await asyncio.wait_for(self._drain(), max(remaining, 0.001)):
                            break
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        # Bounded: a task whose cancellation nats-py swallowed ends at its next turn (the sender
        # stops once closed), and close() must not wait for ever on it.
        await asyncio.wait(self._tasks, timeout=_CLOSE_WAIT + 1.0)
        if self._memory:
            self._spill_memory()
        self._spill.close()
        if self._nc is not None:
            # Not wait_for: it waits for the cancelled close to end, which nats-py may never let it.
            closing = asyncio.ensure_future(self._nc.close())
            closing.add_done_callback(lambda done: done.cancelled() or done.exception())
            await asyncio.wait({closing}, timeout=_CLOSE_WAIT)
        if self.pending:
            log.warning(
                "opslineage: %d event(s) not yet in NATS stream %s are kept in %s; the next NatsTransport "
                "for that stream sends them",
                self.pending,
                self.stream,
                self.spill_dir,
            )


def _error_of(future: asyncio.Future[api.PubAck]) -> BaseException | None:
    """A publish's failure (a cancelled one counts as unanswered), or None when it was stored."""
    if future.cancelled():
        return TimeoutError("no acknowledgement in time")
    return future.exception()


def _leading(items: list[_Item | None], sent: int) -> int:
    """How many leading lines are done with when ``sent`` of the valid ones were: undecodable lines
    count as done, up to the first valid line not sent."""
    done = 0
    for item in items:
        if item is not None:
            if sent == 0:
                break
            sent -= 1
        done += 1
    return done
