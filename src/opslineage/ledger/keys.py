"""The log's Ed25519 key pair: made once by ``opslineage init``, read by whoever signs or verifies.

The private key is a PEM (PKCS #8) file of mode 0600 at ``$OPSLINEAGE_KEY`` or ``./opslineage.key``;
the public key is also written beside it (``.pub``, raw 32 bytes in base64, also 0600), which is
what an auditor keeps and passes to ``verify --public-key`` or ``verify-bundle --public-key``. A
directory made for them is 0700. A private key that others may read is used, with a warning,
once per process and file.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "DEFAULT_KEY_PATH",
    "LogKeyError",
    "create_key",
    "key_path",
    "load_private_key",
    "load_public_key",
    "public_key_b64",
    "verify_signature",
]

DEFAULT_KEY_PATH = "opslineage.key"

_log = logging.getLogger(__name__)
_warned: set[Path] = set()  # key files already warned about in this process


class LogKeyError(Exception):
    """The key is missing, unreadable or of the wrong kind."""


def key_path(path: str | os.PathLike[str] | None = None, recorded: str | None = None) -> Path:
    """Where the private key is: ``path``, else ``$OPSLINEAGE_KEY``, else where the store
    recorded it at ``opslineage init`` (``recorded``), else ``./opslineage.key``."""
    return Path(path or os.environ.get("OPSLINEAGE_KEY") or recorded or DEFAULT_KEY_PATH)


def create_key(path: Path) -> Ed25519PrivateKey:
    """Make a key pair; the private key file is created with mode 0600 and never overwritten.

    Raises:
        LogKeyError: a key file is already there.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LogKeyError(f"a key already exists at {path}; refusing to replace it") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    public = os.open(path.with_suffix(".pub"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(public, "w") as file:
        file.write(public_key_b64(key.public_key()) + "\n")
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read the private key.

    Raises:
        LogKeyError: missing (run ``opslineage init``), unreadable, or not Ed25519.
    """
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise LogKeyError(f"no log key at {path} (run `opslineage init`, or set OPSLINEAGE_KEY)") from None
    except (OSError, ValueError, TypeError) as error:
        raise LogKeyError(f"cannot read the log key at {path}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LogKeyError(f"the key at {path} is not an Ed25519 key")
    _warn_if_readable(path)
    return key


def _warn_if_readable(path: Path) -> None:
    """Log a warning, once per file, when the key file is open to more than its owner."""
    mode = stat.S_IMODE(path.stat().st_mode)
    resolved = path.resolve()
    if mode & 0o077 and resolved not in _warned:
        _warned.add(resolved)
        _log.warning("the log key %s has mode %04o, open to others: run `chmod 600 %s`", path, mode, path)


def load_public_key(text_or_path: str) -> Ed25519PublicKey:
    """A public key given as base64 of its 32 raw bytes, or as a file holding that or a PEM key.

    Raises:
        LogKeyError: neither form.
    """
    candidate = Path(text_or_path)
    text = candidate.read_text().strip() if candidate.is_file() else text_or_path.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as error:
            raise LogKeyError(f"cannot read public key: {error}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise LogKeyError("the public key is not an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise LogKeyError(
            f"{text_or_path!r} is neither a public key file nor base64 of 32 key bytes"
        ) from None


def public_key_b64(key: Ed25519PublicKey) -> str:
    """Base64 of the 32 raw public key bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def verify_signature(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature of ``message``."""
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
