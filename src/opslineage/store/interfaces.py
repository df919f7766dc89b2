"""What a store offers, one concern per protocol: graph reads, the event log, artifacts, the
transparency log's storage, the archive tier and settings.

The access log (every read, see :mod:`opslineage.ledger.access_log`) is a second Merkle log
with storage of its own, :class:`AccessLogStorage`. A caller that needs one concern can ask
for that protocol alone (``archive_store`` takes an :class:`ArchiveTier`); :class:`~opslineage.store.base.Store`, the class both backends subclass,
combines them all. Every method is abstract here, so a backend that misses one cannot be made.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from opslineage.model import ParsedEvent
from opslineage.store.keys import DataKeys, Kek
from opslineage.store.records import (
    AccessEventRow,
    AccessRow,
    CheckpointRow,
    DataKeyRow,
    EdgeRow,
    EventRow,
    Horizon,
    HotRows,
    IndexRows,
    IngestResult,
    NodeContent,
    NodeQuery,
    NodeRecord,
    RawEvent,
    SealedRows,
    SegmentInfo,
    StoredEvent,
    Walk,
)
from opslineage.store.sealing import SealPolicy
from opslineage.store.segments import Archive

__all__ = [
    "AccessLogStorage",
    "ArchiveTier",
    "ArtifactReader",
    "Encryption",
    "EventLog",
    "GraphReader",
    "LogStorage",
    "Settings",
    "TokenRow",
    "TokenTable",
]


class GraphReader(Protocol):
    """The graph index: nodes and edges, each exact as of a sequence number."""

    @abc.abstractmethod
    def node(self, node_id: str, as_of: Horizon = None) -> NodeRecord | None:
        """The node with this id, as the store stood at sequence ``as_of``."""

    @abc.abstractmethod
    def nodes(self, ids: Iterable[str], as_of: Horizon = None) -> dict[str, NodeRecord]:
        """Several nodes by id, in one round trip."""

    @abc.abstractmethod
    def nodes_with_content(self, ids: Iterable[str], as_of: Horizon = None) -> dict[str, NodeContent]:
        """Nodes by id together with their artifact content (None when they have none stored)."""

    @abc.abstractmethod
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
        """Nodes matching all given filters, newest first."""

    @abc.abstractmethod
    def search_nodes(
        self, query: NodeQuery, *, limit: int = 50, offset: int = 0, as_of: Horizon = None
    ) -> list[NodeRecord]:
        """Nodes matching a catalog search (see :class:`NodeQuery`), newest first."""

    @abc.abstractmethod
    def count_nodes(self, query: NodeQuery, *, limit: int, as_of: Horizon = None) -> int:
        """How many nodes match a catalog search, counting no further than ``limit`` (a bound on
        the rows a count reads), in one query."""

    @abc.abstractmethod
    def walk(
        self,
        start: str,
        *,
        direction: str,
        depth: int,
        as_of: Horizon = None,
        stop_kinds: Sequence[str] = (),
    ) -> Walk:
        """All nodes within ``depth`` edges of ``start`` going ``up`` (to what it came from) or
        ``down`` (to what came from it), as one set-based query. Nodes whose kind is in
        ``stop_kinds`` are reached but not expanded."""

    @abc.abstractmethod
    def edges(
        self, ids: Iterable[str], *, direction: str, kinds: Sequence[str] = (), as_of: Horizon = None
    ) -> list[EdgeRow]:
        """Edges leaving (``up``) or entering (``down``) any of ``ids``, oldest first."""

    @abc.abstractmethod
    def touching_seqs(self, node_id: str, limit: int, as_of: Horizon = None) -> list[int]:
        """Sequence numbers of the newest events that added an edge to or from ``node_id``."""

    @abc.abstractmethod
    def index_rows(self, first_seq: int, last_seq: int) -> IndexRows:
        """The ``nodes`` and ``edges`` rows stamped with a sequence number in [first_seq, last_seq],
        in sequence order (``ids`` left empty)."""

    @abc.abstractmethod
    def index_lookup(self, ids: Iterable[str], edges: Iterable[tuple[str, str, str]]) -> IndexRows:
        """What the graph index holds for these node ids and these (src, dst, kind) edges: their
        integers, their ``nodes`` rows and their ``edges`` rows, whatever their sequence number."""

    @abc.abstractmethod
    def batch_ranges(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, int, int]]:
        """The next ``batches`` rows after id ``after``, as (id, first_seq, last_seq) by id."""

    @abc.abstractmethod
    def stray_ids(self, limit: int) -> tuple[int, list[tuple[int, str]]]:
        """The ``ids`` rows no node or edge uses: how many, and the first ``limit`` of them
        (integer, id) by integer."""


class EventLog(Protocol):
    """Accepted events: written all-or-nothing, idempotent on their digest, never changed."""

    @abc.abstractmethod
    def ingest(self, events: Sequence[ParsedEvent], *, actor: str | None = None) -> IngestResult:
        """Store validated events all-or-nothing; events already stored are counted as duplicates.

        Writers go through :class:`opslineage.ingest.IngestPipeline`, which also appends
        checkpoints; this is the storage step it calls.

        Args:
            events: the batch.
            actor: who wrote it, recorded on the batch (not part of the state digest).

        Raises:
            StoreError: the batch conflicts with what is stored (e.g. a policy version re-registered
                with different content), or ``actor`` is malformed; nothing of the batch is written.
        """

    @abc.abstractmethod
    def ingest_many(
        self,
        chunks: Iterable[Sequence[ParsedEvent]],
        *,
        actor: str | None = None,
        each: Callable[[IngestResult], object] | None = None,
    ) -> IngestResult:
        """Like :meth:`ingest`, for a stream of chunks committed as one transaction: an error
        raised while ``chunks`` is iterated (say, an invalid event in a file) writes nothing.

        ``each`` is called with every chunk's own result, in order, before the commit (so they
        hold only if this returns).
        """

    @abc.abstractmethod
    def events(
        self, *, run_id: str | None = None, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        """Stored events in sequence order, optionally of one run."""

    @abc.abstractmethod
    def raw_events(self, *, after: int = 0, limit: int = 1000) -> list[RawEvent]:
        """Stored events with their bodies as stored (artifact references in place), archived
        bodies read from their segments."""

    @abc.abstractmethod
    def stored_events(self, *, after: int = 0, limit: int = 1000) -> list[EventRow]:
        """Stored rows as they are: an archived row's body is empty, its segment named."""

    @abc.abstractmethod
    def as_of_seq(self, when: datetime) -> int:
        """The last sequence number the store held at ``when`` (0 when it was empty)."""

    @abc.abstractmethod
    def counts(self) -> dict[str, int]:
        """Row counts: events, artifacts, nodes, edges, and nodes per ``<kind>:<type>``."""

    @abc.abstractmethod
    def state_digest(self) -> str:
        """A digest over every stored row, archived payloads read as if hot, for checking that
        content is byte-for-byte unchanged (archiving leaves it the same)."""


