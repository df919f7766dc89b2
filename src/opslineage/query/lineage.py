"""Upstream and downstream walks, node lookup by any id form, and listing nodes by kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opslineage.model import InvalidEvent, parse_node_id
from opslineage.store import Cut, Horizon, NodeRecord, Store

__all__ = [
    "LS_KINDS",
    "MAX_DEPTH",
    "LineageGraph",
    "NotFound",
    "check_depth",
    "count_kinds",
    "downstream",
    "list_nodes",
    "resolve_node",
    "upstream",
]

# What `ls --kind` accepts, mapped to (id kind, AIOps type) filters.
LS_KINDS: dict[str, tuple[str | None, str | None]] = {
    "source": ("source", None),
    "snapshot": ("entity", "snapshot"),
    "feature": ("entity", "feature"),
    "model": ("model", None),
    "prediction": ("entity", "prediction"),
    "policy": ("policy", None),
    "decision": ("entity", "decision"),
    "action": ("run", "action"),
    "effect": ("entity", "effect"),
    "run": ("run", None),
    "job": ("job", None),
    "dataset": ("dataset", None),
    "agent": ("agent", None),
}


MAX_DEPTH = 100
"""The most edges a walk follows (``--depth``, ``depth=``): no provenance chain is longer."""


class NotFound(LookupError):
    """No node answers to the given id (at the given point in time)."""


@dataclass
class LineageGraph:
    """Nodes within some distance of a root, and the edges between them."""

    root: str
    direction: str
    depth: int
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "nodes": self.nodes,
            "edges": self.edges,
        }


def check_depth(depth: int) -> int:
    """``depth`` itself when it is 0 to :data:`MAX_DEPTH`.

    Raises:
        InvalidEvent: ``depth`` is negative or over :data:`MAX_DEPTH`.
    """
    if not 0 <= depth <= MAX_DEPTH:
        raise InvalidEvent(f"depth must be 0 to {MAX_DEPTH}, got {depth}")
    return depth


def resolve_node(store: Store, text: str, as_of: Horizon = None) -> NodeRecord:
    """Find the node an id names. ``dataset:NS:NAME`` also finds our artifacts published under
    that dataset name (the newest version, or the one ``#sha256:…`` names).

    Raises:
        InvalidEvent: the id is not of the grammar.
        NotFound: nothing has that id.
    """
    parsed = parse_node_id(text)
    canonical = str(parsed)
    found = store.node(canonical, as_of)
    if found is not None:
        return found
    if parsed.kind == "dataset":
        if parsed.version and parsed.version.startswith("sha256:"):
            found = store.node("entity:" + parsed.version, as_of)
            if found is not None and (found.namespace, found.name) == (parsed.namespace, parsed.name):
                return found
        elif not parsed.version:
            matches = store.find_nodes(namespace=parsed.namespace, name=parsed.name, limit=1, as_of=as_of)
            if matches:
                return matches[0]
    raise NotFound(f"no node {canonical}{_horizon_text(as_of)}")


def _horizon_text(as_of: Horizon) -> str:
    if isinstance(as_of, Cut):
        seq = "" if as_of.seq is None else f" in the store as of sequence {as_of.seq}"
        return f" that had happened by {as_of.before.isoformat()}{seq}"
    return "" if as_of is None else f" as of sequence {as_of}"


def upstream(store: Store, node_id: str, depth: int = 10, as_of: Horizon = None) -> LineageGraph:
    """Everything ``node_id`` came from, up to ``depth`` edges away."""
    return _walk(store, node_id, "up", depth, as_of)


def downstream(store: Store, node_id: str, depth: int = 10, as_of: Horizon = None) -> LineageGraph:
    """Everything that came from ``node_id``, up to ``depth`` edges away."""
    return _walk(store, node_id, "down", depth, as_of)


def _walk(store: Store, node_id: str, direction: str, depth: int, as_of: Horizon) -> LineageGraph:
    check_depth(depth)
    root = resolve_node(store, node_id, as_of)
    walk = store.walk(root.id, direction=direction, depth=depth, as_of=as_of)
    records = store.nodes(walk.depths, as_of)
    nodes = []
    for node, distance in sorted(walk.depths.items(), key=lambda item: (item[1], item[0])):
        record = records.get(node)
        entry: dict[str, Any] = record.to_dict() if record else {"id": node, "kind": node.partition(":")[0]}
        entry["depth"] = distance
        nodes.append(entry)
    edges = [
        {"src": src, "dst": dst, "kind": kind, **({"role": role} if role else {})}
        for src, dst, kind, role in walk.edges
    ]
    return LineageGraph(root.id, direction, depth, nodes, edges)


def count_kinds(store: Store) -> dict[str, int]:
    """How many nodes of each ``ls`` kind the store holds."""
    counts = store.counts()
    result = {}
    for kind, (id_kind, node_type) in LS_KINDS.items():
        result[kind] = sum(
            count
            for key, count in counts.items()
            if key.partition(":")[0] == id_kind and (node_type is None or key.partition(":")[2] == node_type)
        )
    return result


def list_nodes(
    store: Store,
    kind: str,
    *,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
    as_of: Horizon = None,
) -> list[NodeRecord]:
    """Nodes of one ``ls`` kind (see :data:`LS_KINDS`), newest first.

    Raises:
        InvalidEvent: ``kind`` is not one of :data:`LS_KINDS`.
    """
    if kind not in LS_KINDS:
        raise InvalidEvent(f"unknown kind {kind!r}; choose one of {', '.join(LS_KINDS)}")
    id_kind, node_type = LS_KINDS[kind]
    return store.find_nodes(kind=id_kind, type=node_type, text=text, limit=limit, offset=offset, as_of=as_of)
