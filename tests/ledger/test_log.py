"""The transparency log in the store: proofs, checkpoints, and verify catching every kind of tampering.

Every test runs on each backend. Every tamper case edits the database directly, as someone with
access to the SQLite file or the PostgreSQL database would, lifting the append-only triggers first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helpers import record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.ledger.checkpoint import sign
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import (
    checkpoint,
    consistency,
    inclusion,
    init_log,
    latest_checkpoint,
    maybe_checkpoint,
    root,
)
from opslineage.ledger.verify import verify_against, verify_store
from opslineage.merkle import leaf_hash, verify_consistency, verify_inclusion
from opslineage.model import parse_event
from opslineage.store import Store

RunSql = Callable[..., list[tuple[Any, ...]]]  # the run_sql fixture (tests/conftest.py)


@pytest.fixture
def logged(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Store]:
    """A store with a key, three recorded chains (60 events) and a checkpoint after the second."""
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    store = open_store(store_url)
    init_log(store, origin="opslineage.test/log")
    key = load_private_key(tmp_path / "log.key")
    for subject in ("svc-01", "svc-02", "svc-03"):
        tracer = Tracer.in_memory()
        record_chain(tracer, subject=subject)
        store.ingest([parse_event(event) for event in tracer.transport.events])  # type: ignore[attr-defined]
        if subject == "svc-02":
            checkpoint(store, key, datetime(2026, 1, 5, tzinfo=UTC))
    checkpoint(store, key, datetime(2026, 1, 6, tzinfo=UTC))
    yield store_url, store
    store.close()


def _dialect(url: str) -> str:
    return "sqlite" if url.startswith("sqlite:") else "postgres"


def _report(url: str, tmp_path: Path):
    with open_store(url, create=False) as store:
        return verify_store(store, load_private_key(tmp_path / "log.key").public_key())


def test_the_root_is_rfc9162_over_each_events_digest_and_body(logged: tuple[str, Store]) -> None:
    _, store = logged
    parsed = [parse_event(e.event) for e in store.events()]
    assert store.leaf_form() == 2  # a new store: artifacts committed by their digests
    leaves = [leaf_hash(b"opslineage-leaf/2\n" + event.digest + event.body) for event in parsed]
    assert [store.log_node(0, i) for i in range(len(leaves))] == leaves

    def mth(hashes: list[bytes]) -> bytes:
        if len(hashes) == 1:
            return hashes[0]
        k = 1 << ((len(hashes) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()

    assert root(store) == mth(leaves)


def test_proofs_from_the_store_verify(logged: tuple[str, Store]) -> None:
    _, store = logged
    size = store.log_size()
    for seq in (1, 17, size):
        proof = inclusion(store, seq, size)
        verify_inclusion(
            bytes.fromhex(proof["leaf_hash"]),
            seq - 1,
            size,
            [bytes.fromhex(h) for h in proof["audit_path"]],
            bytes.fromhex(proof["root_hash"]),
        )
    proof = consistency(store, 40, size)
    verify_consistency(
        40,
        size,
        bytes.fromhex(proof["first_root"]),
        bytes.fromhex(proof["second_root"]),
        [bytes.fromhex(h) for h in proof["proof"]],
    )
    with pytest.raises(ValueError, match="between 1 and"):
        inclusion(store, size + 1)


def test_idempotent_ingest_does_not_append_to_the_log(logged: tuple[str, Store]) -> None:
    _, store = logged
    before = (store.log_size(), root(store))
    store.ingest([parse_event(e.event) for e in store.events()])
    assert (store.log_size(), root(store)) == before


def test_an_untouched_log_verifies(logged: tuple[str, Store], tmp_path: Path) -> None:
    url, _ = logged
    report = _report(url, tmp_path)
    assert report.ok and report.events == 60 and report.checkpoints == 2


# Each case: its statements per dialect ("both" when one text serves both), and the first
# sequence number verify must name.
_TAMPERING = {
    "changed-event-byte": (
        {
            "sqlite": [
                "UPDATE events SET body = replace(body, X'227376632d303222', X'227376632d303922') WHERE seq = 22"
            ],
            "postgres": [
                "UPDATE events SET body = convert_to(replace(convert_from(body, 'UTF8'), '\"svc-02\"',"
                " '\"svc-09\"'), 'UTF8') WHERE seq = 22"
            ],
        },
        22,
    ),
    "deleted-event": ({"both": ["DELETE FROM events WHERE seq = 30"]}, 30),
    "swapped-events": (
        {
            "both": [
                "UPDATE events SET seq = -1 WHERE seq = 12",
                "UPDATE events SET seq = 12 WHERE seq = 25",
                "UPDATE events SET seq = 25 WHERE seq = -1",
            ]
        },
        12,
    ),
    "inserted-event": (
        {
            "sqlite": [
                "UPDATE events SET seq = seq + 1000 WHERE seq >= 40",
                "UPDATE events SET seq = seq - 999 WHERE seq >= 1040",
                "INSERT INTO events (seq, digest, run, run_id, event_type, event_time, body) SELECT 40, digest || X'00', run, run_id, event_type, event_time, body FROM events WHERE seq = 1",
            ],
            "postgres": [
                "UPDATE events SET seq = seq + 1000 WHERE seq >= 40",
                "UPDATE events SET seq = seq - 999 WHERE seq >= 1040",
                "INSERT INTO events (seq, digest, run, run_id, event_type, event_time, body) SELECT 40, digest || '\\x00'::bytea, run, run_id, event_type, event_time, body"
                " FROM events WHERE seq = 1",
            ],
        },
        40,
    ),
}


@pytest.mark.parametrize("case", list(_TAMPERING))
def test_verify_finds_each_tampering_at_the_right_sequence(
    logged: tuple[str, Store], tmp_path: Path, run_sql: RunSql, case: str
) -> None:
    url, store = logged
    store.close()
    statements, first_bad = _TAMPERING[case]
    run_sql(url, *(statements.get(_dialect(url)) or statements["both"]), tamper=True)
    report = _report(url, tmp_path)
    assert not report.ok
    assert report.first_bad_seq == first_bad, report.findings


def test_a_changed_artifact_byte_is_caught_at_the_first_event_carrying_it(
    logged: tuple[str, Store], tmp_path: Path, run_sql: RunSql
) -> None:
    url, store = logged
    ((digest,),) = run_sql(url, "SELECT digest FROM artifacts WHERE type = 'feature' ORDER BY seq LIMIT 1")
    first_bad = min(seq for seq, _, body in store.raw_events(limit=1000) if digest.encode() in body)
    store.close()
    change = {
        "sqlite": "replace(content, X'3931', X'3932')",
        "postgres": "convert_to(replace(convert_from(content, 'UTF8'), '91', '92'), 'UTF8')",
    }[_dialect(url)]
    run_sql(url, f"UPDATE artifacts SET content = {change} WHERE digest = '{digest}'", tamper=True)
    report = _report(url, tmp_path)
    assert report.first_bad_seq == first_bad, report.findings


def test_a_forged_checkpoint_is_caught(logged: tuple[str, Store], tmp_path: Path, run_sql: RunSql) -> None:
    url, store = logged
    size, forged_root = 40, b"\x42" * 32
    forged = sign(
        Ed25519PrivateKey.generate(),
        "opslineage.test/log",
        size,
        forged_root,
        datetime(2026, 1, 7, tzinfo=UTC),
    )
    store.close()
    root_literal = {"sqlite": f"X'{forged_root.hex()}'", "postgres": f"'\\x{forged_root.hex()}'::bytea"}
    run_sql(
        url,
        f"UPDATE checkpoints SET root = {root_literal[_dialect(url)]}, note = '{forged.note}' WHERE size = {size}",
        tamper=True,
    )
    report = _report(url, tmp_path)
    assert report.first_bad_seq == size
    assert any("signed by another key" in f.what for f in report.findings)


def test_a_rewritten_history_fails_against_a_kept_checkpoint(
    logged: tuple[str, Store], tmp_path: Path, run_sql: RunSql
) -> None:
    url, store = logged
    kept = latest_checkpoint(store)
    assert kept is not None
    public = load_private_key(tmp_path / "log.key").public_key()
    tracer = Tracer.in_memory()
    record_chain(tracer, subject="svc-04")
    store.ingest([parse_event(e) for e in tracer.transport.events])  # type: ignore[attr-defined]
    assert verify_against(store, kept, public) == []
    store.close()
    zeros = {"sqlite": "zeroblob(32)", "postgres": "decode(repeat('00', 32), 'hex')"}[_dialect(url)]
    run_sql(
        url, f"UPDATE log_nodes SET hash = {zeros} WHERE level = 5 AND idx = 0", tamper=True
    )  # leaves 0-31
    with open_store(url, create=False) as reopened:
        findings = verify_against(reopened, kept, public)
    assert findings and "not an extension" in findings[0].what


def test_verify_command_exit_statuses(
    logged: tuple[str, Store], tmp_path: Path, run_sql: RunSql, capsys: pytest.CaptureFixture[str]
) -> None:
    db, store = logged
    kept = tmp_path / "kept.note"
    kept.write_text(latest_checkpoint(store).note)  # type: ignore[union-attr]
    store.close()
    assert main(["verify", "--store", db, "--checkpoint", str(kept)]) == 0
    assert (
        "ok: 60 events and 2 checkpoint(s) verified; the log extends the kept checkpoint"
        in capsys.readouterr().out
    )
    run_sql(db, "DELETE FROM events WHERE seq = 5", tamper=True)
    assert main(["verify", "--store", db, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["first_bad_seq"] == 5


def test_checkpoint_and_proof_commands(
    logged: tuple[str, Store], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, store = logged
    store.close()
    assert main(["checkpoint", "--store", db]) == 0
    note = capsys.readouterr().out.splitlines()
    assert note[:2] == ["opslineage.test/log", "60"] and note[3].startswith("time ") and note[4] == ""
    assert note[5].startswith("\u2014 opslineage.test/log ")
    assert main(["checkpoint", "--store", db, "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert set(made) == {
        "origin",
        "tree_size",
        "root_hash",
        "timestamp",
        "signature",
        "public_key",
        "cosignatures",
        "witness_errors",
    }
    assert made["cosignatures"] == [] and made["witness_errors"] == []
    assert main(["proof", "inclusion", "3", "--tree-size", "40", "--store", db, "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {
        "leaf_index",
        "tree_size",
        "leaf_hash",
        "root_hash",
        "audit_path",
    }
    assert main(["proof", "consistency", "10", "60", "--store", db, "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {
        "first",
        "second",
        "first_root",
        "second_root",
        "proof",
    }
    assert main(["proof", "consistency", "60", "10", "--store", db]) == 2
    assert "must not be larger" in capsys.readouterr().err


def test_init_refuses_to_replace_a_key(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = store_url
    key = str(tmp_path / "k.key")
    assert main(["init", "--store", db, "--key", key]) == 0
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    assert main(["init", "--store", db, "--key", key]) == 2
    assert "refusing to replace" in capsys.readouterr().err


def test_checkpoints_are_signed_automatically_every_n_events_or_t_seconds(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, key = store_url, str(tmp_path / "auto.key")
    assert (
        main(
            ["init", "--store", db, "--key", key, "--checkpoint-every", "30", "--checkpoint-seconds", "3600"]
        )
        == 0
    )
    files = []
    for subject in ("svc-01", "svc-02", "svc-03"):
        tracer = Tracer.in_memory()
        record_chain(tracer, subject=subject)
        path = tmp_path / f"{subject}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in tracer.transport.events))  # type: ignore[attr-defined]
        files.append(path)
    monkeypatch.setenv("OPSLINEAGE_KEY", key)
    sizes = []
    for path in files:
        assert main(["ingest", str(path), "--store", db]) == 0
        with open_store(db, create=False) as store:
            sizes.append([size for size, _, _ in store.checkpoints()])
    assert sizes == [[20], [20], [20, 60]]  # the first at once, then only once 30 more events arrived
    with open_store(db, create=False) as store:
        tracer = Tracer.in_memory()
        record_chain(tracer, subject="svc-04")
        store.ingest([parse_event(e) for e in tracer.transport.events])  # type: ignore[attr-defined]
        assert maybe_checkpoint(store, key, datetime(2026, 1, 5, tzinfo=UTC)) is None  # neither due
        later = datetime.now(UTC) + timedelta(hours=2)
        made = maybe_checkpoint(store, key, later)
        assert made is not None and made.tree_size == 80
