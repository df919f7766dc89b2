"""W3C PROV export: the provenance graph as a PROV document, written as PROV-JSON.

Built with the ``prov`` package from what the read path gives (nodes, edges, events):

- every run is a ``prov:Activity``, with start and end times from its events when known and
  its last event type as ``opslineage:state``;
- every artifact, dataset, model version, policy version and source is a ``prov:Entity``, and
  every job (a step definition) a ``prov:Entity`` typed ``prov:Plan``;
- every agent is a ``prov:Agent``;
- edges become ``used``, ``wasGeneratedBy``, ``wasAssociatedWith`` (the role as ``prov:role``,
  the run's job as ``prov:plan``), ``wasDerivedFrom`` (the role as ``opslineage:role``), and
  ``hasParent`` becomes ``wasInformedBy`` (the child run informed by its parent); a JobEvent's
  static lineage (a job using or generating a dataset, with no run) becomes ``wasInfluencedBy``,
  since a plan is no activity. Every relation carries our edge kind as ``opslineage:kind``.

Node ids hold ``:`` ``/`` ``@`` ``#``, which a qualified name's local part cannot, so each record's
identifier is the percent-encoded node id in the ``node`` namespace (:data:`NODE_NS`); the id
itself, with the node's kind, type, naming columns and digest, rides along as attributes in the
``opslineage`` namespace (:data:`OPSLINEAGE_NS`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import quote

from prov.model import PROV, PROV_N_MAP, PROV_ROLE, PROV_TYPE, Namespace, ProvDocument, QualifiedName

from opslineage.query import Edge, Reader, as_reader
from opslineage.store import Store

__all__ = ["NODE_NS", "OPSLINEAGE_NS", "export_prov_json", "to_prov"]

OPSLINEAGE_NS = "https://opslineage.dev/ns#"
NODE_NS = "https://opslineage.dev/node/"
CHUNK = 1_000
_ENDS = frozenset({"COMPLETE", "FAIL", "ABORT"})
_PROV_ROLE_KINDS = frozenset({"used", "wasGeneratedBy", "wasAssociatedWith"})  # where PROV-DM has prov:role


@dataclass(slots=True)
class _Times:
    """What a run's events say about it: its first START, its last end, its last event type."""

    start: datetime | None = None
    end: datetime | None = None
    state: str | None = None


def to_prov(source: Reader | Store) -> ProvDocument:
    """The whole graph, as the store stands when called, as a PROV document.

    Args:
        source: what to read: a reader, or a store (read as its local administrator).

    Returns:
        A document with one element per node and one relation per edge.
    """
    reader = as_reader(source)
    as_of = reader.log_length()
    document = ProvDocument()
    ours = document.add_namespace("opslineage", OPSLINEAGE_NS)
    nodes = document.add_namespace("node", NODE_NS)

    def name(node_id: str) -> QualifiedName:
        return nodes[quote(node_id, safe="")]

    times = _run_times(reader, as_of)
    records = reader.every_node(as_of)
    jobs: dict[str, QualifiedName] = {}
    for record in records:
        attributes: dict[Any, Any] = {
            ours[key]: value for key, value in record.to_dict().items() if key != "seq"
        }
        if record.kind == "run":
            jobs[record.id] = name(f"job:{record.namespace}:{record.name}")
            run = times.get(record.id, _Times())
            if run.state:
                attributes[ours["state"]] = run.state
            document.activity(name(record.id), run.start, run.end, attributes)
        elif record.kind == "agent":
            document.agent(name(record.id), attributes)
        else:
            if record.kind == "job":
                attributes[PROV_TYPE] = PROV["Plan"]
            document.entity(name(record.id), attributes)
    for start in range(0, len(records), CHUNK):
        ids = [record.id for record in records[start : start + CHUNK]]
        for edge in reader.neighbours(ids, direction="up", as_of=as_of):
            _add_relation(document, ours, name, edge, jobs.get(edge.src))
    return document


def export_prov_json(source: Reader | Store, out: TextIO) -> dict[str, int]:
    """Write the graph as one PROV-JSON document.

    Args:
        source: what to read: a reader, or a store (read as its local administrator).
        out: a text stream to write the document to.

    Returns:
        How many records of each PROV-JSON kind were written (``activity``, ``entity``,
        ``agent``, ``used``, ``wasGeneratedBy``, ``wasAssociatedWith``, ``wasDerivedFrom``,
        ``wasInformedBy``, ``wasInfluencedBy``); kinds with no record are left out.
    """
    document = to_prov(source)
    document.serialize(out, format="json")
    out.write("\n")
    return dict(sorted(Counter(PROV_N_MAP[record.get_type()] for record in document.get_records()).items()))


def _run_times(reader: Reader, as_of: int) -> dict[str, _Times]:
    """Each run's first START time, last COMPLETE/FAIL/ABORT time and last event type."""
    runs: dict[str, _Times] = {}
    after = 0
    while after < as_of and (chunk := reader.event_page(after=after, limit=min(CHUNK, as_of - after))):
        for stored in chunk:
            if stored.run_id is None:  # a DatasetEvent or JobEvent
                continue
            run = runs.setdefault("run:" + stored.run_id, _Times())
            when = datetime.fromisoformat(stored.event_time)  # checked when the event was ingested
            if stored.event_type == "START" and run.start is None:
                run.start = when
            elif stored.event_type in _ENDS:
                run.end = when
            run.state = stored.event_type
        after = chunk[-1].seq
    return runs


def _add_relation(
    document: ProvDocument,
    ours: Namespace,
    name: Callable[[str], QualifiedName],
    edge: Edge,
    plan: QualifiedName | None,
) -> None:
    """Add one edge as its PROV relation, tagged with our edge kind."""
    src, dst, kind, role = edge.src, edge.dst, edge.kind, edge.role
    attributes: dict[Any, Any] = {ours["kind"]: kind}
    if role is not None:
        attributes[PROV_ROLE if kind in _PROV_ROLE_KINDS else ours["role"]] = role
    match kind:
        case "used" | "wasGeneratedBy" if not (src if kind == "used" else dst).startswith("run:"):
            # A JobEvent's static lineage: a job (a plan) is no activity, so PROV can only say influence.
            document.wasInfluencedBy(name(src), name(dst), other_attributes=attributes)
        case "used":
            document.used(name(src), name(dst), other_attributes=attributes)
        case "wasGeneratedBy":
            document.wasGeneratedBy(name(src), name(dst), other_attributes=attributes)
        case "wasAssociatedWith":
            document.wasAssociatedWith(name(src), name(dst), plan, other_attributes=attributes)
        case "wasDerivedFrom":
            document.wasDerivedFrom(name(src), name(dst), other_attributes=attributes)
        case "hasParent":
            document.wasInformedBy(name(src), name(dst), other_attributes=attributes)
        case _:
            raise ValueError(f"edge kind {kind!r} has no PROV relation")
