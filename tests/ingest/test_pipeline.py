"""The ingest pipeline on every backend: parse once, store all-or-nothing with the actor on the
batch, one result per independent unit, checkpoints when due, and stores from before the actor
column migrated with their content unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

from conftest import RunSql
from helpers import CHAIN_EVENTS, record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.ingest import IngestPipeline, IngestResult, actor, cli_actor
from opslineage.ledger.log import init_log
from opslineage.ledger.verify import verify_store
from opslineage.model import InvalidEvent, parse_event
from opslineage.store import Store, StoreError, postgres
from opslineage.store.sqlite_schema import SCHEMA_VERSION

V5_STORE = Path(__file__).parents[1] / "data" / "stores" / "sqlite-v5.db"
V5_STATE = "b40cbc7fadff97aea2c2c37a80b346c7759a853063d0dada2d981a3257c0e00c"  # as schema 5 computed it


def _chain(subject: str = "svc-01") -> list[dict[str, Any]]:
    tracer = Tracer.in_memory("test.ns")
    record_chain(tracer, subject=subject)
    return list(tracer.transport.events)  # type: ignore[attr-defined]


def _rogue_policy() -> dict[str, Any]:
    """The COMPLETE of a registration of cpu-guard@1 with another threshold than record_chain's."""
    tracer = Tracer.in_memory("test.ns")
    policy = tracer.policy(
        "cpu-guard", "1", rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 99.0}, action="scale_out"
    )
    tracer.register_policy(policy)
    return tracer.transport.events[-1]  # type: ignore[attr-defined]


def _batches(run_sql: RunSql, url: str) -> list[tuple[Any, ...]]:
    return run_sql(url, "SELECT first_seq, last_seq, actor FROM batches ORDER BY id")


def test_dicts_bytes_and_parsed_events_store_alike_and_the_actor_is_on_the_batch(
    store: Store, store_url: str, run_sql: RunSql, tmp_path: Path
) -> None:
    events = _chain()
    pipeline = IngestPipeline(store)
    first = pipeline.ingest(events[:6], actor="sdk:test")
    second = pipeline.ingest([msgspec.json.encode(e) for e in events[6:12]], actor="http:anonymous")
    third = pipeline.ingest([parse_event(e) for e in events[12:]], actor=actor("worker", "w1"))
    assert (first.first_seq, second.first_seq, third.last_seq) == (1, 7, CHAIN_EVENTS)
    assert _batches(run_sql, store_url) == [
        (1, 6, "sdk:test"),
        (7, 12, "http:anonymous"),
        (13, CHAIN_EVENTS, "worker:w1"),
    ]
    with open_store(f"sqlite:///{tmp_path / 'plain.db'}") as plain:  # the actor is not content
        plain.ingest([parse_event(e) for e in events])
        assert store.state_digest() == plain.state_digest()


def test_a_bad_event_or_actor_stores_nothing(store: Store, store_url: str, run_sql: RunSql) -> None:
    events = _chain()
    pipeline = IngestPipeline(store)
    with pytest.raises(InvalidEvent, match="eventTime is missing"):
        pipeline.ingest([*events[:3], {"producer": "x"}], actor="sdk:test")
    for who in ("", "nobody", "ftp:someone", "cli:"):
        with pytest.raises(ValueError, match="actor"):
            pipeline.ingest(events, actor=who)
    with pytest.raises(StoreError, match="control characters"):
        store.ingest([parse_event(events[0])], actor="cli:a\nb")
    assert store.log_size() == 0 and _batches(run_sql, store_url) == []


def test_each_unit_gets_its_own_outcome_and_the_valid_ones_share_one_transaction(
    store: Store, store_url: str, run_sql: RunSql
) -> None:
    events = _chain()
    pipeline = IngestPipeline(store)
    units: list[list[Any]] = [events[:9], [b"not json"], events[9:], events[:2]]
    outcomes = pipeline.ingest_each(units, actor="worker:w1")
    assert outcomes[0] == IngestResult(9, 0, 1, 9)
    assert isinstance(outcomes[1], InvalidEvent) and "malformed JSON" in outcomes[1].reason
    assert outcomes[2] == IngestResult(CHAIN_EVENTS - 9, 0, 10, CHAIN_EVENTS)
    assert outcomes[3] == IngestResult(0, 2, None, None, (0, 1))  # stored by the first unit, same transaction
    assert _batches(run_sql, store_url) == [(1, CHAIN_EVENTS, "worker:w1")]


