"""The PostgreSQL backend: the same store as :mod:`opslineage.store.sqlite`, in a PostgreSQL database.

This module owns the PostgreSQL schema, its migrations and every SQL statement the backend runs.
The tables mirror the SQLite backend's: ``events`` (accepted events, bodies with artifact
contents split out), ``artifacts`` (content-addressed, stored once), ``ids`` (node ids interned
as integers), ``nodes`` and ``edges`` (the graph index, each row stamped with the sequence number
of the event that added it), ``batches`` (when each ingest committed, by the server's clock, and who wrote it),
``log_nodes`` and ``checkpoints`` (the transparency log), ``segments`` (the archive tier's files)
and ``meta``. Triggers refuse any UPDATE, DELETE or TRUNCATE of events, artifacts, log nodes,
checkpoints and segments, except archiving's one change: an event's body or an artifact's content
blanked into a recorded segment.

Writers: every write transaction first takes one transaction-scoped advisory lock, so writers in
any number of processes take turns. Sequence numbers, interned ids and the log's leaves are
assigned under that lock, and each process keeps its view of the log's right edge only while
the log's size is what it last saw.

Schema versions: :data:`~opslineage.store.postgres_schema.MIGRATIONS` lists the schema steps in
order, and ``schema_migrations`` records which ones a database has; opening a store applies the
missing ones in one transaction.

Text columns that name nodes use the ``C`` collation, so ids sort byte by byte as in SQLite and
:meth:`PostgresStore.state_digest` of the same content is the same on both backends. PostgreSQL
text cannot hold NUL characters: an event with one in a name or id is refused with a
:class:`~opslineage.store.records.StoreError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import closing
from dataclasses import astuple
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from opslineage.merkle import CompactRange, leaf_hash
from opslineage.model import ParsedEvent
from opslineage.model.ids import run_node_id
from opslineage.store._plan import BatchPlan, Tally, check_actor, joined, plan_batch
from opslineage.store._rules import (
    ACCESS_SELECT,
    INDEX_EDGES,
    INDEX_NODES,
    NODE_COLUMNS,
    SEGMENT_OF_ARTIFACT,
    SEGMENT_OF_EVENT,
    STATE_QUERIES,
    STRAY_IDS,
    access_filters,
    check_archived,
    check_versions,
    edge_ends,
    node_filters,
    search_filters,
    seen,
    shred_statements,
    stray_ids,
)
from opslineage.store.base import LEAF_FORM_META, Store, event_leaf
from opslineage.store.interfaces import TokenRow
from opslineage.store.keys import KEK_ID_META, Kek, check_rewrapped, check_shredded
from opslineage.store.postgres_schema import MIGRATIONS
from opslineage.store.records import (
    AccessEventRow,
    AccessRow,
    ArtifactRow,
    CheckpointRow,
    DataKeyRow,
    EdgeRow,
    EventRow,
    Horizon,
    HotRows,
    IndexEdge,
    IndexNode,
    IndexRows,
    IngestResult,
    NodeContent,
    NodeQuery,
    NodeRecord,
    RawEvent,
    SealedRows,
    SegmentInfo,
    StoredEvent,
    StoreError,
    StoreUnavailable,
    Walk,
)
from opslineage.store.sealing import SEALED_HEAD, sealed_prefix, sealed_rows

__all__ = ["MIGRATIONS", "PostgresStore"]

_T = TypeVar("_T")
_Conn = psycopg.Connection[Any]

_WRITER_LOCK = int.from_bytes(b"opslinea", "big")  # the advisory lock every write transaction takes
_CACHE_LIMIT = 500_000
# Ties between edges of one event come back in the order of the index a lookup uses, as in SQLite.
_TIES = {"up": ("src", "dst", "kind"), "down": ("dst", "kind", "src")}
_INSTANT = "({})::timestamptz"


class PostgresStore(Store):
    """A store in a PostgreSQL database, for any number of writer and reader processes.

    One object holds a pool of connections and may be shared by threads. A connection the
    server closed under the store (a restart, ``pg_terminate_backend``) is noticed on its first
    statement: the pool drops every dead connection and the call goes on with a fresh one.

    Attributes:
        url: the URL the store was opened with, its password masked.
    """

    def __init__(self, url: str, *, create: bool = True, pool_size: int = 8, timeout: float = 10.0) -> None:
        """Connect, bring the schema up to date, and open the connection pool.

        Args:
            url: ``postgresql://user:password@host:port/database`` (or ``postgres://``), with any
                libpq parameters as query arguments.
            create: create the schema in a database that has none; when false, a database
                without an opslineage schema is an error.
            pool_size: the most connections the store opens at once.
            timeout: seconds to wait for the server when connecting, and for a free connection.

        Raises:
            StoreError: the server is unreachable, the database is missing or refuses us, it has
                no store and ``create`` is false, or its schema is newer than this opslineage.
        """
        self.url = _masked(url)
        self._timeout = timeout
        self._nids: dict[str, int] = {}  # committed ids only; ids are never renumbered
        self._frontier: CompactRange | None = None  # the log's right edge, as last committed
        self._writing = threading.RLock()  # this object's writes and caches, one thread at a time
        try:
            conninfo = url
            if "connect_timeout" not in conninfo_to_dict(url):
                conninfo = make_conninfo(url, connect_timeout=max(1, round(timeout)))
            with psycopg.connect(conninfo, autocommit=True) as conn:
                self._migrate(conn, create=create)
        except psycopg.Error as error:
            raise StoreError(f"cannot open store {self.url}: {_reason(error)}") from None
        self._pool: psycopg_pool.ConnectionPool[_Conn] = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            timeout=timeout,
            num_workers=1,
            name=f"opslineage {self.url}",
            open=True,
        )

    def _migrate(self, conn: _Conn, *, create: bool) -> None:
        """Apply the schema steps the database lacks, under the writer lock, in one transaction."""
        if self._schema_version(conn) == len(MIGRATIONS):
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
            version = self._schema_version(conn)
            if version is None:
                if not create:
                    raise StoreError(
                        f"no store at {self.url} (run `opslineage init`, `opslineage demo` or"
                        " `opslineage ingest` first)"
                    )
                conn.execute(
                    "CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
                )
                version = 0
            if version > len(MIGRATIONS):
                raise StoreError(f"store {self.url} has schema {version}, newer than this opslineage")
            for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
                conn.execute(";\n".join(step))
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
            if version == 0:  # a new store: its leaves commit to artifacts by digest
                conn.execute("INSERT INTO meta VALUES (%s, '2')", (LEAF_FORM_META,))

    @staticmethod
    def _schema_version(conn: _Conn) -> int | None:
        """The database's schema version; None when it has no store at all."""
        # pg_class through SQL, not to_regclass: the name cache of a session that waited for the
        # writer lock may not have seen another session create the table meanwhile.
        exists = conn.execute(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
            " ON n.oid = c.relnamespace WHERE c.relname = 'schema_migrations' AND n.nspname = current_schema())"
        ).fetchone()
        if not (exists and exists[0]):
            return None
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    # Connections: every call runs on one pooled connection. A connection the server had closed
    # is dropped and the call tried again on another, until the pool has had its chance to hand
    # out a fresh one: after a server restart every pooled connection is dead, and the server
    # may end them one by one while the call goes on (pg_terminate_backend does not wait).

    def _connection(self) -> _Conn:
        try:
            return self._pool.getconn()
        except psycopg_pool.PoolClosed:
            raise StoreUnavailable(f"store {self.url} is closed") from None
        except psycopg_pool.PoolTimeout:
            raise StoreUnavailable(
                f"no connection to {self.url} within {self._timeout:g} s (is the server up?)"
            ) from None

    def _attempts(self) -> int:
        """One try per connection the pool may hold, and one on a connection it opens afresh."""
        return self._pool.max_size + 1

    def _unavailable(self, error: psycopg.OperationalError) -> StoreUnavailable:
        return StoreUnavailable(f"store {self.url}: {_reason(error)}")

    def _read(self, work: Callable[[_Conn], _T]) -> _T:
        """``work(connection)``, again on another connection while the server had closed this one."""
        left = self._attempts()
        while True:
            left -= 1
            conn = self._connection()
            try:
                return work(conn)
            except psycopg.OperationalError as error:
                if not (conn.broken and left):
                    raise self._unavailable(error) from None
            finally:
                self._pool.putconn(conn)

    def _rows(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        return self._read(lambda conn: conn.execute(query, params, binary=True).fetchall())

    def _write(self, work: Callable[[_Conn], _T]) -> _T:
        """``work(connection)`` in one transaction that holds the writer lock, all or nothing."""
        with self._writing:
            try:
                return self._transaction(work)
            except BaseException:
                self._frontier = None  # it may hold leaves that were rolled back
                if self._keys is not None:
                    self._keys.forget()  # and data keys that were
                raise

    def _transaction(self, work: Callable[[_Conn], _T]) -> _T:
        left = self._attempts()
        while True:
            left -= 1
            conn = self._connection()
            started = False
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
                    started = True
                    return work(conn)
            except psycopg.OperationalError as error:
                # once work began, a retry could repeat it
                if started or not (conn.broken and left):
                    raise self._unavailable(error) from None
            except psycopg.DataError as error:
                raise StoreError(f"PostgreSQL cannot store this: {_reason(error)}") from None
            finally:
                self._pool.putconn(conn)

    # Writing.

    def ingest_many(
        self,
        chunks: Iterable[Sequence[ParsedEvent]],
        *,
        actor: str | None = None,
        each: Callable[[IngestResult], object] | None = None,
    ) -> IngestResult:
        actor = check_actor(actor)
        interned: dict[str, int] = {}

        def work(conn: _Conn) -> IngestResult:
            tally = Tally()
            for events, sizes in joined(chunks):
                tally.add(sizes, self._insert(conn, events, interned), each)
            if tally.first_seq is not None:  # the actor column is named only when there is one
                named = ("", "") if actor is None else (", actor", ", %s")
                conn.execute(
                    f"INSERT INTO batches (first_seq, last_seq, recorded_at{named[0]})"
                    f" VALUES (%s, %s, clock_timestamp(){named[1]})",
                    (tally.first_seq, tally.last_seq, *(() if actor is None else (actor,))),
                )
            return tally.result()

        with self._writing:
            result = self._write(work)
            if len(self._nids) + len(interned) > _CACHE_LIMIT:
                self._nids.clear()
            self._nids.update(interned)
        return result

    def _insert(
        self, conn: _Conn, events: Sequence[ParsedEvent], interned: dict[str, int]
    ) -> BatchPlan | None:
        """Insert the events not stored yet; returns what was stored (None: nothing)."""
        if not events:
            return None
        row = conn.execute(
            "SELECT (SELECT coalesce(max(seq), 0) FROM events),"
            " ARRAY(SELECT digest FROM events WHERE digest = ANY(%s::bytea[]))",
            ([event.digest for event in events],),
            binary=True,
        ).fetchone()
        assert row is not None
        last: int = row[0]
        plan = plan_batch(events, row[1], last)
        if plan is None:
            return None
        check_versions(events, lambda ids: _nodes(conn, ids, None))
        new_keys: list[DataKeyRow] = []
        bodies, artifacts = sealed_rows(self._sealer(), plan.fresh, plan.first_seq, plan.artifacts, new_keys)
        if new_keys:
            with conn.cursor() as cursor:
                cursor.executemany("INSERT INTO data_keys VALUES (%s, %s, %s, %s, %s, %s, %s)", new_keys)
        nid, new_ids = self._intern(conn, plan.node_ids(), interned)
        frontier = self._frontier_at(conn, last)
        form = self.leaf_form()
        log_rows = [
            node
            for event in plan.fresh
            for node in frontier.append(event_leaf(form, event.digest, event.body, event.canonical))
        ]
        with conn.pipeline():  # no statement below answers anything: send them all, then wait once
            _insert_rows(conn, "ids", ("bigint", "text"), [(i, n) for n, i in new_ids.items()])
            _insert_rows(
                conn,
                "events",
                ("bigint", "bytea", "bigint", "text", "text", "text", "bytea"),
                [
                    (
                        s,
                        e.digest,
                        nid["run:" + e.run_id] if e.run_id else None,
                        e.run_id,
                        e.event_type,
                        e.event_time,
                        body,
                    )
                    for s, e, body in zip(plan.seqs, plan.fresh, bodies, strict=True)
                ],
            )
            _insert_rows(
                conn,
                "nodes",
                ("bigint", "text", "text", "text", "text", "text", "text", "bigint"),
                [(nid[node_id], *row) for node_id, row in plan.nodes.items()],
                ignore_existing=True,
            )
            _insert_rows(
                conn,
                "edges",
                ("bigint", "bigint", "text", "text", "bigint"),
                plan.sorted_edges(nid),
                ignore_existing=True,
            )
            _insert_rows(
                conn,
                "artifacts",
                ("text", "text", "bytea", "bigint"),
                list(artifacts),
                ignore_existing=True,
            )
            _insert_rows(conn, "log_nodes", ("smallint", "bigint", "bytea"), log_rows)
        return plan

    def _frontier_at(self, conn: _Conn, size: int) -> CompactRange:
        if self._frontier is None or self._frontier.size != size:  # first use, or another writer appended
            self._frontier = CompactRange.from_reader(
                size, lambda level, index: _log_node(conn, level, index)
            )
        return self._frontier

    def _intern(
        self, conn: _Conn, ids: set[str], interned: dict[str, int]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Integers for ``ids``, and those of them assigned now (inside the write transaction)."""
        found = {node_id: self._nids.get(node_id) or interned.get(node_id) for node_id in ids}
        missing = [node_id for node_id, nid in found.items() if nid is None]
        assigned: dict[str, int] = {}
        if missing:
            row = conn.execute(
                "SELECT (SELECT coalesce(max(nid), 0) FROM ids), coalesce(array_agg(id), '{}'),"
                " coalesce(array_agg(nid), '{}') FROM ids WHERE id = ANY(%s::text[])",
                (missing,),
                binary=True,
            ).fetchone()
            assert row is not None
            top, stored_ids, stored_nids = row
            found.update(zip(stored_ids, stored_nids, strict=True))
            new = [node_id for node_id in missing if found[node_id] is None]
            assigned = {node_id: top + offset for offset, node_id in enumerate(new, start=1)}
            found.update(assigned)
        resolved: dict[str, int] = found  # type: ignore[assignment]
        interned.update(resolved)
        return resolved, assigned

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        self._add_signed("", size, root, note)

    def set_meta(self, key: str, value: str) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )

    # The transparency log.

    def log_size(self) -> int:
        return int(self._rows("SELECT coalesce(max(seq), 0) FROM events")[0][0])

    def log_node(self, level: int, index: int) -> bytes:
        return self._read(lambda conn: _log_node(conn, level, index))

    def log_range(self, level: int, start: int, end: int) -> dict[int, bytes]:
        return self._tree_range("", level, start, end)

    def checkpoints(self) -> list[CheckpointRow]:
        return self._signed("")

    def latest_checkpoint(self) -> CheckpointRow | None:
        return self._latest_signed("")

    # Either Merkle log's nodes and checkpoints, by its tables' prefix: "" (log_nodes,
    # checkpoints) for the lineage log, "access_" for the access log.

    def _tree_range(self, prefix: str, level: int, start: int, end: int) -> dict[int, bytes]:
        rows = self._rows(
            f"SELECT idx, hash FROM {prefix}log_nodes WHERE level = %s AND idx >= %s AND idx < %s",
            (level, start, end),
        )
        return dict(rows)

    def _add_signed(self, prefix: str, size: int, root: bytes, note: str) -> None:
        self._write(
            lambda conn: conn.execute(
                f"INSERT INTO {prefix}checkpoints VALUES (%s, %s, %s) ON CONFLICT (size) DO NOTHING",
                (size, root, note),
            )
        )

    def _signed(self, prefix: str) -> list[CheckpointRow]:
        rows = self._rows(f"SELECT size, root, note FROM {prefix}checkpoints ORDER BY size")
        return list(map(CheckpointRow._make, rows))

    def _latest_signed(self, prefix: str) -> CheckpointRow | None:
        rows = self._rows(f"SELECT size, root, note FROM {prefix}checkpoints ORDER BY size DESC LIMIT 1")
        return CheckpointRow._make(rows[0]) if rows else None

    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    # Reading the graph.

    def nodes(self, ids: Iterable[str], as_of: Horizon = None) -> dict[str, NodeRecord]:
        wanted = list(ids)
        return self._read(lambda conn: _nodes(conn, wanted, as_of))

    def nodes_with_content(self, ids: Iterable[str], as_of: Horizon = None) -> dict[str, NodeContent]:
        bound, params = _seen("n", as_of, of_nodes=True)
        rows = self._rows(
            f"SELECT {NODE_COLUMNS}, a.content, s.digest FROM nodes n JOIN ids i USING (nid)"
            f" LEFT JOIN artifacts a ON a.digest = n.digest {SEGMENT_OF_ARTIFACT}"
            f" WHERE i.id = ANY(%s::text[]) AND {bound} ORDER BY i.id",
            (list(ids), *params),
        )
        return self._with_content(rows)

    def find_nodes(
        self,
        *,
        kind: str | None = None,
        type: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
        as_of: Horizon = None,
    ) -> list[NodeRecord]:
        where, params = node_filters(
            {"kind": kind, "type": type, "namespace": namespace, "name": name},
            text,
            as_of,
            mark="%s",
            contains="strpos",
            instant=_INSTANT,
        )
        rows = self._rows(
            f"SELECT {NODE_COLUMNS} FROM nodes n JOIN ids i USING (nid) WHERE {where}"
            " ORDER BY n.seq DESC, n.nid DESC LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [NodeRecord(*row) for row in rows]

    def search_nodes(
        self, query: NodeQuery, *, limit: int = 50, offset: int = 0, as_of: Horizon = None
    ) -> list[NodeRecord]:
        where, params = self._search(query, as_of)
        rows = self._rows(
            f"SELECT {NODE_COLUMNS} FROM nodes n JOIN ids i USING (nid) WHERE {where}"
            " ORDER BY n.seq DESC, n.nid DESC LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [NodeRecord(*row) for row in rows]

    def count_nodes(self, query: NodeQuery, *, limit: int, as_of: Horizon = None) -> int:
        where, params = self._search(query, as_of)
        rows = self._rows(
            f"SELECT count(*) FROM (SELECT 1 FROM nodes n JOIN ids i USING (nid) WHERE {where} LIMIT %s) m",
            (*params, limit),
        )
        return int(rows[0][0])

    @staticmethod
    def _search(query: NodeQuery, as_of: Horizon) -> tuple[str, list[object]]:
        return search_filters(
            query,
            as_of,
            mark="%s",
            contains="strpos",
            holds="position({needle} IN {payload}) > 0",
            instant=_INSTANT,
        )

    def walk(
        self,
        start: str,
        *,
        direction: str,
        depth: int,
        as_of: Horizon = None,
        stop_kinds: Sequence[str] = (),
    ) -> Walk:
        near, far = edge_ends(direction)
        stop = "false"
        if stop_kinds:
            stop = f"coalesce((SELECT kind FROM nodes WHERE nid = e.{far}) = ANY(%(stop)s::text[]), false)"
        # One statement: the reached nodes (seq NULL), then the edges leaving the expanded ones
        # towards reached nodes, in the order edges() gives.
        bound, params = _seen_named("e", as_of)
        rows = self._rows(
            f"""WITH RECURSIVE w(nid, depth, stop) AS (
                    SELECT nid, 0, false FROM ids WHERE id = %(start)s
                    UNION
                    SELECT e.{far}, w.depth + 1, {stop} FROM w JOIN edges e ON e.{near} = w.nid
                    WHERE w.depth < %(depth)s AND {bound} AND NOT w.stop
                ), reached AS (
                    SELECT nid, min(depth) AS depth, bool_or(NOT stop AND depth < %(depth)s) AS expands
                    FROM w GROUP BY nid
                )
                SELECT i.id AS id, r.depth, NULL AS dst_id, NULL AS kind, NULL AS role, NULL::bigint AS seq,
                    NULL::bigint AS src, NULL::bigint AS dst
                FROM reached r JOIN ids i USING (nid)
                UNION ALL
                SELECT s.id, NULL, d.id, e.kind, e.role, e.seq, e.src, e.dst
                FROM reached r JOIN edges e ON e.{near} = r.nid AND r.expands
                JOIN reached f ON f.nid = e.{far} JOIN ids s ON s.nid = e.src JOIN ids d ON d.nid = e.dst
                WHERE {bound}
                ORDER BY seq NULLS FIRST, {", ".join(_TIES[direction])}""",
            {"start": start, "depth": depth, "stop": list(stop_kinds), **params},
        )
        result = Walk()
        for node_id, distance, dst, kind, role, seq, _, _ in rows:
            if seq is None:
                result.depths[node_id] = distance
            else:
                result.edges.append(EdgeRow(node_id, dst, kind, role))
        return result

    def edges(
        self, ids: Iterable[str], *, direction: str, kinds: Sequence[str] = (), as_of: Horizon = None
    ) -> list[EdgeRow]:
        near, _ = edge_ends(direction)
        kind_clause = "AND e.kind = ANY(%s::text[])" if kinds else ""
        ties = ", ".join(f"e.{column}" for column in _TIES[direction])
        bound, where = _seen("e", as_of)
        rows = self._rows(
            f"""SELECT s.id, d.id, e.kind, e.role FROM edges e
                JOIN ids s ON s.nid = e.src JOIN ids d ON d.nid = e.dst
                WHERE e.{near} IN (SELECT nid FROM ids WHERE id = ANY(%s::text[]))
                AND {bound} {kind_clause} ORDER BY e.seq, {ties}""",
            (list(ids), *where, *([list(kinds)] if kinds else [])),
        )
        return list(map(EdgeRow._make, rows))

    def touching_seqs(self, node_id: str, limit: int, as_of: Horizon = None) -> list[int]:
        bound, params = _seen_named("edges", as_of)
        rows = self._rows(
            f"""WITH n(nid) AS (SELECT nid FROM ids WHERE id = %(id)s)
               SELECT seq FROM edges WHERE src = (SELECT nid FROM n) AND {bound}
               UNION SELECT seq FROM edges WHERE dst = (SELECT nid FROM n) AND {bound}
               ORDER BY seq DESC LIMIT %(limit)s""",
            {"id": node_id, "limit": limit, **params},
        )
        return [row[0] for row in rows]

    def index_rows(self, first_seq: int, last_seq: int) -> IndexRows:
        def work(conn: _Conn) -> IndexRows:
            bounds = (first_seq, last_seq)
            nodes = conn.execute(
                f"{INDEX_NODES} WHERE n.seq BETWEEN %s AND %s ORDER BY n.seq, n.nid", bounds, binary=True
            )
            edges = conn.execute(
                f"{INDEX_EDGES} WHERE e.seq BETWEEN %s AND %s ORDER BY e.seq, e.src, e.dst, e.kind",
                bounds,
                binary=True,
            )
            return IndexRows({}, list(map(IndexNode._make, nodes)), list(map(IndexEdge._make, edges)))

        return self._read(work)

    def index_lookup(self, ids: Iterable[str], edges: Iterable[tuple[str, str, str]]) -> IndexRows:
        wanted, wanted_edges = list(ids), list(edges)

        def work(conn: _Conn) -> IndexRows:
            found: dict[str, int] = dict(
                conn.execute(
                    "SELECT id, nid FROM ids WHERE id = ANY(%s::text[])", (wanted,), binary=True
                ).fetchall()
            )
            nodes = conn.execute(
                f"{INDEX_NODES} WHERE n.nid = ANY(%s::bigint[]) ORDER BY n.nid",
                (list(found.values()),),
                binary=True,
            )
            keys = [
                (found[src], found[dst], kind)
                for src, dst, kind in wanted_edges
                if src in found and dst in found
            ]
            # LIMIT 1 (the key is unique) keeps each lookup one probe of the primary key, whatever
            # the planner estimates.
            stored = conn.execute(
                "SELECT e.src, e.dst, e.kind, e.role, e.seq FROM unnest(%s::bigint[], %s::bigint[], %s::text[])"
                " AS k (src, dst, kind) CROSS JOIN LATERAL (SELECT * FROM edges"
                " WHERE src = k.src AND dst = k.dst AND kind = k.kind LIMIT 1) e",
                [list(column) for column in zip(*keys, strict=True)] or [[], [], []],
                binary=True,
            )
            named = {nid: node_id for node_id, nid in found.items()}
            return IndexRows(
                found,
                list(map(IndexNode._make, nodes)),
                [IndexEdge(src, named[src], dst, named[dst], *rest) for src, dst, *rest in stored],
            )

        return self._read(work)

    def batch_ranges(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, int, int]]:
        return self._rows(
            "SELECT id, first_seq, last_seq FROM batches WHERE id > %s ORDER BY id LIMIT %s", (after, limit)
        )

    def stray_ids(self, limit: int) -> tuple[int, list[tuple[int, str]]]:
        def work(conn: _Conn) -> tuple[int, list[tuple[int, str]]]:
            with conn.transaction(), conn.cursor(name="stray_ids", binary=True) as cursor:
                cursor.itersize = 10_000
                cursor.execute(STRAY_IDS)
                return stray_ids(cursor, limit)

        return self._read(work)

    # Encryption at rest.

    def data_key_rows(self) -> list[DataKeyRow]:
        rows = self._rows(
            "SELECT key_id, namespace, period, wrapped, kek_id, created_at, shredded_at"
            " FROM data_keys ORDER BY created_at, key_id"
        )
        return [
            DataKeyRow(
                key_id,
                namespace,
                period,
                wrapped,
                kek,
                created.isoformat(),
                shredded and shredded.isoformat(),
            )
            for key_id, namespace, period, wrapped, kek, created, shredded in rows
        ]

    def rewrap_data_keys(self, wrapped: list[tuple[str, bytes]], kek: Kek) -> None:
        def work(conn: _Conn) -> None:
            row = conn.execute("SELECT count(*) FROM data_keys WHERE shredded_at IS NULL").fetchone()
            changed = 0
            for key_id, blob in wrapped:
                changed += conn.execute(
                    "UPDATE data_keys SET wrapped = %s, kek_id = %s WHERE key_id = %s AND shredded_at IS NULL",
                    (blob, kek.id, key_id),
                ).rowcount
            check_rewrapped(changed, row[0] if row else 0)
            conn.execute(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (KEK_ID_META, kek.id),
            )

        self._write(work)
        self.use_kek(kek)

    def sealed_payloads(self, key_ids: Sequence[str]) -> SealedRows:
        prefixes = [sealed_prefix(key).encode() for key in key_ids]

        def work(conn: _Conn) -> SealedRows:
            events = conn.execute(
                "SELECT seq, digest, body FROM events WHERE segment IS NULL"
                f" AND substring(body FROM 1 FOR {SEALED_HEAD}) = ANY(%s::bytea[]) ORDER BY seq",
                (prefixes,),
                binary=True,
            ).fetchall()
            artifacts = conn.execute(
                "SELECT digest, type, content FROM artifacts WHERE segment IS NULL"
                f" AND substring(content FROM 1 FOR {SEALED_HEAD}) = ANY(%s::bytea[]) ORDER BY seq, digest",
                (prefixes,),
                binary=True,
            ).fetchall()
            return SealedRows(events, artifacts)

        return self._read(work)

    def artifact_rows(self, digests: Iterable[str]) -> dict[str, tuple[str, int]]:
        rows = self._rows(
            "SELECT digest, type, seq FROM artifacts WHERE digest = ANY(%s::text[])", (list(digests),)
        )
        return {digest: (kind, seq) for digest, kind, seq in rows}

    def shred_scope(
        self,
        fresh: DataKeyRow | None,
        events: Sequence[tuple[int, bytes]],
        artifacts: Sequence[tuple[str, bytes]],
        keys: Sequence[str],
        blanks: Sequence[tuple[str, bytes]],
    ) -> None:
        def work(conn: _Conn) -> None:
            if fresh is not None:
                conn.execute("INSERT INTO data_keys VALUES (%s, %s, %s, %s, %s, %s, %s)", fresh)
            statements = shred_statements(events, artifacts, keys, blanks, mark="%s", now=datetime.now(UTC))
            changed = [conn.execute(statement, params).rowcount for statement, params in statements]
            check_shredded(changed)

        try:
            self._write(work)
        except psycopg.errors.RestrictViolation as error:
            raise StoreError(f"cannot shred: {_reason(error)}") from None
        self.data_keys().forget()

    # Reading events and artifacts.

    def artifacts(self, digests: Iterable[str]) -> dict[str, bytes]:
        rows = self._rows(
            f"SELECT a.digest, a.content, s.digest FROM artifacts a {SEGMENT_OF_ARTIFACT}"
            " WHERE a.digest = ANY(%s::text[]) ORDER BY a.digest",
            (list(digests),),
        )
        return self._contents(rows)

    def events(
        self, *, run_id: str | None = None, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        query = (
            "SELECT e.seq, e.digest, e.run_id, e.event_type, e.event_time, e.body, s.digest"
            f" FROM events e {SEGMENT_OF_EVENT} WHERE e.seq > %s"
        )
        params: list[object] = [after]
        if run_id is not None:
            query += " AND e.run = (SELECT nid FROM ids WHERE id = %s)"
            params.append(run_node_id(run_id))
        return self._stored(self._rows(query + " ORDER BY e.seq LIMIT %s", (*params, limit)))

    def stored_events(self, *, after: int = 0, limit: int = 1000) -> list[EventRow]:
        rows = self._rows(
            f"SELECT e.seq, e.digest, e.body, s.digest FROM events e {SEGMENT_OF_EVENT}"
            " WHERE e.seq > %s ORDER BY e.seq LIMIT %s",
            (after, limit),
        )
        return list(map(EventRow._make, rows))

    def artifact(self, digest: str) -> bytes:
        rows = self._rows(
            f"SELECT a.content, s.digest FROM artifacts a {SEGMENT_OF_ARTIFACT} WHERE a.digest = %s",
            (digest,),
        )
        if not rows:
            raise StoreError(f"artifact {digest} is referenced by an event but missing from the store")
        return self._thaw_content(digest, *rows[0])

    # The archive tier.

    def hot_rows(self, *, after: int, through_seq: int, limit: int) -> HotRows:
        def work(conn: _Conn) -> HotRows:
            events = conn.execute(
                "SELECT seq, digest, body FROM events WHERE seq > %s AND seq <= %s AND segment IS NULL"
                " ORDER BY seq LIMIT %s",
                (after, through_seq, limit),
                binary=True,
            ).fetchall()
            if not events:
                return HotRows([], [])
            artifacts = conn.execute(
                "SELECT digest, content FROM artifacts WHERE seq BETWEEN %s AND %s AND segment IS NULL"
                " ORDER BY seq, digest",
                (events[0][0], events[-1][0]),
                binary=True,
            )
            return HotRows(list(map(RawEvent._make, events)), list(map(ArtifactRow._make, artifacts)))

        return self._read(work)

    def add_segment(self, segment: SegmentInfo, seqs: Sequence[int], artifacts: Sequence[str]) -> None:
        def work(conn: _Conn) -> None:
            row = conn.execute(
                "INSERT INTO segments (digest, first_seq, last_seq, events, artifacts, raw_bytes, stored_bytes)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING sid",
                astuple(segment),
            ).fetchone()
            if row is None:
                raise StoreError(
                    f"segment {segment.digest} is already recorded (is another archive running?)"
                )
            for table, payload, key, keys, sql_type in (
                ("events", "body", "seq", list(seqs), "bigint"),
                ("artifacts", "content", "digest", list(artifacts), "text"),
            ):
                changed = conn.execute(
                    f"UPDATE {table} SET {payload} = ''::bytea, segment = %s"
                    f" WHERE {key} = ANY(%s::{sql_type}[]) AND segment IS NULL",
                    (row[0], keys),
                ).rowcount
                check_archived(table, changed, len(keys), segment.digest)

        self._write(work)

    def segments(self) -> list[SegmentInfo]:
        rows = self._rows(
            "SELECT digest, first_seq, last_seq, events, artifacts, raw_bytes, stored_bytes FROM segments ORDER BY sid"
        )
        return [SegmentInfo(*row) for row in rows]

    def _last_seq_at(self, when: datetime) -> int:
        rows = self._rows("SELECT coalesce(max(last_seq), 0) FROM batches WHERE recorded_at <= %s", (when,))
        return int(rows[0][0])

    def counts(self) -> dict[str, int]:
        rows = self._rows(
            """SELECT 'events', NULL, count(*), 0 FROM events
               UNION ALL SELECT 'artifacts', NULL, count(*), 1 FROM artifacts
               UNION ALL SELECT 'nodes', NULL, count(*), 2 FROM nodes
               UNION ALL SELECT 'edges', NULL, count(*), 3 FROM edges
               UNION ALL SELECT kind, type, count(*), 4 FROM nodes GROUP BY kind, type
               ORDER BY 4, 1, 2"""
        )
        return {
            (name if node_type is None else f"{name}:{node_type}"): count
            for name, node_type, count, _ in rows
        }

    def state_digest(self) -> str:
        """The SQLite backend's digest: the same rows, encoded the same way, in the same order."""

        def tables(conn: _Conn) -> Generator[tuple[str, Iterable[tuple[Any, ...]]], None, None]:
            for table, query in STATE_QUERIES:
                with conn.cursor(name="state_digest", binary=True) as cursor:
                    cursor.itersize = 10_000
                    cursor.execute(query)
                    yield table, cursor

        def work(conn: _Conn) -> str:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                with closing(tables(conn)) as rows:  # its cursor closes in this transaction, even on error
                    return self._state_digest(rows)

        return self._read(work)

    def close(self) -> None:
        self._pool.close()

    # The access log.

    _access_frontier: CompactRange | None = None  # its right edge, as last committed here

    def append_access(self, rows: Sequence[AccessRow], *, durable: bool = True) -> list[int]:
        def work(conn: _Conn) -> tuple[list[int], CompactRange]:
            # One round trip: a read waits for its event, but not for ever; not durable, the commit
            # is not flushed (else as the database says); and the log's size.
            row = conn.execute(
                "SELECT set_config('lock_timeout', '10s', true), set_config('synchronous_commit',"
                " coalesce(%s::text, current_setting('synchronous_commit')), true),"
                " (SELECT coalesce(max(seq), 0) FROM access_events)",
                (None if durable else "off",),
            ).fetchone()
            assert row is not None
            size = int(row[2])
            frontier = self._access_frontier
            if frontier is None or frontier.size != size:  # first use, or another writer appended
                frontier = CompactRange.from_reader(
                    size, lambda level, index: _log_node(conn, level, index, "access_log_nodes")
                )
            self._access_frontier = None  # until the commit, it may hold leaves rolled back
            seqs = list(range(size + 1, size + 1 + len(rows)))
            nodes = [node for row in rows for node in frontier.append(leaf_hash(row.body))]
            with conn.pipeline():
                _insert_rows(
                    conn,
                    "access_events",
                    ("bigint", "timestamptz", "text", "text", "text", "bytea"),
                    [(s, r.at, r.actor, r.outcome, r.name, r.body) for s, r in zip(seqs, rows, strict=True)],
                )
                _insert_rows(
                    conn,
                    "access_event_nodes",
                    ("text", "bigint"),
                    list({(node, s): None for s, r in zip(seqs, rows, strict=True) for node in r.nodes}),
                    ignore_existing=True,
                )
                _insert_rows(conn, "access_log_nodes", ("smallint", "bigint", "bytea"), nodes)
            return seqs, frontier

        with self._writing:
            seqs, self._access_frontier = self._write(work)
        return seqs

    def access_size(self) -> int:
        return self._read(_access_size)

    def access_log_node(self, level: int, index: int) -> bytes:
        return self._read(lambda conn: _log_node(conn, level, index, "access_log_nodes"))

    def access_log_range(self, level: int, start: int, end: int) -> dict[int, bytes]:
        return self._tree_range("access_", level, start, end)

    def add_access_checkpoint(self, size: int, root: bytes, note: str) -> None:
        self._add_signed("access_", size, root, note)

    def access_checkpoints(self) -> list[CheckpointRow]:
        return self._signed("access_")

    def latest_access_checkpoint(self) -> CheckpointRow | None:
        return self._latest_signed("access_")

    def search_access(
        self,
        *,
        actor: str | None = None,
        node: str | None = None,
        since: datetime | None = None,
        outcome: str | None = None,
        limit: int = 100,
        after: int = 0,
    ) -> list[AccessEventRow]:
        where, params = access_filters(actor, node, since, outcome, mark="%s")
        rows = self._rows(
            f"{ACCESS_SELECT} WHERE e.seq > %s {where} ORDER BY e.seq LIMIT %s", (after, *params, limit)
        )
        return list(map(AccessEventRow._make, rows))

    def access_rows(self, *, after: int = 0, limit: int = 1000) -> list[AccessEventRow]:
        rows = self._rows(f"{ACCESS_SELECT} WHERE e.seq > %s ORDER BY e.seq LIMIT %s", (after, limit))
        return list(map(AccessEventRow._make, rows))

    # API tokens.

    def add_token(
        self,
        *,
        name: str,
        digest: bytes,
        role: str,
        namespaces: Sequence[str],
        created_at: datetime,
        expires_at: datetime | None,
        created_by: str | None,
    ) -> bool:
        row = (name, digest, role, msgspec.json.encode(list(namespaces)).decode(), created_at, expires_at)
        return self._write(
            lambda conn: (
                conn.execute(
                    "INSERT INTO tokens VALUES (%s, %s, %s, %s, %s, %s, NULL, %s) ON CONFLICT DO NOTHING",
                    (*row, created_by),
                ).rowcount
                == 1
            )
        )

    def token_by_hash(self, digest: bytes) -> TokenRow | None:
        rows = self._rows(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = %s", (digest,))
        return _token(rows[0]) if rows else None

    def tokens(self) -> list[TokenRow]:
        return [
            _token(row)
            for row in self._rows(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created_at, name")
        ]

    def revoke_token(self, name: str, at: datetime) -> bool:
        return self._write(
            lambda conn: (
                conn.execute(
                    "UPDATE tokens SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL", (at, name)
                ).rowcount
                == 1
            )
        )

    def has_tokens(self) -> bool:
        return bool(self._rows("SELECT EXISTS (SELECT 1 FROM tokens)")[0][0])


def _insert_rows(
    conn: _Conn,
    table: str,
    types: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_existing: bool = False,
) -> None:
    """Insert ``rows`` into ``table`` as one statement over column arrays."""
    if not rows:
        return
    arrays = ", ".join(f"%s::{sql_type}[]" for sql_type in types)
    conflict = " ON CONFLICT DO NOTHING" if ignore_existing else ""
    conn.execute(
        f"INSERT INTO {table} SELECT * FROM unnest({arrays}){conflict}",
        [list(column) for column in zip(*rows, strict=True)],
    )


def _log_node(conn: _Conn, level: int, index: int, table: str = "log_nodes") -> bytes:
    row = conn.execute(
        f"SELECT hash FROM {table} WHERE level = %s AND idx = %s", (level, index), binary=True
    ).fetchone()
    if row is None:
        log = "the access log" if table == "access_log_nodes" else "the log"
        raise StoreError(f"{log} has no node at level {level}, index {index}")
    return bytes(row[0])


def _access_size(conn: _Conn) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM access_events").fetchone()
    return int(row[0]) if row else 0


def _nodes(conn: _Conn, ids: list[str], as_of: Horizon) -> dict[str, NodeRecord]:
    bound, params = _seen("n", as_of, of_nodes=True)
    rows = conn.execute(
        f"SELECT {NODE_COLUMNS} FROM nodes n JOIN ids i USING (nid)"
        f" WHERE i.id = ANY(%s::text[]) AND {bound} ORDER BY i.id",
        (ids, *params),
        binary=True,
    )
    return {row[0]: NodeRecord(*row) for row in rows}


def _seen(alias: str, as_of: Horizon, *, of_nodes: bool = False) -> tuple[str, list[object]]:
    return seen(alias, as_of, marks=("%s", "%s"), instant=_INSTANT, of_nodes=of_nodes)


def _seen_named(alias: str, as_of: Horizon) -> tuple[str, dict[str, object]]:
    """As :func:`_seen`, with the parameters named ``bound`` and ``before``."""
    clause, params = seen(alias, as_of, marks=("%(bound)s", "%(before)s"), instant=_INSTANT)
    return clause, dict(zip(("bound", "before"), params, strict=False))


def _masked(url: str) -> str:
    """``url`` with its password, in the user part or as a ``password=`` parameter, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    query = [
        (key, "***" if key == "password" else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    if any(key == "password" for key, _ in query):
        parts = parts._replace(query=urlencode(query, safe="*"))
    return urlunsplit(parts)


def _reason(error: psycopg.Error) -> str:
    """The server's or libpq's message, on one line."""
    return " ".join(str(error).split()) or type(error).__name__


_TOKEN_COLUMNS = "name, hash, role, namespaces, created_at, expires_at, revoked_at, created_by"


def _token(row: Sequence[Any]) -> TokenRow:
    name, digest, role, namespaces, created_at, expires_at, revoked_at, created_by = row
    return TokenRow(
        name,
        bytes(digest),
        role,
        tuple(msgspec.json.decode(namespaces)),
        created_at.astimezone(UTC),
        expires_at.astimezone(UTC) if expires_at is not None else None,
        revoked_at.astimezone(UTC) if revoked_at is not None else None,
        created_by,
    )
