"""Offline audit bundles: the events behind one remediation, each with its inclusion proof
against one signed checkpoint, verifiable with nothing but the file and the log's public key.

Two forms: a plain JSON bundle (``opslineage-bundle/1``), and the same evidence as an in-toto
Statement v1 (subjects: the chain's artifact digests; predicate type
``https://opslineage.dev/attestation/why-chain/v1``) in a DSSE envelope signed with the log key.
Verification never trusts the bundle's own account of the chain: it re-derives the why-chain
from the proven events. The checkpoint note carries the witnesses' cosignatures kept with it; a
verifier that remembers a checkpoint of the log (:mod:`opslineage.ledger.memory`) refuses a bundle
whose checkpoint is older, forked, or newer without a consistency proof from the remembered size
(``consistency``: ``{"old_size", "proof"}``, which ``make_bundle(..., since=SIZE)`` adds).
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from opslineage.ledger.checkpoint import Checkpoint, CheckpointError, key_id, parse_note
from opslineage.ledger.keys import LogKeyError, load_public_key, verify_signature
from opslineage.ledger.log import checkpoint
from opslineage.ledger.memory import CheckpointMemory
from opslineage.ledger.witness import WitnessKey, cosigned_by
from opslineage.merkle import ProofError, verify_inclusion
from opslineage.model import InvalidEvent, ParsedEvent, canonical_json, parse_event
from opslineage.query import NotFound, Reader, WhyChain, as_reader
from opslineage.store import Store, event_leaf, open_store

__all__ = [
    "BUNDLE_FORMAT",
    "PREDICATE_TYPE",
    "BundleError",
    "BundleReport",
    "make_bundle",
    "make_intoto",
    "verify_bundle",
]

BUNDLE_FORMAT = "opslineage-bundle/1"
PREDICATE_TYPE = "https://opslineage.dev/attestation/why-chain/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


class BundleError(ValueError):
    """A bundle cannot be made (no covering checkpoint and no key) or cannot be read."""


@dataclass
class BundleReport:
    """The outcome of verifying a bundle offline."""

    checkpoint: Checkpoint | None = None
    events: int = 0
    chain: WhyChain | None = None
    findings: list[str] = field(default_factory=list)
    cosigned_by: list[str] = field(default_factory=list)
    """The names of the required witnesses whose cosignature on the checkpoint verified."""

    @property
    def ok(self) -> bool:
        """Every proof and signature holds and the chain is complete."""
        return not self.findings and self.chain is not None and self.chain.complete


def _chain_runs(chain: WhyChain) -> set[str]:
    links = [chain.action, chain.decision, chain.prediction, chain.features, *chain.snapshots, *chain.effects]
    return {link["run"].removeprefix("run:") for link in links if link and link.get("run")}


def make_bundle(
    source: Reader | Store, action_id: str, key: Ed25519PrivateKey | None = None, since: int | None = None
) -> dict[str, Any]:
    """The bundle of ``action_id``'s why-chain. When no checkpoint covers its events and ``key``
    is given with a store, its local administrator signs one (a write, never done for a reader).

    Args:
        source: what to read: a reader, or a store (read as its local administrator).
        action_id: the action's run id (or record).
        key: the log key, to sign a checkpoint when none covers the chain (only with a store).
        since: a tree size the recipient verified before: the bundle then carries the consistency
            proof from it to its checkpoint.

    Raises:
        BundleError: the chain is incomplete, no checkpoint covers it and none may be signed, or
            ``since`` is larger than the checkpoint.

    A reader not cleared for every payload gets them redacted: the bundle then names those nodes
    in ``redacted``, and its redacted events no longer verify.
    """
    reader = as_reader(source)
    with reader.operation("bundle", action_id):
        return _bundle(reader, source, action_id, key, since)


def _bundle(
    reader: Reader, source: Reader | Store, action_id: str, key: Ed25519PrivateKey | None, since: int | None
) -> dict[str, Any]:
    chain = reader.why(action_id)
    if not chain.complete:
        raise BundleError(f"the why-chain of {action_id} is incomplete (missing {', '.join(chain.missing)})")
    events = sorted((e for run in _chain_runs(chain) for e in reader.run_events(run)), key=lambda e: e.seq)
    needed = events[-1].seq
    signed = reader.covering_checkpoint(needed)
    if signed is None and key is not None and isinstance(source, Store):
        signed = checkpoint(source, key)
    if signed is None:
        first = (
            "`opslineage checkpoint`"
            if reader.log_public_key()
            else "`opslineage init`, then `opslineage checkpoint`"
        )
        raise BundleError(f"no signed checkpoint covers sequence {needed}: run {first} first")
    bundle: dict[str, object] = {
        "format": BUNDLE_FORMAT,
        "action": action_id,
        "checkpoint": signed.note,
        "public_key": signed.public_key or reader.log_public_key(),
        "events": [
            {"seq": e.seq, "event": e.event, "proof": _proof(reader, e.seq, signed.tree_size)} for e in events
        ],
    }
    if since is not None:
        if not 0 < since <= signed.tree_size:
            raise BundleError(
                f"--since {since} must be between 1 and the checkpoint's size {signed.tree_size}"
            )
        proof = reader.consistency_proof(since, signed.tree_size).proof
        bundle["consistency"] = {"old_size": since, "proof": proof}
    if reader.withheld:
        bundle["redacted"] = sorted(reader.withheld)
    return bundle


def _proof(reader: Reader, seq: int, size: int) -> dict[str, Any]:
    proof = reader.inclusion_proof(seq, size)
    return {"leaf_index": proof.leaf_index, "tree_size": proof.tree_size, "audit_path": proof.audit_path}


def _verify_included(event: ParsedEvent, proof: dict[str, Any], root_hash: bytes) -> None:
    """Check ``event``'s inclusion proof against ``root_hash``, its leaf of either form (see
    :func:`~opslineage.store.event_leaf`: a form-1 leaf hashes JSON, which never begins like a
    form-2 one, so no leaf of one form can pass for the other's).

    Raises:
        ProofError: the proof holds for neither.
    """
    path = [bytes.fromhex(node) for node in proof["audit_path"]]
    leaves = (
        event_leaf(2, event.digest, event.body, None),
        event_leaf(1, event.digest, event.body, event.canonical),
    )
    for leaf in leaves:
        try:
            verify_inclusion(leaf, proof["leaf_index"], proof["tree_size"], path, root_hash)
        except ProofError as error:
            failure = error
        else:
            return
    raise failure


def make_intoto(
    source: Reader | Store, action_id: str, key: Ed25519PrivateKey, since: int | None = None
) -> dict[str, Any]:
    """The bundle as an in-toto Statement v1 in a DSSE envelope signed with the log key.

    Args:
        source: what to read: a reader, or a store (read as its local administrator).
        action_id: the action's run id (or record).
        key: the log key: it signs the envelope (and, with a store, a checkpoint when none covers
            the chain).
        since: as for :func:`make_bundle`.
    """
    reader = as_reader(source)
    with reader.operation("intoto", action_id):
        bundle = make_bundle(source, action_id, key, since)
        chain = reader.why(action_id)
    subjects = [
        {"name": link["id"], "digest": {"sha256": link["digest"].removeprefix("sha256:")}}
        for link in [
            chain.action,
            *chain.effects,
            chain.decision,
            chain.policy,
            chain.prediction,
            chain.model,
            chain.features,
            *chain.snapshots,
        ]
        if link and link.get("digest")
    ]
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {**bundle, "why": chain.to_dict()},
    }
    payload = canonical_json(statement)
    origin = parse_note(bundle["checkpoint"]).origin
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {
                "keyid": key_id(origin, key.public_key()).hex(),
                "sig": base64.b64encode(key.sign(_pae(PAYLOAD_TYPE, payload))).decode(),
            }
        ],
    }


def _redacted(bundle: dict[str, Any]) -> list[str]:
    """The finding of a bundle whose payloads were redacted for its reader (none when none were)."""
    withheld = bundle.get("redacted")
    if not withheld:
        return []
    return [
        f"payloads of {len(withheld)} node(s) were redacted for the reader who exported the bundle: "
        "their events cannot be proven (export it as a reader cleared for them)"
    ]


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def verify_bundle(
    document: dict[str, Any],
    public_key: str | None = None,
    *,
    memory: CheckpointMemory | None = None,
    witness_keys: list[WitnessKey] | tuple[WitnessKey, ...] = (),
) -> BundleReport:
    """Verify a bundle (plain or DSSE) offline and re-derive the why-chain it proves.

    Without ``public_key`` the bundle's own key is used, which proves integrity but not origin:
    an auditor passes the key they trust.

    Args:
        document: the bundle or DSSE envelope.
        public_key: the log key the verifier trusts.
        memory: the checkpoints this verifier remembers: the bundle's must be consistent with the
            one remembered for its origin, and is remembered in turn when everything verifies.
        witness_keys: witnesses whose cosignature the checkpoint must carry.

    Raises:
        CacheError: ``memory``'s directory cannot be read or written.
    """
    report = BundleReport()
    try:
        bundle = _unwrap(document, public_key)
        key = load_public_key(public_key or bundle["public_key"])
        report.checkpoint = parse_note(bundle["checkpoint"])
        report.checkpoint.verify(key)
    except (BundleError, LogKeyError, CheckpointError, KeyError, TypeError) as error:
        report.findings.append(f"bundle: {error}")
        return report
    signed = report.checkpoint
    report.findings.extend(_redacted(bundle))
    for witness in witness_keys:
        if cosigned_by(signed, witness) is None:
            report.findings.append(
                f"the checkpoint ({signed.origin} size {signed.tree_size}) has no valid cosignature by "
                f"witness {witness.name} ({witness.key_id.hex()})"
            )
        else:
            report.cosigned_by.append(witness.name)
    if memory is not None and (problem := memory.check(signed.origin, signed, key, _bundle_prover(bundle))):
        report.findings.append(problem)
    parsed = []
    for entry in bundle.get("events", []):
        try:
            event = parse_event(entry["event"])
            proof = entry["proof"]
            if proof["tree_size"] != report.checkpoint.tree_size:
                raise ProofError("proof is against another tree size than the checkpoint")
            _verify_included(event, proof, report.checkpoint.root_hash)
        except (InvalidEvent, ProofError, KeyError, TypeError, ValueError) as error:
            report.findings.append(f"event {entry.get('seq', '?')}: {error}")
            continue
        parsed.append(event)
        report.events += 1
    if report.findings:
        return report
    with tempfile.TemporaryDirectory() as scratch, open_store(f"sqlite:///{Path(scratch) / 'b.db'}") as store:
        store.ingest(parsed)
        try:
            report.chain = as_reader(store).why(bundle["action"])
        except (NotFound, InvalidEvent) as error:
            report.findings.append(f"the proven events do not make a complete why-chain: {error}")
            return report
    if not report.chain.complete:
        report.findings.append(
            "the proven events do not make a complete why-chain: " + ", ".join(report.chain.missing)
        )
    if memory is not None and report.ok:
        memory.remember(signed)
    return report


def _bundle_prover(bundle: dict[str, Any]) -> Callable[[int, int], list[bytes]] | None:
    """The consistency proof the bundle carries, for the sizes it was made for; None without one."""
    carried = bundle.get("consistency")
    if not isinstance(carried, dict):
        return None

    def prove(old: int, new: int) -> list[bytes]:
        if carried.get("old_size") != old:
            raise ValueError(
                f"the bundle's consistency proof is from size {carried.get('old_size')}, not {old}"
            )
        return [bytes.fromhex(node) for node in carried.get("proof") or []]

    return prove


def _unwrap(document: dict[str, Any], public_key: str | None) -> dict[str, Any]:
    if document.get("format") == BUNDLE_FORMAT:
        return document
    if document.get("payloadType") != PAYLOAD_TYPE:
        raise BundleError("neither an opslineage bundle nor a DSSE envelope of an in-toto statement")
    try:
        payload = base64.b64decode(document["payload"], validate=True)
        statement = msgspec.json.decode(payload)
    except (binascii.Error, msgspec.DecodeError) as error:
        raise BundleError(f"DSSE payload is unreadable: {error}") from None
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        raise BundleError("the DSSE payload is not an opslineage why-chain statement")
    bundle: dict[str, Any] = statement["predicate"]
    key: Ed25519PublicKey = load_public_key(public_key or bundle["public_key"])
    signatures = document.get("signatures") or []
    if not any(
        verify_signature(key, base64.b64decode(s.get("sig", "")), _pae(PAYLOAD_TYPE, payload))
        for s in signatures
    ):
        raise BundleError("no DSSE signature by the log key verifies")
    return bundle
