"""The embedded backend: one SQLite file in WAL mode, every commit synced to disk before it returns.

Tables: ``events`` (the append-only log of accepted events; bodies with artifact contents split
out), ``artifacts`` (content-addressed, stored once), ``ids`` (every node id interned as an
integer), ``nodes`` and ``edges`` (the graph index on those integers, first-seen rows only, each
stamped with the sequence number of the event that added it, which makes ``as_of`` exact) and
``batches`` (when each ingest committed, and the actor that wrote it), and the transparency log: ``log_nodes`` (the hash of
every perfect subtree of RFC 9162's tree, leaf i being the event of sequence i + 1, appended in
the same transaction as the event) and ``checkpoints`` (signed notes), and ``segments`` (the
archive tier's files, see :mod:`opslineage.store.archive`). Triggers refuse any UPDATE or DELETE
of events, artifacts, log nodes, checkpoints and segments, except archiving's one change: an
event's body or an artifact's content blanked into a recorded segment. The statements that make
all this, version by version, are in :mod:`opslineage.store.sqlite_schema`.

Why integers: node ids are long and random (UUIDs, SHA-256 digests), and B-tree inserts of random
keys dirty a page each. New nodes get increasing integers, so most graph-index inserts land on
the last pages of their B-trees; for the same reason artifact contents are stored in arrival
order, with only their digests in a random-keyed index.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import msgspec

from opslineage.merkle import CompactRange, leaf_hash
from opslineage.model import ParsedEvent
from opslineage.model.ids import run_node_id
from opslineage.store._plan import BatchPlan, Tally, check_actor, joined, plan_batch
from opslineage.store._rules import (
    ACCESS_SELECT,
    INDEX_EDGES,
    INDEX_NODE_COLUMNS,
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
from opslineage.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["SQLiteStore"]

_NODE_SELECT = f"SELECT {NODE_COLUMNS} FROM nodes n JOIN ids i USING (nid)"
_INSTANT = "julianday(upper({}))"  # RFC 3339 text as a day number; upper() for a lower-case t or z
_CHUNK = 900
_CACHE_LIMIT = 500_000
_BUSY_WAIT = 10.0  # seconds an opener waits for another process creating or migrating the store
_OUTAGES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL)  # worth trying again later
_encode = msgspec.json.encode


def _json_list(values: Iterable[object]) -> str:
    return _encode(list(values)).decode()


class _Closed:
    """Stands in for the connection of a closed store: any use is a StoreError naming it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __getattr__(self, name: str) -> object:
        raise StoreError(f"store {self.path} is closed")


