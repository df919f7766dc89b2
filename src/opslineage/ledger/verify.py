"""``verify``: recompute the log from the stored events and check it against what was signed.

Every event is rebuilt from its stored body and artifacts, re-canonicalised and re-hashed; the
tree is rebuilt from those leaves, and compared with the stored leaves, the stored interior
nodes and every stored checkpoint (whose signature is checked too). Archived events are read from
their segments like any other, after each segment's file has been checked against the digest the
store recorded for it. The graph index (``ids``, ``nodes``, ``edges``: what lineage queries
answer from) is rebuilt from the same events and compared row by row with the stored one (see
:mod:`opslineage.ledger._index`). The first sequence number where anything differs is reported,
with every finding (of the index, the first :data:`~opslineage.ledger._index.REPORTED` and a
count).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from opslineage.ledger._checks import CHUNK, Finding, check_checkpoint, check_nodes
from opslineage.ledger._index import REPORTED as INDEX_REPORTED
from opslineage.ledger._index import IndexCheck
from opslineage.ledger.access_log import AccessLogReport, verify_access_log
from opslineage.ledger.checkpoint import Checkpoint, CheckpointError
from opslineage.ledger.log import consistency, root
from opslineage.merkle import CompactRange, ProofError, verify_consistency
from opslineage.model import canonical_event
from opslineage.store import Store, StoreError, event_leaf
from opslineage.store.keys import KeyError_
from opslineage.store.sealing import shredded_key

__all__ = [
    "INDEX_REPORTED",
    "Finding",
    "VerifyReport",
    "verify_against",
    "verify_store",
]


@dataclass
class VerifyReport:
    """What ``verify`` checked and found."""

    events: int = 0
    checkpoints: int = 0
    segments: int = 0
    index_rows: int = 0
    """Graph-index rows the events derive, compared with the stored ones."""
    index_differences: int = 0
    """Rows where the stored index and the events differ (only the first few are findings)."""
    findings: list[Finding] = field(default_factory=list)
    shredded: int = 0
    """Artifact contents found shredded (their data key destroyed by retention)."""
    shredded_keys: set[str] = field(default_factory=set)
    shredded_refs: dict[str, int] = field(default_factory=dict)
    """Shredded artifacts → the first event that carries them."""
    shreds: list[dict[str, Any]] = field(default_factory=list)
    """The ledgered shred events: namespace, month, retention rule, counts."""
    access: AccessLogReport | None = None
    """The access log's own check (see :mod:`opslineage.ledger.access_log`)."""

    @property
    def ok(self) -> bool:
        """Nothing differs, in either log."""
        return not self.findings and (self.access is None or self.access.ok)

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
            "segments_checked": self.segments,
            "index_rows_checked": self.index_rows,
            "index_differences": self.index_differences,
            "first_bad_seq": self.first_bad_seq,
            "findings": [{"seq": f.seq, "what": f.what} for f in self.findings],
            "shredded": self.shredded,
            "shreds": self.shreds,
            "access_log": self.access.to_dict() if self.access is not None else None,
        }


