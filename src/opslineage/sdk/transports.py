"""Where recorded events go: the small transport contract and the transports that need nothing.

A transport has ``emit(events)`` and ``close()``. It raises :class:`TransportError` for events it
refused (they are counted, never retried) and :class:`TransportUnavailable` when it cannot
deliver now (the emitter keeps the batch and retries with backoff). Shipped here:
:class:`FileTransport` (OpenLineage JSON lines), :class:`MemoryTransport` (captures events; for
tests) and :class:`NoopTransport` (the free default). Writing to a store directly
(``opslineage.sdk.StoreTransport``) and NATS (``opslineage.bus.NatsTransport``) live in modules
of their own, loaded only when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import msgspec

__all__ = [
    "FileTransport",
    "MemoryTransport",
    "NoopTransport",
    "Transport",
    "TransportError",
    "TransportUnavailable",
]


class Transport(Protocol):
    """Sends OpenLineage events somewhere. May raise; the emitter catches and counts.

    A transport may also have a ``sink`` attribute naming where its events go (a URL, a path):
    events spilled while it was down are delivered only by a transport with the same ``sink``.
    """

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
        self.sink = str(self.path.resolve())
        self._file = self.path.open("ab")

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Write one line per event and flush."""
        self._file.write(b"".join(msgspec.json.encode(event) + b"\n" for event in events))
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class TransportError(Exception):
    """A transport refused ``refused`` events of a batch (the rest were delivered)."""

    def __init__(self, message: str, refused: int) -> None:
        super().__init__(message)
        self.refused = refused


class TransportUnavailable(Exception):
    """A transport cannot deliver now (its backend is down, locked or cannot be opened).

    The first ``delivered + refused`` events of the batch were dealt with (``refused`` of them
    refused; default none), and the emitter keeps the rest and retries them with backoff
    (spilling them to disk while this lasts).
    """

    def __init__(self, message: str, *, delivered: int = 0, refused: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.refused = refused


def sink_of(transport: object) -> str:
    """Where ``transport`` sends its events: its ``sink``, else the name of its class."""
    return str(getattr(transport, "sink", None) or type(transport).__qualname__)
