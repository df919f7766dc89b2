"""A planted secret in a restricted snapshot never reaches operator, analyst or steward readers, on
any read or export, while auditor and admin read it; the why-chain stays complete, with digests."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.governance import AccessEvent, Principal
from opslineage.interop import make_bundle, verify_bundle
from opslineage.ledger.keys import load_private_key, public_key_b64
from opslineage.ledger.log import checkpoint, init_log
from opslineage.model import parse_event
from opslineage.model.facets import LabelFacet
from opslineage.query import Reader, why_view
from opslineage.query.visibility import label_rules
from opslineage.store import Store
from planted import (
    SECRET,
    SecretChain,
    assert_no_secret,
    assert_secret_shown,
    reader_fetch,
    record_secret_chain,
    routes,
)

UNCLEARED = ("operator", "analyst", "steward")
CLEARED = ("auditor", "admin")


class Trail:
    """Access events kept in a list."""

    def __init__(self) -> None:
        self.events: list[AccessEvent] = []

    def record(self, event: AccessEvent) -> None:
        self.events.append(event)


@pytest.fixture
def secret(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[SecretChain, Ed25519PrivateKey]:
    """The planted chain in a store with a log key and a checkpoint covering it."""
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    init_log(store, origin="opslineage.test/log")
    tracer = Tracer("ops", store=store, sync=True)
    recorded = record_secret_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    key = load_private_key(tmp_path / "log.key")
    checkpoint(store, key)
    return recorded, key


@pytest.mark.parametrize("role", UNCLEARED)
def test_uncleared_roles_never_see_the_planted_secret(store: Store, secret, role: str) -> None:
    chain, key = secret
    trail = Trail()
    fetch = reader_fetch(Reader(store, Principal.token("t", role), trail), key)
    answered = assert_no_secret(fetch, routes(chain))
    assert f"/api/v1/why/{chain.action}" in answered and "export/openlineage" in answered
    assert any(event.outcome == "redacted" for event in trail.events)
    why = next(e for e in trail.events if e.name == "why")
    assert (
        why.outcome == "redacted"
        and why.reason is not None
        and why.reason.startswith("restricted payload of")
    )


@pytest.mark.parametrize("role", CLEARED)
def test_auditor_and_admin_read_the_planted_secret(store: Store, secret, role: str) -> None:
    chain, key = secret
    fetch = reader_fetch(Reader(store, Principal.token("t", role)), key)
    assert_no_secret_free = [
        f"/api/v1/why/{chain.action}",
        f"/api/v1/nodes/{chain.snapshots[0]}",
        f"/api/v1/bundle/{chain.action}",
        "export/openlineage",
        f"export/intoto/{chain.action}",
        f"export/contents/{chain.snapshots[0]}",
        f"export/run-events/{chain.ingest_run}",
    ]
    assert_secret_shown(fetch, assert_no_secret_free)


def test_the_redacted_chain_stays_complete_with_digests_and_labels(store: Store, secret) -> None:
    chain, _ = secret
    admin = Reader(store, Principal.token("a", "admin")).why(chain.action)
    shown = Reader(store, Principal.token("o", "operator")).why(chain.action)
    assert shown.complete and admin.complete
    assert [s["digest"] for s in shown.snapshots] == [s["digest"] for s in admin.snapshots]
    assert [s["id"] for s in shown.snapshots] == chain.snapshots
    for snapshot in shown.snapshots:
        assert snapshot["redacted"] == "restricted" and "rows" not in snapshot
        assert snapshot["source"] == chain.source and snapshot["run"].startswith("run:")
    assert [s["id"] for s in shown.sources] == [chain.source] and shown.sources[0]["redacted"] == "restricted"
    assert shown.features is not None and "redacted" not in shown.features
    assert shown.features["inputs"] == [s.removeprefix("entity:") for s in chain.snapshots]
    text = msgspec.json.encode(why_view(shown)).decode()
    assert "payload redacted (restricted)" in text and SECRET not in text


def test_the_stored_event_keeps_its_identity_facets(store: Store, secret) -> None:
    chain, _ = secret
    events = Reader(store, Principal.token("o", "analyst")).run_events(chain.ingest_run.removeprefix("run:"))
    output = events[-1].event["outputs"][0]
    assert output["facets"]["aiops_snapshot"] == {"redacted": "restricted"}
    assert output["facets"]["aiops_entity"]["digest"] == chain.snapshots[-1].removeprefix("entity:")
    inputs = events[-1].event["inputs"][0]
    assert inputs["facets"]["aiops_source"] == {"redacted": "restricted"}
    detail = Reader(store, Principal.token("o", "analyst")).detail(chain.snapshots[0])
    assert detail.content == {"redacted": "restricted"} and detail.digest == chain.snapshots[0][7:]
    assert detail.facets["aiops_snapshot"] == {"redacted": "restricted"}
    assert detail.edges.out and detail.edges.in_


def test_a_namespace_scoped_reader_sees_other_namespaces_redacted(store: Store, secret) -> None:
    chain, key = secret
    trail = Trail()
    scoped = Reader(store, Principal.token("a", "auditor", frozenset({"billing"})), trail)
    assert_no_secret(reader_fetch(scoped, key), routes(chain))
    shown = scoped.why(chain.action)
    assert shown.complete and shown.decision is not None and shown.decision["redacted"] == "namespace"
    assert trail.events[-1].reason is not None and "namespace payload" in trail.events[-1].reason
    own = Reader(store, Principal.token("a", "auditor", frozenset({"ops"}))).why(chain.action)
    assert SECRET in msgspec.json.encode(own.to_dict()).decode()


def test_without_a_label_an_operator_reads_internal_payloads(tmp_path: Path) -> None:
    tracer = Tracer.in_memory("ops")
    recorded = record_secret_chain(tracer, label=False)
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        store.ingest([parse_event(e) for e in tracer.transport.events])  # type: ignore[attr-defined]
        trail = Trail()
        reader = Reader(store, Principal.token("o", "operator"), trail)
        assert SECRET in msgspec.json.encode(reader.detail(recorded.snapshots[0])).decode()
        assert trail.events[-1].outcome == "allowed" and label_rules(store) == []


def test_the_rules_in_force_follow_the_log(store: Store, secret) -> None:
    chain, _ = secret
    assert [(r.namespace, r.level, r.source) for r in label_rules(store)] == [("ops", "restricted", "svc-01")]
    reader = Reader(store, Principal.token("o", "operator"))
    assert reader.detail(chain.snapshots[0]).content == {"redacted": "restricted"}
    tracer = Tracer("opslineage.governance", store=store, sync=True)
    tracer.set_label(
        LabelFacet(
            namespace="ops", level="internal", source="svc-01", set_at="2026-01-06T00:00:00.000Z", set_by="x"
        )
    )
    tracer.close()
    assert [r.level for r in label_rules(reader)] == ["restricted", "internal"]
    assert SECRET in msgspec.json.encode(reader.detail(chain.snapshots[0])).decode()


def test_a_redacted_bundle_names_what_was_withheld_and_does_not_verify(store: Store, secret) -> None:
    chain, key = secret
    trail = Trail()
    bundle = make_bundle(Reader(store, Principal.token("o", "operator"), trail), chain.action)
    assert set(chain.snapshots) <= set(bundle["redacted"])
    report = verify_bundle(json.loads(json.dumps(bundle)), public_key_b64(key.public_key()))
    assert not report.ok and "were redacted for the reader" in report.findings[0]
    assert [(e.name, e.outcome) for e in trail.events] == [("bundle", "redacted")]
    full = make_bundle(Reader(store, Principal.token("a", "auditor")), chain.action)
    assert "redacted" not in full
    assert verify_bundle(json.loads(json.dumps(full)), public_key_b64(key.public_key())).ok


def test_code_sql_and_error_facets_of_a_restricted_namespace_are_redacted(store: Store) -> None:
    run_id = "0190a1b2-0000-7000-8000-000000000001"
    facet = {"_producer": "https://example.com/etl", "_schemaURL": "https://example.com/schema.json"}
    event = {
        "eventType": "FAIL",
        "eventTime": "2026-01-05T12:00:00Z",
        "producer": "https://example.com/etl",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {
            "runId": run_id,
            "facets": {"errorMessage": {**facet, "message": SECRET, "programmingLanguage": "python"}},
        },
        "job": {
            "namespace": "etl",
            "name": "load",
            "facets": {"sourceCode": {**facet, "language": "python", "sourceCode": f"x = '{SECRET}'"}},
        },
        "inputs": [
            {"namespace": "etl", "name": "raw", "facets": {"schema": {**facet, "fields": [{"name": SECRET}]}}}
        ],
        "outputs": [],
    }
    store.ingest([parse_event(event)])
    tracer = Tracer("opslineage.governance", store=store, sync=True)
    tracer.set_label(
        LabelFacet(namespace="etl", level="restricted", set_at="2026-01-06T00:00:00.000Z", set_by="x")
    )
    tracer.close()
    paths = [f"export/run-events/run:{run_id}", "export/openlineage", "/api/v1/nodes/job:etl:load"]
    paths += [f"/api/v1/nodes/run:{run_id}", "/api/v1/nodes/dataset:etl:raw"]
    analyst = reader_fetch(Reader(store, Principal.token("a", "analyst")))
    assert assert_no_secret(analyst, paths) == paths
    shown = Reader(store, Principal.token("a", "analyst")).run_events(run_id)[0].event
    assert shown["job"]["facets"]["sourceCode"] == {"redacted": "restricted"}
    assert shown["run"]["facets"]["errorMessage"] == {"redacted": "restricted"}
    assert shown["inputs"][0]["facets"]["schema"] == {"redacted": "restricted"}
    assert_secret_shown(reader_fetch(Reader(store, Principal.token("a", "admin"))), paths)


def test_the_local_cli_is_admin_and_reads_the_planted_secret(
    store: Store, store_url: str, secret, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain, _ = secret
    assert main(["why", chain.action, "--json", "--store", store_url]) == 0
    why = json.loads(capsys.readouterr().out)
    assert SECRET in json.dumps(why["snapshots"]) and "redacted" not in why["snapshots"][0]
    out = tmp_path / "events.jsonl"
    assert main(["export", "--format", "openlineage", "-o", str(out), "--store", store_url]) == 0
    assert SECRET in out.read_text()
