"""The read path: who reads (:class:`Principal`), through what (:class:`Reader`), and the questions asked.

The questions: upstream, downstream, listing by kind, one node's detail, ``why`` an action happened
(and its tree view), the events and the transparency log; and the analyses of the web pages: how
well remediations work (:func:`effectiveness`) and a target's incident :func:`timeline`. Every function takes an ``as_of``
sequence number (see :meth:`Reader.sequence_at`) and then answers as the store stood when that
event was the last one committed. The HTTP API, the CLI and the exports read only through a
:class:`Reader`; the functions taking a store are for the layers beside this one.
"""

from opslineage.governance import Principal
from opslineage.query._budget import QueryTimeout, with_statement_timeout
from opslineage.query.effectiveness import Effectiveness, effectiveness, wilson_interval
from opslineage.query.lineage import (
    LS_KINDS,
    MAX_DEPTH,
    LineageGraph,
    NotFound,
    check_depth,
    count_kinds,
    downstream,
    list_nodes,
    resolve_node,
    upstream,
)
from opslineage.query.nodes import (
    COUNT_LIMIT,
    MAX_OFFSET,
    MAX_SEARCH,
    Edge,
    NodeDetail,
    NodeEdges,
    NodePage,
    node_detail,
)
from opslineage.query.reader import ConsistencyProof, InclusionProof, Reader, as_reader
from opslineage.query.timeline import Timeline, targets, timeline
from opslineage.query.visibility import label_rules
from opslineage.query.why import WhyChain, why
from opslineage.query.why_view import Span, WhyNode, WhyView, why_view
from opslineage.store import FACET_WINDOW, Cut, Horizon

__all__ = [
    "COUNT_LIMIT",
    "FACET_WINDOW",
    "LS_KINDS",
    "MAX_DEPTH",
    "MAX_OFFSET",
    "MAX_SEARCH",
    "ConsistencyProof",
    "Cut",
    "Edge",
    "Effectiveness",
    "Horizon",
    "InclusionProof",
    "LineageGraph",
    "NodeDetail",
    "NodeEdges",
    "NodePage",
    "NotFound",
    "Principal",
    "QueryTimeout",
    "Reader",
    "Span",
    "Timeline",
    "WhyChain",
    "WhyNode",
    "WhyView",
    "as_reader",
    "check_depth",
    "count_kinds",
    "downstream",
    "effectiveness",
    "label_rules",
    "list_nodes",
    "node_detail",
    "resolve_node",
    "targets",
    "timeline",
    "upstream",
    "why",
    "why_view",
    "wilson_interval",
    "with_statement_timeout",
]
