"""PostgreSQL URLs pass libpq's ``sslmode`` through: ``require`` against a server without SSL is a
clear error naming SSL, ``disable`` connects in plain text, and the URL stays free of secrets."""

from __future__ import annotations

import psycopg
import pytest

from conftest import POSTGRES_URL
from opslineage import open_store
from opslineage.store import StoreError


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _server_has_ssl() -> bool:
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute("SHOW ssl").fetchone()
    return row is not None and row[0] == "on"


def test_sslmode_require_is_passed_to_libpq(postgres_url: str) -> None:
    url = _with(postgres_url, "sslmode=require")
    if _server_has_ssl():
        with open_store(url) as store:
            assert store.log_size() == 0
        assert _ssl_sessions(postgres_url) > 0
        return
    with pytest.raises(StoreError, match="server does not support SSL, but SSL was required"):
        open_store(url)


def test_sslmode_disable_connects_without_tls(postgres_url: str) -> None:
    with open_store(_with(postgres_url, "sslmode=disable")) as store:
        assert store.log_size() == 0
        assert _ssl_sessions(postgres_url) == 0


def _ssl_sessions(url: str) -> int:
    """Sessions on ``url``'s database that use SSL (the store's pool keeps one open)."""
    database = url.rsplit("/", 1)[1].split("?", maxsplit=1)[0]
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a"
            " JOIN pg_stat_ssl s USING (pid) WHERE a.datname = %s",
            (database,),
        ).fetchone()
    assert row is not None and row[1] > 0  # the store's own session is there
    return int(row[0])


def test_a_password_in_the_url_is_masked_in_the_ssl_error(postgres_url: str) -> None:
    if _server_has_ssl():
        pytest.skip("the server has SSL: sslmode=require connects")
    url = _with(postgres_url.replace("postgres@", "postgres:hunter2@", 1), "sslmode=require")
    with pytest.raises(StoreError) as raised:
        open_store(url)
    assert "hunter2" not in str(raised.value)
    assert "SSL" in str(raised.value)


@pytest.mark.parametrize("where", ["user part", "parameter", "both"])
def test_a_password_is_masked_wherever_the_url_carries_it(postgres_url: str, where: str) -> None:
    url = postgres_url.replace("postgres@", "postgres:hunter2@", 1) if where != "parameter" else postgres_url
    url = _with(url, "password=hunter2") if where != "user part" else url
    with open_store(url) as store:  # trust auth: the password is not needed, only carried
        assert "hunter2" not in store.url and "***" in store.url
        assert store.url.count("***") == (2 if where == "both" else 1)
