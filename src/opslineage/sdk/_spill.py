"""The bounded spill: where events wait on disk while their sink is down.

One :class:`Spill` per sink name in a directory: append-only JSON-lines segment files named
``<name>-<time_ns>-<pid>-<random>.jsonl`` (mode 0600, in a 0700 directory), each ``flock``-ed by
the process writing it. Events are read back oldest first. A spill holds at most ``cap`` bytes:
past it, whole segments are evicted oldest first (each segment is about an eighth of the cap), and
the events they held are counted in :attr:`Spill.evicted`; what does not fit even in an empty
spill is refused and counted in :attr:`Spill.dropped`. Segments left by a process that has ended
(their lock is free) are adopted when a spill for the same name is made, and replayed first.

Used by the SDK's emitter for every transport and by :class:`~opslineage.bus.NatsTransport`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["DEFAULT_SPILL_CAP", "REPORT_INTERVAL", "LossLog", "Spill", "default_spill_dir"]

DEFAULT_SPILL_CAP = 64 * 2**20
"""Bytes a spill holds at most by default (64 MiB)."""

REPORT_INTERVAL = 60.0
"""Seconds between two warnings about events dropped or evicted (the first is logged at once)."""

_SEGMENTS = 8  # segments a full spill is cut into: the granularity of eviction
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

log = logging.getLogger("opslineage")


def default_spill_dir() -> Path:
    """Where undelivered events wait by default: ``$XDG_CACHE_HOME/opslineage/spill`` (or ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "opslineage" / "spill"


class LossLog:
    """Warns about events given up on, at most once per :data:`REPORT_INTERVAL` seconds.

    Args:
        where: what lost them, named in the message (never a credential).
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self._logged: dict[str, int] = {}
        self._next = 0.0
        self._lock = threading.Lock()

    def report(self, counts: dict[str, int], *, now: bool = False) -> None:
        """Log ``counts`` (totals so far, e.g. ``{"dropped": 3}``) when they changed since the last
        warning and the interval has passed (or ``now``)."""
        if counts == self._logged or not any(counts.values()):
            return
        with self._lock:
            moment = time.monotonic()
            if counts == self._logged or (moment < self._next and not now):
                return
            self._logged, self._next = dict(counts), moment + REPORT_INTERVAL
        totals = ", ".join(f"{count} {what}" for what, count in counts.items())
        log.warning("opslineage: %s: events given up on so far: %s", self.where, totals)


@dataclass
class _Segment:
    path: Path
    file: IO[bytes]
    size: int  # bytes on disk
    remaining: int  # lines not yet sent
    offset: int = 0  # where the first unsent line starts


class Spill:
    """Undelivered events of one sink, on disk, bounded, oldest first. Thread-safe.

    Args:
        directory: where the segment files go (made 0700 when first written).
        name: the sink's name; segments of ended processes with the same name are adopted.
        cap: bytes held at most (at least one segment's worth is always allowed).

    Raises:
        ValueError: ``cap`` is not positive.
    """

    def __init__(self, directory: str | Path, name: str, *, cap: int = DEFAULT_SPILL_CAP) -> None:
        if cap <= 0:
            raise ValueError("the spill cap must be positive")
        self.directory = Path(directory)
        self.name = _UNSAFE.sub("_", name) or "events"
        self.cap = cap
        self.evicted = 0
        self.dropped = 0
        self._segment_size = max(1, cap // _SEGMENTS)
        self._segments: deque[_Segment] = deque()
        self._own: _Segment | None = None  # the segment being appended to, last in _segments
        self._reading: tuple[_Segment, list[int]] | None = None  # head segment, offsets after each line read
        self._pending = 0
        self._bytes = 0
        self._closed = False
        self._lock = threading.Lock()
        self._adopt()

    @property
    def pending(self) -> int:
        """Events held, not yet sent."""
        return self._pending

    @property
    def size(self) -> int:
        """Bytes the spill's files take on disk."""
        return self._bytes

    def _adopt(self) -> None:
        try:
            paths = sorted(self.directory.glob(f"{self.name}-*.jsonl"))
        except OSError:
            return
        mine = re.compile(rf"{re.escape(self.name)}-\d{{20}}-\d+-[0-9a-f]{{8}}\.jsonl")
        for path in paths:
            if not mine.fullmatch(path.name):
                continue  # another sink's name that starts with this one
            segment = _adopted(path)
            if segment is not None:
                self._segments.append(segment)
                self._pending += segment.remaining
                self._bytes += segment.size
                log.info("opslineage: replaying %d event(s) left in %s", segment.remaining, path)

    def append(self, lines: list[bytes]) -> int:
        """Write events (JSON, no newline) after the ones held, evicting the oldest past the cap.

        Returns:
            how many were written. Of the others, the oldest that the newest leave no room for
            are counted in :attr:`evicted`, and any bigger than the cap in :attr:`dropped`.

        Raises:
            OSError: the directory or a file cannot be written; nothing was written.
        """
        with self._lock:
            if self._closed:
                raise OSError("the spill is closed")
            kept: list[bytes] = []
            room = self.cap
            for line in reversed(lines):  # the newest first, as many as an empty spill holds
                if len(line) + 1 > self.cap:
                    self.dropped += 1
                elif len(line) + 1 > room:
                    self.evicted += 1
                else:
                    room -= len(line) + 1
                    kept.append(line)
            fits = len(kept)
            data = b"".join(line + b"\n" for line in reversed(kept))
            while self._segments and self._bytes + len(data) > self.cap:
                self._evict()
            if data:
                if self._own is None or self._own.size >= self._segment_size:
                    self._own = self._create()
                    self._segments.append(self._own)
                self._own.file.write(data)
                self._own.file.flush()
                os.fsync(self._own.file.fileno())
                self._own.size += len(data)
                self._own.remaining += fits
                self._bytes += len(data)
                self._pending += fits
            return fits

    def read(self, limit: int) -> list[bytes]:
        """Up to ``limit`` of the oldest unsent events; :meth:`commit` says how many were sent."""
        with self._lock:
            while self._segments and not self._closed:
                segment = self._segments[0]
                segment.file.seek(segment.offset)
                lines: list[bytes] = []
                offsets: list[int] = []
                while len(lines) < limit and (line := segment.file.readline()):
                    if line.strip():
                        lines.append(line.strip())
                        offsets.append(segment.file.tell())
                    elif not lines:  # a blank line before any unsent one: skip it for good
                        segment.offset = segment.file.tell()
                if lines:
                    self._reading = (segment, offsets)
                    return lines
                self._pending -= segment.remaining  # nothing left to read, whatever was counted
                segment.remaining = 0
                self._remove_head()
            return []

    def commit(self, count: int) -> None:
        """Mark the first ``count`` events of the last :meth:`read` as sent."""
        with self._lock:
            if self._reading is None or count <= 0 or self._closed:
                return
            segment, offsets = self._reading
            self._reading = None
            if not self._segments or self._segments[0] is not segment:  # evicted meanwhile, yet sent
                self.evicted -= count
                return
            segment.offset = offsets[count - 1]
            segment.remaining -= count
            self._pending -= count
            if segment.remaining <= 0:
                self._pending -= segment.remaining
                self._remove_head()

    def close(self) -> None:
        """Release the files: those fully sent are removed, the rest kept for the next spill."""
        with self._lock:
            self._closed = True
            for segment in self._segments:
                if segment.remaining <= 0:
                    segment.path.unlink(missing_ok=True)
                segment.file.close()
            self._segments.clear()
            self._own = None

    def _create(self) -> _Segment:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{self.name}-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        path = self.directory / name
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        file = os.fdopen(descriptor, "a+b")
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return _Segment(path, file, 0, 0)

    def _evict(self) -> None:
        segment = self._segments[0]
        self.evicted += max(0, segment.remaining)
        self._pending -= max(0, segment.remaining)
        segment.remaining = 0
        self._remove_head()

    def _remove_head(self) -> None:
        segment = self._segments.popleft()
        self._bytes -= segment.size
        if segment is self._own:
            self._own = None
        segment.path.unlink(missing_ok=True)
        segment.file.close()


def _adopted(path: Path) -> _Segment | None:
    """The segment a process that has ended left behind; None while its writer lives."""
    try:
        file = path.open("a+b")
    except OSError:
        return None
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(file.fileno()).st_nlink == 0:  # replayed and removed since it was listed
            raise BlockingIOError
        file.seek(0)
        remaining = sum(1 for line in file if line.strip())
        size = file.tell()
    except OSError:
        file.close()
        return None
    return _Segment(path, file, size, remaining)
