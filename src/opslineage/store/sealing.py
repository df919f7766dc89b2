"""Sealed payloads: event bodies and artifact contents encrypted at rest with AES-256-GCM.

A sealed payload is stored as a small JSON envelope, so that it travels through both backends and
the archive segments like any other payload::

    {"opslineage:sealed":"<data key id>","n":"<base64 nonce>","c":"<base64 ciphertext and tag>"}

The nonce is 96 random bits; the associated data binds the ciphertext to its row (an event's
digest, an artifact's digest), so a ciphertext copied onto another row fails to open, as does a
flipped byte: both are :class:`Tampered`, naming the record. Digests, ids and the log stay over
the plaintext canonical JSON.

A shredded payload (its data key destroyed, see :mod:`opslineage.store.keys`) keeps only
``{"opslineage:shredded":"<data key id>"}``; it reads back as :func:`shredded_marker`. Plaintext
payloads that begin like either envelope are refused, so the two can never be confused.

Which records are sealed is decided per event by a :data:`SealPolicy` (the ingest pipeline's, by
label; or every record, for a store made with ``init --encrypt-all``).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opslineage.model import ParsedEvent
from opslineage.store.keys import DataKeys, month_of
from opslineage.store.records import DataKeyRow, StoreError

__all__ = [
    "SEALED_HEAD",
    "SEALED_PREFIX",
    "SHREDDED_PREFIX",
    "EventSeal",
    "SealPolicy",
    "Sealer",
    "Tampered",
    "artifact_aad",
    "check_plain",
    "event_aad",
    "event_namespace",
    "is_sealed",
    "key_of",
    "open_payload",
    "seal_all",
    "seal_payload",
    "sealed_prefix",
    "sealed_rows",
    "shredded_key",
    "shredded_marker",
]

SEALED_PREFIX = b'{"opslineage:sealed":"'
SHREDDED_PREFIX = b'{"opslineage:shredded":"'
SEALED_HEAD = len(SEALED_PREFIX) + 32
"""The bytes of a sealed payload that name its key (the prefix and a 32-hex-digit key id)."""
_NONCE_BYTES = 12
DEFAULT_NAMESPACE = "default"


class Tampered(StoreError):
    """A sealed payload does not open: its ciphertext, nonce or key id was changed, or it was
    moved from another row."""


class _Envelope(msgspec.Struct):
    key: str = msgspec.field(name="opslineage:sealed")
    n: str = ""
    c: str = ""


_decode_envelope = msgspec.json.Decoder(_Envelope).decode


@dataclass(frozen=True, slots=True)
class EventSeal:
    """What of one event to seal: its body (under ``body``'s namespace; None: not sealed) and
    the artifacts it brings (reference → namespace)."""

    body: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)


SealPolicy = Callable[[Sequence[ParsedEvent]], list[EventSeal]]
"""Decides, for the events of a write, what of each is sealed (one decision per event, in order)."""


def event_aad(digest: bytes) -> bytes:
    """The associated data of an event body: its row's digest."""
    return b"opslineage-event\n" + digest


def artifact_aad(digest: str) -> bytes:
    """The associated data of an artifact content: its row's digest."""
    return b"opslineage-artifact\n" + digest.encode()


def is_sealed(payload: bytes) -> bool:
    """Whether a stored payload is sealed or shredded (not plaintext)."""
    return payload.startswith((SEALED_PREFIX, SHREDDED_PREFIX))


def key_of(payload: bytes) -> str | None:
    """The data key id a sealed or shredded payload names; None for plaintext."""
    for prefix in (SEALED_PREFIX, SHREDDED_PREFIX):
        if payload.startswith(prefix):
            end = payload.find(b'"', len(prefix))
            return payload[len(prefix) : end].decode(errors="replace") if end > 0 else ""
    return None


_MARKER = b'{"shredded":{"data_key":"'


def sealed_prefix(key_id: str) -> str:
    """How every payload sealed by ``key_id`` begins."""
    return SEALED_PREFIX.decode() + key_id


def shredded_marker(key_id: str) -> bytes:
    """What a shredded payload reads as: ``{"shredded":{"data_key":ID}}`` (canonical JSON)."""
    return _MARKER + key_id.encode() + b'"}}'


def shredded_key(content: bytes) -> str | None:
    """The data key a payload read as :func:`shredded_marker` names; None for any other."""
    if not content.startswith(_MARKER):
        return None
    return content[len(_MARKER) : content.find(b'"', len(_MARKER))].decode(errors="replace")


def seal_payload(key_id: str, cipher: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    """The envelope of ``plaintext`` sealed by ``cipher`` (data key ``key_id``), bound to ``aad``."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = cipher.encrypt(nonce, plaintext, aad)
    return b"".join(
        (
            SEALED_PREFIX,
            key_id.encode(),
            b'","n":"',
            base64.b64encode(nonce),
            b'","c":"',
            base64.b64encode(sealed),
            b'"}',
        )
    )


def open_payload(keys: DataKeys, payload: bytes, aad: bytes, record: str) -> bytes:
    """A stored payload as plaintext: as it is when not sealed, :func:`shredded_marker` when its
    key was shredded.

    Args:
        record: names the row in errors (``event 12``, ``artifact sha256:…``).

    Raises:
        Tampered: the envelope is malformed or does not open.
        KeyError_: no KEK, or the wrong one.
    """
    if payload.startswith(SHREDDED_PREFIX):
        return shredded_marker(key_of(payload) or "")
    if not payload.startswith(SEALED_PREFIX):
        return payload
    try:
        envelope = _decode_envelope(payload)
        nonce, sealed = (
            base64.b64decode(envelope.n, validate=True),
            base64.b64decode(envelope.c, validate=True),
        )
    except (msgspec.DecodeError, binascii.Error, ValueError):
        raise Tampered(f"the sealed payload of {record} is malformed: it was tampered with") from None
    try:
        cipher = keys.cipher(envelope.key)
    except StoreError as error:
        if "no data key" in str(error):
            raise Tampered(
                f"the sealed payload of {record} names an unknown data key: it was tampered with"
            ) from None
        raise
    if cipher is None:
        return shredded_marker(envelope.key)
    try:
        return cipher.decrypt(nonce, sealed, aad)
    except (InvalidTag, ValueError):
        raise Tampered(
            f"the sealed payload of {record} fails its authentication tag: it was tampered with"
            " (or moved from another row)"
        ) from None


def event_namespace(event: ParsedEvent) -> str:
    """The namespace an event's body is sealed under: its job's, else its first node's."""
    first = None
    for node in event.nodes:
        if node.namespace:
            if node.kind == "job":
                return node.namespace
            first = first or node.namespace
    return first or DEFAULT_NAMESPACE


def seal_all(events: Sequence[ParsedEvent]) -> list[EventSeal]:
    """The policy of a store made with ``--encrypt-all``: every body and artifact, each artifact
    under its node's namespace."""
    decisions = []
    for event in events:
        namespace = event_namespace(event)
        of_node = {node.digest: node.namespace for node in event.nodes if node.digest}
        decisions.append(
            EventSeal(namespace, {ref: of_node.get(ref) or namespace for ref in event.artifacts})
        )
    return decisions


def check_plain(payload: bytes, record: str) -> bytes:
    """``payload``, refused when it begins like a sealed or shredded envelope.

    Raises:
        StoreError: it does.
    """
    if is_sealed(payload) or payload.startswith(_MARKER):
        raise StoreError(
            f"{record} begins with a reserved key (opslineage:sealed, opslineage:shredded, shredded)"
        )
    return payload


def sealed_rows(
    sealer: Sealer | None,
    events: list[ParsedEvent],
    first_seq: int,
    artifacts: dict[str, tuple[str, str, bytes, int]],
    new_keys: list[DataKeyRow],
) -> tuple[list[bytes], Iterable[tuple[str, str, bytes, int]]]:
    """The event bodies and artifact rows a write stores: sealed by ``sealer`` where its policy
    says, as given when it is None (a store that seals nothing); see :meth:`Sealer.seal`.

    Raises:
        StoreError: a plaintext payload begins like a sealed envelope.
    """
    if sealer is not None:
        bodies, rows = sealer.seal(events, first_seq, artifacts, new_keys)
        return bodies, rows.values()
    for ref, row in artifacts.items():
        check_plain(row[2], f"artifact {ref}")
    return [
        check_plain(event.body, f"the body of event {event.digest.hex()}") for event in events
    ], artifacts.values()


class Sealer:
    """Seals the payloads of events about to be stored, by a policy, with a store's data keys."""

    def __init__(self, keys: DataKeys, policy: SealPolicy) -> None:
        """Seal with ``keys`` what ``policy`` says."""
        self.keys = keys
        self.policy = policy

    def seal(
        self,
        events: list[ParsedEvent],
        first_seq: int,
        artifacts: dict[str, tuple[str, str, bytes, int]],
        new_keys: list[DataKeyRow],
    ) -> tuple[list[bytes], dict[str, tuple[str, str, bytes, int]]]:
        """The bodies of ``events`` (stored from ``first_seq`` on) and the artifact rows they
        bring (digest → (digest, type, content, seq)), sealed where the policy says; data keys
        made on the way are appended to ``new_keys``."""
        decisions = self.policy(events)
        bodies = []
        for event, decision in zip(events, decisions, strict=True):
            body = check_plain(event.body, f"the body of event {event.digest.hex()}")
            if decision.body is not None:
                key_id, cipher = self.keys.sealing_key(decision.body, month_of(event.event_time), new_keys)
                body = seal_payload(key_id, cipher, body, event_aad(event.digest))
            bodies.append(body)
        rows = {}
        for ref, (digest, kind, plain, seq) in artifacts.items():
            content = check_plain(plain, f"artifact {ref}")
            event, decision = events[seq - first_seq], decisions[seq - first_seq]
            namespace = decision.artifacts.get(ref)
            if namespace is not None:
                key_id, cipher = self.keys.sealing_key(namespace, month_of(event.event_time), new_keys)
                content = seal_payload(key_id, cipher, content, artifact_aad(ref))
            rows[ref] = (digest, kind, content, seq)
        return bodies, rows
