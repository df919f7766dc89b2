"""Encryption at rest, on both backends: restricted (or all) payloads are ciphertext in the database
and the archive segments, read back in plaintext with the KEK; digests, ids and the log are those
of a plain store; a flipped or moved ciphertext, a wrong or unsafe KEK are clear errors; rotation
re-wraps the data keys and leaves the payloads alone."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
import zstandard

from conftest import RunSql
from live import start_server
from opslineage import Tracer, open_store
from opslineage.ingest import IngestPipeline
from opslineage.ledger.log import root
from opslineage.ledger.verify import verify_store
from opslineage.model import parse_event
from opslineage.model.facets import LabelFacet
from opslineage.server import ServerSettings
from opslineage.store import Store, StoreError
from opslineage.store.archive import archive_store
from opslineage.store.keys import (
    KEK_ENV,
    Kek,
    KeyError_,
    KeyUnavailable,
    WrongKey,
    create_kek_file,
    load_kek_file,
    new_kek,
    rotate_kek,
)
from opslineage.store.sealing import SEALED_PREFIX, Tampered, sealed_rows
from planted import NAMESPACE, SECRET, SecretChain, record_secret_chain

MARKER = SECRET.encode()


def _label_restricted(tracer: Tracer) -> None:
    tracer.set_label(
        LabelFacet(
            namespace=NAMESPACE,
            level="restricted",
            source="svc-01",
            set_at="2026-01-01T00:00:00Z",
            set_by="cli:t",
        )
    )


@pytest.fixture
def kek(monkeypatch: pytest.MonkeyPatch) -> Kek:
    """A KEK in $OPSLINEAGE_KEK."""
    key = new_kek()
    monkeypatch.setenv(KEK_ENV, base64.b64encode(key).decode())
    return Kek(key, f"${KEK_ENV}")


def _sealed_chain(store: Store, mode: str = "restricted") -> SecretChain:
    """The planted chain in ``store``, which seals ``mode`` records, the source labelled first."""
    store.enable_encryption(mode)
    tracer = Tracer(NAMESPACE, store=store, sync=True)
    _label_restricted(tracer)
    chain = record_secret_chain(tracer, label=False)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    return chain


def _raw_payloads(url: str, run_sql: RunSql) -> list[bytes]:
    """Every event body and artifact content as the database holds it."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        run_sql(url, "PRAGMA wal_checkpoint(TRUNCATE)")
        assert MARKER not in Path(path).read_bytes()
        assert not Path(path + "-wal").exists() or MARKER not in Path(path + "-wal").read_bytes()
    rows = run_sql(url, "SELECT body FROM events UNION ALL SELECT content FROM artifacts")
    return [bytes(row[0]) for row in rows]


def test_restricted_payloads_are_ciphertext_at_rest_and_plaintext_through_reads(
    store: Store, kek: Kek, run_sql: RunSql
) -> None:
    chain = _sealed_chain(store)
    payloads = _raw_payloads(store.url, run_sql)
    assert not any(MARKER in payload for payload in payloads)
    sealed = [payload for payload in payloads if payload.startswith(SEALED_PREFIX)]
    assert len(sealed) >= 4  # two snapshots and the events that brought them
    assert any(b"scale_out" in payload for payload in payloads)  # unrestricted records stay plain
    contents = store.nodes_with_content(chain.snapshots)
    assert all(MARKER in (contents[node].content or b"") for node in chain.snapshots)
    assert any(
        MARKER in raw
        for raw in store.artifacts([node.removeprefix("entity:") for node in chain.snapshots]).values()
    )
    (row,) = store.data_key_rows()
    assert (row.namespace, row.period, row.kek_id, row.shredded_at) == (NAMESPACE, "2026-01", kek.id, None)
    assert verify_store(store, None).ok


