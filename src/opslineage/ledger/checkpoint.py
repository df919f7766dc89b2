"""Signed checkpoints in the C2SP signed-note layout, which transparency tooling already reads.

::

    <origin>
    <tree size>
    <base64 root hash>
    time <ISO 8601 UTC>

    — <origin> <base64(4-byte key ID || Ed25519 signature)>

The signature covers the note text (the four lines with their newlines). The key ID is
SHA-256(origin || 0x0A || 0x01 || public key)[:4], as c2sp.org/signed-note recommends. Further
signature lines (witness cosignatures, c2sp.org/tlog-cosignature) follow the log's own; they are
kept as they are and checked by :mod:`opslineage.ledger.witness`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from opslineage.ledger.keys import public_key_b64, verify_signature

__all__ = ["Checkpoint", "CheckpointError", "key_id", "parse_note", "sign"]

_DASH = "\u2014"


class CheckpointError(ValueError):
    """A checkpoint that cannot be parsed or whose signature does not verify."""


def key_id(origin: str, key: Ed25519PublicKey) -> bytes:
    """The 4-byte signed-note key ID of an Ed25519 key under a name."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the log's size and root hash at a time."""

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp: str
    signature: bytes
    public_key: str
    cosignatures: tuple[str, ...] = ()
    """Other signature lines of the note (``— <name> <base64>``, without the newline), e.g. witnesses'."""

    @property
    def text(self) -> str:
        """The signed note text."""
        return _text(self.origin, self.tree_size, self.root_hash, self.timestamp)

    @property
    def note(self) -> str:
        """The full signed note: text, blank line, the log's signature line, then any cosignatures."""
        own = f"{_DASH} {self.origin} {base64.b64encode(self.signature).decode()}\n"
        return f"{self.text}\n{own}" + "".join(line + "\n" for line in self.cosignatures)

    def with_cosignatures(self, lines: list[str] | tuple[str, ...]) -> Checkpoint:
        """The same checkpoint with ``lines`` added to its cosignatures (each line once)."""
        merged = list(self.cosignatures)
        merged.extend(line for line in lines if line not in merged)
        return replace(self, cosignatures=tuple(merged))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``checkpoint --json`` prints."""
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "signature": base64.b64encode(self.signature).decode(),
            "public_key": self.public_key,
            "cosignatures": list(self.cosignatures),
        }

    def verify(self, key: Ed25519PublicKey) -> None:
        """Check the signature with ``key``.

        Raises:
            CheckpointError: a different key ID, or a signature that does not verify.
        """
        if self.signature[:4] != key_id(self.origin, key):
            raise CheckpointError(f"checkpoint at size {self.tree_size} is signed by another key")
        if not verify_signature(key, self.signature[4:], self.text.encode()):
            raise CheckpointError(f"checkpoint at size {self.tree_size} has an invalid signature")


def _text(origin: str, size: int, root: bytes, timestamp: str) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {timestamp}\n"


def sign(key: Ed25519PrivateKey, origin: str, tree_size: int, root_hash: bytes, when: datetime) -> Checkpoint:
    """Sign a checkpoint of ``tree_size`` and ``root_hash`` at ``when``."""
    if not origin or any(c.isspace() or c == "+" for c in origin):
        raise CheckpointError(f"origin {origin!r} must be non-empty, without spaces or '+'")
    timestamp = when.isoformat(timespec="seconds").replace("+00:00", "Z")
    public = key.public_key()
    signature = key_id(origin, public) + key.sign(_text(origin, tree_size, root_hash, timestamp).encode())
    return Checkpoint(origin, tree_size, root_hash, timestamp, signature, public_key_b64(public))


def parse_note(note: str, public_key: str = "") -> Checkpoint:
    """Read a checkpoint from its signed-note text (the signature is not checked here).

    Raises:
        CheckpointError: the text is not a checkpoint of this layout.
    """
    text, separator, signatures = note.rpartition("\n\n")
    lines = text.split("\n")
    if not separator or len(lines) < 4 or not lines[3].startswith("time "):
        raise CheckpointError(
            "not a checkpoint note: expected origin, size, root, time, a blank line, signatures"
        )
    try:
        size = int(lines[1])
        root = base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error):
        raise CheckpointError("checkpoint size or root hash is malformed") from None
    signature, others = None, []
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH:
            raise CheckpointError(f"not a signature line: {line[:80]!r}")
        try:
            decoded = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise CheckpointError(f"signature by {parts[1]!r} is not base64") from None
        if parts[1] == lines[0] and signature is None:
            signature = decoded
        elif line not in others:
            others.append(line)
    if signature is None:
        raise CheckpointError(f"checkpoint has no signature line by {lines[0]!r}")
    return Checkpoint(lines[0], size, root, lines[3][len("time ") :], signature, public_key, tuple(others))
