"""The PostgreSQL backend's schema and its versions: every table, index, function and trigger.

See :mod:`opslineage.store.postgres` for what the tables hold and how migrations are applied.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]


def _append_only(*tables: str) -> tuple[str, ...]:
    """Triggers that refuse every UPDATE, DELETE and TRUNCATE of ``tables``."""
    return tuple(
        statement
        for table in tables
        for statement in (
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION opslineage_append_only()",
            f"CREATE TRIGGER {table}_append_only_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION opslineage_append_only()",
        )
    )


_SCHEMA_V1 = (
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE batches (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, first_seq bigint NOT NULL,"
    " last_seq bigint NOT NULL, recorded_at timestamptz NOT NULL)",
    "CREATE INDEX batches_recorded_at ON batches (recorded_at)",
    "CREATE TABLE events (seq bigint PRIMARY KEY, digest bytea NOT NULL UNIQUE, run bigint, run_id text,"
    " event_type text NOT NULL, event_time text NOT NULL, body bytea NOT NULL)",
    "CREATE INDEX events_run ON events (run)",
    'CREATE TABLE artifacts (digest text COLLATE "C" PRIMARY KEY, type text NOT NULL, content bytea NOT NULL,'
    " seq bigint NOT NULL)",
    'CREATE TABLE ids (nid bigint PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE)',
    'CREATE TABLE nodes (nid bigint PRIMARY KEY, kind text COLLATE "C" NOT NULL, type text COLLATE "C" NOT NULL,'
    ' namespace text COLLATE "C", name text COLLATE "C", version text, digest text COLLATE "C",'
    " seq bigint NOT NULL)",
    "CREATE INDEX nodes_kind ON nodes (kind, seq)",
    "CREATE INDEX nodes_type ON nodes (type, seq)",
    "CREATE INDEX nodes_name ON nodes (namespace, name)",
    'CREATE TABLE edges (src bigint NOT NULL, dst bigint NOT NULL, kind text COLLATE "C" NOT NULL, role text,'
    " seq bigint NOT NULL, PRIMARY KEY (src, dst, kind))",
    "CREATE INDEX edges_dst ON edges (dst, kind)",
    "CREATE TABLE log_nodes (level smallint NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL,"
    " PRIMARY KEY (level, idx))",
    "CREATE TABLE checkpoints (size bigint PRIMARY KEY, root bytea NOT NULL, note text NOT NULL)",
    "CREATE FUNCTION opslineage_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN RAISE EXCEPTION '% are append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation'; END $$",
    *_append_only("events", "artifacts", "log_nodes", "checkpoints"),
)

# The archive tier: an archived row keeps every column but its payload, which becomes empty, and
# points at a segment whose range of sequence numbers holds its own; nothing else may change.
_STEP_V2 = (
    "CREATE TABLE segments (sid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    ' digest text COLLATE "C" NOT NULL UNIQUE, first_seq bigint NOT NULL, last_seq bigint NOT NULL,'
    " events integer NOT NULL, artifacts integer NOT NULL, raw_bytes bigint NOT NULL,"
    " stored_bytes bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "ALTER TABLE events ADD COLUMN segment bigint REFERENCES segments",
    "ALTER TABLE artifacts ADD COLUMN segment bigint REFERENCES segments",
    "CREATE INDEX artifacts_seq ON artifacts (seq)",  # archiving takes artifacts by the events that brought them
    "CREATE FUNCTION opslineage_archive_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP = 'UPDATE' AND OLD.segment IS NULL AND NEW.segment IS NOT NULL"
    " AND to_jsonb(NEW) ->> TG_ARGV[0] = '\\x'"
    " AND to_jsonb(NEW) - TG_ARGV[0] - 'segment' = to_jsonb(OLD) - TG_ARGV[0] - 'segment'"
    " AND EXISTS (SELECT FROM segments WHERE sid = NEW.segment AND NEW.seq BETWEEN first_seq AND last_seq)"
    " THEN RETURN NEW; END IF;"
    " RAISE EXCEPTION '% are append-only (archiving may only move a % out once)', TG_TABLE_NAME, TG_ARGV[0]"
    " USING ERRCODE = 'restrict_violation'; END $$",
    *(
        statement
        for table, payload in (("events", "body"), ("artifacts", "content"))
        for statement in (
            f"DROP TRIGGER {table}_append_only ON {table}",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION opslineage_archive_only('{payload}')",
        )
    ),
    "CREATE TRIGGER segments_append_only BEFORE UPDATE OR DELETE ON segments"
    " FOR EACH ROW EXECUTE FUNCTION opslineage_append_only()",
    "CREATE TRIGGER segments_append_only_truncate BEFORE TRUNCATE ON segments"
    " FOR EACH STATEMENT EXECUTE FUNCTION opslineage_append_only()",
)

# Who wrote each batch (see opslineage.ingest); batches stored before it have none. It is not part
# of the state digest.
_STEP_V3 = ("ALTER TABLE batches ADD COLUMN actor text",)

# The graph index and the batches become append-only like the log (ingest only ever inserts them),
# and the index rows get an index on the sequence number that stamps them, so that `verify` can
# read the rows each range of events added, to compare with what those events derive.
_STEP_V4 = (
    "CREATE INDEX nodes_seq ON nodes (seq)",
    "CREATE INDEX edges_seq ON edges (seq)",
    *_append_only("ids", "nodes", "edges", "batches"),
)

# API tokens (see opslineage.governance.tokens): only the SHA-256 of each secret is kept. A name is
# never reused, so the access log's actors stay unambiguous; a token is never deleted, only revoked
# (revoked_at set, once). namespaces is a JSON array ([] = every namespace). Then the access log
# (see opslineage.ledger.access_log): one row per access event, body its canonical JSON, which is
# the leaf of a Merkle log of its own; access_event_nodes indexes the node ids each event named.
_STEP_V5 = (
    'CREATE TABLE tokens (name text COLLATE "C" PRIMARY KEY, hash bytea NOT NULL UNIQUE, role text NOT NULL,'
    " namespaces text NOT NULL, created_at timestamptz NOT NULL, expires_at timestamptz,"
    " revoked_at timestamptz, created_by text)",
    "CREATE FUNCTION opslineage_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP = 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL"
    " AND to_jsonb(NEW) - 'revoked_at' = to_jsonb(OLD) - 'revoked_at' THEN RETURN NEW; END IF;"
    " RAISE EXCEPTION 'tokens may only be revoked, once' USING ERRCODE = 'restrict_violation'; END $$",
    "CREATE TRIGGER tokens_revoke_only BEFORE UPDATE OR DELETE ON tokens"
    " FOR EACH ROW EXECUTE FUNCTION opslineage_revoke_only()",
    "CREATE TRIGGER tokens_kept BEFORE TRUNCATE ON tokens FOR EACH STATEMENT EXECUTE FUNCTION opslineage_append_only()",
    'CREATE TABLE access_events (seq bigint PRIMARY KEY, at timestamptz NOT NULL, actor text COLLATE "C" NOT NULL,'
    " outcome text NOT NULL, name text NOT NULL, body bytea NOT NULL)",
    "CREATE INDEX access_events_at ON access_events (at)",
    "CREATE INDEX access_events_actor ON access_events (actor, seq)",
    'CREATE TABLE access_event_nodes (node text COLLATE "C" NOT NULL, seq bigint NOT NULL, PRIMARY KEY (node, seq))',
    "CREATE TABLE access_log_nodes (level smallint NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL,"
    " PRIMARY KEY (level, idx))",
    "CREATE TABLE access_checkpoints (size bigint PRIMARY KEY, root bytea NOT NULL, note text NOT NULL)",
    *_append_only("access_events", "access_event_nodes", "access_log_nodes", "access_checkpoints"),
)

# Encryption at rest (see opslineage.store.keys): data keys per namespace and UTC month, wrapped by
# the key-encryption key; a key is re-wrapped (rotation) or shredded (once: its wrapped bytes go),
# never deleted. Events and artifacts allow two more changes besides archiving: a hot sealed payload
# whose data key is shredded becomes the shredded envelope naming that key, and one whose key is to
# be shredded is sealed again under the month's fresh key (opslineage.store.sealing).
_SEALED = '\'{"opslineage:sealed":"\''
_SHREDDED = '\'{"opslineage:shredded":"\''
_PAYLOAD_TEXT = "convert_from(decode(substr(to_jsonb({}) ->> TG_ARGV[0], 3), 'hex'), 'UTF8')"
_STEP_V6 = (
    'CREATE TABLE data_keys (key_id text COLLATE "C" PRIMARY KEY, namespace text NOT NULL, period text NOT NULL,'
    " wrapped bytea, kek_id text NOT NULL, created_at timestamptz NOT NULL, shredded_at timestamptz)",
    "CREATE INDEX data_keys_scope ON data_keys (namespace, period)",
    "CREATE FUNCTION opslineage_rewrap_or_shred() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP = 'UPDATE' AND OLD.shredded_at IS NULL AND NEW.key_id = OLD.key_id"
    " AND NEW.namespace = OLD.namespace AND NEW.period = OLD.period AND NEW.created_at = OLD.created_at"
    " AND ((NEW.shredded_at IS NULL AND NEW.wrapped IS NOT NULL)"
    " OR (NEW.shredded_at IS NOT NULL AND NEW.wrapped IS NULL AND NEW.kek_id = OLD.kek_id)) THEN RETURN NEW; END IF;"
    " RAISE EXCEPTION 'data keys may only be re-wrapped, or shredded once' USING ERRCODE = 'restrict_violation';"
    " END $$",
    "CREATE TRIGGER data_keys_rewrap_or_shred BEFORE UPDATE OR DELETE ON data_keys"
    " FOR EACH ROW EXECUTE FUNCTION opslineage_rewrap_or_shred()",
    "CREATE TRIGGER data_keys_kept BEFORE TRUNCATE ON data_keys"
    " FOR EACH STATEMENT EXECUTE FUNCTION opslineage_append_only()",
    "CREATE OR REPLACE FUNCTION opslineage_archive_only() RETURNS trigger LANGUAGE plpgsql AS $$"
    " DECLARE old_text text; new_text text; sealed_key text; BEGIN"
    " IF TG_OP = 'UPDATE' AND OLD.segment IS NULL AND NEW.segment IS NOT NULL"
    " AND to_jsonb(NEW) ->> TG_ARGV[0] = '\\x'"
    " AND to_jsonb(NEW) - TG_ARGV[0] - 'segment' = to_jsonb(OLD) - TG_ARGV[0] - 'segment'"
    " AND EXISTS (SELECT FROM segments WHERE sid = NEW.segment AND NEW.seq BETWEEN first_seq AND last_seq)"
    " THEN RETURN NEW; END IF;"
    " IF TG_OP = 'UPDATE' AND OLD.segment IS NULL AND NEW.segment IS NULL"
    " AND to_jsonb(NEW) - TG_ARGV[0] = to_jsonb(OLD) - TG_ARGV[0] THEN"
    f" old_text := {_PAYLOAD_TEXT.format('OLD')}; new_text := {_PAYLOAD_TEXT.format('NEW')};"
    f" IF left(old_text, 22) = {_SEALED} THEN"
    " sealed_key := old_text::jsonb ->> 'opslineage:sealed';"
    f" IF new_text = {_SHREDDED} || sealed_key || '\"}}'"
    " AND EXISTS (SELECT FROM data_keys WHERE key_id = sealed_key AND shredded_at IS NOT NULL) THEN RETURN NEW; END IF;"
    f" IF left(new_text, 22) = {_SEALED} AND EXISTS (SELECT FROM data_keys o JOIN data_keys n"
    " ON n.namespace = o.namespace AND n.period = o.period AND n.key_id <> o.key_id"
    " WHERE o.key_id = sealed_key AND n.key_id = new_text::jsonb ->> 'opslineage:sealed'"
    " AND o.shredded_at IS NULL AND n.shredded_at IS NULL) THEN RETURN NEW; END IF;"
    " END IF; END IF;"
    " RAISE EXCEPTION '% are append-only (archiving may only move a % out once, shredding only blank or"
    " re-seal a sealed one)', TG_TABLE_NAME, TG_ARGV[0] USING ERRCODE = 'restrict_violation'; END $$",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _STEP_V2, _STEP_V3, _STEP_V4, _STEP_V5, _STEP_V6)
"""The schema steps in order: applying step ``i`` brings a database from version ``i`` to ``i + 1``.

A new schema version is one more entry at the end; released entries never change.
"""
