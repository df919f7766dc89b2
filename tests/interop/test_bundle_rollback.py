"""``verify-bundle`` remembers the newest checkpoint it verified per log: an older bundle, a forked
one, or a newer one without a consistency proof from the remembered size is refused; the witness
cosignatures kept with the checkpoint travel in the bundle and ``--witness-key`` requires one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helpers import record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.interop import make_bundle
from opslineage.ledger.checkpoint import sign
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import checkpoint, init_log, latest_checkpoint
from opslineage.ledger.memory import CheckpointMemory
from opslineage.ledger.witness import WitnessKey, cosign
from opslineage.model import parse_event
from opslineage.store import Store

ORIGIN = "opslineage.test/bundled"


def _record(store: Store, subject: str) -> str:
    tracer = Tracer.in_memory()
    action = "run:" + record_chain(tracer, subject=subject).action.run_id
    store.ingest([parse_event(e) for e in tracer.transport.events])  # type: ignore[attr-defined]
    return action


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    opened = open_store(f"sqlite:///{tmp_path / 'lineage.db'}")
    init_log(opened, origin=ORIGIN)
    yield opened
    opened.close()


def _write(path: Path, bundle: dict) -> str:
    path.write_text(json.dumps(bundle))
    return str(path)


def _verify(path: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    status = main(
        ["verify-bundle", path, "--json", "--public-key", str(Path(path).parent / "log.pub"), *extra]
    )
    return status, json.loads(capsys.readouterr().out)


def test_an_older_or_forked_bundle_is_refused_once_a_newer_one_verified(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = load_private_key(tmp_path / "log.key")
    action = _record(store, "svc-01")
    checkpoint(store, key)
    old = _write(tmp_path / "old.json", make_bundle(store, action, key))
    _record(store, "svc-02")
    checkpoint(store, key)
    new = _write(tmp_path / "new.json", make_bundle(store, action, key, since=20))
    assert _verify(old, capsys)[0] == 0  # remembers 20
    assert _verify(new, capsys)[0] == 0  # 20 → 40, with the proof the bundle carries
    status, report = _verify(old, capsys)
    assert status == 1
    assert (
        f"the newest checkpoint of {ORIGIN} has size 20, but this client verified size 40"
        in report["findings"][0]
    )
    assert _verify(old, capsys, "--checkpoint-cache", str(tmp_path / "other-client"))[0] == 0

    forked = make_bundle(store, action, key)
    fake = sign(key, ORIGIN, 40, b"\x33" * 32, datetime.now(UTC))
    forked["checkpoint"] = fake.note
    status, report = _verify(_write(tmp_path / "fork.json", forked), capsys)
    assert status == 1 and "forked" in " ".join(report["findings"])


def test_a_newer_bundle_needs_a_consistency_proof_from_the_remembered_size(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = load_private_key(tmp_path / "log.key")
    action = _record(store, "svc-01")
    checkpoint(store, key)
    assert _verify(_write(tmp_path / "first.json", make_bundle(store, action, key)), capsys)[0] == 0
    _record(store, "svc-02")
    checkpoint(store, key)
    status, report = _verify(_write(tmp_path / "bare.json", make_bundle(store, action, key)), capsys)
    assert status == 1
    assert "no consistency proof from size 20 came with it" in report["findings"][0]
    bundle = make_bundle(store, action, key, since=20)
    bundle["consistency"]["proof"] = ["00" * 32] * len(bundle["consistency"]["proof"])
    status, report = _verify(_write(tmp_path / "bad.json", bundle), capsys)
    assert status == 1 and "rewrote its history" in report["findings"][0]
    assert _verify(_write(tmp_path / "good.json", make_bundle(store, action, key, since=20)), capsys)[0] == 0
    remembered = CheckpointMemory().recall(ORIGIN)
    assert remembered is not None and remembered.tree_size == 40


def test_export_since_and_witness_cosignatures_in_bundles(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = load_private_key(tmp_path / "log.key")
    action = _record(store, "svc-01")
    made = checkpoint(store, key)
    witness_key = Ed25519PrivateKey.generate()
    line = cosign(witness_key, "witness.test/w1", made, 1_767_225_600)
    store.set_meta(f"cosignatures:{made.tree_size}", line)  # as `checkpoint --witness` keeps it
    assert latest_checkpoint(store).cosignatures == (line,)  # type: ignore[union-attr]
    db = store.url
    out = tmp_path / "b.json"
    assert main(["export", "--store", db, "--format", "bundle", action, "-o", str(out), "--since", "5"]) == 0
    capsys.readouterr()
    assert json.loads(out.read_text())["consistency"]["old_size"] == 5
    vkey = WitnessKey.of("witness.test/w1", witness_key).vkey
    status, report = _verify(str(out), capsys, "--witness-key", vkey)
    assert status == 0 and report["cosigned_by"] == ["witness.test/w1"]
    assert report["checkpoint"]["cosignatures"] == [line]
    other = WitnessKey.of("witness.test/w2", Ed25519PrivateKey.generate()).vkey
    status, report = _verify(str(out), capsys, "--witness-key", other)
    assert status == 1 and "no valid cosignature by witness witness.test/w2" in report["findings"][0]
    assert main(["export", "--store", db, "--format", "bundle", action, "-o", str(out), "--since", "99"]) == 2
    assert "--since 99 must be between 1 and the checkpoint's size 20" in capsys.readouterr().err
