"""A log cannot roll back unseen: ``verify`` remembers the newest checkpoint it verified per origin
and refuses an older, forked or inconsistent one, and a log whose checkpoints vanished.

Every tamper case edits the database directly, on each backend, lifting the append-only triggers
first, as someone with access to it would; the cut is made so that ``verify`` without a memory
finds nothing (checked in each test).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helpers import record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.ledger.checkpoint import sign
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import checkpoint, init_log, latest_checkpoint
from opslineage.ledger.memory import CheckpointMemory, default_cache_dir
from opslineage.model import parse_event
from opslineage.store import Store

RunSql = Callable[..., list[tuple[Any, ...]]]  # the run_sql fixture (tests/conftest.py)
ORIGIN = "opslineage.test/rollback"


def _record(store: Store, subject: str) -> None:
    tracer = Tracer.in_memory()
    record_chain(tracer, subject=subject)
    store.ingest([parse_event(event) for event in tracer.transport.events])  # type: ignore[attr-defined]


@pytest.fixture
def logged(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store with a key and 60 events, checkpoints at 40 and 60."""
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    with open_store(store_url) as store:
        init_log(store, origin=ORIGIN)
        key = load_private_key(tmp_path / "log.key")
        for subject in ("svc-01", "svc-02", "svc-03"):
            _record(store, subject)
            if subject == "svc-02":
                checkpoint(store, key, datetime(2026, 1, 5, tzinfo=UTC))
        checkpoint(store, key, datetime(2026, 1, 6, tzinfo=UTC))
    return store_url


