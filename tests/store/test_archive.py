"""The archive tier on both backends: moving payloads into segments changes no answer, ``verify``
checks the segments, a broken or missing segment is named, and the store allows that one move and
nothing else."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import RunSql
from helpers import CHAIN_EVENTS, Chain, record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.demo import DemoConfig, run_demo
from opslineage.interop.bundle import make_bundle, verify_bundle
from opslineage.interop.openlineage import export_openlineage
from opslineage.ledger.keys import load_private_key, public_key_b64
from opslineage.ledger.log import init_log
from opslineage.ledger.verify import verify_store
from opslineage.model import parse_event
from opslineage.query import downstream, list_nodes, upstream, why
from opslineage.store import Store, StoreError
from opslineage.store.archive import archive_store, encode_segment
from opslineage.store.sqlite_schema import SCHEMA_VERSION

DEMO = DemoConfig(services=3, hours=12)  # 2,692 events with 4 remediations


def _answers(store: Store) -> dict[str, Any]:
    """Everything a reader can ask of the demo's actions: why, the graph both ways, the events."""
    actions = [node.id for node in list_nodes(store, "action", limit=1000)]
    assert len(actions) >= 2
    out = io.BytesIO()
    export_openlineage(store, out)
    return {
        "why": {action: why(store, action).to_dict() for action in actions},
        "upstream": {action: upstream(store, action, depth=3).to_dict() for action in actions},
        "downstream": {action: downstream(store, action, depth=2).to_dict() for action in actions},
        "export": out.getvalue(),
        "state": store.state_digest(),
        "counts": store.counts(),
    }


