"""The ingest pipeline: parse once, check the store's rules, store, append to the log, and sign a
checkpoint when one is due, recording on each batch who wrote it.

Every writer (``opslineage ingest``, the HTTP server, the NATS worker, the SDK's store transport)
goes through :class:`IngestPipeline`; none of them calls the store's write methods or
:func:`~opslineage.ledger.log.maybe_checkpoint` itself.
"""

from __future__ import annotations

import getpass
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeAlias

from opslineage.ingest._seal import LabelSealPolicy
from opslineage.ledger.checkpoint import Checkpoint
from opslineage.ledger.log import maybe_checkpoint
from opslineage.model import InvalidEvent, ParsedEvent, parse_event
from opslineage.store import IngestResult, Store, StoreError, StoreUnavailable

__all__ = [
    "ACTOR_KINDS",
    "IngestPipeline",
    "Outcome",
    "RawEvent",
    "actor",
    "cli_actor",
    "parse",
]

ACTOR_KINDS = ("cli", "http", "worker", "sdk")
"""Who writes: the command line, the HTTP server, a NATS worker, the SDK's store transport."""

RawEvent: TypeAlias = bytes | str | dict[str, Any] | ParsedEvent
"""An event as a writer holds it: JSON bytes or text, a decoded dict, or already parsed."""

Outcome: TypeAlias = IngestResult | InvalidEvent | StoreError
"""What became of one unit of :meth:`IngestPipeline.ingest_each`: stored (its result), not an
event (why), or refused by the store (why); nothing of a refused unit is stored."""

STORE_OUTAGES = (StoreUnavailable, sqlite3.OperationalError, OSError)
"""What a store raises when it is down, locked or full rather than refusing what it was given:
the same call may succeed later."""

log = logging.getLogger("opslineage")


def actor(kind: str, name: str) -> str:
    """The actor string ``<kind>:<name>`` recorded on a batch.

    Args:
        kind: one of :data:`ACTOR_KINDS`.
        name: who, within the kind: a user, a token name or ``anonymous``, a durable consumer, a
            producer.

    Raises:
        ValueError: an unknown kind or an empty name.
    """
    if kind not in ACTOR_KINDS:
        raise ValueError(f"actor kind must be one of {', '.join(ACTOR_KINDS)}, not {kind!r}")
    if not name:
        raise ValueError("an actor needs a name")
    return f"{kind}:{name}"


def cli_actor() -> str:
    """``cli:<user>`` for the user running this process (``uid-<n>`` when it has no name)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid-{os.getuid()}"
    return actor("cli", user)


def parse(event: RawEvent) -> ParsedEvent:
    """``event`` parsed into typed values, once: a :class:`ParsedEvent` is passed through.

    Raises:
        InvalidEvent: naming the field and the reason.
    """
    return event if isinstance(event, ParsedEvent) else parse_event(event)


def _check_actor(who: str) -> str:
    kind, _, name = who.partition(":") if isinstance(who, str) else ("", "", "")
    if kind not in ACTOR_KINDS or not name:
        raise ValueError(
            f"actor must be '<kind>:<name>' with a kind of {', '.join(ACTOR_KINDS)}, not {who!r}"
        )
    return who


class IngestPipeline:
    """The one way events get into a store.

    Safe to call from one thread at a time (the store's own rule); see
    :class:`~opslineage.ingest.GroupCommitter` for many concurrent callers.

    Args:
        store: where events go.
        key: the log's private key path, to sign checkpoints (default: ``$OPSLINEAGE_KEY``).
    """

    def __init__(self, store: Store, key: str | None = None) -> None:
        self.store = store
        self.key = key
        if store.encryption() == "restricted" and store.seal_policy is None:
            store.seal_policy = LabelSealPolicy(store)  # the seal hook: what is restricted, by label

    def ingest(self, events: Iterable[RawEvent], *, actor: str) -> IngestResult:
        """Parse and store ``events`` all-or-nothing, then checkpoint if one is due.

        Raises:
            InvalidEvent: an event is invalid; nothing is stored.
            StoreError: the store refuses the batch; nothing is stored.
        """
        return self.ingest_many([events], actor=actor)

    def ingest_many(self, chunks: Iterable[Iterable[RawEvent]], *, actor: str) -> IngestResult:
        """Like :meth:`ingest` for a stream of chunks (a big file), committed as one transaction:
        an error raised while ``chunks`` is iterated writes nothing."""
        result = self.store.ingest_many(_parsed_chunks(chunks), actor=_check_actor(actor))
        self.checkpoint()
        return result

    def ingest_each(self, units: Sequence[Sequence[RawEvent]], *, actor: str) -> list[Outcome]:
        """Store several independent units (requests, messages) in one transaction where possible.

        Each unit is all-or-nothing and gets its own outcome: an invalid or refused unit costs
        only itself. The valid units are first committed together; when the store refuses that
        transaction, each is stored alone.

        Raises:
            StoreUnavailable: the store cannot be reached (a unit stored alone fails so); units
                stored alone before it are stored, the others are not.
            Exception: whatever else the store raised besides :class:`StoreError`, likewise.
        """
        who = _check_actor(actor)
        outcomes: list[Outcome | list[ParsedEvent]] = []
        for unit in units:
            try:
                outcomes.append([parse(event) for event in unit])
            except InvalidEvent as error:
                outcomes.append(error)
        valid = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, list)]
        if valid:
            chunks: list[list[ParsedEvent]] = [outcomes[index] for index in valid]  # type: ignore[misc]
            results: list[IngestResult] = []
            try:
                self.store.ingest_many(chunks, actor=who, each=results.append)
            except StoreError as error:
                if len(valid) > 1:
                    log.warning(
                        "opslineage: %d units refused together (%s); storing each alone", len(valid), error
                    )
                results = []
                for index, chunk in zip(valid, chunks, strict=True):
                    try:
                        outcomes[index] = self.store.ingest(chunk, actor=who)
                    except StoreUnavailable:
                        raise  # an outage, not this unit's fault: nothing more is tried
                    except StoreError as refusal:
                        outcomes[index] = refusal
            else:
                for index, result in zip(valid, results, strict=True):
                    outcomes[index] = result
            self.checkpoint()
        return outcomes  # type: ignore[return-value]

    def checkpoint(self) -> Checkpoint | None:
        """Sign a checkpoint if the store's policy says one is due; a failure is logged, not raised,
        since what it would cover is already stored (the next call signs it)."""
        try:
            return maybe_checkpoint(self.store, self.key)
        except Exception as error:
            log.warning("opslineage: checkpoint not signed: %s: %s", type(error).__name__, error)
            return None


def _parsed_chunks(chunks: Iterable[Iterable[RawEvent]]) -> Iterator[list[ParsedEvent]]:
    for chunk in chunks:
        yield [parse(event) for event in chunk]
