"""The emitter between a :class:`~opslineage.sdk.Tracer` and its transport.

It owns delivery: a bounded buffer, a background writer thread, retries with backoff while the
transport is unavailable, and the counters behind ``tracer.stats`` and ``tracer.status()``.

The caller's thread only appends to the buffer (and with a :class:`NoopTransport`, the default
when nothing is configured, not even that). An item is an event dict or a zero-argument
callable that builds one; the writer builds it, so assembling an event's JSON costs the pipeline
nothing. While the transport delivers, a full buffer makes the caller wait (or, with
``drop_when_full``, drops the newest event). While it is unavailable the caller never waits: the
newest events are refused once the buffer is full, and counted as dropped.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opslineage.sdk.transports import NoopTransport, Transport, TransportError, TransportUnavailable

__all__ = ["DeliveryStatus", "Emitter", "EmitterStats", "EventItem", "redact_url"]

log = logging.getLogger("opslineage")

EventItem = dict[str, Any] | Callable[[], dict[str, Any]]

_SLICE = 0.0001  # seconds of Python work the writer does before letting other threads run
_LINGER = 0.05  # seconds the writer waits for a batch to fill before delivering what it has
_BEHIND = 16  # batches buffered past which the writer delivers full batches, however long they take

_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_PASSWORD_PARAMETER = re.compile(r"(?i)(password=)[^&\s]*")


def redact_url(text: str) -> str:
    """``text`` with the user and password of every URL in it, and ``password=`` values, masked."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _CREDENTIALS.sub(r"\g<scheme>***@", text))


@dataclass
class EmitterStats:
    """Counters of what the emitter did.

    Attributes:
        emitted: events the transport accepted.
        errors: events a transport refused (never retried).
        dropped: events given up on: the buffer was full, or the tracer closed while the
            transport was unavailable.
        retries: delivery attempts repeated because the transport was unavailable.
        last_error: the newest failure, with credentials masked.
    """

    emitted: int = 0
    errors: int = 0
    dropped: int = 0
    retries: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class DeliveryStatus:
    """Where a tracer's events stand, from ``tracer.status()``.

    Attributes:
        delivered: events the transport accepted.
        pending: events buffered, not yet delivered.
        dropped: events given up on (full buffer, or closed while unavailable).
        refused: events the transport refused as invalid.
        last_error: the newest failure (credentials masked), or None.
        available: False while the transport is unavailable and delivery is being retried.
    """

    delivered: int
    pending: int
    dropped: int
    refused: int
    last_error: str | None
    available: bool


