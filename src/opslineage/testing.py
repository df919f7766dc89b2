"""Test helpers for pipelines that record lineage: capture what a :class:`~opslineage.Tracer` emits.

After structlog's ``capture_logs()`` and OpenTelemetry's in-memory span exporter::

    from opslineage.testing import capture_events

    def test_my_pipeline_records_its_remediation():
        with capture_events() as captured:
            run_my_pipeline()                      # makes its own Tracer(...) inside
        actions = captured.of_job("remediation.restart")
        assert actions[-1]["eventType"] == "COMPLETE"

Every tracer made inside the block (in any thread) delivers to the capture instead of its own
store or transport, synchronously, so events are visible as soon as a step ends and nothing is
written anywhere. ``captured.tracer(...)`` makes a tracer bound to the capture explicitly. Each
event is checked as the store checks it (:func:`opslineage.model.parse_event`): an event the
store would refuse is kept out of :attr:`CapturedEvents.events`, listed in
:attr:`CapturedEvents.refused` with the parser's message, and, unless ``strict=False``, raised as
:class:`~opslineage.model.InvalidEvent` when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opslineage.model import InvalidEvent, parse_event
from opslineage.sdk.context import pop_capture, push_capture
from opslineage.sdk.tracer import Tracer
from opslineage.sdk.transports import TransportError

__all__ = ["CapturedEvents", "Refusal", "capture_events"]


@dataclass(frozen=True)
class Refusal:
    """An event the store would refuse, and the parser's reason."""

    event: dict[str, Any]
    error: InvalidEvent

    @property
    def reason(self) -> str:
        """The message the store gives for it."""
        return str(self.error)


class CapturedEvents:
    """The events captured by :func:`capture_events`, in the order they were emitted.

    Attributes:
        events: every accepted OpenLineage event, as a dict.
        refused: every event the store would refuse, with its reason.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.refused: list[Refusal] = []

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Check and keep a batch (the transport contract).

        Raises:
            TransportError: some events would be refused by the store; the others are kept.
        """
        refused = 0
        for event in events:
            try:
                parse_event(event)
            except InvalidEvent as error:
                self.refused.append(Refusal(event, error))
                refused += 1
            else:
                self.events.append(event)
        if refused:
            raise TransportError(str(self.refused[-1].error), refused=refused)

    def close(self) -> None:
        """Nothing to release: the events stay readable after a tracer closes."""

    def tracer(self, namespace: str = "test", **options: Any) -> Tracer:
        """A synchronous :class:`~opslineage.Tracer` bound to this capture."""
        return Tracer(namespace, transport=self, sync=True, **options)

    def of_job(self, name: str) -> list[dict[str, Any]]:
        """The captured events of the job named ``name``."""
        return [event for event in self.events if event.get("job", {}).get("name") == name]

    def of_run(self, run_id: str) -> list[dict[str, Any]]:
        """The captured events of the run ``run_id`` (START, then COMPLETE or FAIL)."""
        return [event for event in self.events if event.get("run", {}).get("runId") == run_id]

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events)


@contextmanager
def capture_events(*, strict: bool = True) -> Iterator[CapturedEvents]:
    """Capture the events of every tracer made inside the block.

    Args:
        strict: when the block ends without an exception, raise the first refusal.

    Yields:
        The capture; read it inside or after the block.

    Raises:
        InvalidEvent: with ``strict``, an event the store would refuse was emitted (its message
            is the store's).
    """
    captured = CapturedEvents()
    push_capture(captured)
    try:
        yield captured
    finally:
        pop_capture(captured)
    if strict and captured.refused:
        raise captured.refused[0].error
