"""Rules every backend applies alike, and the SQL both dialects share, kept here so that they
are written once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC

from opslineage.model import ParsedEvent
from opslineage.store.base import NodeRecord, StoreError
from opslineage.store.records import FACET_WINDOW, Cut, Horizon, NodeQuery

__all__ = [
    "ACCESS_SELECT",
    "INDEX_EDGES",
    "INDEX_NODES",
    "INDEX_NODE_COLUMNS",
    "NODE_COLUMNS",
    "SEGMENT_OF_ARTIFACT",
    "SEGMENT_OF_EVENT",
    "STATE_QUERIES",
    "STRAY_IDS",
    "access_filters",
    "check_archived",
    "check_versions",
    "edge_ends",
    "node_filters",
    "search_filters",
    "seen",
    "seq_bound",
    "shred_statements",
    "stray_ids",
]

NODE_COLUMNS = "i.id, n.kind, n.type, n.namespace, n.name, n.version, n.digest, n.seq"
"""The columns of a :class:`NodeRecord`, from ``nodes n JOIN ids i``."""
INDEX_NODE_COLUMNS = "n.nid, i.id, n.kind, n.type, n.namespace, n.name, n.version, n.digest, n.seq"
"""The columns of an :class:`~opslineage.store.records.IndexNode`, from ``nodes n`` and ``ids i``."""
INDEX_NODES = f"SELECT {INDEX_NODE_COLUMNS} FROM nodes n LEFT JOIN ids i USING (nid)"
"""Every ``nodes`` row as an :class:`~opslineage.store.records.IndexNode`, to filter on ``n``."""
INDEX_EDGES = (
    "SELECT e.src, s.id, e.dst, d.id, e.kind, e.role, e.seq"
    " FROM edges e LEFT JOIN ids s ON s.nid = e.src LEFT JOIN ids d ON d.nid = e.dst"
)
"""Every ``edges`` row as an :class:`~opslineage.store.records.IndexEdge`, to filter on ``e``."""
STRAY_IDS = (
    "SELECT nid, id FROM ids i WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE nid = i.nid)"
    " AND NOT EXISTS (SELECT 1 FROM edges WHERE src = i.nid) AND NOT EXISTS (SELECT 1 FROM edges WHERE dst = i.nid)"
    " ORDER BY nid"
)
"""The ``ids`` rows no node or edge uses (ingest interns only the ids its rows name)."""
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


ACCESS_SELECT = "SELECT e.seq, e.at, e.actor, e.outcome, e.name, e.body FROM access_events e"
"""The columns of an :class:`~opslineage.store.records.AccessEventRow`, from ``access_events e``."""


def access_filters(
    actor: str | None, node: str | None, since: object | None, outcome: str | None, *, mark: str
) -> tuple[str, list[object]]:
    """The conditions of ``search_access`` after its ``e.seq > after``, each led by AND, and their
    parameters (``since`` already in the dialect's form of a time)."""
    clauses, params = [], []
    for condition, value in (
        (f"e.actor = {mark}", actor),
        (f"e.outcome = {mark}", outcome),
        (f"e.at >= {mark}", since),
        (f"e.seq IN (SELECT seq FROM access_event_nodes WHERE node = {mark})", node),
    ):
        if value is not None:
            clauses.append(f" AND {condition}")
            params.append(value)
    return "".join(clauses), params


def node_filters(
    filters: dict[str, str | None],
    text: str | None,
    as_of: Horizon,
    *,
    mark: str,
    contains: str,
    instant: str,
) -> tuple[str, list[object]]:
    """The WHERE clause of ``find_nodes`` and its parameters.

    Args:
        filters: node column → the value it must have (None: any).
        text: a substring of the id or name, if given.
        mark: the dialect's placeholder (``?`` or ``%s``).
        contains: the dialect's substring position function (``instr`` or ``strpos``).
        instant: as for :func:`seen`.
    """
    bound, params = seen("n", as_of, marks=(mark, mark), instant=instant, of_nodes=True)
    clauses = [bound]
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"n.{column} = {mark}")
            params.append(value)
    if text:
        clauses.append(f"({contains}(i.id, {mark}) > 0 OR {contains}(coalesce(n.name, ''), {mark}) > 0)")
        params += [text, text]
    return " AND ".join(clauses), params


