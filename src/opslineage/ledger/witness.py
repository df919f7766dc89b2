"""Witnesses: cosignatures (c2sp.org/tlog-cosignature, ``cosignature/v1``, Ed25519) and the client
side of the witness protocol (c2sp.org/tlog-witness), by which a log has its checkpoints cosigned
by parties that check it never rewrote its history.

A cosignature is one more signature line on the checkpoint note::

    — <witness name> base64(key ID || u64 big-endian timestamp || Ed25519 signature)

over ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint's note text. The key ID is
SHA-256(name || 0x0A || 0x04 || public key)[:4]. A witness is known to a verifier by its *vkey*,
``<name>+<hex key ID>+base64(0x04 || public key)`` (c2sp.org/signed-note).

The log asks a witness with ``POST <url>/add-checkpoint``: ``old <size>``, the consistency proof
from that size (one base64 hash a line), an empty line, then the checkpoint note. The witness
answers 200 with its cosignature lines, or 409 with the size it last cosigned when ``old`` is not
that size. The log keeps, per witness URL, the size it last had cosigned (store setting
``witness_size:<url>``) and the cosignatures per checkpoint size (``cosignatures:<size>``): both
are self-checking (a lost size costs one 409, a lost or forged cosignature fails ``verify
--witness-key``), so they need no append-only table.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from opslineage.ledger.checkpoint import Checkpoint
from opslineage.ledger.keys import verify_signature
from opslineage.ledger.log import consistency, cosignatures
from opslineage.store import Store

__all__ = [
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "WitnessError",
    "WitnessKey",
    "cosign",
    "cosigned_by",
    "encode_request",
    "parse_request",
    "request_cosignatures",
    "witness_checkpoint",
]

MAX_PROOF_LINES = 63  # the protocol's limit on consistency proof lines
SIZE_CONTENT_TYPE = "text/x.tlog.size"  # of a 409's body: the size the witness last cosigned
_ALGORITHM = b"\x04"  # cosignature/v1 over Ed25519
_DASH = "\u2014"


class WitnessError(Exception):
    """A witness refused a checkpoint, could not be reached, or answered outside the protocol."""


@dataclass(frozen=True)
class WitnessKey:
    """A witness as verifiers know it: its name and Ed25519 public key."""

    name: str
    key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        """The 32 public key bytes."""
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> bytes:
        """The 4-byte cosignature key ID."""
        return hashlib.sha256(self.name.encode() + b"\n" + _ALGORITHM + self.raw).digest()[:4]

    @property
    def vkey(self) -> str:
        """The verifier key string: ``<name>+<hex key ID>+<base64(0x04 || key)>``."""
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(_ALGORITHM + self.raw).decode()}"

    @classmethod
    def parse(cls, text_or_path: str) -> WitnessKey:
        """A witness key from its vkey string, or from a file holding one.

        Raises:
            ValueError: not a cosignature/v1 Ed25519 vkey, or its key ID does not match.
        """
        candidate = Path(text_or_path)
        text = candidate.read_text().strip() if candidate.is_file() else text_or_path.strip()
        name, _, rest = text.partition("+")
        hex_id, _, encoded = rest.partition("+")
        try:
            material = base64.b64decode(encoded, validate=True)
            expected = bytes.fromhex(hex_id)
            if not name or len(material) != 33 or material[:1] != _ALGORITHM:
                raise ValueError
            parsed = cls(name, Ed25519PublicKey.from_public_bytes(material[1:]))
        except (binascii.Error, ValueError):
            raise ValueError(
                f"{text_or_path!r} is not a witness key (<name>+<hex key id>+<base64 of 0x04 and 32 key bytes>)"
            ) from None
        if parsed.key_id != expected:
            raise ValueError(f"witness key {text_or_path!r}: its key ID does not match its name and key")
        return parsed

    @classmethod
    def of(cls, name: str, private: Ed25519PrivateKey) -> WitnessKey:
        """The witness key of a private key under ``name``."""
        return cls(name, private.public_key())


def _message(checkpoint: Checkpoint, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint.text}".encode()


def cosign(private: Ed25519PrivateKey, name: str, checkpoint: Checkpoint, timestamp: int) -> str:
    """The cosignature line (no newline) of witness ``name`` on ``checkpoint`` at POSIX ``timestamp``."""
    witness = WitnessKey.of(name, private)
    signature = private.sign(_message(checkpoint, timestamp))
    blob = witness.key_id + struct.pack(">Q", timestamp) + signature
    return f"{_DASH} {name} {base64.b64encode(blob).decode()}"


def cosigned_by(checkpoint: Checkpoint, witness: WitnessKey) -> int | None:
    """The timestamp of ``witness``'s valid cosignature on ``checkpoint``, or None when it has none.

    Lines of other names or key IDs are ignored, as the protocol demands.
    """
    prefix = f"{_DASH} {witness.name} "
    for line in checkpoint.cosignatures:
        if not line.startswith(prefix):
            continue
        try:
            blob = base64.b64decode(line[len(prefix) :], validate=True)
        except binascii.Error:
            continue
        if len(blob) != 4 + 8 + 64 or blob[:4] != witness.key_id:
            continue
        (timestamp,) = struct.unpack(">Q", blob[4:12])
        if timestamp < 1 << 63 and verify_signature(witness.key, blob[12:], _message(checkpoint, timestamp)):
            return int(timestamp)
    return None


@dataclass(frozen=True)
class AddCheckpoint:
    """An ``add-checkpoint`` request: the size the witness is believed to have, the proof from it,
    and the checkpoint note."""

    old: int
    proof: list[bytes]
    note: str


def encode_request(old: int, proof: list[bytes], note: str) -> bytes:
    """The ``add-checkpoint`` request body."""
    lines = [f"old {old}", *(base64.b64encode(node).decode() for node in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


def parse_request(body: bytes) -> AddCheckpoint:
    """Read an ``add-checkpoint`` request body.

    Raises:
        ValueError: not UTF-8, no ``old <size>`` line in canonical decimal, a proof line that is
            not one base64 hash, more than 63 of them, or no empty line before the checkpoint.
    """
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ValueError("the request body is not UTF-8") from None
    head, separator, note = text.partition("\n\n")
    if not separator:
        raise ValueError("the request has no empty line between the proof and the checkpoint")
    first, *proof_lines = head.split("\n")
    size = first.removeprefix("old ")
    if size == first or not size.isdigit() or (size != "0" and size.startswith("0")) or not size.isascii():
        raise ValueError("the request's first line must be `old <size>` (decimal, no leading zeroes)")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise ValueError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in proof_lines:
        try:
            node = base64.b64decode(line, validate=True)
        except binascii.Error:
            node = b""
        if len(node) != 32:
            raise ValueError(f"consistency proof line {line[:60]!r} is not a base64 SHA-256 hash")
        proof.append(node)
    return AddCheckpoint(int(size), proof, note)


def _post(url: str, body: bytes, timeout: float) -> tuple[int, str, str]:
    """POST to ``<url>/add-checkpoint``; (status, content type, body text)."""
    import urllib.error  # noqa: PLC0415 (loaded only when a witness is asked)
    import urllib.request  # noqa: PLC0415

    request = urllib.request.Request(
        url.rstrip("/") + "/add-checkpoint", data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get_content_type(), response.read(1 << 16).decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers.get_content_type(), error.read(1 << 16).decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise WitnessError(f"witness {url} is unreachable: {reason}") from None


def request_cosignatures(
    url: str, checkpoint: Checkpoint, old: int, prove: Callable[[int], list[bytes]], timeout: float = 10.0
) -> tuple[list[str], int]:
    """Ask the witness at ``url`` to cosign ``checkpoint``, proving consistency from ``old``.

    On a 409 naming another size, ask once more with the proof from that size.

    Args:
        url: the witness's submission prefix (``http://host:port``).
        checkpoint: the signed checkpoint.
        old: the size the witness is believed to have cosigned last (0 when unknown).
        prove: the consistency proof from a size to the checkpoint's size.
        timeout: seconds per request.

    Returns:
        The witness's cosignature lines, and the size it now holds (the checkpoint's).

    Raises:
        WitnessError: the witness refused the checkpoint or is unreachable.
    """
    if not url.startswith(("http://", "https://")):
        raise WitnessError(f"witness URL {url!r} must start with http:// or https://")
    size = checkpoint.tree_size
    for _ in range(2):
        status, content_type, text = _post(url, encode_request(old, prove(old), checkpoint.note), timeout)
        if status == 200:
            lines = [line for line in text.split("\n") if line]
            if not lines or not all(line.startswith(_DASH + " ") and line.count(" ") == 2 for line in lines):
                raise WitnessError(f"witness {url} answered 200 without cosignature lines")
            return lines, size
        if status != 409 or content_type != SIZE_CONTENT_TYPE:
            raise WitnessError(
                f"witness {url} refused the checkpoint of size {size}: {status} {text.strip()}"
            )
        named = text.strip()
        if not named.isdigit():
            raise WitnessError(f"witness {url} answered 409 without a size")
        if int(named) == old:  # same size, so the conflict is the root: the witness saw another tree
            raise WitnessError(
                f"witness {url} cosigned another tree of size {old} for {checkpoint.origin}: the log forked"
            )
        if int(named) > size:
            raise WitnessError(
                f"witness {url} has cosigned size {named} of {checkpoint.origin}, larger than this "
                f"checkpoint's {size}: the log was rolled back"
            )
        old = int(named)
    raise WitnessError(f"witness {url} keeps naming another size than {old}")


def witness_checkpoint(store: Store, checkpoint: Checkpoint, url: str, timeout: float = 10.0) -> Checkpoint:
    """Have the witness at ``url`` cosign ``checkpoint`` (a checkpoint of ``store``); keep its
    cosignatures and the size it now holds in the store. Returns the checkpoint with them.

    Raises:
        WitnessError: the witness refused or is unreachable.
    """
    size = checkpoint.tree_size

    def prove(old: int) -> list[bytes]:
        if old == 0 or old >= size:
            return []
        return [bytes.fromhex(node) for node in consistency(store, old, size)["proof"]]

    old = int(store.get_meta(f"witness_size:{url}") or 0)
    if old > size:  # what the log recorded cannot be: ask from 0, and the witness names what it holds
        old = 0
    lines, held = request_cosignatures(url, checkpoint, old, prove, timeout)
    merged = checkpoint.with_cosignatures(cosignatures(store, size)).with_cosignatures(lines)
    store.set_meta(f"cosignatures:{size}", "\n".join(merged.cosignatures))
    store.set_meta(f"witness_size:{url}", str(held))
    return merged