def test_an_encrypted_store_has_the_digests_ids_and_log_of_a_plain_one(
    store_url: str, kek: Kek, tmp_path: Path
) -> None:
    with open_store(store_url) as encrypted:
        _sealed_chain(encrypted, "all")
        events = [stored.event for stored in encrypted.events()]
        with open_store(f"sqlite:///{tmp_path / 'plain.db'}") as plain:
            IngestPipeline(plain).ingest(events, actor="cli:test")
            assert plain.encryption() is None
            assert plain.state_digest() == encrypted.state_digest()
            size = encrypted.log_size()
            assert plain.log_size() == size and root(plain, size) == root(encrypted, size)


def test_archive_segments_hold_only_ciphertext_and_read_back(store: Store, kek: Kek, tmp_path: Path) -> None:
    chain = _sealed_chain(store)
    before = store.state_digest()
    report = archive_store(store, store.log_size(), tmp_path / "archive")
    assert report.moved
    files = list((tmp_path / "archive").iterdir())
    assert files
    for file in files:
        text = zstandard.ZstdDecompressor().decompress(file.read_bytes())
        assert MARKER not in text and SEALED_PREFIX in text
    assert store.state_digest() == before
    assert MARKER in (store.nodes_with_content(chain.snapshots)[chain.snapshots[0]].content or b"")
    assert verify_store(store, None).ok


def _sealed_artifacts(store: Store, run_sql: RunSql) -> list[str]:
    rows = run_sql(store.url, "SELECT digest, content FROM artifacts")
    return sorted(digest for digest, content in rows if bytes(content).startswith(SEALED_PREFIX))


def _hex(url: str, column: str) -> str:
    return f"hex({column})" if url.startswith("sqlite") else f"encode({column}, 'hex')"


def test_a_flipped_ciphertext_byte_is_tampering_naming_the_record(
    store: Store, kek: Kek, run_sql: RunSql
) -> None:
    _sealed_chain(store)
    digest = _sealed_artifacts(store, run_sql)[0]
    (content,) = run_sql(store.url, f"SELECT content FROM artifacts WHERE digest = '{digest}'")[0]
    sealed = bytearray(bytes(content))
    position = sealed.index(b'"c":"') + 10
    sealed[position] = ord("A") if sealed[position] != ord("A") else ord("B")
    literal = (
        f"x'{bytes(sealed).hex()}'"
        if store.url.startswith("sqlite")
        else f"'\\x{bytes(sealed).hex()}'::bytea"
    )
    run_sql(store.url, f"UPDATE artifacts SET content = {literal} WHERE digest = '{digest}'", tamper=True)
    with pytest.raises(Tampered, match=f"artifact {digest} fails its authentication tag"):
        store.artifact(digest)
    report = verify_store(store, None)
    assert not report.ok
    assert any(digest in finding.what and "tampered" in finding.what for finding in report.findings)


def test_a_ciphertext_moved_to_another_row_does_not_open(store: Store, kek: Kek, run_sql: RunSql) -> None:
    _sealed_chain(store)
    first, second = _sealed_artifacts(store, run_sql)[:2]
    run_sql(
        store.url,
        f"UPDATE artifacts SET content = (SELECT content FROM artifacts WHERE digest = '{second}')"
        f" WHERE digest = '{first}'",
        tamper=True,
    )
    with pytest.raises(Tampered, match=f"artifact {first}.*moved from another row"):
        store.artifact(first)
    assert store.artifact(second)


def test_a_wrong_kek_is_refused_not_garbage(
    store_url: str, kek: Kek, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_url) as store:
        chain = _sealed_chain(store)
    monkeypatch.setenv(KEK_ENV, base64.b64encode(new_kek()).decode())
    with open_store(store_url) as store, pytest.raises(WrongKey, match="wrapped by key-encryption key"):
        store.nodes_with_content(chain.snapshots)
    monkeypatch.delenv(KEK_ENV)
    with open_store(store_url) as store, pytest.raises(KeyUnavailable):
        store.nodes_with_content(chain.snapshots)


