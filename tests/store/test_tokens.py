"""The token table of both backends: hashes only, names unique, rows never deleted, revoked once,
also against SQL run behind the store's back (the schema's triggers)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from conftest import RunSql
from opslineage import open_store
from opslineage.store import Store, TokenRow

T0 = datetime(2026, 2, 1, 9, 30, 15, 123456, tzinfo=UTC)
DIGEST = hashlib.sha256(b"olt_secret").digest()


def _add(store: Store, name: str = "ci", digest: bytes = DIGEST) -> bool:
    return store.add_token(
        name=name,
        digest=digest,
        role="producer",
        namespaces=["ops", "billing"],
        created_at=T0,
        expires_at=T0 + timedelta(days=90),
        created_by="local:alice",
    )


def test_a_token_round_trips_and_is_found_by_its_hash(store: Store, store_url: str) -> None:
    assert not store.has_tokens() and store.tokens() == []
    assert _add(store)
    row = TokenRow(
        "ci", DIGEST, "producer", ("ops", "billing"), T0, T0 + timedelta(days=90), None, "local:alice"
    )
    assert store.token_by_hash(DIGEST) == row
    assert store.token_by_hash(hashlib.sha256(b"other").digest()) is None
    assert store.has_tokens() and store.tokens() == [row]
    with open_store(store_url) as again:  # what one connection wrote, another reads
        assert again.tokens() == [row]


def test_a_name_is_taken_once_and_a_revocation_happens_once(store: Store) -> None:
    assert _add(store)
    assert not _add(store, digest=hashlib.sha256(b"another").digest())
    assert [row.digest for row in store.tokens()] == [DIGEST]
    assert store.revoke_token("ci", T0 + timedelta(hours=1))
    assert not store.revoke_token("ci", T0 + timedelta(hours=2))
    assert not store.revoke_token("ghost", T0)
    revoked = store.token_by_hash(DIGEST)
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=1)


def test_tokens_are_listed_oldest_first(store: Store) -> None:
    for index, name in enumerate(("c", "a", "b")):
        store.add_token(
            name=name,
            digest=hashlib.sha256(name.encode()).digest(),
            role="analyst",
            namespaces=[],
            created_at=T0 + timedelta(minutes=index),
            expires_at=None,
            created_by=None,
        )
    assert [row.name for row in store.tokens()] == ["c", "a", "b"]
    assert all(row.namespaces == () and row.expires_at is None for row in store.tokens())


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM tokens",
        "UPDATE tokens SET role = 'admin'",
        "UPDATE tokens SET revoked_at = NULL",
    ],
)
def test_the_schema_keeps_rows_and_revocations(
    store: Store, store_url: str, run_sql: RunSql, statement: str
) -> None:
    _add(store)
    store.revoke_token("ci", T0 + timedelta(hours=1))
    with pytest.raises(Exception, match="tokens"):
        run_sql(store_url, statement)
    [row] = store.tokens()
    assert (row.role, row.revoked_at) == ("producer", T0 + timedelta(hours=1))
