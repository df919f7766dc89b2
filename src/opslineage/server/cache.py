"""A small cache of answers that may be served again for a few seconds: the server keeps its token
lookups and its quality figures in one each."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Fresh"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class Fresh(Generic[_K, _V]):
    """Answers by key, each served again for ``ttl`` seconds after it was computed; past
    ``entries`` keys, the oldest is dropped. Safe to share between threads (two threads missing
    the same key may both compute it).

    Args:
        ttl: seconds an answer stays fresh (0: never served again).
        entries: the most keys remembered.
    """

    def __init__(self, ttl: float, entries: int) -> None:
        self.ttl, self.entries = ttl, entries
        self._kept: dict[_K, tuple[float, _V]] = {}
        self._lock = threading.Lock()

    def get(self, key: _K, compute: Callable[[], _V]) -> _V:
        """The fresh answer for ``key``, else ``compute()``, kept for the next calls."""
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and now - kept[0] < self.ttl:
            return kept[1]
        value = compute()
        with self._lock:
            self._kept.pop(key, None)
            if len(self._kept) >= self.entries:
                self._kept.pop(next(iter(self._kept)))
            self._kept[key] = (now, value)
        return value
