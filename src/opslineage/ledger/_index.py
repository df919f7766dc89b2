"""The graph-index part of ``verify``: the ``ids``, ``nodes`` and ``edges`` rows the store holds
must be exactly those its verified events derive.

Events are taken a chunk at a time, in sequence order. Each chunk's events derive their rows with
the same code ingest stores them with (:func:`opslineage.store.derive_rows`: the first-seen row
of each node and edge, stamped with its event's sequence number), and two comparisons keep the
check exact without remembering earlier chunks:

- every derived row must be stored, and stamped no later than the event that derives it; when
  stamped with that very event, every column must match;
- every stored row stamped with a sequence number of the chunk must be derived by that event.

A row first derived in an earlier chunk and seen again is stamped earlier, and was compared
there. After the last chunk, rows stamped beyond the log and ``ids`` rows nothing uses are extra,
and the ``batches`` must cover the log exactly once.
Memory holds one chunk's rows and the first :data:`REPORTED` differences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from opslineage.model import InvalidEvent, ParsedEvent, parse_event
from opslineage.store import IndexEdge, IndexNode, Store, derive_rows

__all__ = ["REPORTED", "IndexCheck"]

REPORTED = 20
"""How many differences are reported one by one; all of them are counted."""
_NODE_COLUMNS = ("kind", "type", "namespace", "name", "version", "digest")
_EVER = 1 << 62
_BATCHES = 10_000  # batches read at a time


@dataclass
class IndexCheck:
    """The comparison of a store's graph index with its events, fed one chunk at a time."""

    store: Store
    rows: int = 0
    """Derived rows compared."""
    differences: int = 0
    findings: list[tuple[int, str]] = field(default_factory=list)
    """The first :data:`REPORTED` differences: (the sequence number they concern, what differs)."""

    def _differ(self, seq: int, what: str) -> None:
        self.differences += 1
        if len(self.findings) < REPORTED:
            self.findings.append((seq, what))

    def check(self, first: int, last: int, events: Iterable[tuple[int, bytes]]) -> None:
        """Compare the rows stamped in [first, last] with what ``events`` derive: (seq, canonical
        bytes) of the events of the range that could be rebuilt, in order. Rows stamped with the
        others' sequence numbers are left out (``verify`` reports those events already)."""
        parsed: list[tuple[int, ParsedEvent]] = []
        for seq, canonical in events:
            try:
                parsed.append((seq, parse_event(canonical)))
            except InvalidEvent as error:
                self._differ(
                    seq, f"event {seq} no longer parses, so its index rows cannot be rebuilt: {error}"
                )
        unknown = set(range(first, last + 1)).difference(seq for seq, _ in parsed)
        nodes, edges, _ = derive_rows(parsed)
        named = {node_id: int(row[-1]) for node_id, row in nodes.items()}  # type: ignore[call-overload]
        for (src, dst, _), (_, seq) in edges.items():
            for end in (src, dst):
                named[end] = min(named.get(end, seq), seq)
        self.rows += len(nodes) + len(edges)
        stored = self.store.index_lookup(named, edges)
        for node_id in sorted(named.keys() - stored.ids.keys(), key=named.__getitem__):
            self._differ(named[node_id], f"ids: {node_id} is missing (event {named[node_id]} names it)")
        by_id = {row.id: row for row in stored.nodes}
        for node_id, derived in nodes.items():
            seq = int(derived[-1])  # type: ignore[call-overload]
            self._compare_node(node_id, derived, seq, by_id.get(node_id))
        by_key = {(row.src, row.dst, row.kind): row for row in stored.edges}
        for key, (role, seq) in edges.items():
            self._compare_edge(key, role, seq, by_key.get(key))
        in_range = self.store.index_rows(first, last)
        self._extra(in_range.nodes, in_range.edges, nodes, edges, unknown)

    def _compare_node(
        self, node_id: str, derived: tuple[object, ...], seq: int, row: IndexNode | None
    ) -> None:
        if row is None:
            self._differ(seq, f"nodes: {node_id} is missing (event {seq} adds it)")
        elif row.seq > seq:
            self._differ(seq, f"nodes: {node_id}: seq is {row.seq}, but event {seq} adds it")
        elif row.seq == seq:
            changed = [
                f"{column} is {got!r}, the events say {want!r}"
                for column, want, got in zip(_NODE_COLUMNS, derived[:6], row[2:8], strict=True)
                if want != got
            ]
            if changed:
                self._differ(seq, f"nodes: {node_id}: {'; '.join(changed)}")

    def _compare_edge(
        self, key: tuple[str, str, str], role: str | None, seq: int, row: IndexEdge | None
    ) -> None:
        if row is None:
            self._differ(seq, f"edges: {_edge(*key)} is missing (event {seq} adds it)")
        elif row.seq > seq:
            self._differ(seq, f"edges: {_edge(*key)}: seq is {row.seq}, but event {seq} adds it")
        elif row.seq == seq and row.role != role:
            self._differ(seq, f"edges: {_edge(*key)}: role is {row.role!r}, the events say {role!r}")

    def _extra(
        self,
        stored_nodes: list[IndexNode],
        stored_edges: list[IndexEdge],
        nodes: dict[str, tuple[object, ...]],
        edges: dict[tuple[str, str, str], tuple[str | None, int]],
        unknown: set[int],
    ) -> None:
        """Report the stored rows that the events of their sequence number do not derive."""
        for row in stored_nodes:
            if row.seq in unknown:
                continue
            derived = nodes.get(row.id) if row.id is not None else None
            if derived is None:
                self._differ(
                    row.seq, f"nodes: {_name(row.id, row.nid)} is extra: event {row.seq} does not add it"
                )
            elif row.seq < derived[-1]:  # type: ignore[operator]
                self._differ(row.seq, f"nodes: {row.id}: seq is {row.seq}, but event {derived[-1]} adds it")
        for edge in stored_edges:
            if edge.seq in unknown:
                continue
            key = (edge.src, edge.dst, edge.kind)
            known = edges.get(key) if None not in key else None  # type: ignore[arg-type]
            name = _edge(_name(edge.src, edge.src_nid), _name(edge.dst, edge.dst_nid), edge.kind)
            if known is None:
                self._differ(edge.seq, f"edges: {name} is extra: event {edge.seq} does not add it")
            elif edge.seq < known[1]:
                self._differ(edge.seq, f"edges: {name}: seq is {edge.seq}, but event {known[1]} adds it")

    def finish(self, size: int) -> None:
        """After the last chunk: rows stamped outside the log's [1, size], unused ids (reported
        at ``size``, the whole log), and the batches."""
        self._batches(size)
        for first, last in ((-_EVER, 0), (size + 1, _EVER)):
            rows = self.store.index_rows(first, last)
            self._extra(rows.nodes, rows.edges, {}, {}, set())
        count, stray = self.store.stray_ids(REPORTED)
        for nid, node_id in stray:
            self._differ(size, f"ids: {node_id} (nid {nid}) is extra: no node or edge uses it")
        self.differences += count - len(stray)

    def _batches(self, size: int) -> None:
        """Each ingest commits one batch of consecutive sequence numbers, so in id order the
        ``batches`` rows must cover 1 to ``size`` with no gap or overlap (``as_of`` times resolve
        through them; when each was recorded cannot be checked against the events)."""
        expected = after = 0
        while rows := self.store.batch_ranges(after=after, limit=_BATCHES):
            for batch, first_seq, last_seq in rows:
                if first_seq != expected + 1 or last_seq < first_seq:
                    self._differ(
                        first_seq,
                        f"batches: batch {batch} covers events {first_seq} to {last_seq},"
                        f" but the batches before it end at event {expected}",
                    )
                expected = max(expected, last_seq)
            after = rows[-1][0]
        if expected != size:
            self._differ(expected + 1, f"batches: the batches end at event {expected}, the log at {size}")


def _name(node_id: str | None, nid: int) -> str:
    return node_id if node_id is not None else f"nid {nid} (which ids does not hold)"


def _edge(src: str, dst: str, kind: str) -> str:
    return f"{src} -{kind}-> {dst}"
