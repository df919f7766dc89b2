"""Audit bundles: exported with proofs against one signed checkpoint, verified offline, and any
changed byte of their events makes them fail."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helpers import record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.interop import BundleError, make_bundle, make_intoto, verify_bundle
from opslineage.ledger.keys import load_private_key, public_key_b64
from opslineage.ledger.log import checkpoint, init_log
from opslineage.model import parse_event


@pytest.fixture
def signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A store with a log key, two recorded chains, and the first chain's action id."""
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    store = open_store(f"sqlite:///{tmp_path / 'lineage.db'}")
    init_log(store, origin="opslineage.test/log")
    actions = []
    for subject in ("svc-01", "svc-02"):
        tracer = Tracer.in_memory()
        actions.append("run:" + record_chain(tracer, subject=subject).action.run_id)
        store.ingest([parse_event(e) for e in tracer.transport.events])  # type: ignore[attr-defined]
    key = load_private_key(tmp_path / "log.key")
    yield store, key, actions[0]
    store.close()


def test_a_bundle_verifies_offline_and_proves_the_whole_chain(signed) -> None:
    store, key, action = signed
    bundle = make_bundle(store, action, key)
    assert bundle["format"] == "opslineage-bundle/1" and len(bundle["events"]) == 16
    assert {e["proof"]["tree_size"] for e in bundle["events"]} == {store.log_size()}
    report = verify_bundle(json.loads(json.dumps(bundle)), public_key_b64(key.public_key()))
    assert report.ok, report.findings
    assert report.chain is not None and report.chain.action["run"] == action  # type: ignore[index]
    assert [s["id"] for s in report.chain.sources] == ["source:test:svc-01"]


def test_changing_any_event_byte_fails(signed) -> None:
    store, key, action = signed
    bundle = make_bundle(store, action, key)
    public = public_key_b64(key.public_key())
    for index in range(0, len(bundle["events"]), 3):
        forged = copy.deepcopy(bundle)
        forged["events"][index]["event"]["eventTime"] = "2026-01-05T12:00:00.001Z"
        report = verify_bundle(forged, public)
        assert not report.ok and report.findings[0].startswith(f"event {bundle['events'][index]['seq']}:")


def test_dropping_an_event_or_using_another_key_fails(signed) -> None:
    store, key, action = signed
    bundle = make_bundle(store, action, key)
    partial = {
        **bundle,
        "events": [e for e in bundle["events"] if "remediation" not in e["event"]["job"]["name"]],
    }
    report = verify_bundle(partial, public_key_b64(key.public_key()))
    assert not report.ok and "do not make a complete why-chain" in report.findings[0]
    stranger = public_key_b64(Ed25519PrivateKey.generate().public_key())
    report = verify_bundle(bundle, stranger)
    assert not report.ok and "signed by another key" in report.findings[0]


def test_without_a_key_a_bundle_needs_a_covering_checkpoint(signed) -> None:
    store, key, action = signed
    with pytest.raises(BundleError, match="no signed checkpoint covers"):
        make_bundle(store, action)
    checkpoint(store, key, datetime(2026, 1, 6, tzinfo=UTC))
    assert make_bundle(store, action)["events"]


def test_intoto_envelope_is_signed_and_names_the_chain_digests(signed) -> None:
    store, key, action = signed
    envelope = make_intoto(store, action, key)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://opslineage.dev/attestation/why-chain/v1"
    names = {subject["name"] for subject in statement["subject"]}
    assert statement["predicate"]["why"]["decision"]["id"] in names
    assert all(len(subject["digest"]["sha256"]) == 64 for subject in statement["subject"])
    public = public_key_b64(key.public_key())
    assert verify_bundle(envelope, public).ok
    tampered = copy.deepcopy(envelope)
    statement["subject"] = statement["subject"][1:]
    tampered["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    report = verify_bundle(tampered, public)
    assert not report.ok and "no DSSE signature" in report.findings[0]


def test_export_and_verify_bundle_commands(
    signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _, action = signed
    db = store.url
    out = tmp_path / "evidence.json"
    assert main(["export", "--format", "bundle", action, "-o", str(out), "--store", db]) == 0
    pub = str(tmp_path / "log.pub")
    capsys.readouterr()
    assert main(["verify-bundle", str(out), "--public-key", pub]) == 0
    shown = capsys.readouterr().out
    assert "ok: 16 events proven" in shown and "action scale_out → svc-01" in shown
    out.write_text(out.read_text().replace('"cpu_mean": 91', '"cpu_mean": 19', 1))
    assert main(["verify-bundle", str(out), "--public-key", pub]) == 1
    assert "FAILED: event" in capsys.readouterr().out
    assert (
        main(
            [
                "export",
                "--format",
                "bundle",
                "run:00000000-0000-4000-8000-000000000000",
                "-o",
                str(tmp_path / "x.json"),
                "--store",
                db,
            ]
        )
        == 2
    )
    assert not (tmp_path / "x.json").exists()
