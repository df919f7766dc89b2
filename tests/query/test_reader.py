"""The read path: a Reader answers what the query functions answer, for a principal, in typed values;
the why view says what the CLI prints; a node's detail has the shape the API always had."""

from __future__ import annotations

import msgspec
import pytest

from helpers import Chain
from opslineage.governance import AccessDenied, AccessEvent
from opslineage.query import (
    NodeDetail,
    Principal,
    Reader,
    as_reader,
    downstream,
    list_nodes,
    upstream,
    why,
    why_view,
)
from opslineage.query.why_view import ERROR, STRONG, WARNING, WhyNode
from opslineage.store import Store


def _lines(node: WhyNode) -> list[str]:
    return [
        "".join(span.text for span in node.spans),
        *(line for child in node.children for line in _lines(child)),
    ]


def test_a_store_given_directly_is_read_by_its_local_administrator(store: Store) -> None:
    reader = as_reader(store)
    assert reader.principal == Principal.local_admin()
    assert as_reader(reader) is reader


def test_the_reader_answers_what_the_queries_answer(store: Store, chain: Chain) -> None:
    reader = Reader(store, Principal.local_admin())
    action = "run:" + chain.action.run_id
    assert reader.why(action) == why(store, action)
    assert reader.upstream(chain.effect.id, 30) == upstream(store, chain.effect.id, 30)
    assert reader.downstream(chain.snapshots[0].id, 30) == downstream(store, chain.snapshots[0].id, 30)
    assert reader.list_kind("snapshot") == list_nodes(store, "snapshot")
    first = reader.page("snapshot", limit=2)
    assert len(first.nodes) == 2 and first.next_offset == 2
    assert reader.page("snapshot", limit=2, offset=2).next_offset is None
    assert reader.log_length() == len(reader.event_page(limit=100)) == 20
    assert {e.run_id for e in reader.run_events(chain.action.run_id)} == {chain.action.run_id}
    assert reader.signed_checkpoint() is None and reader.log_public_key() is None
    proof = reader.inclusion_proof(3)
    assert (proof.leaf_index, proof.tree_size) == (2, 20) and next(iter(proof.to_dict())) == "leaf_index"
    assert reader.consistency_proof(5, 20).proof
    assert reader.verify(None).ok and reader.archived_through() == 0
    assert reader.sequence_at(None) is None


def test_a_nodes_detail_encodes_as_the_api_always_answered(store: Store, chain: Chain) -> None:
    reader = Reader(store, Principal.local_admin())
    detail = reader.detail(chain.decision.id)
    assert isinstance(detail, NodeDetail) and detail.content["fired"] is True
    answer = msgspec.json.decode(msgspec.json.encode(detail))
    columns = reader.resolve(chain.decision.id).to_dict()
    assert list(answer) == [*columns, "content", "facets", "edges"]
    assert {key: answer[key] for key in columns} == columns
    assert list(answer["edges"]) == ["out", "in"]
    generated = [edge for edge in answer["edges"]["out"] if edge["kind"] == "wasGeneratedBy"]
    assert len(generated) == 1 and generated[0]["dst"].startswith("run:")
    assert generated[0] == {"src": chain.decision.id, "dst": generated[0]["dst"], "kind": "wasGeneratedBy"}
    run = msgspec.json.decode(
        msgspec.json.encode(Reader(store, Principal.local_admin()).detail(f"run:{chain.action.run_id}"))
    )
    assert "content" not in run and run["facets"]


def test_the_why_view_holds_the_lines_the_cli_prints(store: Store, chain: Chain) -> None:
    view = why_view(why(store, "run:" + chain.action.run_id))
    lines = _lines(view.root)
    assert view.complete and lines[0].startswith("action scale_out → svc-01  succeeded\nrun:")
    assert view.root.spans[0].style == STRONG
    assert any(line.startswith("effect: resolved — cpu 91 → 55") for line in lines)
    assert any(line.startswith("policy cpu-guard@1") and "rule: cpu_mean > 85" in line for line in lines)
    assert lines[-1] == "source source:test.ns:svc-01"
    not_fired = why_view(why(store, chain.decision.id))
    assert _lines(not_fired.root)[0] == "no action: the decision below did not fire"
    assert WARNING not in {s.style for s in not_fired.root.spans} and ERROR not in {
        s.style for s in view.root.spans
    }


class _Trail:
    """Access events in memory, in order."""

    def __init__(self) -> None:
        self.events: list[AccessEvent] = []

    def record(self, event: AccessEvent) -> None:
        self.events.append(event)


def test_each_operation_is_one_access_event_naming_what_it_returned(store: Store, chain: Chain) -> None:
    trail = _Trail()
    reader = Reader(store, Principal.token("ops", "operator"), trail, "10.0.0.1:5000")
    action = "run:" + chain.action.run_id
    reader.why(action)
    with reader.operation("node", action):
        reader.detail(action)
        reader.upstream(action, 2)
    why_event, node_event = trail.events
    assert (why_event.name, why_event.actor, why_event.role) == ("why", "token:ops", "operator")
    assert why_event.outcome == "allowed" and why_event.client == "10.0.0.1:5000"
    assert chain.decision.id in why_event.nodes and why_event.target == action
    assert node_event.name == "node" and action in node_event.nodes


def test_a_read_the_role_does_not_allow_is_refused_and_recorded(store: Store, chain: Chain) -> None:
    trail = _Trail()
    reader = Reader(store, Principal.token("ci", "producer"), trail)
    with pytest.raises(AccessDenied, match="lineage:read"):
        reader.why("run:" + chain.action.run_id)
    with pytest.raises(AccessDenied, match="log:verify"):
        Reader(store, Principal.token("ops", "operator"), trail).verify(None)
    assert [(e.name, e.outcome) for e in trail.events] == [("why", "denied"), ("verify", "denied")]
    assert "producer" in (trail.events[0].reason or "")
