"""The one error type that bad input raises, carrying where and why."""

from __future__ import annotations


class InvalidEvent(ValueError):
    """An event (or node id) that cannot be accepted.

    Args:
        reason: what is wrong, naming the field.
        line: the 1-based line or position in the input file, when known.
    """

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(f"line {line}: {reason}" if line is not None else reason)

    def at_line(self, line: int) -> InvalidEvent:
        """Return the same error located at ``line`` of an input file."""
        return InvalidEvent(self.reason, line)
