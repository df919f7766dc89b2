"""The store both backends subclass: every protocol of :mod:`opslineage.store.interfaces` in one
class, with what the backends share written once here, so that they keep only their SQL."""

from __future__ import annotations

import abc
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from opslineage.merkle import leaf_hash
from opslineage.model import ParsedEvent, join_event
from opslineage.store.interfaces import (
    AccessLogStorage,
    ArchiveTier,
    ArtifactReader,
    Encryption,
    EventLog,
    GraphReader,
    LogStorage,
    Settings,
    TokenTable,
)
from opslineage.store.keys import (
    ENCRYPTION_META,
    KEK_FILE_ENV,
    KEK_FILE_META,
    DataKeys,
    Kek,
    KeyUnavailable,
    kek_from_env,
    load_kek_file,
)
from opslineage.store.records import (
    Horizon,
    IngestResult,
    NodeContent,
    NodeRecord,
    RawEvent,
    SegmentInfo,
    StoredEvent,
    StoreError,
    Walk,
)
from opslineage.store.sealing import (
    SEALED_PREFIX,
    SHREDDED_PREFIX,
    Sealer,
    SealPolicy,
    artifact_aad,
    event_aad,
    open_payload,
    seal_all,
)
from opslineage.store.segments import Archive

__all__ = [
    "ARCHIVE_DIR_ENV",
    "LEAF_FORM_META",
    "IngestResult",
    "NodeRecord",
    "SegmentInfo",
    "Store",
    "StoreError",
    "StoredEvent",
    "Walk",
    "event_leaf",
]

ARCHIVE_DIR_ENV = "OPSLINEAGE_ARCHIVE_DIR"
ENCRYPTION_MODES = ("restricted", "all")
LEAF_FORM_META = "log.leaf_form"
"""The store setting naming how its log's leaves are made (see :func:`event_leaf`); unset: 1."""
_LEAF_V2 = b"opslineage-leaf/2\n"


def event_leaf(form: int, digest: bytes, body: bytes, canonical: bytes | None) -> bytes:
    """The log leaf of an event, by the store's leaf form.

    Form 1 (stores made before schema 9) hashes the full canonical event, artifact contents
    inline. Form 2 (every newer store) hashes the event's digest and its stored plaintext body,
    in which each artifact stands as its digest: the log commits to artifact contents through
    their digests, so a leaf can be recomputed after a content is shredded.

    Args:
        canonical: the full canonical event (needed by form 1 only).
    """
    if form == 1:
        if canonical is None:
            raise StoreError("a form-1 leaf needs the full event, and its artifacts are gone")
        return leaf_hash(canonical)
    return leaf_hash(leaf_data(digest, body))


def leaf_data(digest: bytes, body: bytes) -> bytes:
    """The bytes a form-2 leaf hashes: a tag, the event's digest and its stored plaintext body."""
    return _LEAF_V2 + digest + body


_ARCHIVE_DIR_META = "archive.dir"
_ARTIFACT_REF = re.compile(rb'"_content":"(sha256:[0-9a-f]{64})"')
_encode = msgspec.json.encode
_ALL = 1 << 62