class ArtifactReader(Protocol):
    """Content-addressed artifacts, stored once, by digest (``sha256:<hex>``)."""

    @abc.abstractmethod
    def artifacts(self, digests: Iterable[str]) -> dict[str, bytes]:
        """Canonical content bytes of artifacts by digest; unknown digests are left out."""

    @abc.abstractmethod
    def artifact(self, digest: str) -> bytes:
        """One artifact's content bytes.

        Raises:
            StoreError: no such artifact.
        """

    @abc.abstractmethod
    def artifact_contents(self, node_type: str, as_of: int | None = None) -> list[dict[str, Any]]:
        """The decoded contents of every artifact of ``node_type``, in the order recorded."""


class LogStorage(Protocol):
    """The transparency log's stored tree and checkpoints (see :mod:`opslineage.ledger`): leaf i
    is the event of sequence i + 1."""

    @abc.abstractmethod
    def leaf_form(self) -> int:
        """How the log's leaves are made: 1 (the full canonical event) or 2 (its digest and body,
        artifacts by digest); see :func:`opslineage.store.base.event_leaf`."""

    @abc.abstractmethod
    def log_size(self) -> int:
        """How many leaves the log has (the last sequence number)."""

    @abc.abstractmethod
    def log_node(self, level: int, index: int) -> bytes:
        """The stored hash of the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level).

        Raises:
            StoreError: no such node (the tree is smaller).
        """

    @abc.abstractmethod
    def log_range(self, level: int, start: int, end: int) -> dict[int, bytes]:
        """Stored hashes of the perfect subtrees at ``level`` with index in [start, end)."""

    @abc.abstractmethod
    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        """Keep a signed checkpoint (its signed-note text); one per tree size."""

    @abc.abstractmethod
    def checkpoints(self) -> list[CheckpointRow]:
        """Every stored checkpoint, smallest tree size first."""

    @abc.abstractmethod
    def latest_checkpoint(self) -> CheckpointRow | None:
        """The checkpoint of the largest tree size, if any."""