class SQLiteStore(Store):
    """A store in one SQLite file. Safe for one writer and many readers across processes."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{path}"
        if not create and not self.path.exists():
            raise StoreError(f"no store at {self.path} (run `opslineage demo` or `opslineage ingest` first)")
        if create:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():  # owner-only; SQLite gives its -wal and -shm the file's mode
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._nids: dict[str, int] = {}  # committed ids only; ids are never renumbered
        self._frontier: CompactRange | None = None  # the log's right edge, as last committed
        try:
            # timeout: the busy handler, from the first statement on, so a store another process
            # is creating or migrating is waited for (up to 10 s) rather than "database is locked".
            self.db = sqlite3.connect(
                self.path, timeout=_BUSY_WAIT, isolation_level=None, check_same_thread=False
            )
            self._enter_wal()
            # Per connection, not per file. FULL syncs the WAL at every commit, so a commit that
            # returned survives an OS crash or power loss; NORMAL would sync only at checkpoints.
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA cache_size=-262144")  # up to 256 MiB of pages, used only as needed
            self.db.execute("PRAGMA mmap_size=2147418112")  # the most this SQLite build maps
            self._migrate()
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorcode", None) in _OUTAGES:
                raise StoreUnavailable(f"cannot open store {self.path}: {error}") from None
            raise StoreError(f"cannot open store {self.path}: {error}") from None

    def _enter_wal(self) -> None:
        """Switches the file to WAL, trying again while another opener holds it.

        Two connections switching a new file at once both hold a shared lock and want an exclusive
        one; SQLite answers one of them "database is locked" at once, without its busy handler (it
        would be a deadlock), so the wait is ours.
        """
        deadline = time.monotonic() + _BUSY_WAIT
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _migrate(self) -> None:
        if self._schema_version() == SCHEMA_VERSION:
            return
        with self._transaction():
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            version = self._schema_version()
            if version > SCHEMA_VERSION:
                raise StoreError(f"store {self.path} has schema {version}, newer than this opslineage")
            if 0 < version < min(MIGRATIONS):
                raise StoreError(
                    f"store {self.path} has schema {version} from a pre-release opslineage, which is not "
                    "migrated; re-create it (run the demo again, or ingest your events again)"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS.get(step, ()):
                    self.db.execute(statement)
            if version == 0:  # a new store: its leaves commit to artifacts by digest
                self.db.execute("INSERT INTO meta VALUES (?, '2')", (LEAF_FORM_META,))
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def _schema_version(self) -> int:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0]) if row else 0

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def ingest_many(
        self,
        chunks: Iterable[Sequence[ParsedEvent]],
        *,
        actor: str | None = None,
        each: Callable[[IngestResult], object] | None = None,
    ) -> IngestResult:
        actor = check_actor(actor)
        tally = Tally()
        interned: dict[str, int] = {}
        try:
            with self._transaction():
                for events, sizes in joined(chunks):
                    tally.add(sizes, self._insert(events, interned), each)
                if tally.first_seq is not None:
                    self.db.execute(
                        "INSERT INTO batches (first_seq, last_seq, recorded_at, actor) VALUES (?, ?, ?, ?)",
                        (
                            tally.first_seq,
                            tally.last_seq,
                            datetime.now(UTC).isoformat(timespec="microseconds"),
                            actor,
                        ),
                    )
        except BaseException:
            self._frontier = None  # it may hold leaves that were rolled back
            if self._keys is not None:
                self._keys.forget()  # and data keys that were
            raise
        if len(self._nids) + len(interned) > _CACHE_LIMIT:
            self._nids.clear()
        self._nids.update(interned)
        return tally.result()

    def _insert(self, events: Sequence[ParsedEvent], interned: dict[str, int]) -> BatchPlan | None:
        """Insert the events not stored yet; returns what was stored (None: nothing)."""
        if not events:
            return None
        known = self._known_digests([event.digest for event in events])
        (last,) = self.db.execute("SELECT max(seq) FROM events").fetchone()
        last = last or 0
        plan = plan_batch(events, known, last)
        if plan is None:
            return None
        check_versions(events, self.nodes)
        new_keys: list[DataKeyRow] = []
        bodies, artifacts = sealed_rows(self._sealer(), plan.fresh, plan.first_seq, plan.artifacts, new_keys)
        self.db.executemany("INSERT INTO data_keys VALUES (?, ?, ?, ?, ?, ?, ?)", new_keys)
        nid = self._intern(plan.node_ids(), interned)
        self.db.executemany(
            "INSERT INTO events (seq, digest, run, run_id, event_type, event_time, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
        self.db.executemany(
            "INSERT OR IGNORE INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(nid[node_id], *row) for node_id, row in plan.nodes.items()],
        )
        self.db.executemany("INSERT OR IGNORE INTO edges VALUES (?, ?, ?, ?, ?)", plan.sorted_edges(nid))
        self.db.executemany(
            "INSERT OR IGNORE INTO artifacts (digest, type, content, seq) VALUES (?, ?, ?, ?)", artifacts
        )
        self._append_log(last, plan.fresh)
        return plan

    def _append_log(self, size: int, events: list[ParsedEvent]) -> None:
        """Append the events as leaves after the first ``size`` ones, with the subtrees they complete."""
        frontier = self._frontier_at(size)
        form = self.leaf_form()
        rows = [
            node
            for event in events
            for node in frontier.append(event_leaf(form, event.digest, event.body, event.canonical))
        ]
        self.db.executemany("INSERT INTO log_nodes VALUES (?, ?, ?)", rows)

    def _frontier_at(self, size: int) -> CompactRange:
        if self._frontier is None or self._frontier.size != size:  # first use, or another writer appended
            self._frontier = CompactRange.from_reader(size, self.log_node)
        return self._frontier

    def log_size(self) -> int:
        (last,) = self.db.execute("SELECT max(seq) FROM events").fetchone()
        return int(last or 0)

    def log_node(self, level: int, index: int) -> bytes:
        return self._tree_node("", level, index)

    def log_range(self, level: int, start: int, end: int) -> dict[int, bytes]:
        return self._tree_range("", level, start, end)

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        self._add_signed("", size, root, note)

    def checkpoints(self) -> list[CheckpointRow]:
        return self._signed("")

    def latest_checkpoint(self) -> CheckpointRow | None:
        return self._latest_signed("")

    # Either Merkle log's nodes and checkpoints, by its tables' prefix: "" (log_nodes,
    # checkpoints) for the lineage log, "access_" for the access log.

    def _tree_node(self, prefix: str, level: int, index: int) -> bytes:
        row = self.db.execute(
            f"SELECT CAST(hash AS BLOB) FROM {prefix}log_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise StoreError(
                f"{'the access log' if prefix else 'the log'} has no node at level {level}, index {index}"
            )
        return bytes(row[0])

    def _tree_range(self, prefix: str, level: int, start: int, end: int) -> dict[int, bytes]:
        rows = self.db.execute(
            f"SELECT idx, CAST(hash AS BLOB) FROM {prefix}log_nodes WHERE level = ? AND idx >= ? AND idx < ?",
            (level, start, end),
        )
        return dict(rows.fetchall())

    def _add_signed(self, prefix: str, size: int, root: bytes, note: str) -> None:
        with self._transaction():
            self.db.execute(f"INSERT OR IGNORE INTO {prefix}checkpoints VALUES (?, ?, ?)", (size, root, note))

    def _signed(self, prefix: str) -> list[CheckpointRow]:
        rows = self.db.execute(
            f"SELECT size, CAST(root AS BLOB), note FROM {prefix}checkpoints ORDER BY size"
        )
        return list(map(CheckpointRow._make, rows))

    def _latest_signed(self, prefix: str) -> CheckpointRow | None:
        row = self.db.execute(
            f"SELECT size, CAST(root AS BLOB), note FROM {prefix}checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else CheckpointRow._make(row)

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _intern(self, ids: set[str], interned: dict[str, int]) -> dict[str, int]:
        """Integers for ``ids``, assigning new ones (inside the write transaction) where needed."""
        found = {node_id: self._nids.get(node_id) or interned.get(node_id) for node_id in ids}
        missing = [node_id for node_id, nid in found.items() if nid is None]
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            query = f"SELECT id, nid FROM ids WHERE id IN ({', '.join('?' * len(chunk))})"
            found.update(self.db.execute(query, chunk).fetchall())
        new = [node_id for node_id in missing if found[node_id] is None]
        if new:
            (top,) = self.db.execute("SELECT max(nid) FROM ids").fetchone()
            assigned = {node_id: (top or 0) + offset for offset, node_id in enumerate(new, start=1)}
            self.db.executemany("INSERT INTO ids VALUES (?, ?)", [(n, i) for i, n in assigned.items()])
            found.update(assigned)
        resolved: dict[str, int] = found  # type: ignore[assignment]
        interned.update(resolved)
        return resolved

    def _known_digests(self, digests: list[bytes]) -> set[bytes]:
        known: set[bytes] = set()
        for start in range(0, len(digests), _CHUNK):
            chunk = digests[start : start + _CHUNK]
            rows = self.db.execute(
                f"SELECT digest FROM events WHERE digest IN ({', '.join('?' * len(chunk))})", chunk
            )
            known.update(row[0] for row in rows)
        return known

    def nodes(self, ids: Iterable[str], as_of: Horizon = None) -> dict[str, NodeRecord]:
        bound, params = _seen("n", as_of, of_nodes=True)
        rows = self.db.execute(
            f"{_NODE_SELECT} WHERE i.id IN (SELECT value FROM json_each(?)) AND {bound}",
            (_json_list(ids), *params),
        )
        return {row[0]: NodeRecord(*row) for row in rows}

    def nodes_with_content(self, ids: Iterable[str], as_of: Horizon = None) -> dict[str, NodeContent]:
        bound, params = _seen("n", as_of, of_nodes=True)
        rows = self.db.execute(
            f"SELECT {NODE_COLUMNS}, CAST(a.content AS BLOB), s.digest FROM nodes n JOIN ids i USING (nid)"
            f" LEFT JOIN artifacts a ON a.digest = n.digest {SEGMENT_OF_ARTIFACT}"
            f" WHERE i.id IN (SELECT value FROM json_each(?)) AND {bound}",
            (_json_list(ids), *params),
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
            mark="?",
            contains="instr",
            instant=_INSTANT,
        )
        rows = self.db.execute(
            f"{_NODE_SELECT} WHERE {where} ORDER BY n.seq DESC, n.nid DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [NodeRecord(*row) for row in rows]

    def search_nodes(
        self, query: NodeQuery, *, limit: int = 50, offset: int = 0, as_of: Horizon = None
    ) -> list[NodeRecord]:
        where, params = self._search(query, as_of)
        rows = self.db.execute(
            f"SELECT {NODE_COLUMNS} FROM nodes n JOIN ids i USING (nid) WHERE {where}"
            " ORDER BY n.seq DESC, n.nid DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [NodeRecord(*row) for row in rows]

    def count_nodes(self, query: NodeQuery, *, limit: int, as_of: Horizon = None) -> int:
        where, params = self._search(query, as_of)
        rows = self.db.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM nodes n JOIN ids i USING (nid) WHERE {where} LIMIT ?) m",
            (*params, limit),
        )
        return int(rows.fetchone()[0])

    @staticmethod
    def _search(query: NodeQuery, as_of: Horizon) -> tuple[str, list[object]]:
        return search_filters(
            query, as_of, mark="?", contains="instr", holds="instr({payload}, {needle}) > 0", instant=_INSTANT
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
        stop = "0"
        if stop_kinds:
            stop = f"coalesce((SELECT kind FROM nodes WHERE nid = e.{far}) IN (SELECT value FROM json_each(?)), 0)"
        bound, params = _seen("e", as_of)
        rows = self.db.execute(
            f"""WITH RECURSIVE w(nid, depth, stop) AS (
                    SELECT nid, 0, 0 FROM ids WHERE id = ?
                    UNION
                    SELECT e.{far}, w.depth + 1, {stop} FROM w JOIN edges e ON e.{near} = w.nid
                    WHERE w.depth < ? AND {bound} AND w.stop = 0
                )
                SELECT i.id, min(w.depth), max(w.stop = 0 AND w.depth < ?)
                FROM w JOIN ids i USING (nid) GROUP BY w.nid""",
            (start, *([_json_list(stop_kinds)] if stop_kinds else []), depth, *params, depth),
        ).fetchall()
        result = Walk(depths={node_id: distance for node_id, distance, _ in rows})
        expanded = [node_id for node_id, _, expands in rows if expands]
        result.edges = [
            edge
            for edge in self.edges(expanded, direction=direction, as_of=as_of)
            if edge[0 if direction == "down" else 1] in result.depths
        ]
        return result

    def edges(
        self, ids: Iterable[str], *, direction: str, kinds: Sequence[str] = (), as_of: Horizon = None
    ) -> list[EdgeRow]:
        near, _ = edge_ends(direction)
        kind_clause = "AND e.kind IN (SELECT value FROM json_each(?))" if kinds else ""
        bound, params = _seen("e", as_of)
        rows = self.db.execute(
            f"""SELECT s.id, d.id, e.kind, e.role FROM edges e
                JOIN ids s ON s.nid = e.src JOIN ids d ON d.nid = e.dst
                WHERE e.{near} IN (SELECT nid FROM ids WHERE id IN (SELECT value FROM json_each(?)))
                AND {bound} {kind_clause} ORDER BY e.seq""",
            (_json_list(ids), *params, *([_json_list(kinds)] if kinds else [])),
        )
        return list(map(EdgeRow._make, rows))

    def touching_seqs(self, node_id: str, limit: int, as_of: Horizon = None) -> list[int]:
        bound, params = _seen("edges", as_of)
        rows = self.db.execute(
            f"""WITH n(nid) AS (SELECT nid FROM ids WHERE id = ?)
               SELECT seq FROM edges WHERE src = (SELECT nid FROM n) AND {bound}
               UNION SELECT seq FROM edges WHERE dst = (SELECT nid FROM n) AND {bound}
               ORDER BY seq DESC LIMIT ?""",
            (node_id, *params, *params, limit),
        )
        return [row[0] for row in rows]

    def index_rows(self, first_seq: int, last_seq: int) -> IndexRows:
        bounds = (first_seq, last_seq)
        nodes = self.db.execute(f"{INDEX_NODES} WHERE n.seq BETWEEN ? AND ? ORDER BY n.seq, n.nid", bounds)
        edges = self.db.execute(
            f"{INDEX_EDGES} WHERE e.seq BETWEEN ? AND ? ORDER BY e.seq, e.src, e.dst, e.kind", bounds
        )
        return IndexRows({}, list(map(IndexNode._make, nodes)), list(map(IndexEdge._make, edges)))

    def index_lookup(self, ids: Iterable[str], edges: Iterable[tuple[str, str, str]]) -> IndexRows:
        wanted = _json_list(ids)
        found = self.db.execute(
            "SELECT id, nid FROM ids WHERE id IN (SELECT value FROM json_each(?))", (wanted,)
        )
        nodes = self.db.execute(
            f"SELECT {INDEX_NODE_COLUMNS} FROM ids i JOIN nodes n USING (nid)"
            " WHERE i.id IN (SELECT value FROM json_each(?)) ORDER BY n.nid",
            (wanted,),
        )
        # CROSS JOIN keeps SQLite's join order: each wanted edge, then its ends, then the edge.
        stored = self.db.execute(
            "SELECT e.src, s.id, e.dst, d.id, e.kind, e.role, e.seq FROM json_each(?) k"
            " CROSS JOIN ids s CROSS JOIN ids d CROSS JOIN edges e"
            " WHERE s.id = k.value ->> 0 AND d.id = k.value ->> 1"
            " AND e.src = s.nid AND e.dst = d.nid AND e.kind = k.value ->> 2",
            (_json_list(map(list, edges)),),
        )
        return IndexRows(
            dict(found.fetchall()), list(map(IndexNode._make, nodes)), list(map(IndexEdge._make, stored))
        )

    def stray_ids(self, limit: int) -> tuple[int, list[tuple[int, str]]]:
        return stray_ids(self.db.execute(STRAY_IDS), limit)

    def batch_ranges(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, int, int]]:
        rows = self.db.execute(
            "SELECT id, first_seq, last_seq FROM batches WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        )
        return rows.fetchall()

    def artifacts(self, digests: Iterable[str]) -> dict[str, bytes]:
        rows = self.db.execute(
            f"SELECT a.digest, CAST(a.content AS BLOB), s.digest FROM artifacts a {SEGMENT_OF_ARTIFACT}"
            " WHERE a.digest IN (SELECT value FROM json_each(?))",
            (_json_list(digests),),
        )
        return self._contents(rows)

    def events(
        self, *, run_id: str | None = None, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        query = (
            "SELECT e.seq, e.digest, e.run_id, e.event_type, e.event_time, e.body, s.digest"
            f" FROM events e {SEGMENT_OF_EVENT} WHERE e.seq > ?"
        )
        params: list[object] = [after]
        if run_id is not None:
            query += " AND e.run = (SELECT nid FROM ids WHERE id = ?)"
            params.append(run_node_id(run_id))
        query += " ORDER BY e.seq LIMIT ?"
        params.append(-1 if limit is None else limit)
        return self._stored(self.db.execute(query, params).fetchall())

    def stored_events(self, *, after: int = 0, limit: int = 1000) -> list[EventRow]:
        rows = self.db.execute(
            f"SELECT e.seq, CAST(e.digest AS BLOB), CAST(e.body AS BLOB), s.digest FROM events e {SEGMENT_OF_EVENT}"
            " WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
            (after, limit),
        )
        return list(map(EventRow._make, rows))

    def artifact(self, digest: str) -> bytes:
        row = self.db.execute(
            f"SELECT CAST(a.content AS BLOB), s.digest FROM artifacts a {SEGMENT_OF_ARTIFACT} WHERE a.digest = ?",
            (digest,),
        ).fetchone()
        if row is None:
            raise StoreError(f"artifact {digest} is referenced by an event but missing from the store")
        return self._thaw_content(digest, row[0], row[1])

    # Encryption at rest.

    def default_kek_path(self) -> Path:
        """``<store file>.kek``, beside the store (``x.db`` → ``x.kek``)."""
        return self.path.resolve().with_suffix(".kek")

    def data_key_rows(self) -> list[DataKeyRow]:
        rows = self.db.execute(
            "SELECT key_id, namespace, period, CAST(wrapped AS BLOB), kek_id, created_at, shredded_at"
            " FROM data_keys ORDER BY created_at, key_id"
        )
        return list(map(DataKeyRow._make, rows))

    def rewrap_data_keys(self, wrapped: list[tuple[str, bytes]], kek: Kek) -> None:
        with self._transaction():
            (live,) = self.db.execute("SELECT count(*) FROM data_keys WHERE shredded_at IS NULL").fetchone()
            changed = sum(
                self.db.execute(
                    "UPDATE data_keys SET wrapped = ?, kek_id = ? WHERE key_id = ? AND shredded_at IS NULL",
                    (blob, kek.id, key_id),
                ).rowcount
                for key_id, blob in wrapped
            )
            check_rewrapped(changed, live)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (KEK_ID_META, kek.id))
        self.use_kek(kek)

    def sealed_payloads(self, key_ids: Sequence[str]) -> SealedRows:
        prefixes = _json_list(sealed_prefix(key) for key in key_ids)
        events = self.db.execute(
            "SELECT seq, CAST(digest AS BLOB), CAST(body AS BLOB) FROM events WHERE segment IS NULL"
            f" AND substr(CAST(body AS TEXT), 1, {SEALED_HEAD}) IN (SELECT value FROM json_each(?)) ORDER BY seq",
            (prefixes,),
        ).fetchall()
        artifacts = self.db.execute(
            "SELECT digest, type, CAST(content AS BLOB) FROM artifacts WHERE segment IS NULL"
            f" AND substr(CAST(content AS TEXT), 1, {SEALED_HEAD}) IN (SELECT value FROM json_each(?)) ORDER BY aid",
            (prefixes,),
        ).fetchall()
        return SealedRows(events, artifacts)

    def artifact_rows(self, digests: Iterable[str]) -> dict[str, tuple[str, int]]:
        rows = self.db.execute(
            "SELECT digest, type, seq FROM artifacts WHERE digest IN (SELECT value FROM json_each(?))",
            (_json_list(digests),),
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
        shredded_at = datetime.now(UTC).isoformat(timespec="microseconds")
        try:
            with self._transaction():
                if fresh is not None:
                    self.db.execute("INSERT INTO data_keys VALUES (?, ?, ?, ?, ?, ?, ?)", fresh)
                statements = shred_statements(events, artifacts, keys, blanks, mark="?", now=shredded_at)
                changed = [self.db.execute(statement, params).rowcount for statement, params in statements]
                check_shredded(changed)
        except sqlite3.IntegrityError as error:
            raise StoreError(f"cannot shred: {error}") from None
        self.data_keys().forget()

    # The archive tier.

    def default_archive_dir(self) -> Path:
        """``<store file>.archive``, beside the store."""
        return self.path.resolve().with_name(self.path.name + ".archive")

    def hot_rows(self, *, after: int, through_seq: int, limit: int) -> HotRows:
        events = self.db.execute(
            "SELECT seq, CAST(digest AS BLOB), CAST(body AS BLOB) FROM events"
            " WHERE seq > ? AND seq <= ? AND segment IS NULL ORDER BY seq LIMIT ?",
            (after, through_seq, limit),
        ).fetchall()
        if not events:
            return HotRows([], [])
        artifacts = self.db.execute(
            "SELECT digest, CAST(content AS BLOB) FROM artifacts WHERE seq >= ? AND seq <= ? AND segment IS NULL"
            " ORDER BY aid",
            (events[0][0], events[-1][0]),
        )
        return HotRows(list(map(RawEvent._make, events)), list(map(ArtifactRow._make, artifacts)))

    def add_segment(self, segment: SegmentInfo, seqs: Sequence[int], artifacts: Sequence[str]) -> None:
        try:
            with self._transaction():
                sid = self.db.execute(
                    "INSERT INTO segments (digest, first_seq, last_seq, events, artifacts, raw_bytes, stored_bytes,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (*astuple(segment), datetime.now(UTC).isoformat(timespec="microseconds")),
                ).lastrowid
                for table, payload, key, keys in (
                    ("events", "body", "seq", seqs),
                    ("artifacts", "content", "digest", artifacts),
                ):
                    changed = self.db.execute(
                        f"UPDATE {table} SET {payload} = x'', segment = ?"
                        f" WHERE {key} IN (SELECT value FROM json_each(?)) AND segment IS NULL",
                        (sid, _json_list(keys)),
                    ).rowcount
                    check_archived(table, changed, len(keys), segment.digest)
        except sqlite3.IntegrityError as error:
            raise StoreError(f"cannot record segment {segment.digest}: {error}") from None

    def segments(self) -> list[SegmentInfo]:
        rows = self.db.execute(
            "SELECT digest, first_seq, last_seq, events, artifacts, raw_bytes, stored_bytes FROM segments ORDER BY sid"
        )
        return [SegmentInfo(*row) for row in rows]

    def _last_seq_at(self, when: datetime) -> int:
        row = self.db.execute(
            "SELECT max(last_seq) FROM batches WHERE recorded_at <= ?",
            (when.isoformat(timespec="microseconds"),),
        ).fetchone()
        return int(row[0] or 0)

    def counts(self) -> dict[str, int]:
        counts = {
            table: self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("events", "artifacts", "nodes", "edges")
        }
        for kind, node_type, count in self.db.execute(
            "SELECT kind, type, count(*) FROM nodes GROUP BY kind, type"
        ):
            counts[f"{kind}:{node_type}"] = count
        return counts

    def state_digest(self) -> str:
        return self._state_digest((table, self.db.execute(query)) for table, query in STATE_QUERIES)

    def close(self) -> None:
        if isinstance(self.db, _Closed):
            return
        db, self.db = self.db, cast(sqlite3.Connection, _Closed(self.path))
        db.close()

    # The access log.

    _access_frontier: CompactRange | None = None  # its right edge, as last committed here

    def append_access(self, rows: Sequence[AccessRow], *, durable: bool = True) -> list[int]:
        if not durable:
            self.db.execute("PRAGMA synchronous=NORMAL")  # for this commit only: FULL again below
        try:
            with self._transaction():
                size = self.access_size()
                frontier = self._access_frontier
                if frontier is None or frontier.size != size:  # first use, or another writer appended
                    frontier = CompactRange.from_reader(size, self.access_log_node)
                self._access_frontier = None  # until the commit, it may hold leaves rolled back
                seqs = list(range(size + 1, size + 1 + len(rows)))
                self.db.executemany(
                    "INSERT INTO access_events VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (s, _instant(r.at), r.actor, r.outcome, r.name, r.body)
                        for s, r in zip(seqs, rows, strict=True)
                    ],
                )
                self.db.executemany(
                    "INSERT OR IGNORE INTO access_event_nodes VALUES (?, ?)",
                    [(node, s) for s, r in zip(seqs, rows, strict=True) for node in r.nodes],
                )
                nodes = [node for row in rows for node in frontier.append(leaf_hash(row.body))]
                self.db.executemany("INSERT INTO access_log_nodes VALUES (?, ?, ?)", nodes)
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError):  # locked, full, read-only: an outage
                raise StoreUnavailable(f"cannot write the access log of {self.path}: {error}") from None
            raise StoreError(f"cannot write the access log of {self.path}: {error}") from None
        finally:
            if not durable:
                self.db.execute("PRAGMA synchronous=FULL")
        self._access_frontier = frontier
        return seqs

    def access_size(self) -> int:
        (last,) = self.db.execute("SELECT max(seq) FROM access_events").fetchone()
        return int(last or 0)

    def access_log_node(self, level: int, index: int) -> bytes:
        return self._tree_node("access_", level, index)

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
        where, params = access_filters(
            actor, node, None if since is None else _instant(since), outcome, mark="?"
        )
        rows = self.db.execute(
            f"{_ACCESS_SELECT} WHERE e.seq > ? {where} ORDER BY e.seq LIMIT ?", (after, *params, limit)
        )
        return [_access_row(row) for row in rows]

    def access_rows(self, *, after: int = 0, limit: int = 1000) -> list[AccessEventRow]:
        rows = self.db.execute(f"{_ACCESS_SELECT} WHERE e.seq > ? ORDER BY e.seq LIMIT ?", (after, limit))
        return [_access_row(row) for row in rows]

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
        row = (name, digest, role, _encode(list(namespaces)).decode(), _utc(created_at), _utc(expires_at))
        with self._transaction():
            added = self.db.execute(
                "INSERT OR IGNORE INTO tokens VALUES (?, ?, ?, ?, ?, ?, NULL, ?)", (*row, created_by)
            )
            return added.rowcount == 1

    def token_by_hash(self, digest: bytes) -> TokenRow | None:
        row = self.db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?", (digest,)).fetchone()
        return None if row is None else _token(row)

    def tokens(self) -> list[TokenRow]:
        rows = self.db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created_at, name")
        return [_token(row) for row in rows]

    def revoke_token(self, name: str, at: datetime) -> bool:
        with self._transaction():
            revoked = self.db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (_utc(at), name)
            )
            return revoked.rowcount == 1

    def has_tokens(self) -> bool:
        return self.db.execute("SELECT EXISTS (SELECT 1 FROM tokens)").fetchone()[0] == 1


def _seen(alias: str, as_of: Horizon, *, of_nodes: bool = False) -> tuple[str, list[object]]:
    return seen(alias, as_of, marks=("?", "?"), instant=_INSTANT, of_nodes=of_nodes)


def _instant(when: datetime) -> str:
    """An access event's time as its column holds it: UTC, to the microsecond, one fixed width,
    so that text order is time order."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


