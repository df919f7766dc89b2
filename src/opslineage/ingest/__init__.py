"""The one way in: every writer stores events through :class:`IngestPipeline`.

The pipeline parses each event once into typed values, checks the store's rules, stores the
batch all-or-nothing with its actor (who wrote it), appends the events to the transparency log
in the same transaction, and signs a checkpoint when the store's policy says one is due.
:class:`GroupCommitter` puts many concurrent callers' units into shared transactions.

The actor (``cli:<user>``, ``http:<token name or anonymous>``, ``worker:<durable>``,
``sdk:<producer>``) is stored on the batch row, beside the time it committed; like that time it
is not part of the store's state digest, which covers content only, so the same events digest
alike whoever wrote them, on either backend, and after an export is ingested again. Nor is it in
the transparency log: the log proves what was stored, and the actor is the writer's own claim
(an authenticated principal arrives with the access-control work).

    pipeline = IngestPipeline(store)
    result = pipeline.ingest(events, actor=actor("sdk", producer))  # raw dicts, bytes or ParsedEvents
    outcomes = pipeline.ingest_each([[event] for event in events], actor=...)  # one result each
"""

from opslineage.ingest._group import GroupCommitter
from opslineage.ingest._pipeline import (
    ACTOR_KINDS,
    STORE_OUTAGES,
    IngestPipeline,
    Outcome,
    RawEvent,
    actor,
    cli_actor,
    parse,
)
from opslineage.store import IngestResult

__all__ = [
    "ACTOR_KINDS",
    "STORE_OUTAGES",
    "GroupCommitter",
    "IngestPipeline",
    "IngestResult",
    "Outcome",
    "RawEvent",
    "actor",
    "cli_actor",
    "parse",
]