def test_a_server_without_the_kek_answers_503_key_unavailable_naming_no_file(
    store_url: str, kek: Kek, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_url) as store:
        chain = _sealed_chain(store)
    monkeypatch.delenv(KEK_ENV)
    server, thread, url = start_server(ServerSettings(store=store_url))
    try:
        response = httpx.get(f"{url}/api/v1/nodes/{chain.snapshots[0]}", timeout=10)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert response.status_code == 503
    assert response.json()["error"] == "key_unavailable" and "kek" not in response.json()["detail"].lower()


def test_a_kek_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    made = create_kek_file(tmp_path / "k.kek")
    assert (tmp_path / "k.kek").stat().st_mode & 0o777 == 0o600
    assert load_kek_file(tmp_path / "k.kek").id == made.id
    (tmp_path / "k.kek").chmod(0o640)
    with pytest.raises(KeyError_, match="mode 0640: its group or others may read it"):
        load_kek_file(tmp_path / "k.kek")
    (tmp_path / "bad.kek").write_text("not base64!\n")
    (tmp_path / "bad.kek").chmod(0o600)
    with pytest.raises(KeyError_, match="not base64"):
        load_kek_file(tmp_path / "bad.kek")
    with pytest.raises(KeyError_, match="exists already"):
        create_kek_file(tmp_path / "k.kek")


def test_rotation_rewraps_the_data_keys_and_leaves_payloads_alone(
    store: Store, kek: Kek, run_sql: RunSql, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = _sealed_chain(store)
    payloads = _raw_payloads(store.url, run_sql)
    state = store.state_digest()
    new = Kek(new_kek(), "test")
    store.rewrap_data_keys(rotate_kek(store.data_key_rows(), kek, new), new)
    assert _raw_payloads(store.url, run_sql) == payloads
    assert {row.kek_id for row in store.data_key_rows()} == {new.id}
    monkeypatch.setenv(KEK_ENV, base64.b64encode(new.key).decode())
    with open_store(store.url) as reopened:
        assert reopened.state_digest() == state
        assert MARKER in (reopened.nodes_with_content(chain.snapshots)[chain.snapshots[1]].content or b"")
    monkeypatch.setenv(KEK_ENV, base64.b64encode(kek.key).decode())
    with open_store(store.url) as reopened, pytest.raises(WrongKey):
        reopened.state_digest()


_EVENT = {
    "eventType": "COMPLETE",
    "eventTime": "2026-01-05T12:00:00Z",
    "producer": "https://example.com/p",
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
    "run": {"runId": "01943a5e-7b2c-7c4e-9b1d-3f2a1c0d9e8f"},
    "job": {"namespace": "ops", "name": "j"},
}


def test_a_store_sealing_restricted_records_takes_writes_only_through_the_pipeline(
    store: Store, kek: Kek
) -> None:
    store.enable_encryption("restricted")
    with pytest.raises(StoreError, match=r"write through opslineage\.ingest\.IngestPipeline"):
        store.ingest([parse_event(_EVENT)])
    assert store.log_size() == 0
    IngestPipeline(store).ingest([_EVENT], actor="cli:test")
    assert store.log_size() == 1
    store.enable_encryption("all")
    with pytest.raises(StoreError, match="cannot seal fewer"):
        store.enable_encryption("restricted")
    assert store.encryption() == "all"


def test_a_plaintext_payload_may_not_look_sealed() -> None:
    event = parse_event(_EVENT)
    ref = "sha256:" + "0" * 64
    looks_sealed = {ref: (ref, "snapshot", SEALED_PREFIX + b'k","n":"","c":""}', 1)}
    with pytest.raises(StoreError, match=f"artifact {ref} begins with a reserved key"):
        sealed_rows(None, [event], 1, looks_sealed, [])
    bodies, rows = sealed_rows(None, [event], 1, {}, [])
    assert bodies == [event.body] and not list(rows)
