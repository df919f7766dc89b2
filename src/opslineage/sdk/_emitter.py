"""The emitter between a :class:`~opslineage.sdk.Tracer` and its transport.

It owns delivery: a bounded buffer, a background writer thread, retries with backoff while the
transport is unavailable, a bounded spill to disk (:class:`~opslineage.sdk.Spill`) when it stays
down or falls behind, and the counters behind ``tracer.stats`` and ``tracer.status()``.

The caller's thread only appends to the buffer (and with a :class:`NoopTransport`, the default
when nothing is configured, not even that). An item is an event dict or a zero-argument
callable that builds one; the writer builds it, so assembling an event's JSON costs the pipeline
nothing. A second background thread, the spiller, moves the buffer to the spill while the
transport is unavailable or once the buffer is half full, so the buffer has room again at disk
speed whatever the transport does. When it is full all the same, the caller waits at most
``max_block`` seconds for room (not at all with ``drop_when_full``); then the newest event is
dropped and counted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from opslineage.sdk._spill import DEFAULT_SPILL_CAP, LossLog, Spill, default_spill_dir
from opslineage.sdk.transports import NoopTransport, Transport, TransportError, TransportUnavailable

__all__ = ["DeliveryStatus", "Emitter", "EmitterStats", "EventItem", "redact_url"]

log = logging.getLogger("opslineage")

EventItem = dict[str, Any] | Callable[[], dict[str, Any]]

_SLICE = 0.0001  # seconds of Python work the writer does before letting other threads run
_LINGER = 0.05  # seconds the writer waits for a batch to fill before delivering what it has
_BEHIND = 16  # batches buffered past which the writer delivers full batches, however long they take
MAX_BLOCK = 0.1
"""Seconds an emit waits at most for room in a full buffer, by default, before dropping the event."""

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
        dropped: the newest events given up on: the buffer stayed full past ``max_block`` and
            the spill could not take them (disabled, failing, or an event bigger than its cap),
            or the tracer closed with them undelivered and no spill.
        retries: delivery attempts repeated because the transport was unavailable.
        spilled: events written to the spill.
        evicted: spilled events deleted unsent, the oldest first, to keep the spill under its cap.
        last_error: the newest failure, with credentials masked.
    """

    emitted: int = 0
    errors: int = 0
    dropped: int = 0
    retries: int = 0
    spilled: int = 0
    evicted: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class DeliveryStatus:
    """Where a tracer's events stand, from ``tracer.status()``.

    Attributes:
        delivered: events the transport accepted.
        pending: events not yet delivered: buffered, being sent, or in the spill.
        in_spill: of those, events waiting in the spill (replayed later, or by the next tracer
            with the same spill directory and namespace).
        dropped: the newest events given up on (see :class:`EmitterStats`).
        evicted: spilled events deleted unsent to keep the spill under its cap.
        refused: events the transport refused as invalid.
        last_error: the newest failure (credentials masked), or None.
        available: False while the transport is unavailable and delivery is being retried.
    """

    delivered: int
    pending: int
    in_spill: int
    dropped: int
    evicted: int
    refused: int
    last_error: str | None
    available: bool