def verify_store(
    store: Store, public_key: Ed25519PublicKey | None, on_progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Check every event, leaf, stored tree node and checkpoint of the store's log, and the graph
    index against the events; then the access log (see :func:`~opslineage.ledger.access_log.verify_access_log`)."""
    report = VerifyReport()
    size = store.log_size()
    checkpoints = {cp_size: (cp_root, note) for cp_size, cp_root, note in store.checkpoints()}
    tree = CompactRange()  # rebuilt from the events: what the checkpoints must match
    stored_tree = CompactRange()  # built from the stored leaves: what the stored interior nodes must match
    bad_segments = _check_segments(store, report)
    index = IndexCheck(store)
    after = 0
    while rows := store.stored_events(after=after, limit=CHUNK):
        first, last = after + 1, max(rows[-1][0], after + len(rows))
        leaves = store.log_range(0, first - 1, last)
        events = {seq: (digest, body, segment) for seq, digest, body, segment in rows}
        completed: list[tuple[int, int, bytes]] = []
        rebuilt: list[tuple[int, bytes]] = []  # (seq, canonical event) of the events that could be
        for seq in range(first, last + 1):
            stored = leaves.get(seq - 1)
            if stored is None:
                report.findings.append(Finding(seq, "the log has no leaf for this event"))
            completed.extend(stored_tree.append(stored or bytes(32)))
            if seq not in events:
                report.findings.append(Finding(seq, "event is missing (deleted from the store)"))
                tree.append(stored or bytes(32))
            elif events[seq][2] in bad_segments:  # reported once, for the whole segment
                tree.append(stored or bytes(32))
            else:
                leaf, canonical = _check_event(store, seq, *events[seq], stored, report)
                tree.append(leaf)
                report.events += 1
                if canonical is not None:
                    rebuilt.append((seq, canonical))
            if tree.size in checkpoints:
                report.checkpoints += 1
                report.findings.extend(check_checkpoint(tree, *checkpoints[tree.size], public_key))
        report.findings.extend(check_nodes(store.log_range, completed))
        index.check(first, last, rebuilt)
        after = last
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
    _check_shreds(store, report)
    index.finish(size)
    report.index_rows, report.index_differences = index.rows, index.differences
    report.findings.extend(Finding(seq, what) for seq, what in index.findings)
    report.access = verify_access_log(store, public_key)
    return report


def _check_segments(store: Store, report: VerifyReport) -> set[str]:
    """Check every archive segment's file against its recorded digest and description; returns
    the digests of those that fail."""
    bad = set()
    for info in store.segments():
        report.segments += 1
        try:
            header = store.archive().segment(info.digest).header
        except StoreError as error:
            report.findings.append(Finding(info.first_seq, str(error)))
            bad.add(info.digest)
            continue
        recorded = (info.first_seq, info.last_seq, info.events, info.artifacts)
        if (header.first_seq, header.last_seq, len(header.seqs), len(header.artifacts)) != recorded:
            report.findings.append(
                Finding(info.first_seq, f"archive segment {info.digest} differs from what the store recorded")
            )
    return bad


def _check_event(
    store: Store,
    seq: int,
    digest: bytes,
    body: bytes,
    segment: str | None,
    stored: bytes | None,
    report: VerifyReport,
) -> tuple[bytes, bytes | None]:
    """Check one event against its digest and stored leaf; returns the leaf it should have, and
    the event's canonical bytes (None when it cannot be rebuilt, or an artifact of it was
    shredded: then its leaf, over its digest and body, is still checked)."""
    shredded: list[str] = []

    def artifact(ref: str) -> bytes:
        content = store.artifact(ref)
        key = shredded_key(content)
        if key is not None:
            shredded.append(key)
            report.shredded_refs.setdefault(ref, seq)
        return content

    try:
        plain = store.thaw_body(seq, body, segment, digest)
        canonical = canonical_event(plain, artifact)
    except KeyError_:
        raise  # no KEK, or the wrong one: not a finding about this event
    except (StoreError, ValueError) as error:
        report.findings.append(Finding(seq, f"event cannot be rebuilt from the store: {error}"))
        return bytes(32), None
    form = store.leaf_form()
    if shredded:
        report.shredded += len(shredded)
        report.shredded_keys.update(shredded)
        if form == 1:
            report.findings.append(
                Finding(seq, "artifacts of this event were shredded, but its leaf holds them")
            )
            return stored or bytes(32), None
        leaf = event_leaf(form, digest, plain, None)
        if stored is not None and stored != leaf:
            report.findings.append(Finding(seq, "event does not match its log leaf"))
        return leaf, None
    if hashlib.sha256(canonical).digest() != digest:
        report.findings.append(Finding(seq, "event content does not match its recorded digest"))
    leaf = event_leaf(form, digest, plain, canonical)
    if stored is not None and stored != leaf:
        report.findings.append(Finding(seq, "event does not match its log leaf"))
    return leaf, canonical


def _check_shreds(store: Store, report: VerifyReport) -> None:
    """Every shredded payload's data key must be one a ledgered shred event destroyed; the shreds
    are reported with their rules and the node of the event that records each."""
    if not report.shredded:
        return
    records = store.find_nodes(kind="entity", type="shred", limit=1 << 30)
    stored = store.nodes_with_content([record.id for record in records])
    recorded: set[str] = set()
    for node_id, (record, raw) in sorted(stored.items(), key=lambda item: item[1].node.seq):
        shred = msgspec.json.decode(raw) if raw is not None else {}
        recorded.update(shred.get("data_keys", []))
        fields = ("namespace", "period", "rule", "artifacts", "held", "shredded_at", "shredded_by")
        report.shreds.append(
            {"event": node_id, "seq": record.seq, **{name: shred.get(name) for name in fields}}
        )
    rows = store.artifact_rows(report.shredded_refs)
    nodes = store.nodes(f"entity:{ref}" for ref in report.shredded_refs)
    for ref, seq in report.shredded_refs.items():
        kind, stored_seq = rows.get(ref, ("", 0))
        node = nodes.get(f"entity:{ref}")
        if stored_seq != seq or node is None or node.type != kind:
            report.findings.append(
                Finding(seq, f"the row of shredded artifact {ref} was changed (type or seq)")
            )
    for key in sorted(report.shredded_keys - recorded):
        report.findings.append(
            Finding(0, f"payloads sealed by data key {key} are shredded, but no shred event records it")
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
