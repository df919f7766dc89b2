"""Group commit: many concurrent writers, one transaction for whatever they sent meanwhile.

A :class:`GroupCommitter` owns one committer thread and its own store. Callers (the HTTP
server's request handlers, from any thread or event loop) submit units of events; the thread
takes everything queued while the previous commit ran, stores it through
:meth:`IngestPipeline.ingest_each` (one transaction; each unit alone when the store refuses
that) and answers every caller with its own unit's outcome after the commit. One commit then
pays for many requests, where one transaction per request was bound by the commit's cost.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from opslineage.ingest._pipeline import IngestPipeline, Outcome, RawEvent
from opslineage.store import IngestResult, StoreError

__all__ = ["GroupCommitter"]

_STOP = None


@dataclass(slots=True)
class _Pending:
    events: Sequence[RawEvent]
    actor: str
    answer: Future[IngestResult]


class GroupCommitter:
    """One committer thread that groups concurrently submitted units into shared transactions.

    Args:
        open_pipeline: makes the pipeline the thread writes through (called on that thread, so a
            store that belongs to one thread is opened there); it is closed with :meth:`close`.
        max_events: the most events one transaction takes (a unit is never split).
    """

    def __init__(self, open_pipeline: Callable[[], IngestPipeline], *, max_events: int = 2000) -> None:
        self._open = open_pipeline
        self._max_events = max_events
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.commits = 0  # transactions the thread ran, for tests and benchmarks

    def submit(self, events: Sequence[RawEvent], *, actor: str) -> Future[IngestResult]:
        """Queue one all-or-nothing unit; the future holds its result after the commit, or the
        :class:`~opslineage.model.InvalidEvent` or :class:`StoreError` that refused it.

        Raises:
            StoreError: the committer is closed.
        """
        answer: Future[IngestResult] = Future()
        with self._lock:
            if self._closed:
                raise StoreError("the ingest committer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="opslineage-committer", daemon=True)
                self._thread.start()
            self._queue.put(_Pending(events, actor, answer))
        return answer

    async def ingest(self, events: Sequence[RawEvent], *, actor: str) -> IngestResult:
        """:meth:`submit` for an event loop: waits without blocking the loop.

        Raises:
            InvalidEvent: an event of the unit is invalid; nothing of it is stored.
            StoreError: the store refused the unit; nothing of it is stored.
        """
        return await asyncio.wrap_future(self.submit(events, actor=actor))

    def close(self) -> None:
        """Commit what is queued, stop the thread and close its store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(_STOP)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        try:
            pipeline = self._open()
        except Exception as error:  # the store cannot be opened now: tell who waits, retry on the next
            self._fail_all(error)
            return
        try:
            while (group := self._take()) is not None:
                self._commit(pipeline, group)
        finally:
            pipeline.store.close()

    def _take(self) -> list[_Pending] | None:
        """The next group: everything queued now, up to ``max_events``; None once stopped."""
        first = self._queue.get()
        if first is None:
            return None
        group, events = [first], len(first.events)
        while events < self._max_events:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is None:
                self._queue.put(_STOP)  # stop after this group
                break
            group.append(pending)
            events += len(pending.events)
        return group

    def _commit(self, pipeline: IngestPipeline, group: list[_Pending]) -> None:
        by_actor: dict[str, list[_Pending]] = {}
        for pending in group:
            by_actor.setdefault(pending.actor, []).append(pending)
        for actor, members in by_actor.items():
            try:
                outcomes = pipeline.ingest_each([pending.events for pending in members], actor=actor)
            except BaseException as error:  # the store is unavailable: every member hears it
                for pending in members:
                    pending.answer.set_exception(error)
                continue
            finally:
                self.commits += 1
            for pending, outcome in zip(members, outcomes, strict=True):
                _answer(pending.answer, outcome)

    def _fail_all(self, error: Exception) -> None:
        """Answer everything queued with ``error``; the next submit starts a new thread."""
        with self._lock:
            self._thread = None
            while True:
                try:
                    pending = self._queue.get_nowait()
                except queue.Empty:
                    return
                if pending is not None:
                    pending.answer.set_exception(error)


def _answer(answer: Future[IngestResult], outcome: Outcome) -> None:
    if isinstance(outcome, IngestResult):
        answer.set_result(outcome)
    else:
        answer.set_exception(outcome)
