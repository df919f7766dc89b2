"""What is in scope: the lineage context and the active event capture.

The lineage context flows through ``contextvars``: code running inside a step (also in threads or
tasks started with a copied context) sees the enclosing run as its parent and the latest
decision, prediction and feature set as its inputs. The capture is process-wide: while
:func:`opslineage.testing.capture_events` is active, every :class:`~opslineage.sdk.Tracer` made
sends its events to it instead of its own transport.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass

from opslineage.sdk.refs import Artifact
from opslineage.sdk.transports import Transport

__all__ = ["LineageContext", "active_capture", "current", "pop_capture", "push_capture"]


@dataclass(frozen=True)
class LineageContext:
    """What is in scope: the running step and the artifacts made so far in enclosing steps."""

    run_id: str | None = None
    job_namespace: str | None = None
    job_name: str | None = None
    features: Artifact | None = None
    prediction: Artifact | None = None
    decision: Artifact | None = None


_EMPTY = LineageContext()
_current: ContextVar[LineageContext] = ContextVar("opslineage_lineage", default=_EMPTY)


def current() -> LineageContext:
    """The lineage context of the calling code."""
    return _current.get()


_captures: list[Transport] = []
_lock = threading.Lock()


def push_capture(transport: Transport) -> None:
    """Make ``transport`` receive the events of every tracer made from now on."""
    with _lock:
        _captures.append(transport)


def pop_capture(transport: Transport) -> None:
    """End the capture ``transport`` (captures may nest; the innermost wins)."""
    with _lock:
        _captures.remove(transport)


def active_capture() -> Transport | None:
    """The innermost active capture, or None."""
    return _captures[-1] if _captures else None
