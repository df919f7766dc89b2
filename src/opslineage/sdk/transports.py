"""Where recorded events go: a small transport contract, the shipped transports, and the
background emitter that keeps recording off the caller's thread.

A transport has ``emit(events)`` and ``close()``. Shipped: :class:`StoreTransport` (write to a
store directly), :class:`FileTransport` (OpenLineage JSON lines), :class:`MemoryTransport`
(captures events; for tests) and :class:`NoopTransport` (the free default).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec

from opslineage.ledger.log import maybe_checkpoint
from opslineage.model import InvalidEvent, parse_event
from opslineage.store import Store, StoreError, open_store

__all__ = [
    "Emitter",
    "EmitterStats",
    "FileTransport",
    "MemoryTransport",
    "NoopTransport",
    "StoreTransport",
    "Transport",
    "TransportError",
]

log = logging.getLogger("opslineage")


class Transport(Protocol):
    """Sends OpenLineage events somewhere. May raise; the emitter catches and counts."""

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Deliver a batch of events."""

    def close(self) -> None:
        """Release resources."""


class NoopTransport:
    """Discards events: what a Tracer does when nothing is configured."""

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


class MemoryTransport:
    """Keeps every event in :attr:`events`, in order. The test helper for SDK users."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Append the batch."""
        self.events.extend(events)

    def close(self) -> None:
        """Nothing to release."""


class FileTransport:
    """Appends events as OpenLineage JSON lines to a file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = self.path.open("ab")

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Write one line per event and flush."""
        self._file.write(b"".join(msgspec.json.encode(event) + b"\n" for event in events))
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class StoreTransport:
    """Validates and writes events straight into a store (the embedded, in-process path).

    A batch is ingested all-or-nothing; when it is refused, each event is retried alone so that
    one bad event costs only itself.
    """

    def __init__(self, store: Store | str) -> None:
        self.store = open_store(store) if isinstance(store, str) else store
        self._owns_store = isinstance(store, str)

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Parse and ingest the batch.

        Raises:
            TransportError: some events were refused; the others are stored.
        """
        try:
            self.store.ingest([parse_event(event) for event in events])
            maybe_checkpoint(self.store)
            return
        except (InvalidEvent, StoreError) as error:
            if len(events) == 1:
                raise TransportError(str(error), refused=1) from error
        refused: list[str] = []
        for event in events:
            try:
                self.store.ingest([parse_event(event)])
            except (InvalidEvent, StoreError) as error:
                refused.append(str(error))
        maybe_checkpoint(self.store)
        if refused:
            raise TransportError(
                f"{len(refused)} event(s) refused, first: {refused[0]}", refused=len(refused)
            )

    def close(self) -> None:
        """Close the store if this transport opened it."""
        if self._owns_store:
            self.store.close()


class TransportError(Exception):
    """A transport refused ``refused`` events of a batch (the rest were delivered)."""

    def __init__(self, message: str, refused: int) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass
class EmitterStats:
    """Counters of what the emitter did; ``errors`` counts events a transport refused."""

    emitted: int = 0
    errors: int = 0
    dropped: int = 0
    last_error: str | None = None


class Emitter:
    """Hands events to a transport from a bounded queue on a background thread.

    ``sync=True`` emits on the caller's thread instead (for tests). Either way, a failing
    transport never raises into the caller: failures are logged and counted in :attr:`stats`.

    Args:
        transport: where events go.
        sync: emit immediately on the calling thread.
        queue_size: events held before the caller waits (or, with ``drop_when_full``, drops).
        batch_size: most events handed to the transport at once.
        drop_when_full: drop (and count) events instead of waiting when the queue is full.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        sync: bool = False,
        queue_size: int = 10_000,
        batch_size: int = 500,
        drop_when_full: bool = False,
    ) -> None:
        self.transport = transport
        self.stats = EmitterStats()
        self.sync = sync
        self.batch_size = batch_size
        self.drop_when_full = drop_when_full
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        """Record one event without blocking on I/O."""
        if self.sync:
            self._deliver([event])
            return
        self._ensure_thread()
        try:
            self._queue.put(event, block=not self.drop_when_full)
        except queue.Full:
            self.stats.dropped += 1

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was handed to the transport; False on timeout."""
        if self.sync or self._thread is None:
            return True
        done = threading.Event()

        def wait_for_queue() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait_for_queue, daemon=True).start()
        return done.wait(timeout)

    def close(self) -> None:
        """Flush, stop the writer thread and close the transport."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self.transport.close()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="opslineage-emitter", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [] if first is None else [first]
            stop = first is None
            while not stop and len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                self._deliver(batch)
            for _ in range(len(batch) + (1 if stop else 0)):
                self._queue.task_done()
            if stop:
                return

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        try:
            self.transport.emit(batch)
            self.stats.emitted += len(batch)
        except Exception as error:  # a probe never raises into the pipeline
            refused = error.refused if isinstance(error, TransportError) else len(batch)
            self.stats.emitted += len(batch) - refused
            self.stats.errors += refused
            self.stats.last_error = f"{type(error).__name__}: {error}"
            log.warning("opslineage: %d event(s) not recorded: %s", len(batch), self.stats.last_error)
