"""Batch planning for every backend's write path: which events of a batch are new, their sequence
numbers, and the graph-index, artifact and log rows they add, computed once in plain Python so
that each backend only turns the plan into its own SQL.

A plan keeps the first-seen row of each node, edge and artifact (``INSERT … ON CONFLICT DO
NOTHING`` then keeps the row already stored), each stamped with the sequence number of the
event that brought it. :func:`joined` puts small chunks together so that a transaction of many
one-event units (group commit) runs a few statements, not a few per unit; :class:`Tally` gives
each chunk its own result back and adds them up; :func:`check_actor` is the one rule for who
may be named as a batch's writer.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

from opslineage.model import ParsedEvent
from opslineage.store.base import IngestResult, StoreError

__all__ = [
    "JOIN_EVENTS",
    "MAX_ACTOR_CHARS",
    "BatchPlan",
    "Tally",
    "check_actor",
    "derive_rows",
    "joined",
    "plan_batch",
]

MAX_ACTOR_CHARS = 200
JOIN_EVENTS = 1000
"""Chunks are joined until they hold this many events (a bigger chunk goes alone)."""


@dataclass(slots=True)
class BatchPlan:
    """The rows one chunk of events adds, in the order the events came.

    Attributes:
        fresh: the events not stored yet, with duplicates inside the chunk dropped.
        taken: the positions of the fresh events in the chunk, ascending.
        first_seq: the sequence number of ``fresh[0]``; the others follow one by one.
        nodes: node id → (kind, type, namespace, name, version, digest, seq), first seen.
        edges: (src, dst, kind) → (role, seq), first seen.
        artifacts: digest → (digest, type, content, seq), first seen.
    """

    fresh: list[ParsedEvent]
    taken: list[int]
    first_seq: int
    nodes: dict[str, tuple[object, ...]]
    edges: dict[tuple[str, str, str], tuple[str | None, int]]
    artifacts: dict[str, tuple[str, str, bytes, int]]

    @property
    def seqs(self) -> range:
        """The sequence numbers the fresh events get."""
        return range(self.first_seq, self.first_seq + len(self.fresh))

    def node_ids(self) -> set[str]:
        """Every node id the rows name (nodes and both ends of every edge), to intern."""
        ids = set(self.nodes)
        for src, dst, _ in self.edges:
            ids.add(src)
            ids.add(dst)
        return ids

    def sorted_edges(self, nid: dict[str, int]) -> list[tuple[int, int, str, str | None, int]]:
        """Edge rows (src, dst, kind, role, seq) on interned ids, in primary-key order, so that a
        B-tree insert of the batch walks its pages once instead of jumping between them."""
        rows = [(nid[src], nid[dst], kind, role, seq) for (src, dst, kind), (role, seq) in self.edges.items()]
        rows.sort(key=_edge_key)
        return rows


def _edge_key(row: tuple[int, int, str, str | None, int]) -> tuple[int, int, str]:
    return row[0], row[1], row[2]


def plan_batch(events: Sequence[ParsedEvent], known: Collection[bytes], last: int) -> BatchPlan | None:
    """Plan storing ``events`` after sequence number ``last``; None when every one is stored.

    Args:
        events: the chunk, in order.
        known: digests of the chunk's events that the store already holds.
        last: the store's last sequence number.
    """
    fresh: list[ParsedEvent] = []
    taken: list[int] = []
    seen = set(known)
    for position, event in enumerate(events):
        digest = event.digest
        if digest in seen:
            continue
        seen.add(digest)
        fresh.append(event)
        taken.append(position)
    if not fresh:
        return None
    nodes, edges, artifacts = derive_rows(enumerate(fresh, start=last + 1))
    return BatchPlan(fresh, taken, last + 1, nodes, edges, artifacts)


def derive_rows(
    events: Iterable[tuple[int, ParsedEvent]],
) -> tuple[
    dict[str, tuple[object, ...]],
    dict[tuple[str, str, str], tuple[str | None, int]],
    dict[str, tuple[str, str, bytes, int]],
]:
    """The node, edge and artifact rows that events, given with their sequence numbers in
    ascending order, add: the first-seen row of each, stamped with its event's sequence number
    (the shapes of :class:`BatchPlan`'s). Ingest stores these; ``verify`` rebuilds the index
    with them, so there is one derivation of the graph index from the events."""
    nodes: dict[str, tuple[object, ...]] = {}
    edges: dict[tuple[str, str, str], tuple[str | None, int]] = {}
    artifacts: dict[str, tuple[str, str, bytes, int]] = {}
    for seq, event in events:
        for node in event.nodes:
            if node.id not in nodes:
                nodes[node.id] = (
                    node.kind,
                    node.type,
                    node.namespace,
                    node.name,
                    node.version,
                    node.digest,
                    seq,
                )
        for src, dst, kind, role in event.edges:
            ends = (src, dst, kind)
            if ends not in edges:
                edges[ends] = (role, seq)
        for ref, (kind, content) in event.artifacts.items():
            if ref not in artifacts:
                artifacts[ref] = (ref, kind, content, seq)
    return nodes, edges, artifacts


def joined(chunks: Iterable[Sequence[ParsedEvent]]) -> Iterator[tuple[list[ParsedEvent], list[int]]]:
    """Consecutive chunks joined until they hold :data:`JOIN_EVENTS` events, as (their events,
    the size of each chunk); a stream of big chunks (a file) comes through chunk by chunk."""
    events: list[ParsedEvent] = []
    sizes: list[int] = []
    for chunk in chunks:
        events.extend(chunk)
        sizes.append(len(chunk))
        if len(events) >= JOIN_EVENTS:
            yield events, sizes
            events, sizes = [], []
    if sizes:
        yield events, sizes


class Tally:
    """What the chunks of one ingest transaction did, added up."""

    __slots__ = ("accepted", "duplicates", "duplicates_at", "first_seq", "given", "last_seq")

    def __init__(self) -> None:
        self.accepted = self.duplicates = self.given = 0
        self.duplicates_at: list[int] = []
        self.first_seq: int | None = None
        self.last_seq: int | None = None

    def add(
        self, sizes: Sequence[int], plan: BatchPlan | None, each: Callable[[IngestResult], object] | None
    ) -> None:
        """Count chunks of ``sizes`` events that were stored together by ``plan`` (None: all
        duplicates), and give each chunk's own result to ``each``."""
        taken = plan.taken if plan is not None else []
        start = 0
        for size in sizes:
            low, high = bisect_left(taken, start), bisect_left(taken, start + size)
            duplicates: tuple[int, ...] = ()
            if high - low < size:  # the common case, all fresh, costs no pass over the events
                fresh = set(taken[low:high])
                duplicates = tuple(i - start for i in range(start, start + size) if i not in fresh)
            self.duplicates_at.extend(self.given + i for i in duplicates)
            self.given += size
            start += size
            self.accepted += high - low
            self.duplicates += len(duplicates)
            if high > low:
                assert plan is not None
                self.first_seq = self.first_seq or plan.first_seq + low
                self.last_seq = plan.first_seq + high - 1
            if each is not None:
                first, last = (
                    (plan.first_seq + low, plan.first_seq + high - 1) if plan and high > low else (None, None)
                )
                each(IngestResult(high - low, len(duplicates), first, last, duplicates))

    def result(self) -> IngestResult:
        """The :class:`IngestResult` of the transaction."""
        return IngestResult(
            self.accepted, self.duplicates, self.first_seq, self.last_seq, tuple(self.duplicates_at)
        )


def check_actor(actor: str | None) -> str | None:
    """Return ``actor`` if it may be recorded as the writer of a batch.

    Raises:
        StoreError: it is empty, too long, or holds control characters.
    """
    if actor is None:
        return None
    if not isinstance(actor, str) or not actor or len(actor) > MAX_ACTOR_CHARS:
        raise StoreError(f"an actor must be a string of 1 to {MAX_ACTOR_CHARS} characters, got {actor!r}")
    if not actor.isprintable():
        raise StoreError(f"an actor must not hold control characters, got {actor!r}")
    return actor
