"""The plain values the store speaks in: its error, the records its reads return, and the rows of
its log and archive tier.

This module imports nothing else of the store, so the interface, the backends and the archive
tier all build on it without importing one another. Rows that were plain tuples are named
tuples now: they unpack and compare as the tuples they replace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

__all__ = [
    "FACET_WINDOW",
    "AccessEventRow",
    "AccessRow",
    "ArtifactRow",
    "CheckpointRow",
    "Cut",
    "DataKeyRow",
    "EdgeRow",
    "EventRow",
    "Horizon",
    "HotRows",
    "IndexEdge",
    "IndexNode",
    "IndexRows",
    "IngestResult",
    "NodeContent",
    "NodeQuery",
    "NodeRecord",
    "RawEvent",
    "SealedRows",
    "SegmentInfo",
    "StoreError",
    "StoreUnavailable",
    "StoredEvent",
    "Walk",
]


class Cut(NamedTuple):
    """What had happened by ``before`` by eventTime, as the store stood at sequence ``seq``.

    A node counts from the event that first stored it and an edge from the event that recorded
    it; a late event (stored after others that happened later) counts by its own eventTime.
    """

    seq: int | None
    before: datetime


Horizon = int | Cut | None
"""How far a read may see: up to a sequence number, up to a :class:`Cut`, or all of it (None)."""


class StoreError(Exception):
    """The store cannot do what was asked: missing, unreadable, or a conflicting write."""


class StoreUnavailable(StoreError):
    """The store could not be reached or lost the connection (an outage, not a refusal of what
    was asked): the same call may succeed later. SQLite's own ``sqlite3.OperationalError``
    (a locked database, a full disk) is the same kind of failure."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one all-or-nothing ingest call did."""

    accepted: int
    duplicates: int
    first_seq: int | None = None
    last_seq: int | None = None
    duplicates_at: tuple[int, ...] = ()
    """Positions, among the events given, of those already stored (or given twice), ascending."""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as stored: its naming columns and the sequence number of the event that added it."""

    id: str
    kind: str
    type: str
    namespace: str | None
    name: str | None
    version: str | None
    digest: str | None
    seq: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, leaving out empty columns."""
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class NodeQuery:
    """What a catalog search asks of the nodes: every filter given must hold.

    Args:
        kind, type: the id kind and AIOps type (None: any).
        namespace: the namespace exactly (None: any).
        text: a substring of the id, name or namespace.
        facet: a substring of the payload (facets, or an artifact's content) of one of the newest
            :data:`FACET_WINDOW` events that added or linked the node, or of an artifact they stored.
        namespaces: only nodes of these namespaces or of none (None: every namespace).
    """

    kind: str | None = None
    type: str | None = None
    namespace: str | None = None
    text: str | None = None
    facet: str | None = None
    namespaces: frozenset[str] | None = None


FACET_WINDOW = 5000
"""How many of the newest events (and artifacts) a facet-value search reads: a bound on its cost."""


class NodeContent(NamedTuple):
    """A node with its artifact's content bytes (None when it has none stored)."""

    node: NodeRecord
    content: bytes | None


class EdgeRow(NamedTuple):
    """One edge of the graph index: ``src`` *kind* ``dst``, with the role it was recorded with."""

    src: str
    dst: str
    kind: str
    role: str | None


class IndexNode(NamedTuple):
    """A ``nodes`` row as stored, its integer resolved through ``ids`` (``id`` None: ``ids`` has no
    such integer)."""

    nid: int
    id: str | None
    kind: str
    type: str
    namespace: str | None
    name: str | None
    version: str | None
    digest: str | None
    seq: int


class IndexEdge(NamedTuple):
    """An ``edges`` row as stored, both ends resolved through ``ids`` (None: no such integer)."""

    src_nid: int
    src: str | None
    dst_nid: int
    dst: str | None
    kind: str
    role: str | None
    seq: int


class IndexRows(NamedTuple):
    """Rows of the graph index as stored, for checking them against the events (``verify``):
    ``ids`` maps node ids to their integers."""

    ids: dict[str, int]
    nodes: list[IndexNode]
    edges: list[IndexEdge]


@dataclass(slots=True)
class Walk:
    """The result of a graph walk: node ids with their distance, and the edges between them."""

    depths: dict[str, int] = field(default_factory=dict)
    edges: list[EdgeRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One accepted event: its sequence number, digest (hex) and the full event."""

    seq: int
    digest: str
    run_id: str | None
    event_type: str
    event_time: str
    event: dict[str, Any]


class EventRow(NamedTuple):
    """An event's row as stored: its body has artifact references, and is empty when the event is
    archived in the segment ``segment`` names."""

    seq: int
    digest: bytes
    body: bytes
    segment: str | None


class RawEvent(NamedTuple):
    """An event's sequence number, digest and body with artifact references, wherever it lives."""

    seq: int
    digest: bytes
    body: bytes


class ArtifactRow(NamedTuple):
    """An artifact's digest (``sha256:<hex>``) and canonical content bytes."""

    digest: str
    content: bytes


class HotRows(NamedTuple):
    """Payloads still in the hot store: events, and the artifacts those events first stored."""

    events: list[RawEvent]
    artifacts: list[ArtifactRow]


class CheckpointRow(NamedTuple):
    """A stored checkpoint: the tree size it commits to, its root hash and its signed note."""

    size: int
    root: bytes
    note: str


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One archive segment: its digest, the events and artifacts it holds, and their sizes
    (``raw_bytes`` as stored hot, ``stored_bytes`` compressed)."""

    digest: str
    first_seq: int
    last_seq: int
    events: int
    artifacts: int
    raw_bytes: int
    stored_bytes: int


class DataKeyRow(NamedTuple):
    """One data key as stored: its id, the namespace and UTC month (``2026-12``) it seals, the key
    wrapped by the key-encryption key ``kek_id`` (None once shredded), and when it was made and
    shredded (see :mod:`opslineage.store.keys`)."""

    key_id: str
    namespace: str
    period: str
    wrapped: bytes | None
    kek_id: str
    created_at: str
    shredded_at: str | None


class SealedRows(NamedTuple):
    """The hot rows sealed by some data keys: events (seq, digest, sealed body) and artifacts
    (digest, type, sealed content)."""

    events: list[tuple[int, bytes, bytes]]
    artifacts: list[tuple[str, str, bytes]]


class AccessRow(NamedTuple):
    """An access event to append to the access log: its canonical JSON ``body`` (the leaf is its
    RFC 9162 leaf hash) and the columns searches use, which repeat what the body says."""

    at: datetime
    actor: str
    outcome: str
    name: str
    body: bytes
    nodes: tuple[str, ...]
    """The node ids the event names, for searching by node."""


class AccessEventRow(NamedTuple):
    """A stored access event: its sequence number (leaf ``seq - 1`` of the access log), the search
    columns and the canonical body."""

    seq: int
    at: datetime
    actor: str
    outcome: str
    name: str
    body: bytes
