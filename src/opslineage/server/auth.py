"""Who calls the HTTP API and what each route lets them do: the one table of route → permission
(:data:`ROUTE_PERMISSIONS`), and the bearer of a request turned into a
:class:`~opslineage.governance.Principal`.

With no token in the store, every caller is an anonymous admin (today's single-user server), and
``serve --token`` (the shared secret) guards only ingest. Once a token exists, every route but
``/healthz`` and ``/readyz`` needs ``Authorization: Bearer <secret>`` of a token that is neither
revoked nor expired; the shared secret then acts as a producer of every namespace. Token lookups
are cached for ``ttl`` seconds (1 by default), so a revocation takes effect within that time.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from opslineage.governance import AccessDenied, Permission, Principal, StoredToken, TokenStorage, authenticate
from opslineage.model import ParsedEvent
from opslineage.server.cache import Fresh

__all__ = ["ROUTE_PERMISSIONS", "SHARED_SECRET", "Authenticator", "confine_events", "route_key"]

P = Permission
ROUTE_PERMISSIONS: dict[tuple[str, str], Permission | None] = {
    ("GET", "/healthz"): None,
    ("GET", "/readyz"): None,
    ("GET", "/openapi.json"): P.READ_LINEAGE,
    ("POST", "/api/v1/lineage"): P.WRITE_EVENTS,
    ("POST", "/api/v1/lineage/batch"): P.WRITE_EVENTS,
    ("GET", "/api/v1/lineage"): P.READ_LINEAGE,
    ("GET", "/api/v1/why/{node_id}"): P.READ_LINEAGE,
    ("GET", "/api/v1/why-tree/{node_id}"): P.READ_LINEAGE,
    ("GET", "/api/v1/nodes"): P.READ_LINEAGE,
    ("GET", "/api/v1/nodes/{node_id}"): P.READ_LINEAGE,
    ("GET", "/api/v1/upstream/{node_id}"): P.READ_LINEAGE,
    ("GET", "/api/v1/downstream/{node_id}"): P.READ_LINEAGE,
    ("GET", "/api/v1/log/checkpoint"): P.READ_LINEAGE,
    ("GET", "/api/v1/log/proof/inclusion"): P.READ_LINEAGE,
    ("GET", "/api/v1/log/proof/consistency"): P.READ_LINEAGE,
    ("GET", "/api/v1/log/leaf"): P.READ_LINEAGE,
    ("GET", "/api/v1/bundle/{action_id}"): P.READ_BUNDLES,
    ("GET", "/api/v1/intoto/{action_id}"): P.READ_BUNDLES,
    ("GET", "/api/v1/access-log"): P.READ_ACCESS_LOG,
    ("GET", "/api/v1/access-log/checkpoint"): P.READ_ACCESS_LOG,
    ("GET", "/api/v1/access-log/proof/inclusion"): P.READ_ACCESS_LOG,
    ("GET", "/api/v1/access-log/proof/consistency"): P.READ_ACCESS_LOG,
    ("GET", "/api/v1/quality"): P.READ_ANALYTICS,
    ("GET", "/metrics"): P.READ_ANALYTICS,
    ("GET", "/api/v1/effectiveness"): P.READ_ANALYTICS,
    ("GET", "/api/v1/timeline"): P.READ_LINEAGE,
    ("GET", "/api/v1/targets"): P.READ_LINEAGE,
    # The web pages (not in /openapi.json): sign-in and sign-out are open, each page reads as
    # its API twin does; /static is a mount of assets, outside the routes and this table.
    ("GET", "/"): None,
    ("GET", "/sign-in"): None,
    ("POST", "/sign-in"): None,
    ("POST", "/sign-out"): None,
    ("GET", "/catalog"): P.READ_LINEAGE,
    ("GET", "/timeline"): P.READ_LINEAGE,
    ("GET", "/effectiveness"): P.READ_ANALYTICS,
    ("GET", "/lineage"): P.READ_LINEAGE,
    ("GET", "/audit"): P.READ_LINEAGE,  # its access-log section needs access-log:read
    ("GET", "/remediations/{node_id}"): P.READ_LINEAGE,
    ("GET", "/nodes/{node_id}"): P.READ_LINEAGE,
}
"""(method, path as ``/openapi.json`` spells it) → the permission the route needs; None: it is
open to anyone (the two health routes). A route without a row is refused to everyone (403), and
``tests/server/test_access_matrix.py`` fails on it."""

SHARED_SECRET = Principal("shared-secret", "producer")
"""Who the bearer of ``serve --token`` is once the store has tokens: a producer of every namespace."""

_CONVERTER = re.compile(r":\w+}")
_CACHE_ENTRIES = 4096  # secrets remembered (unknown ones too, so guessing costs no lookups)


def route_key(method: str, path: str) -> tuple[str, str]:
    """The :data:`ROUTE_PERMISSIONS` key of a route: HEAD as GET, ``{x:path}`` as ``{x}``."""
    return ("GET" if method == "HEAD" else method, _CONVERTER.sub("}", path))


class Authenticator:
    """The principal of each request's ``Authorization`` header, with token lookups cached.

    Args:
        storage: this thread's token storage (the store the server serves).
        shared_secret: ``serve --token``, the legacy shared secret (None: none).
        ttl: seconds a lookup (and whether any token exists) is remembered.
    """

    def __init__(
        self, storage: Callable[[], TokenStorage], shared_secret: str | None = None, ttl: float = 1.0
    ) -> None:
        self._storage, self._shared = storage, shared_secret
        self._found: Fresh[bytes, StoredToken | None] = Fresh(ttl, _CACHE_ENTRIES)
        self._any: Fresh[None, bool] = Fresh(ttl, 1)
        self._some = False  # a token was seen: none is ever deleted, so there always will be

    def principal(self, authorization: str | None, *, writing: bool = False) -> Principal:
        """Who bears ``authorization`` (the header's value), for a read or (``writing``) an ingest.

        Raises:
            AccessDenied: (``authenticated`` False) the store has tokens and none valid is borne,
                or it has none, the server has a shared secret, ``writing``, and it is not borne.
        """
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        secret = credentials.strip() if scheme.lower() == "bearer" else None
        shared = self._shared is not None and secret is not None and _same(secret, self._shared)
        if not self.has_tokens():
            if shared:
                return Principal("shared-secret", "admin")
            if writing and self._shared is not None:
                raise AccessDenied(
                    "ingest", "a valid Authorization: Bearer token is required", authenticated=False
                )
            return Principal.anonymous("admin")
        if shared:
            return SHARED_SECRET
        return authenticate(secret, self, datetime.now(UTC))

    def has_tokens(self) -> bool:
        """Whether the store has a token (remembered for good once it has: none is ever deleted)."""
        self._some = self._some or self._any.get(None, lambda: self._storage().has_tokens())
        return self._some

    def token_by_hash(self, digest: bytes) -> StoredToken | None:
        """The stored token of ``digest``, from the cache while it is fresh."""
        return self._found.get(digest, lambda: self._storage().token_by_hash(digest))


def confine_events(principal: Principal, events: Iterable[ParsedEvent], operation: str) -> None:
    """Go on only if every namespace the events name (their jobs', runs' and datasets') is one of
    the principal's.

    Raises:
        AccessDenied: one is not; nothing of the request may be stored.
    """
    if principal.namespaces is None:
        return
    named = {node.namespace for event in events for node in event.nodes if node.namespace is not None}
    outside = sorted(named - principal.namespaces)
    if outside:
        raise AccessDenied(
            operation,
            f"{principal.id} may write only into {', '.join(sorted(principal.namespaces))}, "
            f"not {', '.join(outside)}",
        )


def _same(presented: str, secret: str) -> bool:
    return hmac.compare_digest(presented.encode(), secret.encode())
