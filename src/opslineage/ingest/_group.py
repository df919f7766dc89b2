"""Group commit: many concurrent requests, one transaction for whatever arrived meanwhile.

A :class:`GroupCommitter` serves the coroutines of one event loop (the HTTP server's request
handlers). Each submits a unit of events and waits; one drain task takes every unit queued so
far, stores them through :meth:`IngestPipeline.ingest_each` (one transaction; each unit alone
when the store refuses that) and answers each waiter with its own unit's outcome after the
commit. While a commit runs, the requests that arrive wait in their sockets and make up the next
group, so one commit pays for many requests.

The commit runs on the loop's own thread. A committer thread beside the loop was measured
slower on these machines: both threads are busy with Python, and every SQLite call the committer
makes releases and re-takes the GIL, so each hand-over waited for the other thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opslineage.ingest._pipeline import IngestPipeline, RawEvent
from opslineage.store import IngestResult, StoreError

__all__ = ["GroupCommitter"]


@dataclass(slots=True)
class _Pending:
    events: Sequence[RawEvent]
    actor: str
    answer: asyncio.Future[IngestResult]


class GroupCommitter:
    """Groups the units that coroutines of one event loop submit into shared transactions.

    Args:
        open_pipeline: makes the pipeline to write through, on first use (and again after it
            failed to open); its store is closed by :meth:`close`.
        max_events: the most events one transaction takes (a unit is never split).
    """

    def __init__(self, open_pipeline: Callable[[], IngestPipeline], *, max_events: int = 2000) -> None:
        self._open = open_pipeline
        self._max_events = max_events
        self._pipeline: IngestPipeline | None = None
        self._pending: list[_Pending] = []
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False
        self.commits = 0  # ingest_each calls made, for tests and benchmarks

    async def ingest(self, events: Sequence[RawEvent], *, actor: str) -> IngestResult:
        """Store one all-or-nothing unit together with the others queued now.

        Raises:
            InvalidEvent: an event of the unit is invalid; nothing of it is stored.
            StoreError: the store refused the unit, or the committer is closed; nothing of the
                unit is stored.
            Exception: what the store raised when it could not be reached (nothing of the unit
                is stored).
        """
        if self._closed:
            raise StoreError("the ingest committer is closed")
        answer: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(events, actor, answer))
        if self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())
        return await answer

    async def close(self) -> None:
        """Commit what is queued, then close the store; later calls to :meth:`ingest` are refused."""
        self._closed = True
        if self._drainer is not None:
            await self._drainer
        if self._pipeline is not None:
            self._pipeline.store.close()
            self._pipeline = None

    async def _drain(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # let the handlers already running queue their units too
                self._commit(self._take())
        finally:
            self._drainer = None

    def _take(self) -> list[_Pending]:
        """The next group: the oldest units queued, up to ``max_events`` (at least one)."""
        count, events = 0, 0
        for pending in self._pending:
            if count and events + len(pending.events) > self._max_events:
                break
            count += 1
            events += len(pending.events)
        group, self._pending = self._pending[:count], self._pending[count:]
        return group

    def _commit(self, group: list[_Pending]) -> None:
        by_actor: dict[str, list[_Pending]] = {}
        for pending in group:
            by_actor.setdefault(pending.actor, []).append(pending)
        for actor, members in by_actor.items():
            try:
                if self._pipeline is None:
                    self._pipeline = self._open()
                outcomes = self._pipeline.ingest_each([pending.events for pending in members], actor=actor)
            except Exception as error:  # the store is unavailable: every member hears it
                for pending in members:
                    if not pending.answer.done():  # its request may have been cancelled
                        pending.answer.set_exception(error)
                continue
            finally:
                self.commits += 1
            for pending, outcome in zip(members, outcomes, strict=True):
                if pending.answer.done():
                    continue
                if isinstance(outcome, IngestResult):
                    pending.answer.set_result(outcome)
                else:
                    pending.answer.set_exception(outcome)
