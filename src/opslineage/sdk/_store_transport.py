"""Writing events straight into a store: :class:`StoreTransport`, the embedded, in-process path.

This is the one SDK module that uses the store, through the one ingest pipeline
(:class:`~opslineage.ingest.IngestPipeline`: store, log, checkpoint), and it loads them on
first delivery (on the emitter's writer thread), never when the transport is made. So a store
URL that is unreachable or malformed, or a store whose extra (``opslineage[store]``) is not
installed, surfaces as :class:`~opslineage.sdk.TransportUnavailable`: buffered and retried, never
raised into the pipeline. So does an outage of an open store (a database another process holds
locked, a lost connection, a full disk): nothing of the batch is lost, it is retried.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from opslineage.sdk._emitter import redact_url
from opslineage.sdk.transports import TransportError, TransportUnavailable

if TYPE_CHECKING:
    from opslineage.ingest import IngestPipeline
    from opslineage.store import Store

__all__ = ["StoreTransport"]


class StoreTransport:
    """Validates and writes events straight into a store.

    Each event is its own all-or-nothing unit, and a batch shares one transaction where it can:
    one bad event costs only itself. Batches are recorded as written by ``sdk:<producer>``.

    Args:
        store: an open :class:`~opslineage.store.Store`, or a store URL opened on first delivery
            (and closed by :meth:`close`).
        producer: the name in the actor recorded on every batch.
    """

    def __init__(self, store: Store | str, producer: str = "opslineage") -> None:
        self._url = store if isinstance(store, str) else None
        self._store = None if isinstance(store, str) else store
        self.sink = store if isinstance(store, str) else store.url
        self._producer = producer or "opslineage-sdk"
        self._modules: Any = None
        self._pipeline: IngestPipeline | None = None

    def _load(self) -> None:
        """Import the store and the pipeline, once (they need the ``opslineage[store]`` extra)."""
        if self._modules is not None:
            return
        try:
            from opslineage.ingest import (  # noqa: PLC0415 (loaded on the writer, on first use)
                STORE_OUTAGES,
                IngestPipeline,
                actor,
            )
            from opslineage.store import open_store  # noqa: PLC0415
        except ImportError as error:
            raise TransportUnavailable(
                f"writing to a store needs the opslineage[store] extra (pip install 'opslineage[store]'): {error}"
            ) from None
        self._modules = SimpleNamespace(
            open_store=open_store, IngestPipeline=IngestPipeline, actor=actor, outages=STORE_OUTAGES
        )

    @property
    def store(self) -> Store:
        """The store, opened now if it was given as a URL.

        Raises:
            TransportUnavailable: the URL cannot be opened (the reason names no credentials).
        """
        self._load()
        if self._store is None:
            url = self._url or ""
            if "://" not in url and not url.endswith(".db"):
                raise TransportUnavailable(
                    f"not a store URL: {redact_url(url)!r} (expected sqlite:///PATH,"
                    " postgresql://HOST/DATABASE or a path ending in .db)"
                )
            try:
                self._store = self._modules.open_store(url)
            except Exception as error:  # malformed URL, unreachable server …
                reason = redact_url(f"{type(error).__name__}: {error}")
                raise TransportUnavailable(f"cannot open store {redact_url(url)!r}: {reason}") from None
        return self._store

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Parse and ingest the batch, each event on its own.

        Raises:
            TransportUnavailable: the store cannot be opened or is out (locked, unreachable):
                the batch is to be sent again (storing an event twice stores it once).
            TransportError: some events were refused; the others are stored.
        """
        store = self.store
        if self._pipeline is None or self._pipeline.store is not store:
            self._pipeline = self._modules.IngestPipeline(store)
        try:
            outcomes = self._pipeline.ingest_each(
                [[event] for event in events], actor=self._modules.actor("sdk", self._producer)
            )
        except self._modules.outages as error:
            reason = redact_url(f"{type(error).__name__}: {error}")
            raise TransportUnavailable(f"store {redact_url(self._url or '')!r}: {reason}") from None
        refused = [str(outcome) for outcome in outcomes if isinstance(outcome, Exception)]
        if len(refused) == 1 and len(events) == 1:
            raise TransportError(refused[0], refused=1)
        if refused:
            raise TransportError(
                f"{len(refused)} event(s) refused, first: {refused[0]}", refused=len(refused)
            )

    def close(self) -> None:
        """Close the store if this transport opened it."""
        if self._url is not None and self._store is not None:
            self._store.close()
            self._store = None
