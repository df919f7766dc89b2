"""The roles a token can hold and the permissions each carries: the one table every route and
command is checked against (``docs/security.md`` prints it).

A permission names an operation class, not a route: ``tests/server/test_access_matrix.py`` maps
every route of the HTTP API to the permission it needs and fails when a route has none.
"""

from __future__ import annotations

from enum import StrEnum

from opslineage.governance.labels import LEVELS

__all__ = ["PERMISSIONS", "ROLES", "Permission", "clearance_of", "permissions_of"]


class Permission(StrEnum):
    """What a principal may be allowed to do."""

    READ_LINEAGE = "lineage:read"
    """Nodes, search, upstream/downstream, why-chains, effects, events, the Marquez-shaped lineage,
    checkpoints and proofs (payloads above the principal's clearance are redacted)."""
    READ_ANALYTICS = "analytics:read"
    """Quality figures and ``/metrics``."""
    READ_BUNDLES = "bundles:read"
    """Evidence bundles and exports of whole chains."""
    VERIFY = "log:verify"
    """Rebuild and check the transparency logs."""
    READ_ACCESS_LOG = "access-log:read"
    """The audit trail of reads and refusals."""
    WRITE_EVENTS = "events:write"
    """Ingest lineage events (into the principal's namespaces)."""
    GOVERN = "governance:write"
    """Ownership, labels, retention, legal holds and baselines (in the principal's namespaces)."""
    MANAGE_TOKENS = "tokens:manage"
    """Create, list and revoke tokens."""


P = Permission
_READER = {P.READ_LINEAGE}

ROLES: dict[str, tuple[frozenset[Permission], str]] = {
    "admin": (frozenset(Permission), "restricted"),
    "steward": (frozenset({*_READER, P.READ_ANALYTICS, P.GOVERN}), "internal"),
    "auditor": (
        frozenset({*_READER, P.READ_ANALYTICS, P.READ_BUNDLES, P.VERIFY, P.READ_ACCESS_LOG}),
        "restricted",
    ),
    "operator": (frozenset(_READER), "internal"),
    "analyst": (frozenset({*_READER, P.READ_ANALYTICS}), "internal"),
    "producer": (frozenset({P.WRITE_EVENTS}), "none"),
}
"""Role → (its permissions, the highest sensitivity level whose payloads it sees unredacted;
``none``: it reads nothing)."""

PERMISSIONS: dict[Permission, tuple[str, ...]] = {
    permission: tuple(role for role, (granted, _) in ROLES.items() if permission in granted)
    for permission in Permission
}
"""Permission → the roles that hold it, in :data:`ROLES` order."""

assert all(level in (*LEVELS, "none") for _, level in ROLES.values())


def permissions_of(role: str) -> frozenset[Permission]:
    """The permissions ``role`` carries (none for an unknown role)."""
    return ROLES[role][0] if role in ROLES else frozenset()


def clearance_of(role: str) -> str:
    """The highest level ``role`` sees unredacted: one of :data:`LEVELS`, or ``none``."""
    return ROLES[role][1] if role in ROLES else "none"
