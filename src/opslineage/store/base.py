"""The store interface: what the query, ledger and interop layers may ask of any backend."""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opslineage.model import ParsedEvent

if TYPE_CHECKING:
    from opslineage.store.archive import Archive

__all__ = [
    "ARCHIVE_DIR_ENV",
    "IngestResult",
    "NodeRecord",
    "SegmentInfo",
    "Store",
    "StoreError",
    "StoredEvent",
    "Walk",
]

ARCHIVE_DIR_ENV = "OPSLINEAGE_ARCHIVE_DIR"
_ARCHIVE_DIR_META = "archive.dir"


class StoreError(Exception):
    """The store cannot do what was asked: missing, unreadable, or a conflicting write."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one all-or-nothing ingest call did."""

    accepted: int
    duplicates: int
    first_seq: int | None = None
    last_seq: int | None = None


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as stored: its naming columns and the sequence number of the event that added it."""

    id: str
    kind: str
    type: str
    namespace: str | None
    name: str | None
    version: str | None
    digest: str | None
    seq: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, leaving out empty columns."""
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One accepted event: its sequence number, digest (hex) and the full event."""

    seq: int
    digest: str
    run_id: str | None
    event_type: str
    event_time: str
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One archive segment: its digest, the events and artifacts it holds, and their sizes
    (``raw_bytes`` as stored hot, ``stored_bytes`` compressed)."""

    digest: str
    first_seq: int
    last_seq: int
    events: int
    artifacts: int
    raw_bytes: int
    stored_bytes: int


@dataclass(slots=True)
class Walk:
    """The result of a graph walk: node ids with their distance, and the edges between them."""

    depths: dict[str, int] = field(default_factory=dict)
    edges: list[tuple[str, str, str, str | None]] = field(default_factory=list)


