"""The hook behind :func:`opslineage.testing.capture_events`: while a capture is active, every
:class:`~opslineage.sdk.Tracer` made sends its events to it instead of its own transport."""

from __future__ import annotations

import threading

from opslineage.sdk.transports import Transport

__all__ = ["active_capture", "pop_capture", "push_capture"]

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
