"""Witnesses on real sockets: ``opslineage witness serve`` (C2SP tlog-witness) cosigns a growing
log, refuses a fork, a rollback, a bad proof or signature; ``checkpoint --witness`` finds the size
the witness holds through a 409; ``verify --witness-key`` requires the cosignature."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.ledger.checkpoint import Checkpoint, parse_note, sign
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import checkpoint, consistency, init_log, latest_checkpoint
from opslineage.ledger.witness import SIZE_CONTENT_TYPE, WitnessKey, cosigned_by, encode_request
from opslineage.model import parse_event
from opslineage.server.witness import WitnessSettings, create_witness_app
from opslineage.store import Store

RunSql = Callable[..., list[tuple[Any, ...]]]  # the run_sql fixture (tests/conftest.py)
ORIGIN = "opslineage.test/witnessed"
NAME = "witness.test/w1"


def _record(store: Store, subject: str) -> None:
    tracer = Tracer.in_memory()
    record_chain(tracer, subject=subject)
    store.ingest([parse_event(event) for event in tracer.transport.events])  # type: ignore[attr-defined]


class Witness:
    """A witness served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, tmp_path: Path, logs: dict[str, Any]) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.vkey = WitnessKey.of(NAME, self.key).vkey
        self.state = tmp_path / "witness.db"
        settings = WitnessSettings(name=NAME, key=self.key, logs=logs, state=self.state)
        self.server = uvicorn.Server(
            uvicorn.Config(create_witness_app(settings), host="127.0.0.1", port=0, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the witness did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def add(self, old: int, proof: list[bytes], note: str) -> httpx.Response:
        """POST one add-checkpoint request."""
        return httpx.post(f"{self.url}/add-checkpoint", content=encode_request(old, proof, note), timeout=10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def log(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Ed25519PrivateKey]:
    """A store with a key and 40 events (no checkpoint yet)."""
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    with open_store(store_url) as store:
        init_log(store, origin=ORIGIN)
        _record(store, "svc-01")
        _record(store, "svc-02")
    return store_url, load_private_key(tmp_path / "log.key")


@pytest.fixture
def witness(log: tuple[str, Ed25519PrivateKey], tmp_path: Path) -> Iterator[Witness]:
    served = Witness(tmp_path, {ORIGIN: log[1].public_key()})
    yield served
    served.stop()


def _checkpoint(db: str, capsys: pytest.CaptureFixture[str], *urls: str) -> tuple[int, Checkpoint, str]:
    status = main(["checkpoint", "--store", db, *(arg for url in urls for arg in ("--witness", url))])
    captured = capsys.readouterr()
    return status, parse_note(captured.out), captured.err


def _proof(store: Store, old: int, new: int) -> list[bytes]:
    return [bytes.fromhex(node) for node in consistency(store, old, new)["proof"]]


def test_the_witness_cosigns_a_growing_log(
    log: tuple[str, Ed25519PrivateKey], witness: Witness, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = log
    verifier = WitnessKey.parse(witness.vkey)
    status, first, err = _checkpoint(db, capsys, witness.url)
    assert (status, err) == (0, "")
    assert first.tree_size == 40 and cosigned_by(first, verifier) is not None
    with open_store(db) as store:
        assert store.get_meta(f"witness_size:{witness.url}") == "40"
        _record(store, "svc-03")
    status, second, _ = _checkpoint(db, capsys, witness.url)  # old 40, a consistency proof 40 → 60
    assert status == 0 and second.tree_size == 60
    timestamp = cosigned_by(second, verifier)
    assert timestamp is not None and abs(timestamp - time.time()) < 60
    with open_store(db) as store:
        kept = latest_checkpoint(store)
    assert kept is not None and kept.cosignatures == second.cosignatures  # kept with the checkpoint
    assert cosigned_by(second, WitnessKey.of(NAME, Ed25519PrivateKey.generate())) is None  # another key
    assert stat.S_IMODE(witness.state.stat().st_mode) == 0o600


def test_the_witness_refuses_a_fork_and_a_rollback(
    log: tuple[str, Ed25519PrivateKey], witness: Witness, capsys: pytest.CaptureFixture[str]
) -> None:
    db, key = log
    assert _checkpoint(db, capsys, witness.url)[0] == 0  # the witness holds size 40
    with open_store(db) as store:
        held = latest_checkpoint(store)
        proof_10 = _proof(store, 10, 40)
        root_10 = consistency(store, 10, 40)["first_root"]
    assert held is not None
    fork = sign(key, ORIGIN, 40, b"\x66" * 32, datetime.now(UTC))
    answer = witness.add(40, [], fork.note)
    assert answer.status_code == 409 and answer.headers["content-type"] == SIZE_CONTENT_TYPE
    assert answer.text == "40\n"
    older = sign(key, ORIGIN, 10, bytes.fromhex(root_10), datetime.now(UTC))
    answer = witness.add(10, [], older.note)  # a rollback to size 10: not the size it holds
    assert (answer.status_code, answer.text) == (409, "40\n")
    assert witness.add(40, proof_10, older.note).status_code == 400  # old larger than the checkpoint
    assert witness.add(40, [], held.note).status_code == 200  # the same checkpoint again: fine


def test_a_rolled_back_log_cannot_get_a_cosignature(
    log: tuple[str, Ed25519PrivateKey], witness: Witness, capsys: pytest.CaptureFixture[str], run_sql: RunSql
) -> None:
    db, _ = log
    with open_store(db) as store:
        _record(store, "svc-03")
    assert _checkpoint(db, capsys, witness.url)[0] == 0  # the witness holds 60
    run_sql(
        db,
        "DELETE FROM events WHERE seq > 40",
        "DELETE FROM log_nodes WHERE (idx + 1) * (1 << level) > 40",
        "DELETE FROM checkpoints",
        tamper=True,
    )
    for forget in (False, True):  # whether or not the log still knows what the witness saw
        if forget:
            run_sql(db, "DELETE FROM meta WHERE key LIKE 'witness_size:%'")
        status, made, err = _checkpoint(db, capsys, witness.url)
        assert status == 1 and made.tree_size == 40 and made.cosignatures == ()
        assert (
            f"has cosigned size 60 of {ORIGIN}, larger than this checkpoint's 40: the log was rolled back"
            in err
        )


def test_the_409_names_the_size_to_prove_from(
    log: tuple[str, Ed25519PrivateKey], witness: Witness, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = log
    assert _checkpoint(db, capsys, witness.url)[0] == 0
    with open_store(db) as store:
        store.set_meta(f"witness_size:{witness.url}", "7")  # what the log believes is wrong
        _record(store, "svc-03")
    status, made, err = _checkpoint(db, capsys, witness.url)  # old 7 → 409 "40" → old 40 → 200
    assert (status, err) == (0, "")
    assert made.tree_size == 60 and cosigned_by(made, WitnessKey.parse(witness.vkey)) is not None
    with open_store(db) as store:
        assert store.get_meta(f"witness_size:{witness.url}") == "60"


def test_the_witness_refuses_what_the_protocol_refuses(
    log: tuple[str, Ed25519PrivateKey], witness: Witness, capsys: pytest.CaptureFixture[str]
) -> None:
    db, key = log
    assert _checkpoint(db, capsys, witness.url)[0] == 0
    with open_store(db) as store:
        _record(store, "svc-03")
        grown = checkpoint(store, key)
        proof = _proof(store, 40, 60)
    bad_proof = [bytes(32)] * len(proof)
    answer = witness.add(40, bad_proof, grown.note)
    assert answer.status_code == 422 and answer.json()["error"] == "inconsistent"
    stranger = sign(Ed25519PrivateKey.generate(), ORIGIN, 60, grown.root_hash, datetime.now(UTC))
    assert witness.add(40, proof, stranger.note).status_code == 403
    unknown = sign(key, "opslineage.test/unknown", 60, grown.root_hash, datetime.now(UTC))
    assert witness.add(40, proof, unknown.note).status_code == 404
    for body in (
        b"old 036\n\n" + grown.note.encode(),
        b"old 40\nnot-base64\n\n" + grown.note.encode(),
        b"\xff",
    ):
        answer = httpx.post(f"{witness.url}/add-checkpoint", content=body, timeout=10)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    too_big = httpx.post(f"{witness.url}/add-checkpoint", content=b"old 0\n" + b"A" * (70 << 10), timeout=10)
    assert too_big.status_code == 413
    assert witness.add(40, proof, grown.note).status_code == 200  # none of that moved the witness


def test_verify_requires_the_witness_cosignature(
    log: tuple[str, Ed25519PrivateKey], witness: Witness, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = log
    assert _checkpoint(db, capsys)[0] == 0  # no witness
    assert main(["verify", "--store", db, "--json", "--witness-key", witness.vkey]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["cosigned_by"] == []
    assert f"has no valid cosignature by witness {NAME}" in report["findings"][0]["what"]
    assert _checkpoint(db, capsys, witness.url)[0] == 0  # the same size, now cosigned
    assert main(["verify", "--store", db, "--witness-key", witness.vkey]) == 0
    assert f"the newest is cosigned by {NAME}" in capsys.readouterr().out
    other = WitnessKey.of("witness.test/w2", Ed25519PrivateKey.generate()).vkey
    assert main(["verify", "--store", db, "--witness-key", witness.vkey, "--witness-key", other]) == 1
    assert "witness.test/w2" in capsys.readouterr().out
    assert main(["verify", "--store", db, "--witness-key", "not-a-key"]) == 2
    assert "is not a witness key" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_witness_init_and_serve_from_the_command_line(
    log: tuple[str, Ed25519PrivateKey], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = log
    witness_key = tmp_path / "w.key"
    assert main(["witness", "init", "--name", NAME, "--key", str(witness_key)]) == 0
    vkey = capsys.readouterr().out.strip()
    assert WitnessKey.parse(vkey).name == NAME and stat.S_IMODE(witness_key.stat().st_mode) == 0o600
    port = _free_port()
    command = [sys.executable, "-m", "opslineage.cli.main", "witness", "serve", "--name", NAME]
    command += ["--key", str(witness_key), "--state", str(tmp_path / "state.db"), "--port", str(port)]
    command += ["--log", f"{ORIGIN}={tmp_path / 'log.pub'}"]
    served = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(url, timeout=1).json()["vkey"] == vkey
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and served.poll() is None, "witness serve did not start"
                time.sleep(0.1)
        status, made, err = _checkpoint(db, capsys, url)
        assert (status, err) == (0, "") and cosigned_by(made, WitnessKey.parse(vkey)) is not None
    finally:
        served.terminate()
        served.wait(timeout=10)
    assert served.stderr is not None and vkey in served.stderr.read()
    assert (
        main(
            [
                "witness",
                "serve",
                "--name",
                NAME,
                "--key",
                str(tmp_path / "none.key"),
                "--state",
                "s",
                "--log",
                "a=b",
            ]
        )
        == 2
    )
    assert "create it with `opslineage witness init`" in capsys.readouterr().err


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_request_body_makes_the_witness_answer_5xx(
    log: tuple[str, Ed25519PrivateKey], witness: Witness, data: st.DataObject
) -> None:
    """Mutations of a valid request (bytes replaced, lines dropped or duplicated) never reach a 5xx."""
    db, key = log
    with open_store(db) as store:
        valid = encode_request(0, [], checkpoint(store, key).note)
    lines = valid.split(b"\n")
    if data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(lines) - 1))
        lines.insert(index, data.draw(st.sampled_from([b"", b"old 1", lines[index], b"\xe2\x80\x94 x AAAA"])))
    if data.draw(st.booleans()) and len(lines) > 1:
        del lines[data.draw(st.integers(0, len(lines) - 1))]
    body = bytearray(b"\n".join(lines))
    for _ in range(data.draw(st.integers(0, 3))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    answer = httpx.post(f"{witness.url}/add-checkpoint", content=bytes(body), timeout=10)
    assert answer.status_code in (200, 400, 403, 404, 409, 422), answer.text