class Emitter:
    """Hands events to a transport from a bounded buffer on a background thread.

    ``sync=True`` delivers on the caller's thread instead (for tests); events that meet an
    unavailable transport are then buffered and retried on the next emit or flush. Either way a
    failing transport never raises into the caller: failures are logged (once per failure
    streak) and counted in :attr:`stats`.

    Args:
        transport: where events go.
        sync: deliver immediately on the calling thread.
        queue_size: events buffered at most.
        batch_size: most events handed to the transport at once.
        drop_when_full: drop (and count) the newest event instead of waiting when full.
        backoff: first and largest wait, in seconds, between attempts at an unavailable transport.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        sync: bool = False,
        queue_size: int = 10_000,
        batch_size: int = 64,
        drop_when_full: bool = False,
        backoff: tuple[float, float] = (0.05, 30.0),
    ) -> None:
        self.transport = transport
        self.stats = EmitterStats()
        self.sync = sync
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.drop_when_full = drop_when_full
        self._backoff = backoff
        self._delay = backoff[0]
        self._retry_at = 0.0
        self._available = True
        self._buffer: deque[EventItem] = deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._idle = False
        self._lingering = False
        self._waiters = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        self._batch = batch_size
        self._cost: float | None = None
        self._sync_lock = threading.Lock()
        self._discard = type(transport) is NoopTransport

    def emit(self, item: EventItem) -> None:
        """Record one event (or a callable building it) without blocking on I/O."""
        if self._discard:
            self.stats.emitted += 1  # nothing configured: delivered to nowhere, never built
            return
        if len(self._buffer) + self._in_flight >= self.queue_size and not self._make_room():
            self.stats.dropped += 1
            return
        self._buffer.append(item)
        if self.sync:
            with self._sync_lock:
                self._deliver_buffered(time.monotonic())
        elif self._thread is None:
            self._start()
        elif self._idle or (self._lingering and len(self._buffer) >= self.batch_size):
            with self._cond:
                self._cond.notify_all()

    def status(self) -> DeliveryStatus:
        """What was delivered, what waits, what was given up on, and the newest failure."""
        return DeliveryStatus(
            delivered=self.stats.emitted,
            pending=len(self._buffer) + self._in_flight,
            dropped=self.stats.dropped,
            refused=self.stats.errors,
            last_error=self.stats.last_error,
            available=self._available,
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every buffered event was handed to the transport; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.sync:
            while self._buffer:
                now = time.monotonic()
                if now < self._retry_at:
                    if deadline is not None and self._retry_at > deadline:
                        time.sleep(max(0.0, deadline - now))
                        return False
                    time.sleep(self._retry_at - now)
                with self._sync_lock:
                    self._deliver_buffered(time.monotonic())
                if self._buffer and deadline is not None and time.monotonic() >= deadline:
                    return False
            return True
        with self._cond:
            self._waiters += 1
            try:
                while self._buffer or self._in_flight:
                    self._cond.notify_all()
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
                return True
            finally:
                self._waiters -= 1

    def close(self) -> None:
        """Deliver what is buffered, stop the writer and close the transport.

        While the transport is unavailable, close makes one more attempt and then gives up on
        what is still buffered (counted as dropped and logged), so a pipeline never hangs on exit.
        """
        if self._thread is not None:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join()
            self._thread = None
        elif self._buffer:
            with self._sync_lock:
                self._deliver_buffered(self._retry_at)
                self._give_up()
        try:
            self.transport.close()
        except Exception as error:  # a probe never raises into the pipeline
            log.warning("opslineage: closing the transport failed: %s: %s", type(error).__name__, error)

    def _make_room(self) -> bool:
        """Wait for room while the transport delivers; False when the newest event must go."""
        if self.sync or self.drop_when_full or not self._available or self._thread is None:
            return False
        with self._cond:
            self._waiters += 1
            try:
                while self._full() and self._available and not self._closing:
                    self._cond.notify_all()
                    self._cond.wait(0.1)
            finally:
                self._waiters -= 1
        return not self._full()

    def _full(self) -> bool:
        return len(self._buffer) + self._in_flight >= self.queue_size

    def _start(self) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="opslineage-emitter", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._buffer and not self._closing:
                    self._idle = True
                    while not self._buffer and not self._closing:
                        self._cond.wait()
                    self._idle = False
                if not self._closing and not self._waiters and len(self._buffer) < self.batch_size:
                    self._lingering = True  # gather a batch: one wake-up per batch, not per event
                    self._cond.wait(_LINGER)
                    self._lingering = False
                if not self._buffer and self._closing:
                    self._cond.notify_all()
                    return
            if not self._available:
                with self._cond:
                    if not self._closing:
                        self._cond.wait(max(0.0, self._retry_at - time.monotonic()))
                    now = self._retry_at if self._closing else time.monotonic()
            else:
                now = time.monotonic()
            self._deliver_buffered(now)
            if self._closing and not self._available:
                self._give_up()
            if self._waiters:
                with self._cond:
                    self._cond.notify_all()

    def _deliver_buffered(self, now: float) -> None:
        """Hand buffered events to the transport, a batch at a time, until it is empty or the
        transport is unavailable (then the next attempt waits for the backoff)."""
        while self._buffer and now >= self._retry_at:
            behind = len(self._buffer) > _BEHIND * self.batch_size  # throughput first, latency second
            self._in_flight = size = min(self.batch_size if behind else self._batch, len(self._buffer))
            events = self._build([self._buffer.popleft() for _ in range(size)])
            started = time.perf_counter()
            try:
                if events:
                    self._send(events)
            except TransportUnavailable as error:
                self._buffer.extendleft(reversed(events))
                self._in_flight = 0
                self._unavailable(redact_url(str(error)), now)
                return
            self._in_flight = 0
            if not self.sync:
                self._size_batches((time.perf_counter() - started) / size)
                time.sleep(0)  # let the pipeline's threads run between batches

    def _build(self, items: list[EventItem]) -> list[dict[str, Any]]:
        """Build the events of a batch, yielding the GIL every :data:`_SLICE` seconds of work
        (off the caller's thread). An event that cannot be built is counted as refused."""
        events = []
        mark = time.perf_counter()
        for item in items:
            try:
                events.append(item if isinstance(item, dict) else item())
            except Exception as error:  # a probe never raises, and the writer never dies
                self.stats.errors += 1
                self.stats.last_error = redact_url(f"{type(error).__name__}: {error}")
                log.warning("opslineage: an event could not be built: %s", self.stats.last_error)
            if not self.sync and time.perf_counter() - mark > _SLICE:
                time.sleep(0)
                mark = time.perf_counter()
        return events

    def _size_batches(self, per_event: float) -> None:
        """Keep one batch's delivery near :data:`_SLICE` seconds while the writer keeps up, so a
        transport that spends its time in Python (parsing, a store's bookkeeping) holds the GIL
        from the pipeline briefly; past :data:`_BEHIND` batches buffered, batches are full."""
        self._cost = per_event if self._cost is None else 0.8 * self._cost + 0.2 * per_event
        self._batch = max(
            1, min(self.batch_size, int(_SLICE / self._cost) if self._cost > 0 else self.batch_size)
        )

    def _send(self, events: list[dict[str, Any]]) -> None:
        try:
            self.transport.emit(events)
        except TransportUnavailable:
            raise
        except Exception as error:  # a probe never raises into the pipeline
            refused = error.refused if isinstance(error, TransportError) else len(events)
            self.stats.emitted += len(events) - refused
            self.stats.errors += refused
            self.stats.last_error = redact_url(f"{type(error).__name__}: {error}")
            log.warning("opslineage: %d event(s) not recorded: %s", refused, self.stats.last_error)
        else:
            self.stats.emitted += len(events)
        if not self._available:
            log.warning("opslineage: the transport is delivering again after %d retries", self.stats.retries)
        self._available, self._delay, self._retry_at = True, self._backoff[0], 0.0

    def _unavailable(self, reason: str, now: float) -> None:
        self.stats.last_error = f"TransportUnavailable: {reason}"
        if self._available:
            log.warning(
                "opslineage: transport unavailable, buffering up to %d events and retrying: %s",
                self.queue_size,
                reason,
            )
        else:
            self.stats.retries += 1
        self._available = False
        self._retry_at = now + self._delay
        self._delay = min(self._delay * 2, self._backoff[1])

    def _give_up(self) -> None:
        lost = len(self._buffer)
        if lost:
            self._buffer.clear()
            self.stats.dropped += lost
            log.warning("opslineage: closed with %d event(s) undelivered: %s", lost, self.stats.last_error)