def test_archiving_part_of_the_demo_changes_no_answer_and_verify_passes(store: Store, tmp_path: Path) -> None:
    run_demo(store, DEMO)
    before = _answers(store)
    size = store.log_size()
    report = archive_store(store, size // 2, tmp_path / "archive", segment_events=500)
    moved = report.to_dict()["moved"]
    assert moved["events"] == size // 2 and moved["segments"] == -(-(size // 2) // 500)
    assert moved["artifacts"] > 0 and moved["compression_ratio"] > 5
    assert [(s.first_seq, s.last_seq) for s in store.segments()][:2] == [(1, 500), (501, 1000)]
    assert len(list((tmp_path / "archive").iterdir())) == moved["segments"]
    assert _answers(store) == before
    checked = verify_store(store, None)
    assert checked.ok and checked.events == size and checked.segments == moved["segments"]
    # Another process finds the archive through the store, and the rest can follow later.
    with open_store(_plain(store)) as other:
        assert _answers(other) == before
        archive_store(other, size)
        assert _answers(other) == before and verify_store(other, None).ok


def test_archived_events_stay_in_the_index_so_ingest_stays_idempotent(store: Store, tmp_path: Path) -> None:
    tracer = Tracer.in_memory()
    record_chain(tracer)
    events = [parse_event(event) for event in tracer.transport.events]  # type: ignore[attr-defined]
    store.ingest(events)
    archive_store(store, CHAIN_EVENTS, tmp_path / "archive")
    again = store.ingest(events)
    assert (again.accepted, again.duplicates) == (0, CHAIN_EVENTS)
    assert archive_store(store, CHAIN_EVENTS).moved == []


def test_a_bundle_of_an_archived_chain_verifies_offline(
    store: Store, chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    init_log(store, origin="opslineage.test/log")
    archive_store(store, store.log_size(), tmp_path / "archive")
    key = load_private_key(tmp_path / "log.key")
    bundle = make_bundle(store, "run:" + chain.action.run_id, key)
    report = verify_bundle(json.loads(json.dumps(bundle)), public_key_b64(key.public_key()))
    assert report.ok, report.findings
    assert len(bundle["events"]) == 16


def test_an_altered_segment_is_found_by_verify_and_refused_by_reads(
    store: Store, chain: Chain, tmp_path: Path
) -> None:
    archive_store(store, 10, tmp_path / "archive", segment_events=5)
    second = store.segments()[1]
    path = store.archive().path(second.digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with open_store(_plain(store)) as fresh:  # nothing cached
        report = verify_store(fresh, None)
        assert not report.ok and report.first_bad_seq == second.first_seq == 6
        assert "does not match its digest: it was altered" in report.findings[0].what
        with pytest.raises(StoreError, match="does not match its digest"):
            fresh.raw_events(after=5, limit=1)
        assert fresh.raw_events(after=10, limit=1)[0][0] == 11  # hot events read as before


def test_a_missing_segment_is_named_with_where_it_was_looked_for(
    store: Store, chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive_store(store, store.log_size(), tmp_path / "archive")
    shutil.move(tmp_path / "archive", tmp_path / "moved")
    with open_store(_plain(store)) as fresh:
        with pytest.raises(
            StoreError, match=r"archive segment sha256:[0-9a-f]{64} is missing: no .*/archive/"
        ):
            why(fresh, "run:" + chain.action.run_id)
        report = verify_store(fresh, None)
        assert not report.ok and report.first_bad_seq == 1
    assert main(["why", "run:" + chain.action.run_id, "--store", _plain(store)]) == 2
    assert "OPSLINEAGE_ARCHIVE_DIR" in capsys.readouterr().err


def test_a_state_digest_over_a_missing_segment_fails_cleanly_and_the_store_goes_on(
    store: Store, chain: Chain, tmp_path: Path
) -> None:
    archive_store(store, store.log_size(), tmp_path / "archive", segment_events=5)
    with open_store(_plain(store)) as fresh:
        state = fresh.state_digest()
        shutil.move(tmp_path / "archive", tmp_path / "moved")
        fresh.archive().segment.cache_clear()  # type: ignore[attr-defined]
        with pytest.raises(StoreError, match="is missing"):
            fresh.state_digest()
        assert fresh.counts()["events"] == CHAIN_EVENTS
        shutil.move(tmp_path / "moved", tmp_path / "archive")
        assert fresh.state_digest() == state


def test_the_archive_directory_can_be_pointed_at_where_it_moved(
    store: Store, chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = why(store, "run:" + chain.action.run_id).to_dict()
    archive_store(store, store.log_size(), tmp_path / "archive")
    shutil.move(tmp_path / "archive", tmp_path / "moved")
    monkeypatch.setenv("OPSLINEAGE_ARCHIVE_DIR", str(tmp_path / "moved"))
    with open_store(_plain(store)) as fresh:
        assert why(fresh, "run:" + chain.action.run_id).to_dict() == before


def test_archiving_may_only_blank_a_payload_once_into_a_segment_that_holds_it(
    store: Store, chain: Chain, tmp_path: Path, run_sql: RunSql
) -> None:
    archive_store(store, 10, tmp_path / "archive")
    empty = "x''" if store.url.startswith("sqlite") else "''::bytea"
    refused = [
        f"UPDATE events SET body = {empty} WHERE seq = 12",  # blanked without a segment
        f"UPDATE events SET body = {empty}, segment = 1 WHERE seq = 12",  # a segment that does not hold it
        f"UPDATE events SET body = {empty}, segment = 99 WHERE seq = 12",  # no such segment
        "UPDATE events SET event_type = 'START' WHERE seq = 3",  # an archived row's other columns
        f"UPDATE events SET body = {empty}, segment = 1, event_time = 'x' WHERE seq = 12",
        "UPDATE events SET segment = NULL WHERE seq = 3",  # back to hot, its body empty
        f"UPDATE artifacts SET content = {empty}, segment = 1 WHERE seq > 10",
        "UPDATE segments SET digest = 'sha256:00' WHERE first_seq = 1",
        "DELETE FROM segments",
        "DELETE FROM events WHERE seq = 3",
    ]
    state = store.state_digest()
    for statement in refused:
        with pytest.raises(Exception, match="append-only"):
            run_sql(store.url, statement)
    assert store.state_digest() == state and verify_store(store, None).ok


def test_a_segment_whose_rows_were_archived_meanwhile_is_not_recorded(
    store: Store, chain: Chain, tmp_path: Path
) -> None:
    events, artifacts = store.hot_rows(after=0, through_seq=10, limit=100)
    archive_store(store, 5, tmp_path / "archive")  # another archiver got there first
    state, segments = store.state_digest(), store.segments()
    _, info = encode_segment(events, artifacts)
    with pytest.raises(StoreError, match=r"5 of the events for segment .* are no longer hot"):
        store.add_segment(info, [seq for seq, _, _ in events], [digest for digest, _ in artifacts])
    assert (store.state_digest(), store.segments()) == (state, segments)
    assert archive_store(store, 10).to_dict()["archive"]["events"] == 10


def _plain(store: Store) -> str:
    assert "***" not in store.url
    return store.url


V4_STORE = Path(__file__).parents[1] / "data" / "stores" / "sqlite-v4.db"
V4_STATE = "7b260fdc086c49664dd2f76cd6f2c4a11ac30f101ace679d517f632935b1ed0e"  # as schema 4 computed it


def test_a_sqlite_store_from_before_the_archive_tier_is_migrated_and_keeps_its_content(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    shutil.copy(V4_STORE, path)
    with open_store(f"sqlite:///{path}") as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)  # every step since 4
        assert store.state_digest() == V4_STATE and verify_store(store, None).ok
        action = list_nodes(store, "action")[0].id
        before = why(store, action).to_dict()
        assert before["complete"]
        held = store.log_size()
        report = archive_store(store, held)
        assert report.directory == str(path.resolve()) + ".archive"
        assert report.to_dict()["moved"]["events"] == held
        assert why(store, action).to_dict() == before and store.state_digest() == V4_STATE
