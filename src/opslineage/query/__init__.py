"""Questions asked of the graph: upstream, downstream, listing by kind, and ``why`` an action happened.

Every function takes an ``as_of`` sequence number (see :meth:`Store.as_of_seq`) and then answers
as the store stood when that event was the last one committed.
"""

from opslineage.query.lineage import (
    LS_KINDS,
    LineageGraph,
    NotFound,
    count_kinds,
    downstream,
    list_nodes,
    resolve_node,
    upstream,
)
from opslineage.query.why import WhyChain, why

__all__ = [
    "LS_KINDS",
    "LineageGraph",
    "NotFound",
    "WhyChain",
    "count_kinds",
    "downstream",
    "list_nodes",
    "resolve_node",
    "upstream",
    "why",
]