class ArchiveTier(Protocol):
    """Payloads in two tiers: hot, in the store, or archived, in segment files. Only these
    methods see the tiers; every other read returns archived payloads as if they were hot."""

    @abc.abstractmethod
    def hot_rows(self, *, after: int, through_seq: int, limit: int) -> HotRows:
        """The next hot events with ``after < seq <= through_seq``, at most ``limit``, and the hot
        artifacts those events first stored."""

    @abc.abstractmethod
    def add_segment(self, segment: SegmentInfo, seqs: Sequence[int], artifacts: Sequence[str]) -> None:
        """Record a written segment and blank the payloads of the events and artifacts it holds, in
        one transaction.

        Raises:
            StoreError: one of those rows is no longer hot (another process archived it); nothing
                is changed.
        """

    @abc.abstractmethod
    def segments(self) -> list[SegmentInfo]:
        """Every archive segment, oldest first."""

    @abc.abstractmethod
    def default_archive_dir(self) -> Path | None:
        """Where segments go when no directory is given or remembered; None: there is no default."""

    @abc.abstractmethod
    def archive(self, directory: str | os.PathLike[str] | None = None) -> Archive:
        """The store's archive: ``directory`` if given (and remembered for later reads), else
        ``$OPSLINEAGE_ARCHIVE_DIR``, else the directory remembered, else the default.

        Raises:
            StoreError: none of those names a directory.
        """

    @abc.abstractmethod
    def thaw_body(self, seq: int, body: bytes, segment: str | None, digest: bytes) -> bytes:
        """An event's body as :meth:`EventLog.stored_events` gave it (``digest`` its row's), from
        its segment when it is archived, opened when it is sealed.

        Raises:
            StoreError: the segment is missing, altered, or does not hold the event, or the body
                is sealed and does not open.
        """


class Encryption(Protocol):
    """Encryption at rest: what the store seals, the key-encryption key and the data keys it wraps
    (see :mod:`opslineage.store.keys` and :mod:`opslineage.store.sealing`)."""

    seal_policy: SealPolicy | None

    @abc.abstractmethod
    def encryption(self) -> str | None:
        """What the store seals: ``restricted`` records, ``all``, or nothing (None)."""

    @abc.abstractmethod
    def enable_encryption(self, mode: str) -> None:
        """Seal ``restricted`` records, or ``all``, from now on."""

    @abc.abstractmethod
    def use_kek(self, kek: Kek | None) -> None:
        """Use ``kek`` (None: look it up again) rather than ``$OPSLINEAGE_KEK`` or the key file."""

    @abc.abstractmethod
    def default_kek_path(self) -> Path | None:
        """Where the KEK file goes when none is named; None: there is no default."""

    @abc.abstractmethod
    def kek_path(self) -> Path | None:
        """The KEK file: ``$OPSLINEAGE_KEK_FILE``, else the one recorded, else the default."""

    @abc.abstractmethod
    def load_kek(self) -> Kek:
        """The KEK in force."""

    @abc.abstractmethod
    def data_keys(self) -> DataKeys:
        """The store's data keys, unwrapped on first use."""

    @abc.abstractmethod
    def data_key_rows(self) -> list[DataKeyRow]:
        """Every data key, oldest first."""

    @abc.abstractmethod
    def rewrap_data_keys(self, wrapped: list[tuple[str, bytes]], kek: Kek) -> None:
        """Replace the wrapped bytes of the live data keys (key id → wrapped under ``kek``) and
        record ``kek``'s id, in one transaction.

        Raises:
            StoreError: a live key is missing from ``wrapped`` (a key was made or shredded meanwhile).
        """

    @abc.abstractmethod
    def sealed_payloads(self, key_ids: Sequence[str]) -> SealedRows:
        """The hot event bodies and artifact contents sealed by any of ``key_ids``."""

    @abc.abstractmethod
    def artifact_rows(self, digests: Iterable[str]) -> dict[str, tuple[str, int]]:
        """Artifacts by digest → (type, sequence number of the event that first stored it)."""

    @abc.abstractmethod
    def shred_scope(
        self,
        fresh: DataKeyRow | None,
        events: Sequence[tuple[int, bytes]],
        artifacts: Sequence[tuple[str, bytes]],
        keys: Sequence[str],
        blanks: Sequence[tuple[str, bytes]],
    ) -> None:
        """In one transaction: add the ``fresh`` data key, store the re-sealed event bodies (seq →
        payload) and contents (digest → payload), shred the data ``keys``, and blank contents to
        their shredded envelopes (digest → envelope).

        Raises:
            StoreError: a row is not as planned (changed meanwhile); nothing is changed.
        """


