"""One node as the API and the web pages show it: its columns, its content, its facets and its edges.

:func:`node_detail` gathers it in a few set-based reads; :class:`Edge` is the typed edge every read
of the read path returns; :class:`NodePage` is one page of a search.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from opslineage.model import InvalidEvent
from opslineage.query.lineage import LS_KINDS, resolve_node
from opslineage.store import EdgeRow, Horizon, NodeQuery, NodeRecord, Store, StoredEvent

__all__ = [
    "COUNT_LIMIT",
    "MAX_OFFSET",
    "MAX_SEARCH",
    "Edge",
    "NodeDetail",
    "NodeEdges",
    "NodePage",
    "node_detail",
    "node_page",
]

_RECENT = 20  # events (or runs of a job) whose facets are merged into a node's
COUNT_LIMIT = 100_000
"""The most nodes a search counts: past it, a page says "100,000 or more" (``total_capped``)."""
MAX_OFFSET = 1 << 62
"""The largest ``offset`` of a search (``GET /api/v1/nodes``, the catalog)."""
MAX_SEARCH = 200
"""The longest text, namespace or facet value a search takes, in characters."""


class Edge(msgspec.Struct, frozen=True, omit_defaults=True):
    """One edge: ``src`` is what came from (or ran with) ``dst``; ``role`` says how, when recorded."""

    src: str
    dst: str
    kind: str
    role: str | None = None


class NodeEdges(msgspec.Struct, frozen=True):
    """A node's edges: ``out`` leave it (to what it came from), ``in`` enter it."""

    out: list[Edge]
    in_: list[Edge] = msgspec.field(name="in")


class NodeDetail(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A node's columns (empty ones left out), its artifact content, its newest facets, its edges,
    and who owns and stewards it (when an ownership entry names it or its namespace)."""

    id: str
    kind: str
    type: str
    namespace: str | None = None
    name: str | None = None
    version: str | None = None
    digest: str | None = None
    seq: int
    content: Any = msgspec.UNSET
    facets: dict[str, Any]
    edges: NodeEdges
    owners: Any = msgspec.UNSET


class NodePage(msgspec.Struct, frozen=True):
    """One page of nodes, newest first; ``next_offset`` is None on the last page; ``total`` is
    how many nodes match in all, or :data:`COUNT_LIMIT` when more do (``total_capped``: a count
    stops there)."""

    nodes: list[NodeRecord]
    limit: int
    offset: int
    next_offset: int | None
    total: int
    total_capped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, each node without its empty columns."""
        return {
            "nodes": [node.to_dict() for node in self.nodes],
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": self.next_offset,
            "total": self.total,
            "total_capped": self.total_capped,
        }


def edges_of(rows: Iterable[EdgeRow]) -> list[Edge]:
    """Store edge rows (src, dst, kind, role) as :class:`Edge` values."""
    return [Edge(src, dst, kind, role) for src, dst, kind, role in rows]


def node_page(
    store: Store,
    kind: str | None = None,
    *,
    text: str | None = None,
    namespace: str | None = None,
    facet: str | None = None,
    namespaces: frozenset[str] | None = None,
    limit: int = 50,
    offset: int = 0,
    as_of: Horizon = None,
) -> NodePage:
    """Nodes of one ``ls`` kind (or of any kind when None) whose id, name or namespace contains
    ``text``, of ``namespace`` exactly, whose recent payloads contain ``facet`` (see
    :class:`~opslineage.store.NodeQuery`), of ``namespaces`` only (None: all); with their total.

    Raises:
        InvalidEvent: ``kind`` is not an ``ls`` kind.
    """
    if kind is not None and kind not in LS_KINDS:
        raise InvalidEvent(f"unknown kind {kind!r}; choose one of {', '.join(LS_KINDS)}")
    id_kind, node_type = LS_KINDS[kind] if kind is not None else (None, None)
    query = NodeQuery(id_kind, node_type, namespace, text or None, facet or None, namespaces)
    found = store.search_nodes(query, limit=limit + 1, offset=offset, as_of=as_of)
    total = store.count_nodes(query, limit=COUNT_LIMIT + 1, as_of=as_of) if found or offset else 0
    next_offset = offset + limit if len(found) > limit else None
    return NodePage(found[:limit], limit, offset, next_offset, min(total, COUNT_LIMIT), total > COUNT_LIMIT)


def node_detail(store: Store, node_id: str, as_of: Horizon = None) -> NodeDetail:
    """The node ``node_id`` names (any id form, see :func:`resolve_node`) with its content, facets and edges.

    Raises:
        InvalidEvent: a malformed id. NotFound: no such node.
    """
    record = resolve_node(store, node_id, as_of)
    found = store.nodes_with_content([record.id], as_of).get(record.id)
    content = msgspec.json.decode(found[1]) if found and found[1] is not None else msgspec.UNSET
    return NodeDetail(
        id=record.id,
        kind=record.kind,
        type=record.type,
        namespace=record.namespace,
        name=record.name,
        version=record.version,
        digest=record.digest,
        seq=record.seq,
        content=content,
        facets=_facets(store, record, as_of),
        edges=NodeEdges(
            out=edges_of(store.edges([record.id], direction="up", as_of=as_of)),
            in_=edges_of(store.edges([record.id], direction="down", as_of=as_of)),
        ),
    )


def _facet_events(store: Store, record: NodeRecord, as_of: Horizon) -> list[StoredEvent]:
    """The events whose facets describe ``record``: a run's, a job's recent runs', a dataset's recent ones."""
    if record.kind == "run":
        return store.events(run_id=record.id.partition(":")[2])
    if record.kind == "job":
        runs = store.find_nodes(
            kind="run", namespace=record.namespace, name=record.name, limit=_RECENT, as_of=as_of
        )
        return sorted(
            (e for run in runs for e in store.events(run_id=run.id.partition(":")[2])), key=lambda e: e.seq
        )
    seqs = sorted(store.touching_seqs(record.id, _RECENT, as_of))
    return [e for seq in seqs for e in store.events(after=seq - 1, limit=1)]


def _facets(store: Store, record: NodeRecord, as_of: Horizon) -> dict[str, Any]:
    """The facets recorded on a node (a run's, a job's or a dataset's), the newest value per name."""
    merged: dict[str, Any] = {}
    for stored in _facet_events(store, record, as_of):
        event = stored.event
        if record.kind in ("run", "job"):
            merged.update((event.get(record.kind) or {}).get("facets") or {})
            continue
        datasets = [*(event.get("inputs") or []), *(event.get("outputs") or [])]
        if isinstance(event.get("dataset"), dict):
            datasets.append(event["dataset"])
        for dataset in datasets:
            if (dataset.get("namespace"), dataset.get("name")) == (record.namespace, record.name):
                merged.update(dataset.get("facets") or {})
    return merged
