"""Parsing events: validation errors name the field, artifacts split out and join back byte for byte."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest

from helpers import Chain
from opslineage.model import InvalidEvent, canonical_json, join_event, parse_event
from opslineage.model.stored import _canonical_by_decoding, canonical_event
from opslineage.sdk import MemoryTransport
from opslineage.sdk.tracer import Tracer

RUN_ID = "0190a3c4-1111-7abc-8def-0123456789ab"


def minimal() -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-05T12:00:00Z",
        "producer": "https://example.test/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": RUN_ID},
        "job": {"namespace": "ns", "name": "job"},
        "inputs": [{"namespace": "ns", "name": "in"}],
        "outputs": [{"namespace": "ns", "name": "out"}],
    }


def test_foreign_event_makes_run_job_and_dataset_nodes() -> None:
    parsed = parse_event(minimal())
    ids = {node.id for node in parsed.nodes}
    assert ids == {f"run:{RUN_ID}", "job:ns:job", "dataset:ns:in", "dataset:ns:out"}
    edges = {(e.src, e.dst, e.kind) for e in parsed.edges}
    assert edges == {
        (f"run:{RUN_ID}", "dataset:ns:in", "used"),
        ("dataset:ns:out", f"run:{RUN_ID}", "wasGeneratedBy"),
    }
    assert parsed.body == parsed.canonical == canonical_json(minimal())


def _without(path: str) -> dict[str, Any]:
    event = minimal()
    *parents, last = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    del target[last]
    return event


@pytest.mark.parametrize(
    ("event", "says"),
    [
        (_without("run.runId"), "run.runId is missing"),
        (_without("eventTime"), "eventTime is missing"),
        (_without("run"), "run is missing"),
        (_without("job.name"), "job.name is missing"),
        ({**minimal(), "eventType": "EXPLODE"}, "eventType 'EXPLODE' is not one of"),
        ({**minimal(), "eventTime": "yesterday"}, "not an RFC 3339 date-time"),
        ({"eventTime": "2026-01-05T12:00:00Z", "producer": "p"}, "not a RunEvent, DatasetEvent or JobEvent"),
        (
            {"eventTime": "2026-01-05T12:00:00Z", "producer": "p", "dataset": {"namespace": "ns"}},
            "dataset.name",
        ),
        (
            {**minimal(), "run": {"runId": RUN_ID, "facets": {"parent": "x"}}},
            "run.facets.parent must be an object",
        ),
        ({**minimal(), "inputs": "nope"}, "inputs must be an array"),
        (
            {**minimal(), "run": {"runId": RUN_ID, "facets": {"aiops_bogus": {}}}},
            "not a known opslineage facet",
        ),
    ],
)
def test_invalid_events_name_the_problem(event: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidEvent, match=says):
        parse_event(event)


def test_a_run_id_that_is_not_a_uuid_gets_a_stable_node_id() -> None:
    event = {**minimal(), "run": {"runId": "run_id"}}
    parsed = parse_event(event)
    assert parsed.run_id == parse_event(event).run_id and len(parsed.run_id or "") == 36
    assert f"run:{parsed.run_id}" in {node.id for node in parsed.nodes}


def test_dataset_and_job_events_add_their_nodes_and_static_lineage() -> None:
    dataset_event = {
        "eventTime": "2026-01-05T12:00:00Z",
        "producer": "p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {
            "namespace": "db",
            "name": "table",
            "facets": {"schema": {"_producer": "p", "_schemaURL": "s"}},
        },
    }
    parsed = parse_event(dataset_event)
    assert parsed.run_id is None and parsed.event_type == "DatasetEvent"
    assert [node.id for node in parsed.nodes] == ["dataset:db:table"] and parsed.edges == []
    job_event = {
        "eventTime": "2026-01-05T12:00:00Z",
        "producer": "p",
        "job": {"namespace": "etl", "name": "load"},
        "inputs": [{"namespace": "db", "name": "raw"}],
        "outputs": [{"namespace": "db", "name": "table"}],
    }
    parsed = parse_event(job_event)
    assert parsed.event_type == "JobEvent" and parsed.run_id is None
    assert {(e.src, e.dst, e.kind) for e in parsed.edges} == {
        ("job:etl:load", "dataset:db:raw", "used"),
        ("dataset:db:table", "job:etl:load", "wasGeneratedBy"),
    }


def test_malformed_json_and_oversized_events_are_refused() -> None:
    with pytest.raises(InvalidEvent, match="malformed JSON"):
        parse_event(b'{"eventType": ')
    huge = minimal()
    huge["run"]["facets"] = {"blob": {"_producer": "p", "_schemaURL": "s", "data": "x" * (1 << 20)}}
    with pytest.raises(InvalidEvent, match="over the limit"):
        parse_event(msgspec.json.encode(huge))
    with pytest.raises(InvalidEvent, match="over the limit"):
        parse_event(huge)


def _output_facets(events: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return next(ds["facets"] for e in events for ds in e.get("outputs", []) if key in ds["facets"])


def test_typed_facet_of_the_wrong_type_is_refused(captured: tuple[Tracer, MemoryTransport, Chain]) -> None:
    _, transport, _ = captured
    event = copy.deepcopy(
        next(e for e in transport.events if any("aiops_decision" in d["facets"] for d in e["outputs"]))
    )
    event["outputs"][0]["facets"]["aiops_decision"]["fired"] = "yes"
    with pytest.raises(InvalidEvent, match=r"outputs\[0\]\.facets\.aiops_decision: Expected `bool`"):
        parse_event(event)


def test_content_that_does_not_match_its_declared_digest_is_refused(
    captured: tuple[Tracer, MemoryTransport, Chain],
) -> None:
    _, transport, _ = captured
    event = copy.deepcopy(
        next(e for e in transport.events if any("aiops_prediction" in d["facets"] for d in e["outputs"]))
    )
    event["outputs"][0]["facets"]["aiops_prediction"]["score"] = 0.1
    with pytest.raises(InvalidEvent, match="hashes to prediction"):
        parse_event(event)


def test_artifacts_split_out_and_join_back_byte_for_byte(
    captured: tuple[Tracer, MemoryTransport, Chain],
) -> None:
    _, transport, chain = captured
    for event in transport.events:
        parsed = parse_event(msgspec.json.encode(event))
        rejoined = join_event(parsed.body, lambda digest, a=parsed.artifacts: a[digest][1])
        assert canonical_json(rejoined) == parsed.canonical
    feature_event = parse_event(
        next(e for e in transport.events if any("aiops_features" in d["facets"] for d in e["outputs"]))
    )
    assert chain.features.digest in feature_event.artifacts
    assert b"cpu_mean" not in feature_event.body.split(b'"outputs"')[1]
    derived = {(e.src, e.dst) for e in feature_event.edges if e.kind == "wasDerivedFrom"}
    assert derived == {(chain.features.id, snapshot.id) for snapshot in chain.snapshots}


def test_spliced_events_are_byte_identical_to_decoded_ones(
    captured: tuple[Tracer, MemoryTransport, Chain],
) -> None:
    _, transport, _ = captured
    spliced = 0
    for event in transport.events:
        parsed = parse_event(msgspec.json.encode(event))

        def artifact(digest: str, a: dict = parsed.artifacts) -> bytes:  # type: ignore[type-arg]
            return a[digest][1]

        assert canonical_event(parsed.body, artifact) == parsed.canonical
        assert _canonical_by_decoding(parsed.body, artifact) == parsed.canonical
        spliced += parsed.body != parsed.canonical
    assert spliced >= 9


def test_splicing_falls_back_for_content_keys_that_sort_among_the_metadata() -> None:
    event = minimal()
    event["outputs"][0]["facets"] = {
        "aiops_effect": {
            "_producer": "p",
            "_schemaURL": "s",
            "Action": "x",
            "action": "sha256:" + "a" * 64,
            "action_run": RUN_ID,
            "target": "t",
            "metric": None,
            "before": None,
            "after": None,
            "window_start": "2026-01-05T00:00:00Z",
            "window_end": "2026-01-05T00:00:00Z",
            "samples_before": 0,
            "samples_after": 0,
            "outcome": "unverifiable",
            "observed_at": "2026-01-05T00:00:00Z",
        }
    }
    parsed = parse_event(event)
    assert canonical_event(parsed.body, lambda d: parsed.artifacts[d][1]) == parsed.canonical


def test_a_foreign_facet_cannot_use_the_reserved_content_key() -> None:
    event = minimal()
    event["inputs"][0]["facets"] = {
        "custom": {"_producer": "p", "_schemaURL": "s", "_content": "sha256:" + "0" * 64}
    }
    with pytest.raises(InvalidEvent, match=r"inputs\[0\]\.facets\.custom\._content is reserved"):
        parse_event(event)
