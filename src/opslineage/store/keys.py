"""Keys for encryption at rest: the key-encryption key (KEK) and the data keys it wraps.

The KEK is 32 random bytes, kept outside the store: in a key file (base64, mode 0600; a file that
its group or others may read is refused) or in ``$OPSLINEAGE_KEK`` (base64). Its id
(:func:`kek_id`) is recorded in the store's ``kek.id`` setting, so that a wrong KEK is named as
such rather than decrypting to garbage.

Data keys are AES-256 keys, one per (namespace, UTC month) made on first use, stored in the
``data_keys`` table wrapped by the KEK with AES-256-GCM (the key's id, namespace and month are the
associated data). :func:`rotate_kek` re-wraps every live data key under a new KEK in one
transaction; payloads, sealed by the data keys, are untouched. A shredded data key's wrapped bytes
are gone, and with them every payload it sealed (see :mod:`opslineage.store.sealing`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opslineage.store.records import DataKeyRow, StoreError

__all__ = [
    "ENCRYPTION_META",
    "KEK_ENV",
    "KEK_FILE_ENV",
    "KEK_FILE_META",
    "KEK_ID_META",
    "DataKeys",
    "Kek",
    "KeyError_",
    "KeyStorage",
    "KeyUnavailable",
    "WrongKey",
    "check_rewrapped",
    "check_shredded",
    "create_kek_file",
    "kek_id",
    "load_kek_file",
    "new_kek",
    "rotate_kek",
]

KEK_ENV = "OPSLINEAGE_KEK"
"""The KEK itself, base64 (takes precedence over any key file)."""
KEK_FILE_ENV = "OPSLINEAGE_KEK_FILE"
"""A key file holding the KEK."""
KEK_FILE_META = "kek.file"
KEK_ID_META = "kek.id"
ENCRYPTION_META = "encryption"
"""The store setting naming what is sealed: ``restricted`` or ``all`` (unset: nothing)."""
_KEY_BYTES = 32
_NONCE_BYTES = 12


class KeyError_(StoreError):  # noqa: N801 (KeyError is the builtin's)
    """A key problem: unreadable, unsafe or wrong key material."""


class KeyUnavailable(KeyError_):
    """A sealed payload was asked for and no KEK was given."""


class WrongKey(KeyError_):
    """The KEK given is not the one the store's data keys are wrapped with."""


class KeyStorage(Protocol):
    """Where data keys live: the store's ``data_keys`` table and its settings."""

    def data_key_rows(self) -> list[DataKeyRow]:
        """Every data key, oldest first."""
        ...

    def get_meta(self, key: str) -> str | None:
        """A store setting."""
        ...


def kek_id(kek: bytes) -> str:
    """A KEK's public id: 16 hex digits of a hash of it (it reveals nothing of the key)."""
    return hashlib.sha256(b"opslineage-kek-id\n" + kek).hexdigest()[:16]


class Kek:
    """A key-encryption key and where it came from (for messages)."""

    def __init__(self, key: bytes, origin: str) -> None:
        """Wrap ``key`` (32 bytes), read from ``origin``."""
        if len(key) != _KEY_BYTES:
            raise KeyError_(f"the key-encryption key from {origin} is {len(key)} bytes, not {_KEY_BYTES}")
        self.key = key
        self.origin = origin
        self.id = kek_id(key)

    def wrap(self, row_id: str, namespace: str, period: str, data_key: bytes) -> bytes:
        """``data_key`` sealed by this KEK, bound to its id, namespace and month."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(self.key).encrypt(nonce, data_key, _wrap_aad(row_id, namespace, period))

    def unwrap(self, row: DataKeyRow) -> bytes:
        """The data key of ``row``.

        Raises:
            WrongKey: the row is wrapped by another KEK, or its wrapped bytes were altered.
        """
        if row.kek_id != self.id:
            raise WrongKey(
                f"data key {row.key_id} is wrapped by key-encryption key {row.kek_id}, but the one from"
                f" {self.origin} is {self.id}: give the store's KEK ($OPSLINEAGE_KEK or its key file)"
            )
        wrapped = row.wrapped or b""
        try:
            return AESGCM(self.key).decrypt(
                wrapped[:_NONCE_BYTES],
                wrapped[_NONCE_BYTES:],
                _wrap_aad(row.key_id, row.namespace, row.period),
            )
        except (InvalidTag, ValueError):
            raise WrongKey(
                f"data key {row.key_id} does not unwrap with the key-encryption key from {self.origin}:"
                " the KEK is wrong or the wrapped key was altered"
            ) from None


def _wrap_aad(row_id: str, namespace: str, period: str) -> bytes:
    return f"opslineage-data-key\n{row_id}\n{namespace}\n{period}".encode()


def new_kek() -> bytes:
    """32 fresh random bytes."""
    return os.urandom(_KEY_BYTES)


def _decode(text: str, origin: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyError_(f"the key-encryption key in {origin} is not base64") from None


def load_kek_file(path: str | os.PathLike[str]) -> Kek:
    """The KEK in a key file.

    Raises:
        KeyError_: the file is missing, readable by its group or others, or not a base64 32-byte key.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise KeyUnavailable(f"no key-encryption key file {path} (run `opslineage keys init`)") from None
    except OSError as error:
        raise KeyError_(f"cannot read key-encryption key file {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyError_(
            f"key-encryption key file {path} has mode {stat.S_IMODE(mode):04o}: its group or others may"
            f" read it; make it owner-only (chmod 600 {path})"
        )
    return Kek(_decode(text, str(path)), str(path))


