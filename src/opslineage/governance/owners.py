"""Who owns and who stewards which part of the lineage: :class:`Ownership` entries a steward sets
(``opslineage owners set``), recorded as ledgered ``aiops_owners`` artifacts, and the fold that
says whose a node is (:func:`owners_of`), for node answers, why-chains and reconciliation alerts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["SCOPES", "Ownership", "in_force", "owners_from_contents", "owners_of"]

SCOPES = ("namespace", "source", "job", "model", "policy")
"""What an ownership entry can name: a whole namespace, or in it one source, job, model or policy."""


@dataclass(frozen=True, slots=True)
class Ownership:
    """``owners`` and ``stewards`` of ``namespace`` (``scope`` namespace) or of the ``scope``
    called ``name`` in it, as set by ``set_by`` at ``set_at``."""

    namespace: str
    scope: str = "namespace"
    name: str | None = None
    owners: tuple[str, ...] = ()
    stewards: tuple[str, ...] = ()
    set_at: str | None = None
    set_by: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None]:
        """What it names: a newer entry of the same key replaces it."""
        return (self.namespace, self.scope, self.name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, leaving out what the entry does not name."""
        found: dict[str, Any] = {"namespace": self.namespace, "scope": self.scope}
        if self.name is not None:
            found["name"] = self.name
        found["owners"], found["stewards"] = list(self.owners), list(self.stewards)
        found.update((k, v) for k in ("set_at", "set_by") if (v := getattr(self, k)) is not None)
        return found


def owners_from_contents(contents: Iterable[dict[str, Any]]) -> list[Ownership]:
    """The entries recorded as ``aiops_owners`` artifact contents, in the order given (oldest
    first); contents that are not ownership facets are skipped."""
    found = []
    for content in contents:
        namespace, scope = content.get("namespace"), content.get("scope", "namespace")
        if not isinstance(namespace, str) or scope not in SCOPES:
            continue
        found.append(
            Ownership(
                namespace,
                scope,
                content.get("name"),
                tuple(content.get("owners") or ()),
                tuple(content.get("stewards") or ()),
                content.get("set_at"),
                content.get("set_by"),
            )
        )
    return found


def in_force(entries: Iterable[Ownership]) -> dict[tuple[str, str, str | None], Ownership]:
    """The newest entry per namespace, scope and name (give entries oldest first)."""
    return {entry.key: entry for entry in entries}


def owners_of(
    entries: Iterable[Ownership] | dict[tuple[str, str, str | None], Ownership],
    namespace: str | None,
    scope: str = "namespace",
    name: str | None = None,
) -> Ownership | None:
    """Whose the ``scope`` called ``name`` in ``namespace`` is: its own entry in force, else its
    namespace's, else None.

    Args:
        entries: entries oldest first, or what :func:`in_force` made of them.
        namespace: the node's namespace (None: no one's).
        scope: one of :data:`SCOPES`.
        name: the source, job, model or policy name (None with scope ``namespace``).
    """
    if namespace is None:
        return None
    current = entries if isinstance(entries, dict) else in_force(entries)
    if scope != "namespace" and name is not None:
        own = current.get((namespace, scope, name))
        if own is not None:
            return own
    return current.get((namespace, "namespace", None))