def _verify(db: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    status = main(["verify", "--store", db, "--json", *extra])
    return status, json.loads(capsys.readouterr().out)


def _truncate(run_sql: RunSql, db: str, size: int) -> None:
    """Cut the log back to ``size`` events: the events, their tree nodes and checkpoints, and the
    graph index and batches they added (so that the index still matches the events)."""
    run_sql(
        db,
        f"DELETE FROM events WHERE seq > {size}",
        f"DELETE FROM log_nodes WHERE (idx + 1) * (1 << level) > {size}",
        f"DELETE FROM checkpoints WHERE size > {size}",
        f"DELETE FROM nodes WHERE seq > {size}",
        f"DELETE FROM edges WHERE seq > {size}",
        "DELETE FROM ids WHERE nid NOT IN (SELECT nid FROM nodes UNION SELECT src FROM edges UNION SELECT dst FROM edges)",
        f"DELETE FROM batches WHERE first_seq > {size}",
        tamper=True,
    )


def test_verify_refuses_a_log_cut_back_to_an_older_checkpoint(
    logged: str, run_sql: RunSql, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = logged
    assert _verify(db, capsys)[0] == 0  # remembers size 60
    _truncate(run_sql, db, 40)
    elsewhere = str(tmp_path / "fresh-client")
    assert _verify(db, capsys, "--checkpoint-cache", elsewhere)[0] == 0  # a client that remembers nothing
    status, report = _verify(db, capsys)
    assert status == 1
    (finding,) = report["findings"]
    assert finding["seq"] == 60
    assert f"the newest checkpoint of {ORIGIN} has size 40" in finding["what"]
    assert "this client verified size 60" in finding["what"] and "rolled back" in finding["what"]
    assert main(["verify", "--store", db]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED at sequence 60") and "rolled back" in out


def test_verify_refuses_a_log_whose_checkpoints_were_all_deleted(
    logged: str, run_sql: RunSql, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = logged
    assert _verify(db, capsys)[0] == 0
    run_sql(db, "DELETE FROM checkpoints", tamper=True)
    assert _verify(db, capsys, "--checkpoint-cache", str(tmp_path / "fresh-client"))[0] == 0
    status, report = _verify(db, capsys)
    assert status == 1
    (finding,) = report["findings"]
    assert f"the log {ORIGIN} has no checkpoint, but this client verified size 60" in finding["what"]
    assert "checkpoints were deleted" in finding["what"]


def test_renaming_the_origin_does_not_hide_deleted_checkpoints(
    logged: str, run_sql: RunSql, capsys: pytest.CaptureFixture[str]
) -> None:
    db = logged
    assert _verify(db, capsys)[0] == 0
    run_sql(
        db,
        "DELETE FROM checkpoints",
        "UPDATE meta SET value = 'other.test/log' WHERE key = 'log_origin'",
        tamper=True,
    )
    status, report = _verify(db, capsys)
    assert status == 1 and "checkpoints were deleted" in report["findings"][0]["what"]


def test_verify_refuses_a_fork_and_an_inconsistent_extension(
    logged: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoint_cache: Path
) -> None:
    """What this client saw before, signed by the log's own key, disagrees with the log now."""
    db, key = logged, load_private_key(tmp_path / "log.key")
    memory = CheckpointMemory(checkpoint_cache)
    memory.remember(sign(key, ORIGIN, 60, b"\x17" * 32, datetime(2026, 1, 7, tzinfo=UTC)))
    status, report = _verify(db, capsys)
    assert status == 1
    assert "at size 60 has another root than the one this client verified" in report["findings"][0]["what"]
    assert "forked" in report["findings"][0]["what"]

    memory.path(ORIGIN).unlink()
    memory.remember(sign(key, ORIGIN, 20, b"\x17" * 32, datetime(2026, 1, 4, tzinfo=UTC)))
    status, report = _verify(db, capsys)
    assert status == 1
    what = report["findings"][0]["what"]
    assert "at size 60 does not extend the one this client verified size 20" in what
    assert "rewrote its history" in what


def test_a_remembered_checkpoint_of_another_key_is_a_finding(
    logged: str, capsys: pytest.CaptureFixture[str], checkpoint_cache: Path
) -> None:
    CheckpointMemory(checkpoint_cache).remember(
        sign(Ed25519PrivateKey.generate(), ORIGIN, 10, b"\x01" * 32, datetime(2026, 1, 4, tzinfo=UTC))
    )
    status, report = _verify(logged, capsys)
    assert status == 1 and "the log key changed" in report["findings"][0]["what"]


def test_a_growing_log_is_remembered_as_it_grows_in_private_files(
    logged: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoint_cache: Path
) -> None:
    db = logged
    memory = CheckpointMemory(checkpoint_cache)
    assert _verify(db, capsys)[0] == 0
    assert memory.recall(ORIGIN).tree_size == 60  # type: ignore[union-attr]
    with open_store(db) as store:
        _record(store, "svc-04")
        checkpoint(store, load_private_key(tmp_path / "log.key"))
        newest = latest_checkpoint(store)
    assert _verify(db, capsys)[0] == 0  # 60 → 80, proven consistent
    remembered = memory.recall(ORIGIN)
    assert remembered is not None and remembered.tree_size == 80 and newest is not None
    assert remembered.root_hash == newest.root_hash
    assert stat.S_IMODE(memory.path(ORIGIN).stat().st_mode) == 0o600
    assert stat.S_IMODE(checkpoint_cache.stat().st_mode) == 0o700
    assert os.listdir(checkpoint_cache) == [memory.path(ORIGIN).name]  # no temporary file left


def test_the_cache_is_under_the_users_cache_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPSLINEAGE_CHECKPOINT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "opslineage" / "checkpoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "opslineage" / "checkpoints"
    memory = CheckpointMemory()
    assert memory.remember(sign(Ed25519PrivateKey.generate(), ORIGIN, 3, b"\x02" * 32, datetime.now(UTC)))
    for made in (tmp_path / "home" / ".cache", tmp_path / "home" / ".cache" / "opslineage", memory.directory):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_an_unwritable_cache_is_exit_2_with_its_reason(
    logged: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["verify", "--store", logged, "--checkpoint-cache", str(blocker / "cache")]) == 2
    err = capsys.readouterr().err
    assert f"cannot read the remembered checkpoint {blocker / 'cache'}" in err and "--checkpoint-cache" in err
    assert err.count("\n") == 1
