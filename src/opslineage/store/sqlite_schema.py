"""The SQLite backend's schema and its versions: every table, index and trigger of a store file.

See :mod:`opslineage.store.sqlite` for what the tables hold. A new schema version is one more
entry in :data:`MIGRATIONS`; released entries never change.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

SCHEMA_VERSION = 9


def _append_only(*tables: str) -> tuple[str, ...]:
    """Triggers that refuse every UPDATE and DELETE of ``tables``."""
    return tuple(
        f"CREATE TRIGGER {table}_append_only_{op} BEFORE {op.upper()} ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
        for table in tables
        for op in ("update", "delete")
    )


SCHEMA_V4 = (
    "CREATE TABLE batches (id INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,"
    " recorded_at TEXT NOT NULL)",
    "CREATE TABLE events (seq INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, run INTEGER, run_id TEXT,"
    " event_type TEXT NOT NULL, event_time TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX events_run ON events (run)",
    "CREATE TABLE artifacts (aid INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE, type TEXT NOT NULL,"
    " content BLOB NOT NULL, seq INTEGER NOT NULL)",
    "CREATE TABLE ids (nid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE)",
    "CREATE TABLE nodes (nid INTEGER PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL, namespace TEXT,"
    " name TEXT, version TEXT, digest TEXT, seq INTEGER NOT NULL)",
    "CREATE INDEX nodes_kind ON nodes (kind, seq)",
    "CREATE INDEX nodes_type ON nodes (type, seq)",
    "CREATE INDEX nodes_name ON nodes (namespace, name)",
    "CREATE TABLE edges (src INTEGER NOT NULL, dst INTEGER NOT NULL, kind TEXT NOT NULL, role TEXT,"
    " seq INTEGER NOT NULL, PRIMARY KEY (src, dst, kind)) WITHOUT ROWID",
    "CREATE INDEX edges_dst ON edges (dst, kind)",
    "CREATE TABLE log_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,"
    " PRIMARY KEY (level, idx)) WITHOUT ROWID",
    "CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL)",
    *_append_only("events", "artifacts", "log_nodes", "checkpoints"),
)
# An archived row keeps every column but its payload, which becomes empty, and points at a segment
# whose range of sequence numbers holds its own (artifacts go with the events that first stored them).
_IN_SEGMENT = (
    "NEW.seq BETWEEN (SELECT first_seq FROM segments WHERE sid = NEW.segment)"
    " AND (SELECT last_seq FROM segments WHERE sid = NEW.segment)"
)
_KEPT = {  # table: the columns but the payload and its segment, which archiving and shredding keep
    "events": "NEW.seq IS OLD.seq AND NEW.digest IS OLD.digest AND NEW.run IS OLD.run"
    " AND NEW.run_id IS OLD.run_id AND NEW.event_type IS OLD.event_type AND NEW.event_time IS OLD.event_time",
    "artifacts": "NEW.aid IS OLD.aid AND NEW.digest IS OLD.digest AND NEW.type IS OLD.type AND NEW.seq IS OLD.seq",
}
_ARCHIVED = {  # table: (payload column, what must hold of an archived row besides a blank payload)
    "events": ("body", f"{_IN_SEGMENT} AND {_KEPT['events']}"),
    "artifacts": ("content", f"{_IN_SEGMENT} AND {_KEPT['artifacts']}"),
}
STEP_V5 = (  # the archive tier: payloads may be blanked once, when their segment is recorded
    "CREATE TABLE segments (sid INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE, first_seq INTEGER NOT NULL,"
    " last_seq INTEGER NOT NULL, events INTEGER NOT NULL, artifacts INTEGER NOT NULL,"
    " raw_bytes INTEGER NOT NULL, stored_bytes INTEGER NOT NULL, created_at TEXT NOT NULL)",
    "CREATE INDEX artifacts_seq ON artifacts (seq)",  # archiving takes artifacts by the events that brought them
    *_append_only("segments"),
    *(
        statement
        for table, (payload, archived) in _ARCHIVED.items()
        for statement in (
            f"ALTER TABLE {table} ADD COLUMN segment INTEGER",
            f"DROP TRIGGER {table}_append_only_update",
            f"CREATE TRIGGER {table}_append_only_update BEFORE UPDATE ON {table}"
            f" WHEN NOT coalesce(OLD.segment IS NULL AND NEW.{payload} = x'' AND {archived}, 0)"
            f" BEGIN SELECT RAISE(ABORT, '{table} are append-only (archiving may only move a {payload} out once)'); END",
        )
    ),
)
# Who wrote each batch ("cli:<user>", "http:<token>", "worker:<durable>", "sdk:<producer>"; see
# opslineage.ingest). Batches stored before it have none. It is not part of the state digest.
STEP_V6 = ("ALTER TABLE batches ADD COLUMN actor TEXT",)
# The graph index and the batches become append-only like the log (ingest only ever inserts them),
# and the index rows get an index on the sequence number that stamps them, so that `verify` can
# read the rows each range of events added, to compare with what those events derive.
STEP_V7 = (
    "CREATE INDEX nodes_seq ON nodes (seq)",
    "CREATE INDEX edges_seq ON edges (seq)",
    *_append_only("ids", "nodes", "edges", "batches"),
)
# API tokens (see opslineage.governance.tokens): only the SHA-256 of each secret is kept. A name is
# never reused, so the access log's actors stay unambiguous; a token is never deleted, only revoked
# (revoked_at set, once). namespaces is a JSON array ([] = every namespace).
STEP_V8 = (
    "CREATE TABLE tokens (name TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE, role TEXT NOT NULL,"
    " namespaces TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT,"
    " created_by TEXT)",
    "CREATE TRIGGER tokens_revoke_only BEFORE UPDATE ON tokens WHEN NOT coalesce(OLD.revoked_at IS NULL"
    " AND NEW.revoked_at IS NOT NULL AND NEW.name IS OLD.name AND NEW.hash IS OLD.hash AND NEW.role IS OLD.role"
    " AND NEW.namespaces IS OLD.namespaces AND NEW.created_at IS OLD.created_at"
    " AND NEW.expires_at IS OLD.expires_at AND NEW.created_by IS OLD.created_by, 0)"
    " BEGIN SELECT RAISE(ABORT, 'tokens may only be revoked, once'); END",
    "CREATE TRIGGER tokens_kept BEFORE DELETE ON tokens BEGIN SELECT RAISE(ABORT, 'tokens are never deleted'); END",
    # The access log (see opslineage.ledger.access_log): one row per access event, body its
    # canonical JSON, which is the leaf of a Merkle log of its own (access_log_nodes, signed in
    # access_checkpoints); access_event_nodes indexes the node ids each event named.
    "CREATE TABLE access_events (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL,"
    " outcome TEXT NOT NULL, name TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX access_events_at ON access_events (at)",
    "CREATE INDEX access_events_actor ON access_events (actor, seq)",
    "CREATE TABLE access_event_nodes (node TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (node, seq))"
    " WITHOUT ROWID",
    "CREATE TABLE access_log_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,"
    " PRIMARY KEY (level, idx)) WITHOUT ROWID",
    "CREATE TABLE access_checkpoints (size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL)",
    *_append_only("access_events", "access_event_nodes", "access_log_nodes", "access_checkpoints"),
)


_SEALED = '\'{"opslineage:sealed":"\''
_SHREDDED = '\'{"opslineage:shredded":"\''


def _sealed_key(row: str, payload: str) -> str:
    """The data key id a sealed payload of ``row`` (OLD or NEW) names, after its 22-byte prefix."""
    text = f"CAST({row}.{payload} AS TEXT)"
    return f"substr({text}, 23, instr(substr({text}, 23), '\"') - 1)"


def _shredded(payload: str) -> str:
    """What must hold of a shred or a re-seal of a hot sealed payload (see opslineage.store.sealing):
    it becomes the shredded envelope naming its key, once that key is shredded; or it is sealed
    again under another live key of the same namespace and month, while its own is live."""
    old, new = _sealed_key("OLD", payload), _sealed_key("NEW", payload)
    return (
        f"OLD.segment IS NULL AND NEW.segment IS NULL AND substr(CAST(OLD.{payload} AS TEXT), 1, 22) = {_SEALED}"
        f" AND ((CAST(NEW.{payload} AS TEXT) = {_SHREDDED} || {old} || '\"}}'"
        f" AND EXISTS (SELECT 1 FROM data_keys WHERE key_id = {old} AND shredded_at IS NOT NULL))"
        f" OR (substr(CAST(NEW.{payload} AS TEXT), 1, 22) = {_SEALED} AND EXISTS (SELECT 1 FROM data_keys o"
        " JOIN data_keys n ON n.namespace = o.namespace AND n.period = o.period AND n.key_id <> o.key_id"
        f" WHERE o.key_id = {old} AND n.key_id = {new} AND o.shredded_at IS NULL AND n.shredded_at IS NULL)))"
    )


# Encryption at rest (see opslineage.store.keys): data keys per namespace and UTC month, wrapped by
# the key-encryption key; a key is re-wrapped (rotation) or shredded (once: its wrapped bytes go),
# never deleted. A sealed payload whose key is shredded may be replaced, once, by the shredded
# envelope, and one whose key is to be shredded sealed again under the month's fresh key (a record
# retention keeps, or a legal hold); archiving and those are the only changes events and artifacts
# allow.
STEP_V9 = (
    "CREATE TABLE data_keys (key_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, period TEXT NOT NULL,"
    " wrapped BLOB, kek_id TEXT NOT NULL, created_at TEXT NOT NULL, shredded_at TEXT)",
    "CREATE INDEX data_keys_scope ON data_keys (namespace, period)",
    "CREATE TRIGGER data_keys_rewrap_or_shred BEFORE UPDATE ON data_keys WHEN NOT coalesce(OLD.shredded_at IS NULL"
    " AND NEW.key_id IS OLD.key_id AND NEW.namespace IS OLD.namespace AND NEW.period IS OLD.period"
    " AND NEW.created_at IS OLD.created_at AND ((NEW.shredded_at IS NULL AND NEW.wrapped IS NOT NULL)"
    " OR (NEW.shredded_at IS NOT NULL AND NEW.wrapped IS NULL AND NEW.kek_id IS OLD.kek_id)), 0)"
    " BEGIN SELECT RAISE(ABORT, 'data keys may only be re-wrapped, or shredded once'); END",
    "CREATE TRIGGER data_keys_kept BEFORE DELETE ON data_keys"
    " BEGIN SELECT RAISE(ABORT, 'data keys are never deleted (shred one instead)'); END",
    *(
        statement
        for table, (payload, archived) in _ARCHIVED.items()
        for statement in (
            f"DROP TRIGGER {table}_append_only_update",
            f"CREATE TRIGGER {table}_append_only_update BEFORE UPDATE ON {table}"
            f" WHEN NOT coalesce((OLD.segment IS NULL AND NEW.{payload} = x'' AND {archived})"
            f" OR ({_shredded(payload)} AND {_KEPT[table]}), 0)"
            f" BEGIN SELECT RAISE(ABORT, '{table} are append-only (archiving may only move a {payload} out once,"
            " shredding only blank or re-seal a sealed one)'); END",
        )
    ),
)
MIGRATIONS: dict[int, tuple[str, ...]] = {
    4: SCHEMA_V4,
    5: STEP_V5,
    6: STEP_V6,
    7: STEP_V7,
    8: STEP_V8,
    9: STEP_V9,
}
"""Schema version → the statements that bring a store of the version before to it. Stores older
than the first entry were pre-release and are refused."""