def create_kek_file(path: str | os.PathLike[str], key: bytes | None = None) -> Kek:
    """Write a new KEK (``key``, else a fresh one) to ``path``, mode 0600, synced.

    Raises:
        KeyError_: ``path`` exists already.
    """
    path = Path(path)
    key = key if key is not None else new_kek()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyError_(f"key-encryption key file {path} exists already") from None
    except OSError as error:
        raise KeyError_(f"cannot create key-encryption key file {path}: {error.strerror}") from None
    with os.fdopen(fd, "w") as file:
        file.write(base64.b64encode(key).decode() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return Kek(key, str(path))


def kek_from_env() -> Kek | None:
    """The KEK in ``$OPSLINEAGE_KEK``, if set."""
    text = os.environ.get(KEK_ENV)
    return None if not text else Kek(_decode(text, f"${KEK_ENV}"), f"${KEK_ENV}")


def month_of(event_time: str) -> str:
    """The UTC month (``2026-12``) of an RFC 3339 time: the period a data key covers."""
    try:
        when = datetime.fromisoformat(event_time.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return event_time[:7]
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m")


class DataKeys:
    """The data keys of one store, unwrapped on first use and cached.

    Args:
        storage: the store's ``data_keys`` table.
        kek: gives the KEK when it is first needed (raising :class:`KeyUnavailable` when none is).
    """

    def __init__(self, storage: KeyStorage, kek: Callable[[], Kek]) -> None:
        self._storage = storage
        self._kek_source = kek
        self._kek: Kek | None = None
        self._keys: dict[str, AESGCM | None] = {}  # key id → its cipher; None: shredded
        self._scopes: dict[tuple[str, str], str] = {}  # (namespace, month) → the key that seals it
        self._loaded = False

    def kek(self) -> Kek:
        """The KEK, checked against the store's ``kek.id``.

        Raises:
            KeyUnavailable: none was given.
            WrongKey: it is not the store's.
        """
        if self._kek is None:
            kek = self._kek_source()
            recorded = self._storage.get_meta(KEK_ID_META)
            if recorded is not None and recorded != kek.id:
                raise WrongKey(
                    f"the key-encryption key from {kek.origin} (id {kek.id}) is not this store's (id"
                    f" {recorded}): give the right one ($OPSLINEAGE_KEK or the key file)"
                )
            self._kek = kek
        return self._kek

    def forget(self) -> None:
        """Drop every cached key (after a rolled-back write, a rotation or a shred)."""
        self._keys.clear()
        self._scopes.clear()
        self._kek = None
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        for row in self._storage.data_key_rows():
            if row.shredded_at is not None:
                self._keys[row.key_id] = None
                continue
            self._scopes[(row.namespace, row.period)] = row.key_id
            if self._keys.get(row.key_id) is None:
                self._keys[row.key_id] = AESGCM(self.kek().unwrap(row))
        self._loaded = True

    def cipher(self, key_id: str) -> AESGCM | None:
        """The cipher of data key ``key_id``; None when that key was shredded.

        Raises:
            KeyError_: there is no such key, no KEK, or the wrong one.
        """
        if key_id not in self._keys:
            self._loaded = False
            self._load()
        if key_id not in self._keys:
            raise KeyError_(f"the store has no data key {key_id}")
        return self._keys[key_id]

    def sealing_key(self, namespace: str, period: str, new_rows: list[DataKeyRow]) -> tuple[str, AESGCM]:
        """The key that seals ``namespace``'s payloads of ``period``: the live one, or a new one
        appended to ``new_rows`` (for the caller to insert in its write transaction)."""
        self._load()
        key_id = self._scopes.get((namespace, period))
        if key_id is None:
            kek = self.kek()
            key_id = uuid.uuid4().hex
            data_key = AESGCM.generate_key(bit_length=256)
            created = datetime.now(UTC).isoformat(timespec="microseconds")
            new_rows.append(
                DataKeyRow(
                    key_id,
                    namespace,
                    period,
                    kek.wrap(key_id, namespace, period, data_key),
                    kek.id,
                    created,
                    None,
                )
            )
            self._scopes[(namespace, period)] = key_id
            self._keys[key_id] = AESGCM(data_key)
        cipher = self._keys[key_id]
        assert cipher is not None
        return key_id, cipher


def rotate_kek(rows: Sequence[DataKeyRow], old: Kek, new: Kek) -> list[tuple[str, bytes]]:
    """(key id, wrapped under ``new``) for every live data key of ``rows``, unwrapped with ``old``.

    Raises:
        WrongKey: ``old`` does not unwrap one of them.
    """
    return [
        (row.key_id, new.wrap(row.key_id, row.namespace, row.period, old.unwrap(row)))
        for row in rows
        if row.shredded_at is None
    ]


def check_rewrapped(changed: int, live: int) -> None:
    """Raise unless a rotation re-wrapped every live data key.

    Raises:
        StoreError: some were not (a key was made or shredded meanwhile); nothing is changed.
    """
    if changed != live:
        raise StoreError(
            f"{live - changed} of the {live} live data keys were not re-wrapped (was a key made or"
            " shredded meanwhile?); nothing was changed: run `opslineage keys rotate` again"
        )


def check_shredded(changed: Sequence[int]) -> None:
    """Raise unless every statement of a shred changed its one row.

    Raises:
        StoreError: some did not (a row changed meanwhile); nothing is changed.
    """
    if any(count != 1 for count in changed):
        raise StoreError(
            "the store changed while shredding (another `retention apply`?); nothing was shredded"
        )
