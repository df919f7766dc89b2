"""The node id grammar, including Marquez's ids with colons in namespaces."""

from __future__ import annotations

import pytest

from opslineage.model import InvalidEvent, NodeId, parse_node_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "run:0190A3C4-1111-7ABC-8DEF-0123456789AB",
            NodeId("run", name="0190a3c4-1111-7abc-8def-0123456789ab"),
        ),
        ("job:aiops.demo:features.rolling", NodeId("job", "aiops.demo", "features.rolling")),
        (
            "dataset:postgres://db:5432:public.events",
            NodeId("dataset", "postgres://db:5432", "public.events"),
        ),
        ("dataset:ns:a/b#sha256:ab", NodeId("dataset", "ns", "a/b", "sha256:ab")),
        ("entity:sha256:" + "a" * 64, NodeId("entity", name="sha256:" + "a" * 64)),
        ("model:fleet-anomaly@2.abc", NodeId("model", name="fleet-anomaly", version="2.abc")),
        ("policy:cpu-guard@1", NodeId("policy", name="cpu-guard", version="1")),
        ("source:telemetry:svc-01", NodeId("source", "telemetry", "svc-01")),
        ("agent:oncall:alice", NodeId("agent", name="oncall:alice")),
    ],
)
def test_parse(text: str, expected: NodeId) -> None:
    assert parse_node_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "run:0190a3c4-1111-7abc-8def-0123456789ab",
        "dataset:postgres://db:5432:public.events",
        "policy:cpu-guard@1",
        "entity:sha256:" + "0" * 64,
    ],
)
def test_round_trip(text: str) -> None:
    assert str(parse_node_id(text)) == text


def test_a_run_id_that_is_not_a_uuid_is_named_by_its_uuid5() -> None:
    named = parse_node_id("run:run_id")
    assert named == parse_node_id("run:run_id") and named.name is not None and len(named.name) == 36
    assert str(parse_node_id(str(named))) == str(named)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("thing:x", "must start with one of"),
        ("entity:md5:abc", "entity:sha256:"),
        ("model:nameonly", "model:<name>@<version>"),
        ("job:only-namespace", "job:<namespace>:<name>"),
        ("run:", "nothing after"),
    ],
)
def test_bad_ids_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(InvalidEvent, match=says):
        parse_node_id(text)
