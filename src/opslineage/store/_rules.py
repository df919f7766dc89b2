"""Rules every backend applies alike, kept here so that they are written once."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opslineage.model import ParsedEvent
from opslineage.store.base import NodeRecord, StoreError

__all__ = ["check_versions", "edge_ends", "seq_bound"]

_VERSIONED_KINDS = ("model", "policy")


def check_versions(
    events: Sequence[ParsedEvent], stored: Callable[[list[str]], dict[str, NodeRecord]]
) -> None:
    """A model or policy version names one content digest, forever.

    Args:
        events: the events about to be stored.
        stored: looks up already stored nodes by id.

    Raises:
        StoreError: a version appears with two contents in the batch, or with another than stored.
    """
    declared: dict[str, str | None] = {}
    for event in events:
        for node in event.nodes:
            if node.kind in _VERSIONED_KINDS:
                seen = declared.setdefault(node.id, node.digest)
                if seen != node.digest:
                    raise StoreError(f"{node.id} appears with two different contents in one batch")
    if not declared:
        return
    found = stored(list(declared))
    for node_id, digest in declared.items():
        if node_id in found and found[node_id].digest != digest:
            raise StoreError(
                f"{node_id} is already recorded with digest {found[node_id].digest}; "
                f"changed content ({digest}) needs a new version"
            )


def edge_ends(direction: str) -> tuple[str, str]:
    """The (near, far) edge columns of a walk going ``up`` (to causes) or ``down`` (to effects)."""
    if direction == "up":
        return "src", "dst"
    if direction == "down":
        return "dst", "src"
    raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")


def seq_bound(as_of: int | None) -> int:
    """The largest sequence number an ``as_of`` answer may see (all of them when None)."""
    return (1 << 62) if as_of is None else as_of
