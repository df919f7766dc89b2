"""Lineage in the shape Marquez's ``GET /api/v1/lineage`` answers: jobs and datasets, with edges.

Our graph has runs and dataset versions; Marquez's has jobs and datasets. A job's runs are
folded into the job, and every version of a dataset (our content-addressed artifacts published
under a dataset name, models, policies, sources) into ``dataset:<namespace>:<name>``.
"""

from __future__ import annotations

import msgspec

from opslineage.model import parse_node_id
from opslineage.query import Reader, check_depth
from opslineage.store import NodeRecord

__all__ = ["MarquezData", "MarquezEdge", "MarquezGraph", "MarquezName", "MarquezNode", "marquez_lineage"]

_DATASET_KINDS = ("dataset", "entity", "model", "policy", "source")
_MAX_RUNS = 500  # runs of one job folded into it, newest first


class MarquezEdge(msgspec.Struct, frozen=True):
    """An edge between two jobs or datasets."""

    origin: str
    destination: str


class MarquezName(msgspec.Struct, frozen=True):
    """A job's or dataset's name in its namespace."""

    namespace: str | None
    name: str | None


class MarquezData(msgspec.Struct, frozen=True):
    """What Marquez says of a node: its name, its type and how many versions (runs) it folds."""

    id: MarquezName
    namespace: str | None
    name: str | None
    type: str
    versions: int


class MarquezNode(msgspec.Struct):
    """One job or dataset of the graph with the edges into and out of it."""

    id: str
    type: str
    data: MarquezData
    in_edges: list[MarquezEdge] = msgspec.field(name="inEdges")
    out_edges: list[MarquezEdge] = msgspec.field(name="outEdges")


class MarquezGraph(msgspec.Struct):
    """The answer of ``GET /api/v1/lineage``."""

    graph: list[MarquezNode]


def _dataset_id(record: NodeRecord) -> str:
    return f"dataset:{record.namespace}:{record.name}"


def marquez_lineage(reader: Reader, node_id: str, depth: int = 20) -> MarquezGraph:
    """The job/dataset graph around ``node_id`` (a Marquez id, or any of ours), ``depth`` hops away.

    The walk ends after ``depth`` hops or as soon as a hop finds nothing new, whichever is first.

    Raises:
        InvalidEvent: a malformed id, or ``depth`` outside 0 to ``MAX_DEPTH``. NotFound: no such node.
    """
    check_depth(depth)
    start = reader.resolve(node_id)
    first = f"job:{start.namespace}:{start.name}" if start.kind in ("run", "job") else _dataset_id(start)
    graph: dict[str, MarquezNode] = {}
    frontier = {first}
    for _ in range(depth + 1):
        if not frontier:
            break
        for node in sorted(frontier):
            graph[node] = _expand(reader, node)
        frontier = {
            end
            for node in frontier
            for edge in (*graph[node].out_edges, *graph[node].in_edges)
            for end in (edge.origin, edge.destination)
            if end not in graph
        }
    for entry in graph.values():  # keep only edges whose both ends are in the answer
        entry.in_edges = [e for e in entry.in_edges if e.origin in graph]
        entry.out_edges = [e for e in entry.out_edges if e.destination in graph]
    return MarquezGraph(list(graph.values()))


def _expand(reader: Reader, node: str) -> MarquezNode:
    parsed = parse_node_id(node)
    kind, namespace, name = parsed.kind, parsed.namespace, parsed.name
    if kind == "job":
        members = reader.search(kind="run", namespace=namespace, name=name, limit=_MAX_RUNS)
        members += reader.search(kind="job", namespace=namespace, name=name, limit=1)
    else:
        members = [
            m
            for m in reader.search(namespace=namespace, name=name, limit=_MAX_RUNS)
            if m.kind in _DATASET_KINDS
        ]
    ids = [m.id for m in members]
    up = reader.neighbours(ids, direction="up", kinds=["used", "wasGeneratedBy"])
    down = reader.neighbours(ids, direction="down", kinds=["used", "wasGeneratedBy"])
    others = reader.records({edge.dst for edge in up} | {edge.src for edge in down})
    reads, writes = ("used", "wasGeneratedBy") if kind == "job" else ("wasGeneratedBy", "used")
    in_edges = {(_fold(others[e.dst]), node) for e in up if e.dst in others and e.kind == reads}
    out_edges = {(node, _fold(others[e.src])) for e in down if e.src in others and e.kind == writes}
    kind_name = "JOB" if kind == "job" else "DATASET"
    return MarquezNode(
        node,
        kind_name,
        MarquezData(
            MarquezName(namespace, name),
            namespace,
            name,
            kind_name,
            len(members) - (1 if kind == "job" else 0),
        ),
        [MarquezEdge(o, d) for o, d in sorted(in_edges)],
        [MarquezEdge(o, d) for o, d in sorted(out_edges)],
    )


def _fold(record: NodeRecord) -> str:
    if record.kind in ("run", "job"):
        return f"job:{record.namespace}:{record.name}"
    return _dataset_id(record)
