"""The archive tier (R12): old event bodies and artifact contents, moved out of the hot store into
compressed, content-addressed segment files that every read finds on its own.

A segment is zstd-compressed JSON lines: a header, then one line per event
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

__all__ = ["SEGMENT_EVENTS", "Archive", "ArchiveReport", "Segment", "archive_store", "encode_segment"]

SEGMENT_EVENTS = 4096
"""Events per segment: a cold read decompresses one whole segment, so this bounds its cost."""

FORMAT = "opslineage-segment/1"
_SUFFIX = ".jsonl.zst"
_LEVEL = 9  # measured on the demo: level 3 gives 10x, 9 gives 13x, 19 is 6x slower for 15x


class _Header(msgspec.Struct, tag="header"):
    format: str
    first_seq: int
    last_seq: int
    events: int
    artifacts: int


class _Event(msgspec.Struct, tag="event"):
    seq: int
    digest: str
    body: msgspec.Raw


class _Artifact(msgspec.Struct, tag="artifact"):
    digest: str
    content: msgspec.Raw


_decode_line = msgspec.json.Decoder(_Header | _Event | _Artifact).decode


@dataclass(frozen=True, slots=True)
class Segment:
    """A decoded segment: event bodies by sequence number, artifact contents by digest."""

    header: _Header
    bodies: dict[int, bytes]
    contents: dict[str, bytes]


def encode_segment(
    events: Sequence[tuple[int, bytes, bytes]], artifacts: Sequence[tuple[str, bytes]]
) -> tuple[bytes, SegmentInfo]:
    """The compressed segment holding ``events`` (seq, digest, body) and ``artifacts`` (digest,
    content), and its description; ``events`` must not be empty."""
    header = _Header(FORMAT, events[0][0], events[-1][0], len(events), len(artifacts))
    lines = [msgspec.json.encode(header)]
    lines += [
        msgspec.json.encode(_Event(seq, digest.hex(), msgspec.Raw(body))) for seq, digest, body in events
    ]
    lines += [msgspec.json.encode(_Artifact(digest, msgspec.Raw(content))) for digest, content in artifacts]
    raw = b"\n".join(lines) + b"\n"
    data = zstandard.ZstdCompressor(level=_LEVEL).compress(raw)
    payload = sum(len(body) for _, _, body in events) + sum(len(content) for _, content in artifacts)
    info = SegmentInfo(
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        first_seq=header.first_seq,
        last_seq=header.last_seq,
        events=header.events,
        artifacts=header.artifacts,
        raw_bytes=payload,
        stored_bytes=len(data),
    )
    return data, info


def _decode_segment(data: bytes) -> Segment:
    lines = zstandard.ZstdDecompressor().decompress(data).splitlines()
    header = _decode_line(lines[0])
    if not isinstance(header, _Header) or header.format != FORMAT:
        raise ValueError(f"not an {FORMAT} segment")
    bodies: dict[int, bytes] = {}
    contents: dict[str, bytes] = {}
    for line in lines[1:]:
        record = _decode_line(line)
        if isinstance(record, _Event):
            bodies[record.seq] = bytes(record.body)
        elif isinstance(record, _Artifact):
            contents[record.digest] = bytes(record.content)
    if (len(bodies), len(contents)) != (header.events, header.artifacts):
        raise ValueError("its header's counts differ from its lines")
    return Segment(header, bodies, contents)


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
            return _decode_segment(data)
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
