"""The embedded backend: one SQLite file in WAL mode.

Tables: ``events`` (the append-only log of accepted events, bodies with artifact contents split
out), ``artifacts`` (content-addressed, stored once), ``nodes`` and ``edges`` (the graph index,
first-seen rows only, each stamped with the sequence number of the event that added it, which
is what makes ``as_of`` answers exact) and ``batches`` (when each ingest committed). Triggers
refuse any UPDATE or DELETE of events and artifacts.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from opslineage.model import ParsedEvent, join_event
from opslineage.store.base import IngestResult, NodeRecord, Store, StoredEvent, StoreError, Walk

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE batches (id INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,"
    " recorded_at TEXT NOT NULL)",
    "CREATE TABLE events (seq INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, run_id TEXT NOT NULL,"
    " event_type TEXT NOT NULL, event_time TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX events_run ON events (run_id)",
    "CREATE TABLE artifacts (digest TEXT PRIMARY KEY, type TEXT NOT NULL, content BLOB NOT NULL,"
    " seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE nodes (id TEXT PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL, namespace TEXT,"
    " name TEXT, version TEXT, digest TEXT, seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX nodes_type ON nodes (type, seq)",
    "CREATE INDEX nodes_name ON nodes (namespace, name)",
    "CREATE TABLE edges (src TEXT NOT NULL, dst TEXT NOT NULL, kind TEXT NOT NULL, role TEXT,"
    " seq INTEGER NOT NULL, PRIMARY KEY (src, dst, kind)) WITHOUT ROWID",
    "CREATE INDEX edges_dst ON edges (dst, kind)",
    *(
        f"CREATE TRIGGER {table}_append_only_{op} BEFORE {op.upper()} ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
        for table in ("events", "artifacts")
        for op in ("update", "delete")
    ),
)
_NODE_COLUMNS = "id, kind, type, namespace, name, version, digest, seq"
_VERSIONED_KINDS = ("model", "policy")
_CHUNK = 900
_encode = msgspec.json.encode


class SQLiteStore(Store):
    """A store in one SQLite file. Safe for one writer and many readers across processes."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{path}"
        if not create and not self.path.exists():
            raise StoreError(f"no store at {self.path} (run `opslineage demo` or `opslineage ingest` first)")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.execute(
                "PRAGMA cache_size=-65536"
            )  # 64 MiB: graph keys are random, so B-tree pages are too
            self.db.execute("PRAGMA mmap_size=268435456")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot open store {self.path}: {error}") from None

    def _migrate(self) -> None:
        with self._transaction():
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"store {self.path} has schema {version}, newer than this opslineage")
            if version < 1:
                for statement in _SCHEMA:
                    self.db.execute(statement)
                self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def ingest_many(self, chunks: Iterable[Sequence[ParsedEvent]]) -> IngestResult:
        accepted = duplicates = 0
        first_seq = last_seq = None
        with self._transaction():
            for chunk in chunks:
                seqs = self._insert(chunk)
                accepted += len(seqs)
                duplicates += len(chunk) - len(seqs)
                if seqs:
                    first_seq = first_seq or seqs[0]
                    last_seq = seqs[-1]
            if first_seq is not None:
                self.db.execute(
                    "INSERT INTO batches (first_seq, last_seq, recorded_at) VALUES (?, ?, ?)",
                    (first_seq, last_seq, datetime.now(UTC).isoformat(timespec="microseconds")),
                )
        return IngestResult(accepted, duplicates, first_seq, last_seq)

    def _insert(self, events: Sequence[ParsedEvent]) -> list[int]:
        """Insert the events not stored yet; returns their new sequence numbers."""
        if not events:
            return []
        known = self._known_digests([event.digest for event in events])
        (last,) = self.db.execute("SELECT max(seq) FROM events").fetchone()  # max() alone is an index lookup
        last = last or 0
        seq = last
        event_rows: list[tuple[object, ...]] = []
        nodes: dict[str, tuple[object, ...]] = {}
        edges: dict[tuple[str, str, str], tuple[object, ...]] = {}
        artifacts: dict[str, tuple[object, ...]] = {}
        for event in events:
            if event.digest in known:
                continue
            known.add(event.digest)
            seq += 1
            event_rows.append(
                (seq, event.digest, event.run_id, event.event_type, event.event_time, event.body)
            )
            for node in event.nodes:
                nodes.setdefault(node.id, (*node, seq))
            for edge in event.edges:
                edges.setdefault(
                    (edge.src, edge.dst, edge.kind), (edge.src, edge.dst, edge.kind, edge.role, seq)
                )
            for digest, (kind, content) in event.artifacts.items():
                artifacts.setdefault(digest, (digest, kind, content, seq))
        if not event_rows:
            return []
        self._check_versions(events)
        self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", event_rows)
        self.db.executemany(
            f"INSERT OR IGNORE INTO nodes ({_NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", nodes.values()
        )
        self.db.executemany("INSERT OR IGNORE INTO edges VALUES (?, ?, ?, ?, ?)", edges.values())
        self.db.executemany("INSERT OR IGNORE INTO artifacts VALUES (?, ?, ?, ?)", artifacts.values())
        return list(range(last + 1, seq + 1))

    def _known_digests(self, digests: list[bytes]) -> set[bytes]:
        known: set[bytes] = set()
        for start in range(0, len(digests), _CHUNK):
            chunk = digests[start : start + _CHUNK]
            rows = self.db.execute(
                f"SELECT digest FROM events WHERE digest IN ({', '.join('?' * len(chunk))})", chunk
            )
            known.update(row[0] for row in rows)
        return known

    def _check_versions(self, events: Sequence[ParsedEvent]) -> None:
        """A model or policy version names one content digest, forever."""
        declared: dict[str, str | None] = {}
        for event in events:
            for node in event.nodes:
                if node.kind in _VERSIONED_KINDS:
                    seen = declared.setdefault(node.id, node.digest)
                    if seen != node.digest:
                        raise StoreError(f"{node.id} appears with two different contents in one batch")
        if not declared:
            return
        stored = self.nodes(declared)
        for node_id, digest in declared.items():
            if node_id in stored and stored[node_id].digest != digest:
                raise StoreError(
                    f"{node_id} is already recorded with digest {stored[node_id].digest}; "
                    f"changed content ({digest}) needs a new version"
                )

    def node(self, node_id: str, as_of: int | None = None) -> NodeRecord | None:
        return self.nodes([node_id], as_of).get(node_id)

    def nodes(self, ids: Iterable[str], as_of: int | None = None) -> dict[str, NodeRecord]:
        rows = self.db.execute(
            f"SELECT {_NODE_COLUMNS} FROM nodes WHERE id IN (SELECT value FROM json_each(?)) AND seq <= ?",
            (_encode(list(ids)).decode(), _bound(as_of)),
        )
        return {row[0]: NodeRecord(*row) for row in rows}

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
        as_of: int | None = None,
    ) -> list[NodeRecord]:
        clauses: list[str] = ["seq <= ?"]
        params: list[object] = [_bound(as_of)]
        if kind:
            clauses.append("id >= ? AND id < ?")
            params += [kind + ":", kind + ";"]
        for column, value in (("type", type), ("namespace", namespace), ("name", name)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if text:
            clauses.append("(instr(id, ?) > 0 OR instr(coalesce(name, ''), ?) > 0)")
            params += [text, text]
        rows = self.db.execute(
            f"SELECT {_NODE_COLUMNS} FROM nodes WHERE {' AND '.join(clauses)} "
            "ORDER BY seq DESC, id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [NodeRecord(*row) for row in rows]

    def walk(
        self,
        start: str,
        *,
        direction: str,
        depth: int,
        as_of: int | None = None,
        stop_kinds: Sequence[str] = (),
    ) -> Walk:
        near, far = _ends(direction)
        stop = ""
        if stop_kinds:
            stop = (
                "AND (w.depth = 0 OR substr(w.id, 1, instr(w.id, ':') - 1)"
                " NOT IN (SELECT value FROM json_each(?)))"
            )
        rows = self.db.execute(
            f"""WITH RECURSIVE w(id, depth) AS (
                    SELECT ?, 0
                    UNION
                    SELECT e.{far}, w.depth + 1 FROM w JOIN edges e ON e.{near} = w.id
                    WHERE w.depth < ? AND e.seq <= ? {stop}
                )
                SELECT id, min(depth) FROM w GROUP BY id""",
            (start, depth, _bound(as_of), *([_encode(list(stop_kinds)).decode()] if stop_kinds else [])),
        )
        result = Walk(depths=dict(rows.fetchall()))
        expanded = [
            node
            for node, d in result.depths.items()
            if d < depth and (d == 0 or node.partition(":")[0] not in stop_kinds)
        ]
        result.edges = [
            edge
            for edge in self.edges(expanded, direction=direction, as_of=as_of)
            if edge[0 if direction == "down" else 1] in result.depths
        ]
        return result

    def edges(
        self, ids: Iterable[str], *, direction: str, kinds: Sequence[str] = (), as_of: int | None = None
    ) -> list[tuple[str, str, str, str | None]]:
        near, _ = _ends(direction)
        kind_clause = "AND kind IN (SELECT value FROM json_each(?))" if kinds else ""
        rows = self.db.execute(
            f"SELECT src, dst, kind, role FROM edges WHERE {near} IN (SELECT value FROM json_each(?)) "
            f"AND seq <= ? {kind_clause} ORDER BY seq",
            (_encode(list(ids)).decode(), _bound(as_of), *([_encode(list(kinds)).decode()] if kinds else [])),
        )
        return rows.fetchall()

    def artifacts(self, digests: Iterable[str]) -> dict[str, bytes]:
        rows = self.db.execute(
            "SELECT digest, content FROM artifacts WHERE digest IN (SELECT value FROM json_each(?))",
            (_encode(list(digests)).decode(),),
        )
        return dict(rows.fetchall())

    def events(
        self, *, run_id: str | None = None, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        query = "SELECT seq, digest, run_id, event_type, event_time, body FROM events WHERE seq > ?"
        params: list[object] = [after]
        if run_id is not None:
            query += " AND run_id = ?"
            params.append(run_id.lower())
        query += " ORDER BY seq LIMIT ?"
        params.append(-1 if limit is None else limit)
        rows = self.db.execute(query, params).fetchall()
        return [
            StoredEvent(seq, digest.hex(), run, kind, time, join_event(body, self._artifact))
            for seq, digest, run, kind, time, body in rows
        ]

    def _artifact(self, digest: str) -> bytes:
        row = self.db.execute("SELECT content FROM artifacts WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            raise StoreError(f"artifact {digest} is referenced by an event but missing from the store")
        return bytes(row[0])

    def as_of_seq(self, when: datetime) -> int:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        row = self.db.execute(
            "SELECT max(last_seq) FROM batches WHERE recorded_at <= ?",
            (when.astimezone(UTC).isoformat(timespec="microseconds"),),
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
        digest = hashlib.sha256()
        for query in (
            "SELECT seq, digest, run_id, event_type, event_time, body FROM events ORDER BY seq",
            "SELECT digest, type, content, seq FROM artifacts ORDER BY digest",
            f"SELECT {_NODE_COLUMNS} FROM nodes ORDER BY id",
            "SELECT src, dst, kind, role, seq FROM edges ORDER BY src, dst, kind",
        ):
            for row in self.db.execute(query):
                digest.update(_encode(row))
        return digest.hexdigest()

    def close(self) -> None:
        self.db.close()


def _node_tuple(node: object) -> tuple[object, ...]:
    return tuple(
        getattr(node, column) for column in ("id", "kind", "type", "namespace", "name", "version", "digest")
    )


def _ends(direction: str) -> tuple[str, str]:
    if direction == "up":
        return "src", "dst"
    if direction == "down":
        return "dst", "src"
    raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")


def _bound(as_of: int | None) -> int:
    return (1 << 62) if as_of is None else as_of
