"""Delivery through openlineage-python's own client and transports, read back into a real store."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import CHAIN_EVENTS, T0, record_chain
from opslineage import Tracer, open_store
from opslineage.model import parse_event
from opslineage.query import why
from opslineage.sdk import MemoryTransport, TransportError

pytest.importorskip("openlineage.client")

from openlineage.client import OpenLineageClient
from openlineage.client.serde import Serde

from opslineage.sdk.openlineage_client import OpenLineageClientTransport, to_openlineage


@pytest.fixture(autouse=True)
def isolated_openlineage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No openlineage.yml, OPENLINEAGE_* variable or git checkout of the host leaks into a test."""
    for name in [name for name in os.environ if name.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)


class _Tee:
    """Hands each batch to the transport under test and keeps a copy of what was sent."""

    def __init__(self, transport: OpenLineageClientTransport) -> None:
        self.transport = transport
        self.sent = MemoryTransport()

    def emit(self, events: list[dict[str, Any]]) -> None:
        self.sent.emit(events)
        self.transport.emit(events)

    def close(self) -> None:
        self.transport.close()


def _facets(event: dict[str, Any]) -> dict[str, Any]:
    """Every facet of an event by where it sits."""
    found = {f"run.{k}": v for k, v in event.get("run", {}).get("facets", {}).items()}
    found |= {f"job.{k}": v for k, v in event["job"].get("facets", {}).items()}
    for side in ("inputs", "outputs"):
        for i, dataset in enumerate(event.get(side, [])):
            found |= {f"{side}[{i}].{k}": v for k, v in dataset.get("facets", {}).items()}
    return found


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_events_written_by_the_clients_file_transport_configured_by_env_give_a_complete_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(path))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    tee = _Tee(OpenLineageClientTransport())
    assert tee.transport.client.transport.kind == "file"
    tracer = Tracer("x", transport=tee, sync=True)
    chain = record_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error

    written = [json.loads(line) for line in _lines(path)]
    assert len(written) == CHAIN_EVENTS
    for sent, got in zip(tee.sent.events, written, strict=True):
        ours, theirs = _facets(sent), _facets(got)
        assert {k: theirs[k] for k in ours} == ours  # every facet arrives with the same content
        assert set(theirs) - set(ours) <= {"run.tags"}  # the client adds its version tag
        assert {k: got[k] for k in ("eventType", "eventTime", "producer", "schemaURL")} == {
            k: sent[k] for k in ("eventType", "eventTime", "producer", "schemaURL")
        }

    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        store.ingest([parse_event(line) for line in _lines(path)])
        answer = why(store, "run:" + chain.action.run_id)
    assert answer.complete, answer.missing
    assert answer.decision is not None and answer.decision["id"] == chain.decision.id
    assert [s["id"] for s in answer.snapshots] == [s.id for s in chain.snapshots]


def test_a_null_inside_telemetry_rows_survives_a_client_passed_in(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    client = OpenLineageClient(
        config={"transport": {"type": "file", "log_file_path": str(path), "append": True}}
    )
    tracer = Tracer("x", transport=OpenLineageClientTransport(client), sync=True)
    with tracer.ingest(tracer.source("svc-01")) as step:
        gap = [[Tracer.timestamp(T0), None], [Tracer.timestamp(T0 + timedelta(minutes=1)), 91.5]]
        snapshot = step.snapshot(
            gap, {"timestamp": "datetime", "cpu": "float"}, T0, T0 + timedelta(minutes=5)
        )
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error

    complete = json.loads(_lines(path)[-1])
    assert complete["outputs"][0]["facets"]["aiops_snapshot"]["rows"] == gap  # Serde alone drops the null
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        store.ingest([parse_event(line) for line in _lines(path)])  # the digest still verifies
        _, content = store.nodes_with_content([snapshot.id])[snapshot.id]
    assert content is not None and json.loads(content)["rows"] == gap


def test_the_console_transport_logs_each_event_as_json(caplog: pytest.LogCaptureFixture) -> None:
    tracer = Tracer(
        "x", transport=OpenLineageClientTransport(config={"transport": {"type": "console"}}), sync=True
    )
    with caplog.at_level(logging.INFO, logger="openlineage.client.transport.console"):
        record_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    logged = [r.getMessage() for r in caplog.records if r.name == "openlineage.client.transport.console"]
    assert len(logged) == CHAIN_EVENTS
    assert all(parse_event(message) for message in logged)
    assert json.loads(logged[0])["eventType"] == "START"


def test_a_delivery_failure_is_counted_and_never_reaches_the_pipeline(tmp_path: Path) -> None:
    unwritable = tmp_path / "no-such-directory" / "events.jsonl"
    config = {"transport": {"type": "file", "log_file_path": str(unwritable), "append": True}}
    tracer = Tracer("x", transport=OpenLineageClientTransport(config=config), sync=True)
    record_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == CHAIN_EVENTS and tracer.stats.emitted == 0
    assert tracer.stats.last_error is not None and "not delivered" in tracer.stats.last_error


def test_an_event_the_client_cannot_carry_is_refused_alone(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    transport = OpenLineageClientTransport(
        config={"transport": {"type": "file", "log_file_path": str(path), "append": True}}
    )
    source = Tracer.in_memory("x")
    record_chain(source)
    assert isinstance(source.transport, MemoryTransport)
    good = source.transport.events[:2]
    not_uuid = {**good[0], "run": {**good[0]["run"], "runId": "run-7"}}  # OpenLineage runIds are UUIDs
    unknown_key = {**good[1], "extra": 1}
    with pytest.raises(TransportError) as refused:
        transport.emit([good[0], not_uuid, unknown_key, good[1]])
    assert refused.value.refused == 2
    assert [json.loads(line)["run"]["runId"] for line in _lines(path)] == [e["run"]["runId"] for e in good]


def test_a_client_and_a_config_are_not_both_accepted() -> None:
    with pytest.raises(ValueError, match="not both"):
        OpenLineageClientTransport(OpenLineageClient(config={"transport": {"type": "console"}}), config={})


@pytest.mark.parametrize(
    "event",
    [
        {
            "eventTime": "2026-01-05T12:00:00.000Z",
            "producer": "https://example.com/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
            "job": {"namespace": "n", "name": "j", "facets": {"custom": {"_producer": "p", "k": [None, {}]}}},
            "inputs": [{"namespace": "n", "name": "in", "facets": {}, "inputFacets": {"x": {"v": None}}}],
            "outputs": [{"namespace": "n", "name": "out", "outputFacets": {"y": {"v": 1}}}],
        },
        {
            "eventTime": "2026-01-05T12:00:00.000Z",
            "producer": "https://example.com/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {"namespace": "n", "name": "d", "facets": {"schema": {"fields": [], "note": None}}},
        },
    ],
    ids=["JobEvent", "DatasetEvent"],
)
def test_job_and_dataset_events_convert_to_the_same_json(event: dict[str, Any]) -> None:
    assert json.loads(Serde.to_json(to_openlineage(event))) == event


def test_run_events_convert_to_the_same_json() -> None:
    tracer = Tracer.in_memory("x")
    record_chain(tracer)
    assert isinstance(tracer.transport, MemoryTransport)
    for event in tracer.transport.events:
        assert json.loads(Serde.to_json(to_openlineage(event))) == event
