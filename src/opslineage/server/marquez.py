"""Lineage in the shape Marquez's ``GET /api/v1/lineage`` answers: jobs and datasets, with edges.

Our graph has runs and dataset versions; Marquez's has jobs and datasets. A job's runs are
folded into the job, and every version of a dataset (our content-addressed artifacts published
under a dataset name, models, policies, sources) into ``dataset:<namespace>:<name>``.
"""

from __future__ import annotations

from typing import Any

from opslineage.model import parse_node_id
from opslineage.query import Reader
from opslineage.store import NodeRecord

__all__ = ["marquez_lineage"]

_DATASET_KINDS = ("dataset", "entity", "model", "policy", "source")
_MAX_RUNS = 500  # runs of one job folded into it, newest first


def _dataset_id(record: NodeRecord) -> str:
    return f"dataset:{record.namespace}:{record.name}"


def marquez_lineage(reader: Reader, node_id: str, depth: int = 20) -> dict[str, Any]:
    """The job/dataset graph around ``node_id`` (a Marquez id, or any of ours), ``depth`` hops away.

    Raises:
        InvalidEvent: a malformed id. NotFound: no such node.
    """
    start = reader.resolve(node_id)
    first = f"job:{start.namespace}:{start.name}" if start.kind in ("run", "job") else _dataset_id(start)
    graph: dict[str, dict[str, Any]] = {}
    frontier = [first]
    for _ in range(depth + 1):
        nxt = []
        for node in frontier:
            if node in graph:
                continue
            graph[node] = _expand(reader, node)
            nxt += [edge["destination"] for edge in graph[node]["outEdges"]]
            nxt += [edge["origin"] for edge in graph[node]["inEdges"]]
        frontier = nxt
    for entry in graph.values():  # keep only edges whose both ends are in the answer
        entry["inEdges"] = [e for e in entry["inEdges"] if e["origin"] in graph]
        entry["outEdges"] = [e for e in entry["outEdges"] if e["destination"] in graph]
    return {"graph": list(graph.values())}


def _expand(reader: Reader, node: str) -> dict[str, Any]:
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
    return {
        "id": node,
        "type": "JOB" if kind == "job" else "DATASET",
        "data": {
            "id": {"namespace": namespace, "name": name},
            "namespace": namespace,
            "name": name,
            "type": "JOB" if kind == "job" else "DATASET",
            "versions": len(members) - (1 if kind == "job" else 0),
        },
        "inEdges": [{"origin": o, "destination": d} for o, d in sorted(in_edges)],
        "outEdges": [{"origin": o, "destination": d} for o, d in sorted(out_edges)],
    }


def _fold(record: NodeRecord) -> str:
    if record.kind in ("run", "job"):
        return f"job:{record.namespace}:{record.name}"
    return _dataset_id(record)
