"""Who is acting: the :class:`Principal` every read and write is made for, and what it may do."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from opslineage.governance.labels import clears
from opslineage.governance.roles import Permission, clearance_of, permissions_of

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An identity, the role it holds and the namespaces it is confined to.

    Args:
        id: who it is, prefixed by how it was known: ``local:<user>``, ``token:<name>``,
            ``anonymous``.
        role: one of :data:`~opslineage.governance.ROLES`; None holds no permission.
        namespaces: the namespaces it sees and writes; None: every namespace.
    """

    id: str
    role: str | None = None
    namespaces: frozenset[str] | None = None

    @classmethod
    def local_admin(cls) -> Principal:
        """The local user of a store they could open themselves (a file, a database URL): its
        administrator, since file permissions are the boundary there."""
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name and no passwd entry (some containers)
            user = "unknown"
        return cls(f"local:{user}", "admin")

    @classmethod
    def anonymous(cls, role: str | None = None) -> Principal:
        """A caller that showed no credentials, acting as ``role`` (a server with no tokens lets
        anyone act as ``admin``; one with tokens, no one)."""
        return cls("anonymous", role)

    @classmethod
    def token(cls, name: str, role: str, namespaces: frozenset[str] | None = None) -> Principal:
        """The bearer of the token called ``name``."""
        return cls(f"token:{name}", role, namespaces)

    @property
    def name(self) -> str:
        """The id without how it was known (the token's or the user's name)."""
        return self.id.partition(":")[2] or self.id

    def can(self, permission: Permission) -> bool:
        """Whether the role grants ``permission``."""
        return self.role is not None and permission in permissions_of(self.role)

    @property
    def clearance(self) -> str:
        """The highest level whose payloads it sees unredacted (``none``: it reads nothing)."""
        return clearance_of(self.role) if self.role is not None else "none"

    def sees_level(self, level: str) -> bool:
        """Whether payloads of ``level`` are shown to it unredacted."""
        return clears(self.clearance, level)

    def covers(self, namespace: str | None) -> bool:
        """Whether ``namespace`` is one of its namespaces (records with none belong to all)."""
        return self.namespaces is None or namespace is None or namespace in self.namespaces