_ACCESS_SELECT = ACCESS_SELECT.replace("e.body", "CAST(e.body AS BLOB)")  # a changed body may be TEXT


def _access_row(row: tuple[int, str, str, str, str, bytes]) -> AccessEventRow:
    try:
        at = datetime.fromisoformat(row[1])
    except (TypeError, ValueError):  # changed behind the store's back: no time, which verify reports
        at = datetime.min.replace(tzinfo=UTC)
    return AccessEventRow(row[0], at, row[2], row[3], row[4], bytes(row[5]))


_TOKEN_COLUMNS = "name, CAST(hash AS BLOB), role, namespaces, created_at, expires_at, revoked_at, created_by"


def _utc(when: datetime | None) -> str | None:
    """``when`` as RFC 3339 text in UTC, which sorts as time does."""
    return None if when is None else when.astimezone(UTC).isoformat(timespec="microseconds")


def _token(row: Sequence[object]) -> TokenRow:
    name, digest, role, namespaces, created_at, expires_at, revoked_at, created_by = row
    return TokenRow(
        str(name),
        bytes(cast(bytes, digest)),
        str(role),
        tuple(msgspec.json.decode(cast(str, namespaces))),
        datetime.fromisoformat(cast(str, created_at)),
        datetime.fromisoformat(cast(str, expires_at)) if expires_at else None,
        datetime.fromisoformat(cast(str, revoked_at)) if revoked_at else None,
        None if created_by is None else str(created_by),
    )