def search_filters(
    query: NodeQuery, as_of: Horizon, *, mark: str, contains: str, holds: str, instant: str
) -> tuple[str, list[object]]:
    """The WHERE clause of ``search_nodes`` and ``count_nodes`` (on ``nodes n JOIN ids i``) and its
    parameters.

    A facet value is looked for, as UTF-8 bytes, in the bodies of the newest :data:`FACET_WINDOW`
    events and the contents of the artifacts they stored; it matches the nodes those events added
    or linked, and the nodes of those artifacts. Each scan is bounded by the window.

    Args:
        mark: the dialect's placeholder (``?`` or ``%s``).
        contains: the dialect's substring position of text in text (``instr`` or ``strpos``).
        holds: the dialect's test that a payload holds bytes, a format with ``{payload}`` and
            ``{needle}`` (SQLite: ``instr({payload}, {needle}) > 0``).
        instant: as for :func:`seen`.
    """
    where, params = node_filters(
        {"kind": query.kind, "type": query.type, "namespace": query.namespace},
        None,
        as_of,
        mark=mark,
        contains=contains,
        instant=instant,
    )
    clauses = [where]
    if query.text:
        clauses.append(
            f"({contains}(i.id, {mark}) > 0 OR {contains}(coalesce(n.name, ''), {mark}) > 0"
            f" OR {contains}(coalesce(n.namespace, ''), {mark}) > 0)"
        )
        params += [query.text] * 3
    if query.namespaces is not None:
        allowed = sorted(query.namespaces)
        listed = ", ".join([mark] * len(allowed)) or "NULL"
        clauses.append(f"(n.namespace IS NULL OR n.namespace IN ({listed}))")
        params += allowed
    if query.facet:
        needle = query.facet.encode()
        matched = (
            f"SELECT seq FROM events WHERE seq > (SELECT coalesce(max(seq), 0) FROM events) - {FACET_WINDOW}"
            f" AND {holds.format(payload='body', needle=mark)}"
        )
        touched = " UNION ".join(
            f"SELECT {column} FROM {table} WHERE seq IN ({matched})"
            for column, table in (("src", "edges"), ("dst", "edges"), ("nid", "nodes"))
        )
        artifacts = (
            f"SELECT digest FROM artifacts WHERE seq > (SELECT coalesce(max(seq), 0) FROM events) - {FACET_WINDOW}"
            f" AND {holds.format(payload='content', needle=mark)}"
        )
        clauses.append(f"(n.nid IN ({touched}) OR n.digest IN ({artifacts}))")
        params += [needle] * 4
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


def stray_ids(rows: Iterable[tuple[int, str]], limit: int) -> tuple[int, list[tuple[int, str]]]:
    """The answer of ``stray_ids`` from the rows of :data:`STRAY_IDS`, read one by one."""
    count, first = 0, list[tuple[int, str]]()
    for row in rows:
        count += 1
        if len(first) < limit:
            first.append((row[0], row[1]))
    return count, first


def seq_bound(as_of: Horizon) -> int:
    """The largest sequence number an ``as_of`` answer may see (all of them when None)."""
    if isinstance(as_of, Cut):
        as_of = as_of.seq
    return (1 << 62) if as_of is None else as_of


def seen(
    alias: str, as_of: Horizon, *, marks: tuple[str, str], instant: str, of_nodes: bool = False
) -> tuple[str, list[object]]:
    """The condition that keeps the rows of table ``alias`` an ``as_of`` answer may see, and its
    parameters.

    Under a :class:`Cut` an edge is seen when the event that stored it had happened by the cut's
    time; a node (``of_nodes``) when the event that stored it had, or any seen edge touches it, so
    that a node first stored by a late event is there as soon as an earlier event used it.

    Args:
        marks: the dialect's placeholders for the sequence bound and the time of a :class:`Cut`.
        instant: the dialect's expression of an RFC 3339 text as a comparable instant, ``{}``
            standing for the text.
    """
    clause = f"{alias}.seq <= {marks[0]}"
    if not isinstance(as_of, Cut):
        return clause, [seq_bound(as_of)]
    params: list[object] = [seq_bound(as_of), as_of.before.astimezone(UTC).isoformat()]
    before = instant.format(marks[1])
    happened = (
        f"(SELECT {instant.format('v.event_time')} FROM events v WHERE v.seq = {alias}.seq) <= {before}"
    )
    if not of_nodes:
        return f"{clause} AND {happened}", params
    used = (
        f"EXISTS (SELECT 1 FROM edges x JOIN events v ON v.seq = x.seq WHERE (x.src = {alias}.nid OR "
        f"x.dst = {alias}.nid) AND x.seq <= {marks[0]} AND {instant.format('v.event_time')} <= {before})"
    )
    return f"{clause} AND ({happened} OR {used})", params * 2


def shred_statements(
    events: Sequence[tuple[int, bytes]],
    artifacts: Sequence[tuple[str, bytes]],
    keys: Sequence[str],
    blanks: Sequence[tuple[str, bytes]],
    *,
    mark: str,
    now: object,
) -> list[tuple[str, tuple[object, ...]]]:
    """The statements of a shred (see ``shred_scope``), in order, each changing one row: the
    re-sealed event bodies and contents, the destroyed keys (shredded at ``now``), the blanked
    contents. ``mark`` is the dialect's placeholder."""
    body = f"UPDATE events SET body = {mark} WHERE seq = {mark}"
    content = f"UPDATE artifacts SET content = {mark} WHERE digest = {mark}"
    destroy = f"UPDATE data_keys SET wrapped = NULL, shredded_at = {mark} WHERE key_id = {mark} AND shredded_at IS NULL"
    return [
        *((body, (payload, seq)) for seq, payload in events),
        *((content, (payload, digest)) for digest, payload in artifacts),
        *((destroy, (now, key)) for key in keys),
        *((content, (payload, digest)) for digest, payload in blanks),
    ]