class Store(
    GraphReader,
    EventLog,
    ArtifactReader,
    LogStorage,
    ArchiveTier,
    Encryption,
    Settings,
    AccessLogStorage,
    TokenTable,
    abc.ABC,
):
    """A lineage store. Accepted events are immutable; ingest is idempotent on event digest.

    Payloads may live in two tiers: hot, in the store, or archived, in segment files (see
    :mod:`opslineage.store.archive`). Every read method returns archived payloads as if they
    were hot; only the :class:`~opslineage.store.interfaces.ArchiveTier` methods see the tiers.
    """

    url: str
    _archive: Archive | None = None
    _keys: DataKeys | None = None
    _kek: Kek | None = None
    _encryption: str | None = None
    _leaf_form: int | None = None
    seal_policy: SealPolicy | None = None
    """Decides what of each event is sealed in a store that seals ``restricted`` records (the
    ingest pipeline sets it, from the label rules); a store sealing ``all`` needs none."""

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

    def node(self, node_id: str, as_of: Horizon = None) -> NodeRecord | None:
        """The node with this id, as the store stood at sequence ``as_of``."""
        return self.nodes([node_id], as_of).get(node_id)

    def raw_events(self, *, after: int = 0, limit: int = 1000) -> list[RawEvent]:
        """Stored events with their bodies as stored (artifact references in place), archived
        bodies read from their segments."""
        return [
            RawEvent(seq, digest, self.thaw_body(seq, body, segment, digest))
            for seq, digest, body, segment in self.stored_events(after=after, limit=limit)
        ]

    def as_of_seq(self, when: datetime) -> int:
        """The last sequence number the store held at ``when`` (0 when it was empty); a naive
        ``when`` is taken as UTC."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return self._last_seq_at(when.astimezone(UTC))

    @abc.abstractmethod
    def _last_seq_at(self, when: datetime) -> int:
        """The last sequence number of the batches committed at or before ``when`` (in UTC)."""

    # The archive tier (see opslineage.store.archive).

    def default_archive_dir(self) -> Path | None:
        """Where segments go when no directory is given or remembered; None: there is no default."""
        return None

    def archive(self, directory: str | os.PathLike[str] | None = None) -> Archive:
        """The store's archive: ``directory`` if given (and remembered for later reads), else
        ``$OPSLINEAGE_ARCHIVE_DIR``, else the directory remembered, else the default.

        Raises:
            StoreError: none of those names a directory.
        """
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

    def thaw_body(self, seq: int, body: bytes, segment: str | None, digest: bytes) -> bytes:
        """An event's body as :meth:`stored_events` gave it (``digest`` its row's), from its
        segment when it is archived, opened when it is sealed.

        Raises:
            StoreError: the segment is missing, altered, or does not hold the event; the body is
                sealed and does not open (:class:`~opslineage.store.sealing.Tampered`), or no
                KEK or the wrong one was given.
        """
        if segment is None:
            body = body.encode() if isinstance(body, str) else bytes(body)  # text: a row edited by hand
        else:
            try:
                body = self.archive().segment(segment).body(seq)
            except KeyError:
                raise StoreError(f"archive segment {segment} does not hold event {seq}") from None
        if body.startswith((SEALED_PREFIX, SHREDDED_PREFIX)):
            return open_payload(self.data_keys(), body, event_aad(bytes(digest)), f"event {seq}")
        return body

    def artifact_contents(self, node_type: str, as_of: int | None = None) -> list[dict[str, Any]]:
        """The decoded contents of every artifact of ``node_type`` (label rules, ownership
        entries …), in the order recorded: by sequence number, then ``set_at``."""
        records = self.find_nodes(kind="entity", type=node_type, limit=_ALL, as_of=as_of)
        stored = self.nodes_with_content([record.id for record in records], as_of)
        decoded = [
            (record.seq, content.get("set_at") or "", content)
            for record, raw in stored.values()
            if raw is not None and isinstance(content := msgspec.json.decode(raw), dict)
        ]
        return [content for *_, content in sorted(decoded, key=lambda item: item[:2])]

    def leaf_form(self) -> int:
        """How this store's log leaves are made (see :func:`event_leaf`)."""
        if self._leaf_form is None:
            self._leaf_form = int(self.get_meta(LEAF_FORM_META) or 1)
        return self._leaf_form

    # Encryption at rest (see opslineage.store.keys and opslineage.store.sealing).

    def encryption(self) -> str | None:
        """What the store seals: ``restricted`` records, ``all``, or nothing (None)."""
        if self._encryption is None:
            self._encryption = self.get_meta(ENCRYPTION_META) or ""
        return self._encryption or None

    def enable_encryption(self, mode: str) -> None:
        """Seal ``restricted`` records, or ``all``, from now on (never turned off: what was sealed
        stays sealed).

        Raises:
            StoreError: an unknown mode, or the store already seals more.
        """
        if mode not in ENCRYPTION_MODES:
            raise StoreError(f"encryption must be one of {', '.join(ENCRYPTION_MODES)}, not {mode!r}")
        if self.encryption() == "all" and mode != "all":
            raise StoreError("the store already seals every record (--encrypt-all); it cannot seal fewer")
        self.set_meta(ENCRYPTION_META, mode)
        self._encryption = mode

    def use_kek(self, kek: Kek | None) -> None:
        """Use ``kek`` (None: look it up again) rather than ``$OPSLINEAGE_KEK`` or the key file."""
        self._kek = kek
        self.data_keys().forget()

    def default_kek_path(self) -> Path | None:
        """Where the KEK file goes when none is named; None: there is no default."""
        return None

    def kek_path(self) -> Path | None:
        """The KEK file: ``$OPSLINEAGE_KEK_FILE``, else the one recorded, else the default."""
        found = os.environ.get(KEK_FILE_ENV) or self.get_meta(KEK_FILE_META)
        return Path(found) if found else self.default_kek_path()

    def load_kek(self) -> Kek:
        """The KEK: given by :meth:`use_kek`, else ``$OPSLINEAGE_KEK``, else the key file.

        Raises:
            KeyError_: none is to be had, or its file is unsafe or malformed.
        """
        if self._kek is not None:
            return self._kek
        kek = kek_from_env()
        if kek is not None:
            return kek
        path = self.kek_path()
        if path is None:
            raise KeyUnavailable(
                f"store {self.url} holds sealed payloads and no key-encryption key was given: set"
                " $OPSLINEAGE_KEK or $OPSLINEAGE_KEK_FILE"
            )
        return load_kek_file(path)

    def data_keys(self) -> DataKeys:
        """The store's data keys (unwrapped with the KEK on first use)."""
        if self._keys is None:
            self._keys = DataKeys(self, self.load_kek)
        return self._keys

    def _sealer(self) -> Sealer | None:
        """What seals this write's payloads; None when the store seals nothing.

        Raises:
            StoreError: the store seals restricted records and no policy says which they are.
        """
        mode = self.encryption()
        if mode is None:
            return None
        if mode == "all":
            return Sealer(self.data_keys(), seal_all)
        if self.seal_policy is None:
            raise StoreError(
                f"store {self.url} seals restricted records: write through opslineage.ingest.IngestPipeline,"
                " which decides which they are"
            )
        return Sealer(self.data_keys(), self.seal_policy)

    # Turning rows of the backends' queries into answers.

    def _thaw_content(self, digest: str, content: bytes, segment: str | None) -> bytes:
        """An artifact's content, from its segment when it is archived."""
        if segment is not None:
            try:
                content = self.archive().segment(segment).content(digest)
            except KeyError:
                raise StoreError(f"archive segment {segment} does not hold artifact {digest}") from None
        content = bytes(content)
        if content.startswith((SEALED_PREFIX, SHREDDED_PREFIX)):
            return open_payload(self.data_keys(), content, artifact_aad(digest), f"artifact {digest}")
        return content

    def _contents(self, rows: Iterable[Sequence[Any]]) -> dict[str, bytes]:
        """The answer of :meth:`artifacts` from rows of (digest, content, segment digest)."""
        return {digest: self._thaw_content(digest, content, segment) for digest, content, segment in rows}

    def _with_content(self, rows: Iterable[Sequence[Any]]) -> dict[str, NodeContent]:
        """The answer of :meth:`nodes_with_content` from rows of the node columns, the artifact's
        content and the digest of the segment it is archived in."""
        return {
            row[0]: NodeContent(
                NodeRecord(*row[:8]),
                None if row[8] is None else self._thaw_content(row[6], row[8], row[9]),
            )
            for row in rows
        }

    def _stored(self, rows: Iterable[Sequence[Any]]) -> list[StoredEvent]:
        """The answer of :meth:`events` from rows of (seq, digest, run id, event type, event time,
        body, segment digest); the artifacts the bodies refer to are read in one call."""
        thawed = [
            (seq, digest, run, kind, time, self.thaw_body(seq, body, segment, digest))
            for seq, digest, run, kind, time, body, segment in rows
        ]
        refs = {ref.decode() for row in thawed for ref in _ARTIFACT_REF.findall(row[5])}
        fetched = self.artifacts(refs) if refs else {}

        def artifact(digest: str) -> bytes:
            return fetched[digest] if digest in fetched else self.artifact(digest)

        return [
            StoredEvent(seq, digest.hex(), run, kind, time, join_event(body, artifact))
            for seq, digest, run, kind, time, body in thawed
        ]

    def _state_digest(self, tables: Iterable[tuple[str, Iterable[Sequence[Any]]]]) -> str:
        """The answer of :meth:`state_digest` from the rows of each query of
        :data:`~opslineage.store._rules.STATE_QUERIES`, in order: events and artifacts rows come
        with their segment's digest last, which is dropped after their payload is thawed."""
        digest = hashlib.sha256()
        for table, rows in tables:
            for row in rows:
                digest.update(_encode(self._state_row(table, row)))
        return digest.hexdigest()

    def _state_row(self, table: str, row: Sequence[Any]) -> tuple[Any, ...]:
        if table == "events":
            seq, digest, run_id, event_type, event_time, body, segment = row
            return (seq, digest, run_id, event_type, event_time, self.thaw_body(seq, body, segment, digest))
        if table == "artifacts":
            digest, kind, content, seq, segment = row
            return (digest, kind, self._thaw_content(digest, content, segment), seq)
        return tuple(row)

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
