"""The archive tier (R12): old event bodies and artifact contents, moved out of the hot store into
compressed, content-addressed segment files that every read finds on its own.

A segment is zstd-compressed JSON lines: a header (:class:`SegmentHeader`, which lists the
sequence numbers and artifact digests held and the length of every line), then one line per event
(``{"type":"event","seq":N,"digest":HEX,"body":{…}}``) and one per artifact
(``{"type":"artifact","digest":"sha256:…","content":{…}}``). Bodies and contents are the stored
canonical bytes, written and read back verbatim. A segment's file is named by the SHA-256 of its
bytes (``<hex>.jsonl.zst``), and the store records that digest next to the rows it took. The hot
store keeps every row, every id, digest, node and edge; only an archived row's payload is blanked,
which the store's triggers allow once and in no other way.

:func:`archive_store` moves events up to a sequence number, one segment per transaction. A segment
file is written and synced before the transaction that points at it, so a crash leaves at worst a
file nothing refers to.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from opslineage.store.base import SegmentInfo, Store, StoreError

__all__ = [
    "SEGMENT_EVENTS",
    "Archive",
    "ArchiveReport",
    "Segment",
    "SegmentHeader",
    "archive_store",
    "encode_segment",
]

SEGMENT_EVENTS = 1024
"""Events per segment: the demo's events compress best (27x) at 1,024 to 2,048. A cold read
decompresses one whole segment (about 0.6 ms for 1,024 of the demo's events) and decodes only
the record it wants."""

FORMAT = "opslineage-segment/1"
_SUFFIX = ".jsonl.zst"
# Measured on 1,024 of the demo's events: level 3 gives 21x in 5 ms, 9 gives 27x in 28 ms, and
# 19 gives 30x in 450 ms.
_LEVEL = 9


class SegmentHeader(msgspec.Struct, tag="header"):
    """A segment's first line: what it holds, and the length of each line after it (events in
    ``seqs`` order, then artifacts in ``artifacts`` order), so one record is read without
    decoding the others."""

    format: str
    first_seq: int
    last_seq: int
    seqs: list[int]
    artifacts: list[str]
    lengths: list[int]


class _Event(msgspec.Struct, tag="event"):
    seq: int
    digest: str
    body: msgspec.Raw


class _Artifact(msgspec.Struct, tag="artifact"):
    digest: str
    content: msgspec.Raw


_decode_header = msgspec.json.Decoder(SegmentHeader).decode
_decode_event = msgspec.json.Decoder(_Event).decode
_decode_artifact = msgspec.json.Decoder(_Artifact).decode


class Segment:
    """A decompressed segment, whose records are decoded one at a time as they are asked for."""

    def __init__(self, data: bytes) -> None:
        """Index the decompressed bytes ``data`` by the lengths its header gives.

        Raises:
            ValueError: ``data`` is not a segment of this format.
        """
        end = data.find(b"\n")
        self.header = _decode_header(data[:end])
        if self.header.format != FORMAT:
            raise ValueError(f"not an {FORMAT} segment")
        spans = []
        for length in self.header.lengths:
            spans.append((end + 1, end + 1 + length))
            end += length + 1
        if end + 1 != len(data) or len(spans) != len(self.header.seqs) + len(self.header.artifacts):
            raise ValueError("its header does not describe its lines")
        count = len(self.header.seqs)
        self._data = data
        self._events = dict(zip(self.header.seqs, spans[:count], strict=True))
        self._artifacts = dict(zip(self.header.artifacts, spans[count:], strict=True))

    def body(self, seq: int) -> bytes:
        """The stored body of event ``seq``.

        Raises:
            KeyError: the segment does not hold it.
        """
        start, end = self._events[seq]
        record = _decode_event(self._data[start:end])
        if record.seq != seq:
            raise KeyError(seq)
        return bytes(record.body)

    def content(self, digest: str) -> bytes:
        """The content of artifact ``digest``.

        Raises:
            KeyError: the segment does not hold it.
        """
        start, end = self._artifacts[digest]
        record = _decode_artifact(self._data[start:end])
        if record.digest != digest:
            raise KeyError(digest)
        return bytes(record.content)


def encode_segment(
    events: Sequence[tuple[int, bytes, bytes]], artifacts: Sequence[tuple[str, bytes]]
) -> tuple[bytes, SegmentInfo]:
    """The compressed segment holding ``events`` (seq, digest, body) and ``artifacts`` (digest,
    content), and its description; ``events`` must not be empty."""
    lines = [
        msgspec.json.encode(_Event(seq, digest.hex(), msgspec.Raw(body))) for seq, digest, body in events
    ]
    lines += [msgspec.json.encode(_Artifact(digest, msgspec.Raw(content))) for digest, content in artifacts]
    header = SegmentHeader(
        FORMAT,
        first_seq=events[0][0],
        last_seq=events[-1][0],
        seqs=[seq for seq, _, _ in events],
        artifacts=[digest for digest, _ in artifacts],
        lengths=[len(line) for line in lines],
    )
    data = zstandard.ZstdCompressor(level=_LEVEL).compress(
        b"\n".join([msgspec.json.encode(header), *lines, b""])
    )
    payload = sum(len(body) for _, _, body in events) + sum(len(content) for _, content in artifacts)
    info = SegmentInfo(
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        first_seq=header.first_seq,
        last_seq=header.last_seq,
        events=len(events),
        artifacts=len(artifacts),
        raw_bytes=payload,
        stored_bytes=len(data),
    )
    return data, info


class Archive:
    """A directory of segments. Loaded segments are checked against their digest and cached."""

    def __init__(self, directory: str | os.PathLike[str], *, cache: int = 8) -> None:
        self.directory = Path(directory)
        self.segment: Callable[[str], Segment] = lru_cache(maxsize=cache)(self._load)

    def path(self, digest: str) -> Path:
        """Where the segment with this digest lives."""
        return self.directory / (digest.removeprefix("sha256:") + _SUFFIX)

    def write(self, data: bytes, digest: str) -> None:
        """Store a segment durably under its digest (kept as is when already there)."""
        path = self.path(digest)
        if path.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def remove(self, digest: str) -> None:
        """Delete a segment no store row refers to."""
        self.path(digest).unlink(missing_ok=True)

    def _load(self, digest: str) -> Segment:
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(
                f"archive segment {digest} is missing: no {path} (if the archive moved, point"
                " $OPSLINEAGE_ARCHIVE_DIR or `opslineage archive --archive-dir` at it)"
            ) from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"archive segment {path} does not match its digest: it was altered")
        try:
            return Segment(zstandard.ZstdDecompressor().decompress(data))
        except (zstandard.ZstdError, msgspec.DecodeError, ValueError) as error:
            raise StoreError(f"archive segment {path} is unreadable: {error}") from None


@dataclass
class ArchiveReport:
    """What one ``archive`` run moved, and what the whole archive holds."""

    directory: str
    through_seq: int
    moved: list[SegmentInfo]
    total: list[SegmentInfo]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "archive_dir": self.directory,
            "through_seq": self.through_seq,
            "moved": _sums(self.moved),
            "archive": _sums(self.total),
        }


def _sums(segments: Sequence[SegmentInfo]) -> dict[str, Any]:
    raw = sum(segment.raw_bytes for segment in segments)
    stored = sum(segment.stored_bytes for segment in segments)
    return {
        "segments": len(segments),
        "events": sum(segment.events for segment in segments),
        "artifacts": sum(segment.artifacts for segment in segments),
        "raw_bytes": raw,
        "stored_bytes": stored,
        "compression_ratio": round(raw / stored, 2) if stored else None,
    }


def archive_store(
    store: Store,
    through_seq: int,
    directory: str | os.PathLike[str] | None = None,
    *,
    segment_events: int = SEGMENT_EVENTS,
    on_progress: Callable[[int], None] | None = None,
) -> ArchiveReport:
    """Move the payloads of every hot event with sequence number up to ``through_seq``, and of the
    artifacts those events brought, into segments under ``directory`` (default: the store's).

    Args:
        on_progress: called with the number of events moved so far, after each segment.

    Raises:
        StoreError: the store has no archive directory and none was given, or a write failed
            (segments committed before it stay archived; nothing of the failed one is).
    """
    archive = store.archive(directory)
    moved: list[SegmentInfo] = []
    after = max((segment.last_seq for segment in store.segments()), default=0)
    while True:
        events, artifacts = store.hot_rows(after=after, through_seq=through_seq, limit=segment_events)
        if not events:
            break
        data, info = encode_segment(events, artifacts)
        archive.write(data, info.digest)
        try:
            store.add_segment(info, [seq for seq, _, _ in events], [digest for digest, _ in artifacts])
        except BaseException:
            if all(segment.digest != info.digest for segment in store.segments()):
                archive.remove(info.digest)
            raise
        moved.append(info)
        after = info.last_seq
        if on_progress:
            on_progress(sum(segment.events for segment in moved))
    return ArchiveReport(str(archive.directory), through_seq, moved, store.segments())
