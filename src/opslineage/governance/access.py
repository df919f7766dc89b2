"""Access events: who read or was refused what, when, from where, and with what outcome (the
content NIST SP 800-53 AU-3 asks of an audit record), and the trail they are recorded on.

One :class:`AccessEvent` is recorded per operation (an HTTP request, a command), naming the
node ids it returned or was refused. The read path records them through an :class:`AccessTrail`;
the store-backed trail keeps them in a Merkle log of their own.
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

__all__ = ["OUTCOMES", "AccessDenied", "AccessEvent", "AccessTrail", "Outcome"]

Outcome = Literal["allowed", "redacted", "denied", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("allowed", "redacted", "denied", "failed")
"""What became of an operation: answered in full, answered with payloads redacted, refused, or
allowed but ended in an error before it answered (a query past its time budget, a store gone)."""


class AccessEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One operation on the lineage, as the access log keeps it.

    Args:
        name: the operation, a stable name (``why``, ``node``, ``search``, ``bundle``,
            ``access-log`` …).
        actor: who: the principal's id (``token:<name>``, ``local:<user>``, ``anonymous``).
        role: the role it acted in (None: no role).
        at: when, RFC 3339 in UTC.
        client: where from: the client's address (``host:port``), or ``cli``.
        outcome: allowed, redacted, denied or failed.
        reason: why it was redacted, denied or failed.
        target: what was asked for (a node id, a path), when one thing was.
        nodes: the node ids the answer named (or the refused request asked for).
    """

    name: str
    actor: str
    role: str | None
    at: str
    client: str | None
    outcome: Outcome
    reason: str | None = None
    target: str | None = None
    nodes: list[str] = []


class AccessTrail(Protocol):
    """Where access events go."""

    def record(self, event: AccessEvent) -> None:
        """Keep ``event``."""


class AccessDenied(Exception):
    """A principal asked for what its role or namespaces do not allow.

    Args:
        operation: what was asked.
        reason: why it is refused, for the caller and the access log.
        authenticated: False when no valid credentials were shown (an HTTP 401, not a 403).
    """

    def __init__(self, operation: str, reason: str, *, authenticated: bool = True) -> None:
        super().__init__(reason)
        self.operation, self.reason, self.authenticated = operation, reason, authenticated