class Settings(Protocol):
    """Named store settings (the log's origin, public key, checkpoint policy, archive directory …)."""

    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A store setting, None when it is not set."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Set a store setting."""


class AccessLogStorage(Protocol):
    """The access log's rows, stored tree and checkpoints: a Merkle log of its own beside the
    lineage log, leaf i being the access event of sequence i + 1. Everything is append-only."""

    @abc.abstractmethod
    def append_access(self, rows: Sequence[AccessRow], *, durable: bool = True) -> list[int]:
        """Append access events, their node index and the Merkle nodes they complete, in one
        transaction; returns the sequence numbers given to them, in order.

        With ``durable`` false the commit returns before it is synced to disk (SQLite's
        ``synchronous=NORMAL``, PostgreSQL's ``synchronous_commit=off``): it survives the process
        crashing, not the machine losing power."""

    @abc.abstractmethod
    def access_size(self) -> int:
        """How many access events (leaves) the access log has."""

    @abc.abstractmethod
    def access_log_node(self, level: int, index: int) -> bytes:
        """The stored hash of the access log's perfect subtree at ``level`` and ``index``.

        Raises:
            StoreError: no such node (the tree is smaller).
        """

    @abc.abstractmethod
    def access_log_range(self, level: int, start: int, end: int) -> dict[int, bytes]:
        """Stored hashes of the access log's perfect subtrees at ``level`` with index in [start, end)."""

    @abc.abstractmethod
    def add_access_checkpoint(self, size: int, root: bytes, note: str) -> None:
        """Keep a signed checkpoint of the access log; one per tree size."""

    @abc.abstractmethod
    def access_checkpoints(self) -> list[CheckpointRow]:
        """Every access-log checkpoint, smallest tree size first."""

    @abc.abstractmethod
    def latest_access_checkpoint(self) -> CheckpointRow | None:
        """The access-log checkpoint of the largest tree size, if any."""

    @abc.abstractmethod
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
        """Access events after sequence ``after`` matching every filter given (by ``actor``, by a
        node id the event names, at or after ``since``, by ``outcome``), oldest first, at most ``limit``."""

    @abc.abstractmethod
    def access_rows(self, *, after: int = 0, limit: int = 1000) -> list[AccessEventRow]:
        """Stored access events with sequence numbers after ``after``, as they are, in order."""


class TokenRow(NamedTuple):
    """One API token as stored: only the SHA-256 of its secret (see :mod:`opslineage.governance.tokens`).

    ``namespaces`` empty: every namespace. Times are in UTC.
    """

    name: str
    digest: bytes
    role: str
    namespaces: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None


class TokenTable(Protocol):
    """The API tokens (the :class:`~opslineage.governance.TokenStorage` of the governance rules):
    added, never deleted, revoked at most once; a name is never used twice."""

    @abc.abstractmethod
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
        """Keep a new token; False (and nothing written) when ``name`` was ever used."""

    @abc.abstractmethod
    def token_by_hash(self, digest: bytes) -> TokenRow | None:
        """The token whose secret hashes to ``digest``, revoked or not; None when there is none."""

    @abc.abstractmethod
    def tokens(self) -> list[TokenRow]:
        """Every token ever created, oldest first."""

    @abc.abstractmethod
    def revoke_token(self, name: str, at: datetime) -> bool:
        """Mark the token ``name`` revoked at ``at``; False when there is none, or it was already."""

    @abc.abstractmethod
    def has_tokens(self) -> bool:
        """Whether any token was ever created (revoked and expired ones count)."""
