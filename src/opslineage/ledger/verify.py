"""``verify``: recompute the log from the stored events and check it against what was signed.

Every event is rebuilt from its stored body and artifacts, re-canonicalised and re-hashed; the
tree is rebuilt from those leaves, and compared with the stored leaves, the stored interior
nodes and every stored checkpoint (whose signature is checked too). The first sequence number
where anything differs is reported, with every finding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from opslineage.ledger.checkpoint import Checkpoint, CheckpointError, parse_note
from opslineage.ledger.log import consistency, root
from opslineage.ledger.merkle import CompactRange, ProofError, leaf_hash, verify_consistency
from opslineage.model import canonical_json, join_event
from opslineage.store import Store, StoreError

__all__ = ["Finding", "VerifyReport", "verify_against", "verify_store"]

CHUNK = 2000


@dataclass(frozen=True)
class Finding:
    """One thing that does not hold; ``seq`` is the event (or tree size) it concerns."""

    seq: int
    what: str


@dataclass
class VerifyReport:
    """What ``verify`` checked and found."""

    events: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing differs."""
        return not self.findings

    @property
    def first_bad_seq(self) -> int | None:
        """The smallest sequence number with a finding."""
        return min((finding.seq for finding in self.findings), default=None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "events_checked": self.events,
            "checkpoints_checked": self.checkpoints,
            "first_bad_seq": self.first_bad_seq,
            "findings": [{"seq": f.seq, "what": f.what} for f in self.findings],
        }


def _rebuild(store: Store, body: bytes) -> bytes:
    return canonical_json(join_event(body, store.artifact))


def verify_store(
    store: Store, public_key: Ed25519PublicKey | None, on_progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Check every event, leaf, stored tree node and checkpoint of the store's log."""
    report = VerifyReport()
    size = store.log_size()
    checkpoints = {cp_size: (cp_root, note) for cp_size, cp_root, note in store.checkpoints()}
    tree = CompactRange()  # rebuilt from the events: what the checkpoints must match
    stored_tree = CompactRange()  # built from the stored leaves: what the stored interior nodes must match
    expected, after = 1, 0
    while rows := store.raw_events(after=after, limit=CHUNK):
        for seq, digest, body in rows:
            while expected < seq:
                report.findings.append(Finding(expected, "event is missing (deleted from the store)"))
                leaf = _stored_leaf(store, expected, report) or b"\0" * 32
                tree.append(leaf)
                _check_nodes(store, stored_tree, leaf, report)
                expected += 1
            expected = seq + 1
            _check_event(store, seq, digest, body, tree, stored_tree, report)
            report.events += 1
            if tree.size in checkpoints:
                _check_checkpoint(tree, *checkpoints[tree.size], public_key, report)
        after = rows[-1][0]
        if on_progress:
            on_progress(after, size)
    if tree.size != size:
        report.findings.append(
            Finding(tree.size + 1, f"the log has {size} leaves but only {tree.size} events remain")
        )
    for cp_size in checkpoints:
        if cp_size > tree.size:
            report.findings.append(
                Finding(cp_size, "a checkpoint claims a larger log than the events stored")
            )
    return report


def _stored_leaf(store: Store, seq: int, report: VerifyReport) -> bytes | None:
    try:
        return store.log_node(0, seq - 1)
    except StoreError:
        report.findings.append(Finding(seq, "the log has no leaf for this event"))
        return None


def _check_event(
    store: Store,
    seq: int,
    digest: bytes,
    body: bytes,
    tree: CompactRange,
    stored_tree: CompactRange,
    report: VerifyReport,
) -> None:
    stored = _stored_leaf(store, seq, report)
    _check_nodes(store, stored_tree, stored or b"\0" * 32, report)
    try:
        canonical = _rebuild(store, body)
    except (StoreError, ValueError) as error:
        report.findings.append(Finding(seq, f"event cannot be rebuilt from the store: {error}"))
        tree.append(b"\0" * 32)
        return
    if hashlib.sha256(canonical).digest() != digest:
        report.findings.append(Finding(seq, "event content does not match its recorded digest"))
    leaf = leaf_hash(canonical)
    if stored is not None and stored != leaf:
        report.findings.append(Finding(seq, "event does not match its log leaf"))
    tree.append(leaf)


def _check_nodes(store: Store, stored_tree: CompactRange, leaf: bytes, report: VerifyReport) -> None:
    """Compare the interior nodes that the stored leaves complete with the stored ones."""
    for level, index, node in stored_tree.append(leaf):
        if level == 0:
            continue
        try:
            kept = store.log_node(level, index)
        except StoreError:
            kept = None
        if kept != node:
            first = index * (1 << level) + 1
            report.findings.append(Finding(first, f"stored log node (level {level}, index {index}) differs"))


def _check_checkpoint(
    tree: CompactRange, cp_root: bytes, note: str, public_key: Ed25519PublicKey | None, report: VerifyReport
) -> None:
    report.checkpoints += 1
    size = tree.size
    try:
        signed = parse_note(note)
        if public_key is not None:
            signed.verify(public_key)
    except CheckpointError as error:
        report.findings.append(Finding(size, f"checkpoint: {error}"))
        return
    if signed.tree_size != size or signed.root_hash != cp_root:
        report.findings.append(Finding(size, "checkpoint row does not match its signed note"))
    if signed.root_hash != tree.root():
        report.findings.append(
            Finding(size, "signed checkpoint root differs from the tree rebuilt from the events")
        )


def verify_against(store: Store, kept: Checkpoint, public_key: Ed25519PublicKey) -> list[Finding]:
    """Prove the current log is an append-only extension of a checkpoint an auditor kept."""
    try:
        kept.verify(public_key)
    except CheckpointError as error:
        return [Finding(kept.tree_size, f"the kept checkpoint: {error}")]
    size = store.log_size()
    if kept.tree_size > size:
        return [
            Finding(
                kept.tree_size, f"the kept checkpoint has {kept.tree_size} leaves; the log now has {size}"
            )
        ]

    proof = consistency(store, kept.tree_size, size)
    try:
        verify_consistency(
            kept.tree_size,
            size,
            kept.root_hash,
            root(store, size),
            [bytes.fromhex(node) for node in proof["proof"]],
        )
    except ProofError as error:
        return [Finding(kept.tree_size, f"the log is not an extension of the kept checkpoint: {error}")]
    return []
