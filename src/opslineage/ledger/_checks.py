"""What both logs' checks share: a :class:`Finding`, and the checks of stored tree nodes and of
a stored checkpoint against the tree rebuilt from the records (used by
:mod:`opslineage.ledger.verify` for the lineage log and :mod:`opslineage.ledger.access_log`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from opslineage.ledger.checkpoint import CheckpointError, parse_note
from opslineage.merkle import CompactRange

__all__ = ["CHUNK", "Finding", "check_checkpoint", "check_nodes"]

CHUNK = 2000
"""Rows read at a time."""


@dataclass(frozen=True)
class Finding:
    """One thing that does not hold; ``seq`` is the event (or tree size) it concerns."""

    seq: int
    what: str


def check_nodes(
    log_range: Callable[[int, int, int], dict[int, bytes]], completed: list[tuple[int, int, bytes]]
) -> list[Finding]:
    """Compare the interior nodes the stored leaves completed with the stored ones (which
    ``log_range(level, start, end)`` reads), a level at a time."""
    by_level: dict[int, list[tuple[int, bytes]]] = {}
    for level, index, node in completed:
        if level:
            by_level.setdefault(level, []).append((index, node))
    findings = []
    for level, nodes in by_level.items():
        kept = log_range(level, nodes[0][0], nodes[-1][0] + 1)
        for index, node in nodes:
            if kept.get(index) != node:
                first = index * (1 << level) + 1
                findings.append(Finding(first, f"stored log node (level {level}, index {index}) differs"))
    return findings


def check_checkpoint(
    tree: CompactRange, cp_root: bytes, note: str, public_key: Ed25519PublicKey | None
) -> list[Finding]:
    """What does not hold of the stored checkpoint (``cp_root``, ``note``) of the tree rebuilt so far."""
    size = tree.size
    try:
        signed = parse_note(note)
        if public_key is not None:
            signed.verify(public_key)
    except CheckpointError as error:
        return [Finding(size, f"checkpoint: {error}")]
    findings = []
    if signed.tree_size != size or signed.root_hash != cp_root:
        findings.append(Finding(size, "checkpoint row does not match its signed note"))
    if signed.root_hash != tree.root():
        findings.append(Finding(size, "signed checkpoint root differs from the tree rebuilt from the events"))
    return findings