class Store(abc.ABC):
    """A lineage store. Accepted events are immutable; ingest is idempotent on event digest.

    Payloads may live in two tiers: hot, in the store, or archived, in segment files (see
    :mod:`opslineage.store.archive`). Every read method returns archived payloads as if they
    were hot; only :meth:`hot_rows`, :meth:`add_segment` and :meth:`segments` see the tiers.
    """

    url: str
    _archive: Archive | None = None

    def ingest(self, events: Sequence[ParsedEvent], *, actor: str | None = None) -> IngestResult:
        """Store validated events all-or-nothing; events already stored are counted as duplicates.

        Writers go through :class:`opslineage.ingest.IngestPipeline`, which also appends
        checkpoints; this is the storage step it calls.

        Args:
            events: the batch.
            actor: who wrote it, recorded on the batch (not part of :meth:`state_digest`).

        Raises:
            StoreError: the batch conflicts with what is stored (e.g. a policy version re-registered
                with different content), or ``actor`` is malformed; nothing of the batch is written.
        """
        return self.ingest_many([events], actor=actor)

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
    def node(self, node_id: str, as_of: int | None = None) -> NodeRecord | None:
        """The node with this id, as the store stood at sequence ``as_of``."""

    @abc.abstractmethod
    def nodes(self, ids: Iterable[str], as_of: int | None = None) -> dict[str, NodeRecord]:
        """Several nodes by id, in one round trip."""

    @abc.abstractmethod
    def nodes_with_content(
        self, ids: Iterable[str], as_of: int | None = None
    ) -> dict[str, tuple[NodeRecord, bytes | None]]:
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
        as_of: int | None = None,
    ) -> list[NodeRecord]:
        """Nodes matching all given filters, newest first."""

    @abc.abstractmethod
    def walk(
        self,
        start: str,
        *,
        direction: str,
        depth: int,
        as_of: int | None = None,
        stop_kinds: Sequence[str] = (),
    ) -> Walk:
        """All nodes within ``depth`` edges of ``start`` going ``up`` (to what it came from) or
        ``down`` (to what came from it), as one set-based query. Nodes whose kind is in
        ``stop_kinds`` are reached but not expanded."""

    @abc.abstractmethod
    def edges(
        self, ids: Iterable[str], *, direction: str, kinds: Sequence[str] = (), as_of: int | None = None
    ) -> list[tuple[str, str, str, str | None]]:
        """Edges leaving (``up``) or entering (``down``) any of ``ids``: (src, dst, kind, role)."""

    @abc.abstractmethod
    def touching_seqs(self, node_id: str, limit: int, as_of: int | None = None) -> list[int]:
        """Sequence numbers of the newest events that added an edge to or from ``node_id``."""

    @abc.abstractmethod
    def artifacts(self, digests: Iterable[str]) -> dict[str, bytes]:
        """Canonical content bytes of artifacts by digest."""

    @abc.abstractmethod
    def events(
        self, *, run_id: str | None = None, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        """Stored events in sequence order, optionally of one run."""

    def raw_events(self, *, after: int = 0, limit: int = 1000) -> list[tuple[int, bytes, bytes]]:
        """Stored events: (sequence number, digest, body with artifact references), archived
        bodies read from their segments."""
        return [
            (seq, digest, self.thaw_body(seq, body, segment))
            for seq, digest, body, segment in self.stored_events(after=after, limit=limit)
        ]

    @abc.abstractmethod
    def stored_events(
        self, *, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, bytes, bytes, str | None]]:
        """Stored rows as they are: (sequence number, digest, body with artifact references, the
        digest of the segment it is archived in); an archived row's body is empty."""

    @abc.abstractmethod
    def artifact(self, digest: str) -> bytes:
        """One artifact's content bytes.

        Raises:
            StoreError: no such artifact.
        """

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

    # The archive tier (see opslineage.store.archive).

    @abc.abstractmethod
    def hot_rows(
        self, *, after: int, through_seq: int, limit: int
    ) -> tuple[list[tuple[int, bytes, bytes]], list[tuple[str, bytes]]]:
        """The next hot events with ``after < seq <= through_seq``, at most ``limit``, as (seq, digest,
        body), and the hot artifacts those events first stored, as (digest, content)."""

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

    def default_archive_dir(self) -> Path | None:
        """Where segments go when no directory is given or remembered; None: there is no default."""
        return None

    def archive(self, directory: str | os.PathLike[str] | None = None) -> Archive:
        """The store's archive: ``directory`` if given (and remembered for later reads), else
        ``$OPSLINEAGE_ARCHIVE_DIR``, else the directory remembered, else the default.

        Raises:
            StoreError: none of those names a directory.
        """
        from opslineage.store.archive import Archive  # noqa: PLC0415 (the archive module imports this one)

        if directory is not None:
            resolved = str(Path(directory).resolve())
            if resolved != self.get_meta(_ARCHIVE_DIR_META):
                self.set_meta(_ARCHIVE_DIR_META, resolved)
            self._archive = Archive(resolved)
        elif self._archive is None:
            found = (
                os.environ.get(ARCHIVE_DIR_ENV)
                or self.get_meta(_ARCHIVE_DIR_META)
                or self.default_archive_dir()
            )
            if found is None:
                raise StoreError(
                    f"store {self.url} has no archive directory yet: give one (`opslineage archive"
                    f" --archive-dir DIR`, or ${ARCHIVE_DIR_ENV})"
                )
            self._archive = Archive(found)
        return self._archive

    def thaw_body(self, seq: int, body: bytes, segment: str | None) -> bytes:
        """An event's body as :meth:`stored_events` gave it, from its segment when it is archived.

        Raises:
            StoreError: the segment is missing, altered, or does not hold the event.
        """
        if segment is None:
            return body
        try:
            return self.archive().segment(segment).body(seq)
        except KeyError:
            raise StoreError(f"archive segment {segment} does not hold event {seq}") from None

    def _thaw_content(self, digest: str, content: bytes, segment: str | None) -> bytes:
        """An artifact's content, from its segment when it is archived."""
        if segment is None:
            return content
        try:
            return self.archive().segment(segment).content(digest)
        except KeyError:
            raise StoreError(f"archive segment {segment} does not hold artifact {digest}") from None

    def _with_content(self, rows: Iterable[Sequence[Any]]) -> dict[str, tuple[NodeRecord, bytes | None]]:
        """The answer of :meth:`nodes_with_content` from rows of the node columns, the artifact's
        content and the digest of the segment it is archived in."""
        return {
            row[0]: (
                NodeRecord(*row[:8]),
                None if row[8] is None else self._thaw_content(row[6], row[8], row[9]),
            )
            for row in rows
        }

    def _state_row(self, table: str, row: Sequence[Any]) -> tuple[Any, ...]:
        """A row of :meth:`state_digest`: events and artifacts rows come with their segment's
        digest last, which is dropped after their payload is thawed."""
        if table == "events":
            seq, digest, run_id, event_type, event_time, body, segment = row
            return (seq, digest, run_id, event_type, event_time, self.thaw_body(seq, body, segment))
        if table == "artifacts":
            digest, kind, content, seq, segment = row
            return (digest, kind, self._thaw_content(digest, content, segment), seq)
        return tuple(row)

    # The transparency log (see opslineage.ledger): leaf i is the event of sequence i + 1.

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
    def checkpoints(self) -> list[tuple[int, bytes, str]]:
        """Every stored checkpoint as (tree size, root hash, signed note), smallest first."""

    @abc.abstractmethod
    def latest_checkpoint(self) -> tuple[int, bytes, str] | None:
        """The checkpoint of the largest tree size as (tree size, root hash, signed note), if any."""

    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None:
        """A store setting (the log's origin, public key, checkpoint policy …)."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Set a store setting."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