def test_a_refused_unit_costs_only_itself(store: Store, store_url: str, run_sql: RunSql) -> None:
    events, other = _chain("svc-01"), _chain("svc-02")
    pipeline = IngestPipeline(store)
    pipeline.ingest(events, actor="cli:alice")
    outcomes = pipeline.ingest_each([other[:5], [_rogue_policy()], other[5:]], actor="http:token")
    assert isinstance(outcomes[1], StoreError) and "already recorded" in str(outcomes[1])
    assert [o.accepted for o in outcomes if isinstance(o, IngestResult)] == [5, CHAIN_EVENTS - 5]
    assert _batches(run_sql, store_url)[1:] == [  # the shared transaction was refused: each unit alone
        (CHAIN_EVENTS + 1, CHAIN_EVENTS + 5, "http:token"),
        (CHAIN_EVENTS + 6, 2 * CHAIN_EVENTS, "http:token"),
    ]
    assert verify_store(store, None).ok


def test_checkpoints_are_signed_when_due(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "log.key"
    init_log(store, key=str(key), origin="opslineage.test/ingest", every=10)
    pipeline = IngestPipeline(store, key=str(key))
    events = _chain()
    pipeline.ingest(events[:4], actor="sdk:test")
    assert store.latest_checkpoint() is not None and store.latest_checkpoint()[0] == 4  # type: ignore[index]
    pipeline.ingest(events[4:9], actor="sdk:test")  # 5 since the last: not due
    assert store.latest_checkpoint()[0] == 4  # type: ignore[index]
    pipeline.ingest_each([events[9:]], actor="sdk:test")
    assert store.latest_checkpoint()[0] == CHAIN_EVENTS  # type: ignore[index]
    key.unlink()
    key.mkdir()  # an unreadable key: the events are stored all the same, the checkpoint waits
    assert pipeline.ingest(_chain("svc-02"), actor="sdk:test").accepted == CHAIN_EVENTS
    assert store.latest_checkpoint()[0] == CHAIN_EVENTS  # type: ignore[index]


def test_the_cli_records_its_user(
    tmp_path: Path, run_sql: RunSql, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(msgspec.json.encode(e) for e in _chain()))
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["ingest", str(path), "--store", url]) == 0
    assert _batches(run_sql, url) == [(1, CHAIN_EVENTS, cli_actor())]
    assert cli_actor().startswith("cli:") and len(cli_actor()) > 4


def test_a_sqlite_store_from_before_actors_is_migrated_and_keeps_its_content(
    tmp_path: Path, run_sql: RunSql
) -> None:
    path = tmp_path / "v5.db"
    shutil.copy(V5_STORE, path)
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert store.state_digest() == V5_STATE and verify_store(store, None).ok
        before = store.log_size()
        IngestPipeline(store).ingest(_chain("svc-02"), actor="cli:bob")
        assert verify_store(store, None).ok
    *old, new = _batches(run_sql, url)
    assert old and {row[2] for row in old} == {None} and new == (before + 1, before + CHAIN_EVENTS, "cli:bob")


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_a_postgresql_store_from_before_actors_is_migrated_and_keeps_its_content(
    store_url: str, monkeypatch: pytest.MonkeyPatch, run_sql: RunSql, tmp_path: Path
) -> None:
    events = [parse_event(e) for e in _chain()]
    with monkeypatch.context() as earlier:  # a store made by the schema before actors
        earlier.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:2])
        with open_store(store_url) as old:
            old.ingest(events)
            before = old.state_digest()
    assert run_sql(store_url, "SELECT max(version) FROM schema_migrations") == [(2,)]
    with open_store(store_url) as store:
        assert store.state_digest() == before
        IngestPipeline(store).ingest(_chain("svc-02"), actor="worker:w2")
    assert run_sql(store_url, "SELECT max(version) FROM schema_migrations") == [(len(postgres.MIGRATIONS),)]
    assert [row[2] for row in _batches(run_sql, store_url)] == [None, "worker:w2"]
    with open_store(f"sqlite:///{tmp_path / 'same.db'}") as same:  # both backends digest alike
        same.ingest(events)
        assert same.state_digest() == before
