"""API tokens: their secrets, the rules for their names, roles and lifetimes, and how a presented
secret becomes the :class:`~opslineage.governance.Principal` a request acts as.

A secret is ``olt_`` and 43 characters of ``secrets.token_urlsafe(32)`` (256 random bits). Only its
SHA-256 is stored; a presented secret is looked up by that hash and the hash found is compared
with :func:`hmac.compare_digest`. Tokens live in a :class:`TokenStorage` (both store backends are
one); a name is never reused, a token is never deleted, only revoked, once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec

from opslineage.governance.access import AccessDenied
from opslineage.governance.principal import Principal
from opslineage.governance.roles import ROLES

__all__ = [
    "SECRET_PREFIX",
    "StoredToken",
    "TokenInfo",
    "TokenLookup",
    "TokenStorage",
    "authenticate",
    "create_token",
    "hash_secret",
    "list_tokens",
    "new_secret",
    "parse_lifetime",
    "parse_namespace",
    "parse_role",
    "parse_token_name",
    "revoke",
]

SECRET_PREFIX = "olt_"
"""How every token secret starts (so a leaked one is recognisable, e.g. by secret scanners)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LIFETIME = re.compile(r"([1-9][0-9]{0,5})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_MAX_LIFETIME = timedelta(days=3650)
_MAX_SECRET = 256  # characters; a longer bearer credential is no token of ours


class StoredToken(Protocol):
    """A token as a :class:`TokenStorage` keeps it: its fields and the SHA-256 of its secret."""

    @property
    def name(self) -> str: ...
    @property
    def digest(self) -> bytes: ...
    @property
    def role(self) -> str: ...
    @property
    def namespaces(self) -> Sequence[str]: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def created_by(self) -> str | None: ...


class TokenLookup(Protocol):
    """What :func:`authenticate` needs of where tokens are kept (a cache in front of it will do)."""

    def token_by_hash(self, digest: bytes) -> StoredToken | None:
        """The token whose secret hashes to ``digest``, revoked or not; None when there is none."""


class TokenStorage(TokenLookup, Protocol):
    """Where tokens are kept (both store backends are one)."""

    def add_token(
        self,
        *,
        name: str,
        digest: bytes,
        role: str,
        namespaces: Sequence[str],
        created_at: datetime,
        expires_at: datetime | None,
        created_by: str | None,
    ) -> bool:
        """Keep a new token; False (and nothing written) when ``name`` was ever used."""

    def tokens(self) -> Sequence[StoredToken]:
        """Every token ever created, oldest first."""

    def revoke_token(self, name: str, at: datetime) -> bool:
        """Mark the token ``name`` revoked at ``at``; False when there is none, or it was already."""

    def has_tokens(self) -> bool:
        """Whether any token was ever created (revoked and expired ones count)."""


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What may be shown of a token: everything but its secret and the secret's hash.

    Args:
        name: its unique name (the access log's actor is ``token:<name>``).
        role: one of :data:`~opslineage.governance.ROLES`.
        namespaces: the namespaces it is confined to (empty: every namespace).
        created_at: when it was made (UTC).
        expires_at: when it stops working (None: never).
        revoked_at: when it was revoked (None: it was not).
        created_by: who made it (``local:<user>``, ``token:<name>``).
    """

    name: str
    role: str
    namespaces: tuple[str, ...] = ()
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    created_by: str | None = None

    @classmethod
    def of(cls, stored: StoredToken) -> TokenInfo:
        """The showable part of a stored token."""
        return cls(
            name=stored.name,
            role=stored.role,
            namespaces=tuple(stored.namespaces),
            created_at=stored.created_at,
            expires_at=stored.expires_at,
            revoked_at=stored.revoked_at,
            created_by=stored.created_by,
        )

    def state(self, now: datetime) -> str:
        """``active``, ``revoked`` or ``expired`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """A JSON-ready dict, times in RFC 3339, with its ``state`` at ``now``."""
        return {**msgspec.to_builtins(self), "namespaces": list(self.namespaces), "state": self.state(now)}


def new_secret() -> str:
    """A fresh token secret: :data:`SECRET_PREFIX` and 256 random bits, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    """The SHA-256 of ``secret``, the only form of it that is stored."""
    return hashlib.sha256(secret.encode()).digest()


def parse_token_name(text: str) -> str:
    """``text`` as a token name: 1 to 64 letters, digits, ``.``, ``_`` or ``-``, not starting with
    a punctuation mark.

    Raises:
        ValueError: it is not one.
    """
    if not _NAME.fullmatch(text):
        raise ValueError(
            f"a token name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or "
            f"digit, not {text!r}"
        )
    return text


def parse_role(text: str) -> str:
    """``text`` as a role.

    Raises:
        ValueError: not one of :data:`~opslineage.governance.ROLES`.
    """
    if text not in ROLES:
        raise ValueError(f"a role must be one of {', '.join(ROLES)}, not {text!r}")
    return text


def parse_namespace(text: str) -> str:
    """``text`` as a namespace a token is confined to: not empty, no spaces or control characters.

    Raises:
        ValueError: it is not one.
    """
    if not text or len(text) > 255 or any(char.isspace() or not char.isprintable() for char in text):
        raise ValueError(f"a namespace is 1 to 255 printable characters without spaces, not {text!r}")
    return text


def parse_lifetime(text: str) -> timedelta:
    """``text`` (``90d``, ``12h``, ``30m``) as a lifetime of at most ten years.

    Raises:
        ValueError: not a positive whole number of days, hours or minutes, or over ten years.
    """
    match = _LIFETIME.fullmatch(text)
    if match is None:
        raise ValueError(f"a lifetime is a whole number and d, h or m (90d, 12h, 30m), not {text!r}")
    lifetime = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if lifetime > _MAX_LIFETIME:
        raise ValueError(f"a lifetime is at most 3650d (ten years), not {text!r}")
    return lifetime


def create_token(
    storage: TokenStorage,
    *,
    name: str,
    role: str,
    namespaces: Iterable[str] = (),
    lifetime: timedelta | None = None,
    created_by: str | None,
    now: datetime,
) -> tuple[str, TokenInfo]:
    """Make a token, keep its hash in ``storage`` and return its secret (shown once) and info.

    Raises:
        ValueError: a bad name, role or namespace, or a name already used (by any token ever).
    """
    info = TokenInfo(
        name=parse_token_name(name),
        role=parse_role(role),
        namespaces=tuple(sorted({parse_namespace(namespace) for namespace in namespaces})),
        created_at=now,
        expires_at=now + lifetime if lifetime is not None else None,
        created_by=created_by,
    )
    secret = new_secret()
    added = storage.add_token(
        name=info.name,
        digest=hash_secret(secret),
        role=info.role,
        namespaces=info.namespaces,
        created_at=info.created_at,
        expires_at=info.expires_at,
        created_by=info.created_by,
    )
    if not added:
        raise ValueError(f"a token named {name!r} exists or existed: token names are never reused")
    return secret, info


def list_tokens(storage: TokenStorage) -> list[TokenInfo]:
    """Every token ever made, oldest first, without secrets or hashes."""
    return [TokenInfo.of(stored) for stored in storage.tokens()]


def revoke(storage: TokenStorage, name: str, now: datetime) -> TokenInfo:
    """Revoke the token ``name`` at ``now``; returns it as revoked.

    Raises:
        ValueError: there is no such token, or it was already revoked.
    """
    known = {info.name: info for info in list_tokens(storage)}
    if name not in known:
        raise ValueError(f"no token named {name!r} (see `opslineage token list`)")
    if known[name].revoked_at is not None or not storage.revoke_token(name, now):
        raise ValueError(f"token {name!r} was already revoked")
    return msgspec.structs.replace(known[name], revoked_at=now)


def authenticate(secret: str | None, storage: TokenLookup, now: datetime) -> Principal:
    """The principal the bearer of ``secret`` acts as.

    Raises:
        AccessDenied: (``authenticated`` False) no secret, an unknown one, or the token is revoked
            or expired; the reason says which, and never holds the secret.
    """
    if not secret:
        raise AccessDenied("authenticate", "no bearer token was presented", authenticated=False)
    digest = hash_secret(secret)
    stored = storage.token_by_hash(digest) if len(secret) <= _MAX_SECRET else None
    if stored is None or not hmac.compare_digest(bytes(stored.digest), digest):
        raise AccessDenied(
            "authenticate", "the bearer token is not one of this server's", authenticated=False
        )
    info = TokenInfo.of(stored)
    state = info.state(now)
    if state == "revoked":
        reason = f"token {info.name!r} was revoked at {_rfc3339(info.revoked_at)}"
        raise AccessDenied("authenticate", reason, authenticated=False)
    if state == "expired":
        reason = f"token {info.name!r} expired at {_rfc3339(info.expires_at)}"
        raise AccessDenied("authenticate", reason, authenticated=False)
    return Principal.token(info.name, info.role, frozenset(info.namespaces) or None)


def _rfc3339(when: datetime | None) -> str:
    return when.isoformat().replace("+00:00", "Z") if when is not None else "?"
