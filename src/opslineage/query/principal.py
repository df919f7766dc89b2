"""Who is reading: the :class:`Principal` every read of the graph, the events and the log is made for.

Nothing is enforced with it yet; it is carried through :class:`~opslineage.query.Reader` so that
roles, record-level access and the audit of reads have one place to go.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field

__all__ = ["ADMIN", "PRODUCER", "Principal"]

ADMIN = "admin"
PRODUCER = "producer"


@dataclass(frozen=True, slots=True)
class Principal:
    """An identity and the roles it holds.

    Args:
        id: who it is, prefixed by how it was known: ``local:<user>``, ``bearer:<name>``, ``anonymous``.
        roles: the roles it holds (:data:`ADMIN`, :data:`PRODUCER` …).
    """

    id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def local_admin(cls) -> Principal:
        """The local user of a store they could open themselves (a file, a database URL): its administrator."""
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name and no passwd entry (some containers)
            user = "unknown"
        return cls(f"local:{user}", frozenset({ADMIN}))

    @classmethod
    def anonymous(cls) -> Principal:
        """A caller that showed no credentials."""
        return cls("anonymous")

    @classmethod
    def bearer(cls, name: str = "token") -> Principal:
        """A caller that showed the server's bearer token (today's token lets a producer ingest)."""
        return cls(f"bearer:{name}", frozenset({PRODUCER}))
