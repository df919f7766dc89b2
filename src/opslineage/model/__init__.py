"""The graph: node ids, canonical JSON and digests, typed AIOps facets, and OpenLineage events.

Facet types are declared to the registry (:func:`register_facet`), which the parser, the
store's rules and ``why`` read; our AIOps facets are registered on import.

This layer has no I/O. It parses an event once at the edge into a :class:`ParsedEvent` that
says which nodes and edges the event adds, and splits artifact contents out for storage.
"""

from opslineage.model.canonical import canonical_json, digest_of, sha256_hex
from opslineage.model.errors import InvalidEvent
from opslineage.model.events import Edge, Node, ParsedEvent, parse_event
from opslineage.model.ids import NodeId, parse_node_id
from opslineage.model.registry import FacetType, Ref, register_facet
from opslineage.model.stored import canonical_event, join_event

__all__ = [
    "Edge",
    "FacetType",
    "InvalidEvent",
    "Node",
    "NodeId",
    "ParsedEvent",
    "Ref",
    "canonical_event",
    "canonical_json",
    "digest_of",
    "join_event",
    "parse_event",
    "parse_node_id",
    "register_facet",
    "sha256_hex",
]
