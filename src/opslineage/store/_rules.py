"""Rules every backend applies alike, and the SQL both dialects share, kept here so that they
are written once."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opslineage.model import ParsedEvent
from opslineage.store.base import NodeRecord, StoreError

__all__ = [
    "NODE_COLUMNS",
    "SEGMENT_OF_ARTIFACT",
    "SEGMENT_OF_EVENT",
    "STATE_QUERIES",
    "check_archived",
    "check_versions",
    "edge_ends",
    "node_filters",
    "seq_bound",
]

NODE_COLUMNS = "i.id, n.kind, n.type, n.namespace, n.name, n.version, n.digest, n.seq"
"""The columns of a :class:`NodeRecord`, from ``nodes n JOIN ids i``."""
SEGMENT_OF_EVENT = "LEFT JOIN segments s ON s.sid = e.segment"
SEGMENT_OF_ARTIFACT = "LEFT JOIN segments s ON s.sid = a.segment"
STATE_QUERIES = (
    (
        "events",
        "SELECT e.seq, e.digest, e.run_id, e.event_type, e.event_time, e.body, s.digest"
        f" FROM events e {SEGMENT_OF_EVENT} ORDER BY e.seq",
    ),
    (
        "artifacts",
        f"SELECT a.digest, a.type, a.content, a.seq, s.digest FROM artifacts a {SEGMENT_OF_ARTIFACT} ORDER BY a.digest",
    ),
    ("nodes", f"SELECT {NODE_COLUMNS} FROM nodes n JOIN ids i USING (nid) ORDER BY i.id"),
    (
        "edges",
        "SELECT s.id, d.id, e.kind, e.role, e.seq FROM edges e JOIN ids s ON s.nid = e.src"
        " JOIN ids d ON d.nid = e.dst ORDER BY 1, 2, 3",
    ),
)
"""The (table, query) pairs :meth:`~opslineage.store.base.Store.state_digest` hashes, in order;
their rows go through ``Store._state_row``."""


def node_filters(
    filters: dict[str, str | None], text: str | None, as_of: int | None, *, mark: str, contains: str
) -> tuple[str, list[object]]:
    """The WHERE clause of ``find_nodes`` and its parameters.

    Args:
        filters: node column → the value it must have (None: any).
        text: a substring of the id or name, if given.
        mark: the dialect's placeholder (``?`` or ``%s``).
        contains: the dialect's substring position function (``instr`` or ``strpos``).
    """
    clauses: list[str] = [f"n.seq <= {mark}"]
    params: list[object] = [seq_bound(as_of)]
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"n.{column} = {mark}")
            params.append(value)
    if text:
        clauses.append(f"({contains}(i.id, {mark}) > 0 OR {contains}(coalesce(n.name, ''), {mark}) > 0)")
        params += [text, text]
    return " AND ".join(clauses), params


def check_archived(table: str, changed: int, expected: int, segment: str) -> None:
    """Raise unless archiving a segment blanked every row of ``table`` it meant to.

    Raises:
        StoreError: some of them were no longer hot.
    """
    if changed != expected:
        raise StoreError(
            f"{expected - changed} of the {table} for segment {segment} are no longer hot"
            " (is another `opslineage archive` running?)"
        )


def check_versions(
    events: Sequence[ParsedEvent], stored: Callable[[list[str]], dict[str, NodeRecord]]
) -> None:
    """A versioned node (a model or policy version, or what another versioned facet type makes:
    :attr:`ParsedEvent.versioned <opslineage.model.ParsedEvent>`) names one content digest, forever.

    Args:
        events: the events about to be stored.
        stored: looks up already stored nodes by id.

    Raises:
        StoreError: a version appears with two contents in the batch, or with another than stored.
    """
    declared: dict[str, str | None] = {}
    for event in events:
        for node in event.nodes:
            if node.id in event.versioned:
                seen = declared.setdefault(node.id, node.digest)
                if seen != node.digest:
                    raise StoreError(f"{node.id} appears with two different contents in one batch")
    if not declared:
        return
    found = stored(list(declared))
    for node_id, digest in declared.items():
        if node_id in found and found[node_id].digest != digest:
            raise StoreError(
                f"{node_id} is already recorded with digest {found[node_id].digest}; "
                f"changed content ({digest}) needs a new version"
            )


def edge_ends(direction: str) -> tuple[str, str]:
    """The (near, far) edge columns of a walk going ``up`` (to causes) or ``down`` (to effects)."""
    if direction == "up":
        return "src", "dst"
    if direction == "down":
        return "dst", "src"
    raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")


def seq_bound(as_of: int | None) -> int:
    """The largest sequence number an ``as_of`` answer may see (all of them when None)."""
    return (1 << 62) if as_of is None else as_of
