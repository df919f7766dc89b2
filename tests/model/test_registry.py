"""The facet registry: a facet type declared here, outside the package, is stored, indexed,
versioned and exported like our own, with no change to the engine."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from helpers import Chain
from opslineage import open_store
from opslineage.interop import export_openlineage, to_prov
from opslineage.model import FacetType, InvalidEvent, Ref, parse_event, parse_node_id, register_facet
from opslineage.model.ids import register_kind
from opslineage.model.registry import facet_type, why_depth
from opslineage.query import downstream, upstream, why
from opslineage.store import Store, StoreError


class RunbookFacet(msgspec.Struct, kw_only=True):
    """A versioned runbook, written against the policy it documents (``acme_runbook``)."""

    name: str
    version: str
    steps: list[str]
    documents: str


class TicketFacet(msgspec.Struct, kw_only=True):
    """A ticket filed about a remediation (``acme_ticket``): content-addressed, derived from it."""

    action: str
    summary: str


RUNBOOK = register_facet(
    FacetType(
        "acme_runbook",
        RunbookFacet,
        "runbook",
        ident="version",
        versioned=True,
        content=True,
        refs=(Ref("documents", "policy", "id", role="documents", type="policy"),),
    )
)
TICKET = register_facet(
    FacetType(
        "acme_ticket",
        TicketFacet,
        "entity",
        "ticket",
        content=True,
        refs=(Ref("action", role="about", type="action", why=False),),
    )
)


def _event(run: str, output: dict[str, Any], minute: int) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": f"2026-01-05T13:{minute:02d}:00Z",
        "producer": "https://acme.test/producer",
        "run": {"runId": run},
        "job": {"namespace": "acme", "name": "docs"},
        "inputs": [],
        "outputs": [output],
    }


def _runbook(steps: list[str], minute: int = 0) -> dict[str, Any]:
    facet = {"name": "restart", "version": "1", "steps": steps, "documents": "policy:cpu-guard@1"}
    output = {"namespace": "acme", "name": "runbook/restart", "facets": {"acme_runbook": facet}}
    return _event(f"00000000-0000-4000-8000-0000000000{minute:02d}", output, minute)


def _ticket(chain: Chain) -> dict[str, Any]:
    facet = {"action": chain.action.record.digest, "summary": "scaled out, CPU back to 55%"}  # type: ignore[union-attr]
    output = {"namespace": "acme", "name": "ticket/1", "facets": {"acme_ticket": facet}}
    return _event("00000000-0000-4000-8000-000000000099", output, 30)


def test_a_facet_type_from_outside_is_stored_indexed_and_versioned(store: Store, chain: Chain) -> None:
    runbook, ticket = parse_event(_runbook(["scale out", "watch CPU"])), parse_event(_ticket(chain))
    assert store.ingest([runbook, ticket]).accepted == 2
    node = store.node("runbook:restart@1")
    assert node is not None and (node.kind, node.type, node.version) == ("runbook", "runbook", "1")
    assert parse_node_id(node.id).name == "restart"
    (record, content) = store.nodes_with_content([node.id])[node.id]
    assert record.digest is not None and json.loads(content or b"")["steps"] == ["scale out", "watch CPU"]
    ticket_id = next(n.id for n in ticket.nodes if n.type == "ticket")
    assert "policy:cpu-guard@1" in {n["id"] for n in upstream(store, node.id).nodes}
    assert ticket_id in {n["id"] for n in downstream(store, chain.action.record.id).nodes}  # type: ignore[union-attr]
    about = [e for e in upstream(store, ticket_id, depth=1).edges if e["kind"] == "wasDerivedFrom"]
    assert about == [
        {"src": ticket_id, "dst": chain.action.record.id, "kind": "wasDerivedFrom", "role": "about"}
    ]  # type: ignore[union-attr]
    assert why(store, "run:" + chain.action.run_id).complete  # a new type beside the chain changes nothing
    with pytest.raises(StoreError, match="runbook:restart@1 is already recorded with digest"):
        store.ingest([parse_event(_runbook(["reboot"], minute=1))])
    events = store.counts()["events"]
    with pytest.raises(
        StoreError, match="runbook:restart@1 appears with two different contents in one batch"
    ):
        store.ingest([parse_event(_runbook(["a"], minute=2)), parse_event(_runbook(["b"], minute=3))])
    assert store.counts()["events"] == events
    assert store.node("runbook:restart@1").digest == record.digest  # type: ignore[union-attr]


def test_a_facet_type_from_outside_is_exported(store: Store, chain: Chain, tmp_path: Path) -> None:
    store.ingest([parse_event(_runbook(["scale out"])), parse_event(_ticket(chain))])
    out = io.BytesIO()
    export_openlineage(store, out)
    with open_store(f"sqlite:///{tmp_path / 'rebuilt.db'}") as rebuilt:
        rebuilt.ingest([parse_event(line) for line in out.getvalue().splitlines()])
        assert rebuilt.state_digest() == store.state_digest()
    prov = json.loads(to_prov(store).serialize(format="json"))
    runbook = next(v for v in prov["entity"].values() if v.get("opslineage:id") == "runbook:restart@1")
    assert runbook["opslineage:kind"] == "runbook" and runbook["opslineage:version"] == "1"
    derived = [r for r in prov["wasDerivedFrom"].values() if r.get("opslineage:role") == "documents"]
    assert len(derived) == 1


def test_a_registered_facet_is_checked_against_its_class() -> None:
    event = _runbook(["x"])
    event["outputs"][0]["facets"]["acme_runbook"]["steps"] = "not a list"
    with pytest.raises(InvalidEvent, match=r"outputs\[0\]\.facets\.acme_runbook: Expected `array`"):
        parse_event(event)


def test_registration_is_idempotent_and_refuses_inconsistent_declarations() -> None:
    assert register_facet(RUNBOOK) is facet_type("acme_runbook")
    with pytest.raises(ValueError, match="already registered as RunbookFacet"):
        register_facet(FacetType("acme_runbook", TicketFacet, "entity", "ticket", content=True))
    with pytest.raises(ValueError, match="has no field 'missing'"):
        register_facet(
            FacetType("acme_bad", TicketFacet, "entity", "bad", content=True, refs=(Ref("missing"),))
        )
    with pytest.raises(ValueError, match="edge kind 'causes'"):
        register_facet(
            FacetType(
                "acme_bad", TicketFacet, "entity", "bad", content=True, refs=(Ref("action", edge="causes"),)
            )
        )
    with pytest.raises(ValueError, match="only an id of name and version can be versioned"):
        register_facet(FacetType("acme_bad", TicketFacet, "entity", "bad", content=True, versioned=True))
    assert facet_type("acme_bad") is None


def test_why_reaches_as_far_as_the_registry_says() -> None:
    assert why_depth("action") == 4  # decision, prediction, feature set, snapshots
    assert why_depth("decision") == 3
    assert why_depth("ticket") == 0  # its reference is not one why follows


def test_a_new_node_kind_joins_the_id_grammar() -> None:
    assert str(parse_node_id("runbook:restart@1")) == "runbook:restart@1"
    with pytest.raises(InvalidEvent, match="expected runbook:<name>@<version>"):
        parse_node_id("runbook:restart")
    with pytest.raises(ValueError, match="already known with ids of shape version"):
        register_kind("runbook", "namespaced")
    with pytest.raises(ValueError, match="must be a lowercase word"):
        register_kind("Run Book", "version")
