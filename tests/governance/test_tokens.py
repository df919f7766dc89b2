"""API tokens: secrets, names, roles, lifetimes, and the principal a presented secret becomes,
against the real stores of both backends."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from opslineage.governance import (
    ROLES,
    SECRET_PREFIX,
    AccessDenied,
    Principal,
    TokenStorage,
    authenticate,
    create_token,
    hash_secret,
    list_tokens,
    new_secret,
    parse_lifetime,
    parse_namespace,
    parse_role,
    parse_token_name,
    revoke,
)
from opslineage.store import Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_secret_carries_256_random_bits_and_only_its_sha256_is_kept() -> None:
    secret = new_secret()
    assert secret.startswith(SECRET_PREFIX)
    body = secret.removeprefix(SECRET_PREFIX)
    assert len(body) == 43  # 32 bytes in URL-safe base64, unpadded: 256 bits
    assert len({new_secret() for _ in range(100)}) == 100
    assert hash_secret(secret) == hashlib.sha256(secret.encode()).digest()


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30))],
)
def test_lifetimes_in_days_hours_or_minutes(text: str, lifetime: timedelta) -> None:
    assert parse_lifetime(text) == lifetime


@pytest.mark.parametrize("text", ["", "0d", "-1d", "90", "d", "1.5h", "90 d", "1w", "3651d", "90D"])
def test_a_bad_lifetime_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_lifetime(text)


def test_roles_names_and_namespaces_are_checked_naming_the_bad_value() -> None:
    assert [parse_role(role) for role in ROLES] == list(ROLES)
    with pytest.raises(ValueError, match=r"one of admin, steward.*not 'root'"):
        parse_role("root")
    assert parse_token_name("ci-deploy.prod_1") == "ci-deploy.prod_1"
    for bad in ("", "-x", "has space", "a/b", "x" * 65, "é"):
        with pytest.raises(ValueError, match="token name"):
            parse_token_name(bad)
    assert parse_namespace("s3://bucket") == "s3://bucket"
    for bad in ("", "a b", "tab\t", "x" * 256):
        with pytest.raises(ValueError, match="namespace"):
            parse_namespace(bad)


def test_a_token_authenticates_as_its_role_and_namespaces(store: Store) -> None:
    storage: TokenStorage = store
    secret, info = create_token(
        storage, name="ops-reader", role="operator", namespaces=["ops", "ops"], created_by="local:me", now=NOW
    )
    assert info.namespaces == ("ops",)
    assert authenticate(secret, storage, NOW) == Principal.token("ops-reader", "operator", frozenset({"ops"}))
    admin, _ = create_token(storage, name="root", role="admin", created_by=None, now=NOW)
    assert authenticate(admin, storage, NOW) == Principal("token:root", "admin", None)


def test_unknown_revoked_and_expired_tokens_are_refused_with_distinct_reasons(store: Store) -> None:
    secret, _ = create_token(
        store, name="short", role="analyst", lifetime=timedelta(hours=1), created_by=None, now=NOW
    )
    reasons = []
    for presented, when in (
        (None, NOW),
        ("olt_" + "A" * 43, NOW),
        ("x" * 10_000, NOW),
        (secret, NOW + timedelta(hours=1)),
    ):
        with pytest.raises(AccessDenied) as denied:
            authenticate(presented, store, when)
        assert denied.value.authenticated is False
        reasons.append(denied.value.reason)
    assert reasons[0] == "no bearer token was presented"
    assert reasons[1] == reasons[2] == "the bearer token is not one of this server's"
    assert reasons[3] == "token 'short' expired at 2026-03-01T13:00:00Z"
    assert authenticate(secret, store, NOW + timedelta(minutes=59)).role == "analyst"
    revoke(store, "short", NOW + timedelta(minutes=1))
    with pytest.raises(AccessDenied, match="'short' was revoked at 2026-03-01T12:01:00Z") as denied:
        authenticate(secret, store, NOW + timedelta(minutes=2))
    assert secret not in denied.value.reason


def test_names_are_never_reused_and_a_token_is_revoked_once(store: Store) -> None:
    create_token(store, name="once", role="producer", namespaces=["ops"], created_by="local:me", now=NOW)
    revoke(store, "once", NOW)
    with pytest.raises(ValueError, match="'once' exists or existed"):
        create_token(store, name="once", role="producer", created_by=None, now=NOW)
    with pytest.raises(ValueError, match="'once' was already revoked"):
        revoke(store, "once", NOW + timedelta(days=1))
    with pytest.raises(ValueError, match="no token named 'ghost'"):
        revoke(store, "ghost", NOW)
    [info] = list_tokens(store)
    assert (info.name, info.revoked_at, info.state(NOW)) == ("once", NOW, "revoked")
    assert "digest" not in info.to_dict(NOW) and info.to_dict(NOW)["state"] == "revoked"


def test_a_bad_role_stores_nothing(store: Store) -> None:
    with pytest.raises(ValueError, match="not 'superuser'"):
        create_token(store, name="x", role="superuser", created_by=None, now=NOW)
    assert not store.has_tokens()