class Emitter:
    """Hands events to a transport from a bounded buffer on a background thread.

    ``sync=True`` delivers on the caller's thread instead (for tests); events that meet an
    unavailable transport are then buffered (not spilled) and retried on the next emit or flush.
    Either way a failing transport never raises into the caller: failures are logged (once per
    failure streak; losses at most once per :data:`~opslineage.sdk.REPORT_INTERVAL`) and
    counted in :attr:`stats`.

    Args:
        transport: where events go.
        sync: deliver immediately on the calling thread.
        queue_size: events buffered in memory at most.
        batch_size: most events handed to the transport at once.
        drop_when_full: drop (and count) the newest event at once when the buffer is full.
        backoff: first and largest wait, in seconds, between attempts at an unavailable transport.
        max_block: seconds an emit waits at most for room in a full buffer; None: as long as
            the transport keeps delivering (a batch job that must record everything).
        spill_dir: where the spill goes (default :func:`~opslineage.sdk.default_spill_dir`).
        spill_name: the spill's name in that directory; files another process left under the
            same name are delivered by this emitter.
        spill_cap: bytes the spill holds at most; 0 for no spill.
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
        max_block: float | None = MAX_BLOCK,
        spill_dir: str | Path | None = None,
        spill_name: str = "events",
        spill_cap: int = DEFAULT_SPILL_CAP,
    ) -> None:
        self.transport = transport
        self.stats = EmitterStats()
        self.sync = sync
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.max_block = 0.0 if drop_when_full else max_block
        self.spill_dir = Path(spill_dir) if spill_dir is not None else default_spill_dir()
        self._spill_name = spill_name
        self._spill_cap = spill_cap
        self._spill: Spill | None = None
        self._high = max(1, queue_size // 2)  # buffered events past which the spiller moves them
        self._backoff = backoff
        self._delay = backoff[0]
        self._retry_at = 0.0
        self._available = True
        self._buffer: deque[EventItem] = deque()
        self._held: list[dict[str, Any]] = []  # a batch the transport could not take, retried first
        self._in_flight = 0
        self._in_flight_events: list[dict[str, Any]] = []  # the batch being sent, unless from the spill
        self._spill_lines: list[int] = []  # for each event of a spill batch, the lines read up to it
        self._spilling = 0  # events the spiller took from the buffer and has not yet written
        self._cond = threading.Condition()
        self._idle = False
        self._lingering = False
        self._waiters = 0
        self._closing = False
        self._abandoned = False  # close() timed out: the writer's batch was spilled for it
        self._thread: threading.Thread | None = None
        self._spiller: threading.Thread | None = None
        self._batch = batch_size
        self._cost: float | None = None
        self._sync_lock = threading.Lock()
        self._discard = type(transport) is NoopTransport
        self._losses = LossLog(f"delivery to {type(transport).__name__}")

    def emit(self, item: EventItem) -> None:
        """Record one event (or a callable building it), waiting at most ``max_block`` seconds."""
        if self._discard:
            self.stats.emitted += 1  # nothing configured: delivered to nowhere, never built
            return
        if len(self._buffer) >= self.queue_size and not self._make_room():
            self.stats.dropped += 1
            self._report()
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
        elif len(self._buffer) >= self._high and self._spiller is not None:
            with self._cond:
                self._cond.notify_all()  # the spiller's turn

    def status(self) -> DeliveryStatus:
        """What was delivered, what waits, what was given up on, and the newest failure."""
        in_spill = self._spill.pending if self._spill is not None else 0
        return DeliveryStatus(
            delivered=self.stats.emitted,
            pending=len(self._buffer) + self._in_flight + len(self._held) + self._spilling + in_spill,
            in_spill=in_spill,
            dropped=self.stats.dropped,
            evicted=self.stats.evicted,
            refused=self.stats.errors,
            last_error=self.stats.last_error,
            available=self._available,
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event was handed to the transport (the spilled ones too); False on timeout."""
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
                while self._undelivered():
                    self._cond.notify_all()
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
                return True
            finally:
                self._waiters -= 1

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is pending, spill what is left, stop the threads and close the transport.

        Without a timeout, delivery goes on as long as the transport takes events; once it is
        unavailable, what is left goes to the spill. With one, close returns within about
        ``timeout`` seconds, whatever the transport does: a batch the transport still holds is
        spilled too (it may then be delivered twice), and closing the transport is given what
        is left of the time. Without a spill, what is left is counted as dropped.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread is not None:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            with self._cond:
                if self._thread.is_alive():
                    self._abandoned = True
                    left = [*self._held, *self._in_flight_events]
                else:
                    left = list(self._held)
                self._held, self._in_flight = [], 0
                self._cond.notify_all()
            if self._spiller is not None:
                self._spiller.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            self._thread = self._spiller = None
            self._to_spill(left, [self._buffer.popleft() for _ in range(len(self._buffer))])
        elif self._buffer:
            with self._sync_lock:
                self._deliver_buffered(self._retry_at)
                self._give_up()
        if self._spill is not None:
            self._spill.close()
            if self._spill.pending:
                log.warning(
                    "opslineage: %d event(s) undelivered are kept in %s; the next tracer with this"
                    " spill directory and namespace delivers them",
                    self._spill.pending,
                    self.spill_dir,
                )
        self._report(now=True)
        closer = threading.Thread(target=self._close_transport, name="opslineage-close", daemon=True)
        closer.start()
        closer.join(None if deadline is None else max(0.1, deadline - time.monotonic()))

    def _close_transport(self) -> None:
        try:
            self.transport.close()
        except Exception as error:  # a probe never raises into the pipeline
            log.warning("opslineage: closing the transport failed: %s: %s", type(error).__name__, error)

    def _undelivered(self) -> bool:
        spilled = self._spill is not None and self._spill.pending > 0
        return bool(self._buffer or self._in_flight or self._held or self._spilling or spilled)

    def _make_room(self) -> bool:
        """Wait up to ``max_block`` for room; False when the newest event must go."""
        if self.sync or self._thread is None or (self.max_block is not None and self.max_block <= 0):
            return False
        if self._spill is None and not self._available:
            return False  # nothing will make room soon
        deadline = None if self.max_block is None else time.monotonic() + self.max_block
        with self._cond:
            self._waiters += 1
            try:
                while self._full() and not self._closing:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._cond.notify_all()
                    self._cond.wait(0.01 if remaining is None else min(remaining, 0.01))
            finally:
                self._waiters -= 1
        return not self._full()

    def _full(self) -> bool:
        return len(self._buffer) >= self.queue_size

    def _report(self, *, now: bool = False) -> None:
        self._losses.report({"dropped": self.stats.dropped, "evicted": self.stats.evicted}, now=now)

    def _start(self) -> None:
        with self._cond:
            if self._thread is None:
                if self._spill_cap > 0:
                    try:
                        self._spill = Spill(self.spill_dir, self._spill_name, cap=self._spill_cap)
                    except OSError as error:
                        log.warning("opslineage: no spill in %s: %s", self.spill_dir, error)
                    else:
                        self._spiller = threading.Thread(
                            target=self._run_spiller, name="opslineage-spiller", daemon=True
                        )
                        self._spiller.start()
                self._thread = threading.Thread(target=self._run, name="opslineage-emitter", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._undelivered() and not self._closing:
                    self._idle = True
                    while not self._undelivered() and not self._closing:
                        self._cond.wait()
                    self._idle = False
                if not self._closing and not self._waiters and self._lingers():
                    self._lingering = True  # gather a batch: one wake-up per batch, not per event
                    self._cond.wait(_LINGER)
                    self._lingering = False
                if self._closing and (not self._undelivered() or not self._available):
                    self._cond.notify_all()
                    return
                if not self._available:
                    self._cond.wait(max(0.0, self._retry_at - time.monotonic()))
                    if self._closing:
                        continue
            self._deliver_buffered(time.monotonic())
            if self._abandoned:
                return
            self._report()
            if self._waiters:
                with self._cond:
                    self._cond.notify_all()

    def _lingers(self) -> bool:
        spilled = self._spill is not None and self._spill.pending > 0
        return not spilled and not self._held and len(self._buffer) < self.batch_size

    def _run_spiller(self) -> None:
        """Move the buffer to the spill while the transport is unavailable or the buffer is half full."""
        while True:
            with self._cond:
                while not self._closing and not (
                    self._buffer and (not self._available or len(self._buffer) >= self._high)
                ):
                    self._cond.wait(1.0 if self._available else 0.05)
                if self._closing:
                    return
                items = [self._buffer.popleft() for _ in range(len(self._buffer))]
                self._spilling = len(items)
                self._cond.notify_all()
            try:
                self._to_spill([], items)
            finally:
                self._spilling = 0
            self._report()

    def _to_spill(self, events: list[dict[str, Any]], items: list[EventItem]) -> None:
        """Append ``events`` and then ``items`` (built here) to the spill; without one, drop them."""
        events = events + self._build(items)
        if not events:
            return
        if self._spill is None:
            self.stats.dropped += len(events)
            log.warning(
                "opslineage: closed with %d event(s) undelivered: %s", len(events), self.stats.last_error
            )
            return
        lines = []
        for event in events:
            try:
                lines.append(msgspec.json.encode(event))
            except (TypeError, ValueError, msgspec.EncodeError) as error:
                self._refuse(1, f"{type(error).__name__}: {error}")
        evicted, dropped = self._spill.evicted, self._spill.dropped
        try:
            written = self._spill.append(lines)
        except OSError as error:
            self.stats.dropped += len(lines)
            self.stats.last_error = redact_url(f"spill: {type(error).__name__}: {error}")
            log.warning("opslineage: %d event(s) dropped: %s", len(lines), self.stats.last_error)
            return
        self.stats.spilled += written
        self.stats.dropped += self._spill.dropped - dropped
        self.stats.evicted += self._spill.evicted - evicted
        with self._cond:
            self._cond.notify_all()

    def _deliver_buffered(self, now: float) -> None:
        """Hand pending events to the transport, a batch at a time, oldest first (a batch held
        back, then the spill, then the buffer), until none is left or the transport is
        unavailable (then the next attempt waits for the backoff)."""
        while now >= self._retry_at and not self._abandoned:
            from_spill, events = self._next_batch()
            if not from_spill and not events:
                return
            started = time.perf_counter()
            self._in_flight_events = [] if from_spill else events
            try:
                if events:
                    self._send(events)
            except TransportUnavailable as error:
                if error.refused:
                    self._refuse(error.refused, f"TransportUnavailable: {error}")
                self._retreat(from_spill, events, error.delivered, error.delivered + error.refused)
                self._unavailable(redact_url(str(error)), now)
                return
            finally:
                self._in_flight, self._in_flight_events = 0, []
            if self._abandoned:
                return
            if from_spill:
                self._commit_spill(len(events))
            if not self.sync and events:
                self._size_batches((time.perf_counter() - started) / len(events))
                time.sleep(0)  # let the pipeline's threads run between batches

    def _next_batch(self) -> tuple[bool, list[dict[str, Any]]]:
        """The next batch and whether it came from the spill (then it may be empty: bad lines)."""
        if self._held:
            events, self._held = self._held, []
            self._in_flight = len(events)
            return False, events
        if self._spill is not None and self._spill.pending:
            lines = self._spill.read(self.batch_size)
            if lines:
                events, upto = [], []
                for count, line in enumerate(lines, 1):
                    try:
                        events.append(msgspec.json.decode(line))
                        upto.append(count)
                    except msgspec.DecodeError as error:
                        self._refuse(1, f"a spilled line is not JSON: {error}")
                self._spill_lines = (
                    upto if len(upto) == len(lines) else [*upto[:-1], len(lines)] if upto else []
                )
                if not events:
                    self._spill.commit(len(lines))
                self._in_flight = len(events)
                return True, events
        if not self._buffer:
            return False, []
        behind = len(self._buffer) > _BEHIND * self.batch_size  # throughput first, latency second
        with self._cond:
            size = min(self.batch_size if behind else self._batch, len(self._buffer))
            items = [self._buffer.popleft() for _ in range(size)]
            self._in_flight = size
        return False, self._build(items)

    def _commit_spill(self, delivered: int) -> None:
        if self._spill is not None and delivered:
            self._spill.commit(self._spill_lines[delivered - 1])

    def _retreat(self, from_spill: bool, events: list[dict[str, Any]], delivered: int, done: int) -> None:
        """After an unavailable transport dealt with the first ``done`` events of a batch
        (``delivered`` of them delivered): keep the rest, to be sent first."""
        if from_spill:
            self._commit_spill(done)  # the rest stays in the spill
        elif self.sync:
            self._buffer.extendleft(reversed(events[done:]))
        elif self._spill is not None:
            self._to_spill(events[done:], [])  # ahead of the buffer, which the spiller moves next
        elif not self._abandoned:
            self._held = events[done:]
        self.stats.emitted += delivered

    def _refuse(self, count: int, reason: str) -> None:
        self.stats.errors += count
        self.stats.last_error = redact_url(reason)
        log.warning("opslineage: %d event(s) not recorded: %s", count, self.stats.last_error)

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
            where = f"spilling to {self.spill_dir}" if self._spill is not None else "buffering"
            log.warning("opslineage: transport unavailable, %s and retrying: %s", where, reason)
        else:
            self.stats.retries += 1
        self._available = False
        self._retry_at = now + self._delay
        self._delay = min(self._delay * 2, self._backoff[1])
        if self._spiller is not None:
            with self._cond:
                self._cond.notify_all()  # the spiller moves the buffer to disk while this lasts

    def _give_up(self) -> None:
        lost = len(self._buffer)
        if lost:
            self._buffer.clear()
            self.stats.dropped += lost
            log.warning("opslineage: closed with %d event(s) undelivered: %s", lost, self.stats.last_error)
