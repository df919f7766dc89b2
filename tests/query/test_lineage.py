"""Queries: why-chains, upstream/downstream, node lookup by any id form, listing by kind."""

from __future__ import annotations

import pytest

from helpers import Chain, record_chain
from opslineage import Tracer
from opslineage.model import InvalidEvent, parse_event
from opslineage.query import NotFound, downstream, list_nodes, resolve_node, upstream, why
from opslineage.store import Store


def test_why_follows_the_chain_from_effect_to_sources(store: Store, chain: Chain) -> None:
    answer = why(store, "run:" + chain.action.run_id)
    assert answer.complete and answer.missing == []
    assert answer.action["id"] == chain.action.record.id  # type: ignore[index,union-attr]
    assert answer.action["run"] == "run:" + chain.action.run_id  # type: ignore[index]
    assert [e["id"] for e in answer.effects] == [chain.effect.id]
    assert answer.effects[0]["outcome"] == "resolved"
    assert answer.decision["id"] == chain.decision.id and answer.decision["fired"] is True  # type: ignore[index]
    assert answer.policy["id"] == "policy:cpu-guard@1" and answer.policy["rule"] == "cpu_mean > {cpu_mean}"  # type: ignore[index]
    assert answer.prediction["id"] == chain.prediction.id and answer.prediction["score"] == 6.5  # type: ignore[index]
    assert answer.model["id"] == "model:detector@1"  # type: ignore[index]
    assert answer.features["id"] == chain.features.id  # type: ignore[index]
    assert [s["id"] for s in answer.snapshots] == [s.id for s in chain.snapshots]
    assert [s["id"] for s in answer.sources] == ["source:test.ns:svc-01"]


def test_why_accepts_the_action_record_and_a_decision(store: Store, chain: Chain) -> None:
    by_record = why(store, chain.action.record.id)  # type: ignore[union-attr]
    assert by_record.decision["id"] == chain.decision.id  # type: ignore[index]
    by_decision = why(store, chain.decision.id)
    assert by_decision.action is None and by_decision.prediction["id"] == chain.prediction.id  # type: ignore[index]


def test_why_of_something_else_is_not_found(store: Store, chain: Chain) -> None:
    with pytest.raises(NotFound, match="not an action or a decision"):
        why(store, chain.features.id)
    with pytest.raises(NotFound, match="no node"):
        why(store, "run:00000000-0000-4000-8000-000000000000")
    with pytest.raises(InvalidEvent):
        why(store, "nonsense")


def test_why_names_missing_links(store: Store) -> None:
    tracer = Tracer.in_memory()
    record_chain(tracer)
    events = [e for e in tracer.transport.events if e["job"]["name"] != "ingest"]  # type: ignore[attr-defined]
    store.ingest([parse_event(e) for e in events])
    action = list_nodes(store, "action")[0]
    answer = why(store, action.id)
    assert not answer.complete
    assert len(answer.missing) == 3 and all(m.startswith("entity:sha256:") for m in answer.missing)


def test_upstream_and_downstream(store: Store, chain: Chain) -> None:
    up = upstream(store, chain.effect.id, depth=30)
    ids = {n["id"] for n in up.nodes}
    assert {chain.action.record.id, chain.decision.id, chain.features.id, "source:test.ns:svc-01"} <= ids  # type: ignore[union-attr]
    assert all(n["depth"] <= 30 for n in up.nodes) and up.nodes[0]["id"] == chain.effect.id
    down = downstream(store, "source:test.ns:svc-01", depth=30)
    assert chain.effect.id in {n["id"] for n in down.nodes}
    shallow = downstream(store, "source:test.ns:svc-01", depth=1)
    assert {n["depth"] for n in shallow.nodes} == {0, 1}
    assert all(edge["dst"] == "source:test.ns:svc-01" for edge in shallow.edges)


def test_dataset_ids_find_our_artifacts(store: Store, chain: Chain) -> None:
    latest = resolve_node(store, "dataset:test.ns:feature/svc-01")
    assert latest.id == chain.features.id
    exact = resolve_node(store, f"dataset:test.ns:snapshot/svc-01#{chain.snapshots[0].digest}")
    assert exact.id == chain.snapshots[0].id
    with pytest.raises(NotFound):
        resolve_node(store, f"dataset:other:snapshot/svc-01#{chain.snapshots[0].digest}")


def test_list_nodes_by_kind(store: Store, chain: Chain) -> None:
    assert [n.id for n in list_nodes(store, "action")] == ["run:" + chain.action.run_id]
    assert len(list_nodes(store, "snapshot")) == 3
    assert [n.id for n in list_nodes(store, "policy")] == ["policy:cpu-guard@1"]
    assert len(list_nodes(store, "run")) == 10
    assert len(list_nodes(store, "snapshot", limit=2)) == 2
    with pytest.raises(InvalidEvent, match="unknown kind"):
        list_nodes(store, "widgets")
