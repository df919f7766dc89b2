"""The HTTP API over a real socket: fed by the official openlineage-python client, read back as
why-chains, Marquez-shaped lineage and proofs; bad input refused with JSON and nothing stored."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport
from psycopg import sql

from helpers import record_chain
from live import LiveServer, start_server
from opslineage import Tracer, open_store
from opslineage.demo import DemoConfig, run_demo
from opslineage.interop import verify_bundle
from opslineage.ledger.keys import load_private_key, public_key_b64
from opslineage.ledger.log import checkpoint, init_log
from opslineage.query import list_nodes, why
from opslineage.server import ServerSettings
from opslineage.store.archive import archive_store

DATA = Path(__file__).parents[1] / "data" / "openlineage"
AUTH = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}


def _transport(live: LiveServer, *, compression: HttpCompression | None = None) -> HttpTransport:
    return HttpTransport(
        HttpConfig(url=live.url, compression=compression, auth=ApiKeyTokenProvider({"apiKey": "s3cret"}))
    )


def test_the_official_clients_http_transport_feeds_the_server_and_why_reads_back(live: LiveServer) -> None:
    tracer = Tracer.in_memory("aiops.http")
    chain = record_chain(tracer)
    transport = _transport(live, compression=HttpCompression.GZIP)
    for event in tracer.transport.events:  # type: ignore[attr-defined]
        transport.emit(event)
    action = f"run:{chain.action.run_id}"
    answer = httpx.get(f"{live.url}/api/v1/why/{action}").json()
    assert answer["complete"] is True
    assert answer["decision"]["id"] == chain.decision.id
    assert [s["id"] for s in answer["snapshots"]] == [s.id for s in chain.snapshots]
    with open_store(live.store, create=False) as store:
        assert why(store, action).to_dict() == answer


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # PostgreSQL: tests/store/test_postgres.py
def test_the_demos_events_through_the_official_client_give_the_same_why_chains(
    live: LiveServer, tmp_path: Path
) -> None:
    with open_store(f"sqlite:///{tmp_path / 'demo.db'}") as demo:
        run_demo(demo, DemoConfig(services=2, hours=8, seed=1))
        events = [stored.event for stored in demo.events()]
        transport = _transport(live, compression=HttpCompression.GZIP)
        for event in events:
            transport.emit(event)
        actions = list_nodes(demo, "action", limit=100)
        assert actions and httpx.get(f"{live.url}/readyz").json()["events"] == len(events)
        for action in actions:
            answer = httpx.get(f"{live.url}/api/v1/why/{action.id}").json()
            assert answer["complete"] is True
            assert answer == why(demo, action.id).to_dict()


def test_a_producer_using_the_clients_own_event_classes_is_accepted(live: LiveServer) -> None:
    client = OpenLineageClient(transport=_transport(live))
    run = Run(runId="0190a3c4-1111-7abc-8def-0123456789ab")
    job = Job(namespace="airflow", name="etl.load")
    for state in (RunState.START, RunState.COMPLETE):
        client.emit(
            RunEvent(
                eventType=state,
                eventTime="2026-01-05T12:00:00Z",
                run=run,
                job=job,
                producer="https://example.test/producer",
                inputs=[InputDataset(namespace="postgres://db:5432", name="public.raw")],
                outputs=[OutputDataset(namespace="postgres://db:5432", name="public.clean")],
            )
        )
    graph = httpx.get(
        f"{live.url}/api/v1/lineage", params={"nodeId": "dataset:postgres://db:5432:public.clean", "depth": 5}
    ).json()["graph"]
    ids = {node["id"] for node in graph}
    assert ids == {
        "dataset:postgres://db:5432:public.clean",
        "job:airflow:etl.load",
        "dataset:postgres://db:5432:public.raw",
    }
    job_node = next(node for node in graph if node["id"] == "job:airflow:etl.load")
    assert job_node["type"] == "JOB"
    assert job_node["inEdges"] == [
        {"origin": "dataset:postgres://db:5432:public.raw", "destination": "job:airflow:etl.load"}
    ]
    assert job_node["outEdges"] == [
        {"origin": "job:airflow:etl.load", "destination": "dataset:postgres://db:5432:public.clean"}
    ]


def test_every_compatibility_event_is_accepted_with_its_facets_intact(live: LiveServer) -> None:
    files = sorted((DATA / "compatibility-tests").glob("*/events/*.json"))
    assert len(files) == 74
    datasets, jobs, parents, column_lineage = set(), set(), 0, set()
    with httpx.Client(base_url=live.url) as client:  # one connection for the ~200 requests
        for path in files:
            event = json.loads(path.read_text())
            response = client.post("/api/v1/lineage", content=path.read_bytes(), headers=AUTH)
            assert response.status_code == 201, (path.name, response.text)
            jobs.add(f"job:{event['job']['namespace']}:{event['job']['name']}")
            for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
                datasets.add(f"dataset:{dataset['namespace']}:{dataset['name']}")
                if "columnLineage" in dataset.get("facets", {}):
                    column_lineage.add(f"dataset:{dataset['namespace']}:{dataset['name']}")
            parents += "parent" in event["run"].get("facets", {})
        for node in sorted(datasets | jobs):
            assert client.get(f"/api/v1/nodes/{node}").status_code == 200, node
        assert column_lineage and parents
        for node in column_lineage:
            facets = client.get(f"/api/v1/nodes/{node}").json()["facets"]
            assert "fields" in facets["columnLineage"]
    with open_store(live.store, create=False) as store:
        has_parent = [
            e
            for e in store.edges(
                [n.id for n in store.find_nodes(kind="run", limit=1000)], direction="up", kinds=["hasParent"]
            )
        ]
        assert has_parent


def test_an_event_without_run_id_is_refused_with_a_json_reason(live: LiveServer) -> None:
    body = (DATA / "fluentd-events" / "event_no_run_id.json").read_bytes()
    response = httpx.post(f"{live.url}/api/v1/lineage", content=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_event",
        "detail": "run.runId is missing",
        "field": "run.runId",
    }
    assert httpx.get(f"{live.url}/readyz").json()["events"] == 0


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({}, b"{}", 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, b"{}", 401, "unauthorized"),
        (AUTH, b'{"eventType": ', 400, "invalid_event"),
        (AUTH, b"x" * (3 << 20), 413, "too_large"),
        ({**AUTH, "Content-Encoding": "gzip"}, gzip.compress(b" " * (3 << 20)), 413, "too_large"),
        ({**AUTH, "Content-Encoding": "gzip"}, b"not gzip", 400, "bad_encoding"),
        ({**AUTH, "Content-Encoding": "br"}, b"{}", 415, "unsupported_encoding"),
    ],
    ids=["no-token", "wrong-token", "malformed", "too-large", "gzip-bomb", "bad-gzip", "unknown-encoding"],
)
def test_bad_requests_get_json_errors_and_store_nothing(
    live: LiveServer, headers: dict[str, str], body: bytes, status: int, error: str
) -> None:
    response = httpx.post(f"{live.url}/api/v1/lineage", content=body, headers=headers)
    assert response.status_code == status and response.json()["error"] == error
    assert httpx.get(f"{live.url}/readyz").json()["events"] == 0


@pytest.mark.parametrize("route", ["/api/v1/lineage", "/api/v1/lineage/batch"])
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_body_not_declared_as_json_is_refused_and_stores_nothing(
    live: LiveServer, route: str, content_type: str | None
) -> None:
    """A browser sends these cross-site without a preflight: they must not reach the store."""
    tracer = Tracer.in_memory()
    record_chain(tracer)
    body = json.dumps(tracer.transport.events[0]).encode()  # type: ignore[attr-defined]
    headers = {"Authorization": "Bearer s3cret"} | ({"Content-Type": content_type} if content_type else {})
    response = httpx.post(f"{live.url}{route}", content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type" and response.json()["field"] == "Content-Type"
    assert httpx.get(f"{live.url}/readyz").json()["events"] == 0
    for accepted in ["application/json; charset=utf-8", "application/x-ndjson", "application/vnd.acme+json"]:
        assert httpx.post(
            f"{live.url}{route}", content=body, headers={**headers, "Content-Type": accepted}
        ).is_success


def test_batch_stores_the_valid_events_and_lists_the_invalid_ones(live: LiveServer) -> None:
    tracer = Tracer.in_memory()
    record_chain(tracer)
    events = list(tracer.transport.events)  # type: ignore[attr-defined]
    broken = {**events[3], "eventType": "NOPE"}
    lines = b"\n".join(json.dumps(e).encode() for e in [*events[:3], broken, *events[4:]])
    response = httpx.post(f"{live.url}/api/v1/lineage/batch", content=lines, headers=AUTH)
    answer = response.json()
    assert response.status_code == 200 and answer["accepted"] == len(events) - 1 and answer["rejected"] == 1
    assert answer["results"][3] == {
        "index": 3,
        "status": "rejected",
        "field": "eventType",
        "detail": "eventType 'NOPE' is not one of ABORT, COMPLETE, FAIL, OTHER, RUNNING, START",
    }
    again = httpx.post(f"{live.url}/api/v1/lineage/batch", json=[*events, events[0]], headers=AUTH).json()
    assert again["accepted"] == 1 and again["duplicates"] == len(events)
    statuses = [item["status"] for item in again["results"]]
    assert statuses == ["duplicate"] * 3 + ["accepted"] + ["duplicate"] * (len(events) - 3)
    assert statuses.count("duplicate") == again["duplicates"]


def test_nodes_search_pages_and_walks(live: LiveServer) -> None:
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    httpx.post(f"{live.url}/api/v1/lineage/batch", json=tracer.transport.events, headers=AUTH)  # type: ignore[attr-defined]
    first = httpx.get(f"{live.url}/api/v1/nodes", params={"kind": "snapshot", "limit": 2}).json()
    second = httpx.get(
        f"{live.url}/api/v1/nodes", params={"kind": "snapshot", "limit": 2, "offset": 2}
    ).json()
    assert len(first["nodes"]) == 2 and first["next_offset"] == 2
    assert len(second["nodes"]) == 1 and second["next_offset"] is None
    assert {n["id"] for n in first["nodes"] + second["nodes"]} == {s.id for s in chain.snapshots}
    assert httpx.get(f"{live.url}/api/v1/nodes", params={"kind": "widget"}).status_code == 400
    node = httpx.get(f"{live.url}/api/v1/nodes/{chain.decision.id}").json()
    assert node["content"]["fired"] is True and node["type"] == "decision"
    up = httpx.get(f"{live.url}/api/v1/upstream/{chain.effect.id}", params={"depth": 30}).json()
    assert "source:test:svc-01" in {n["id"] for n in up["nodes"]}
    down = httpx.get(f"{live.url}/api/v1/downstream/source:test:svc-01", params={"depth": 30}).json()
    assert chain.effect.id in {n["id"] for n in down["nodes"]}
    old = httpx.get(
        f"{live.url}/api/v1/downstream/source:test:svc-01", params={"as_of": "2000-01-01T00:00:00Z"}
    )
    assert old.status_code == 404
    assert httpx.get(f"{live.url}/api/v1/why/run:00000000-0000-4000-8000-000000000000").status_code == 404


def test_log_endpoints_answer_like_the_cli(
    live: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    httpx.post(f"{live.url}/api/v1/lineage/batch", json=tracer.transport.events, headers=AUTH)  # type: ignore[attr-defined]
    assert httpx.get(f"{live.url}/api/v1/log/checkpoint").status_code == 404
    with open_store(live.store, create=False) as store:
        init_log(store, origin="opslineage.test/http")
        key = load_private_key(tmp_path / "log.key")
        signed = checkpoint(store, key)
    answer = httpx.get(f"{live.url}/api/v1/log/checkpoint").json()
    assert answer["tree_size"] == signed.tree_size and answer["signature"] == signed.to_dict()["signature"]
    proof = httpx.get(f"{live.url}/api/v1/log/proof/inclusion", params={"seq": 3}).json()
    assert set(proof) == {"leaf_index", "tree_size", "leaf_hash", "root_hash", "audit_path"}
    assert httpx.get(f"{live.url}/api/v1/log/proof/consistency", params={"first": 5, "second": 18}).json()[
        "proof"
    ]
    assert httpx.get(f"{live.url}/api/v1/log/proof/inclusion", params={"seq": 99}).status_code == 400
    bundle = httpx.get(f"{live.url}/api/v1/bundle/run:{chain.action.run_id}").json()
    assert verify_bundle(bundle, public_key_b64(key.public_key())).ok


def test_openapi_and_health(live: LiveServer) -> None:
    spec = httpx.get(f"{live.url}/openapi.json").json()
    assert {"/api/v1/lineage", "/api/v1/lineage/batch", "/api/v1/nodes", "/healthz", "/readyz"} <= set(
        spec["paths"]
    )
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}


def test_the_api_answers_the_same_after_the_history_is_archived(live: LiveServer, tmp_path: Path) -> None:
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    httpx.post(f"{live.url}/api/v1/lineage/batch", json=tracer.transport.events, headers=AUTH)  # type: ignore[attr-defined]
    paths = [
        f"/api/v1/why/run:{chain.action.run_id}",
        f"/api/v1/nodes/{chain.decision.id}",
        f"/api/v1/nodes/{chain.snapshots[0].id}",
        f"/api/v1/nodes/run:{chain.action.run_id}",
    ]
    before = [httpx.get(live.url + path).json() for path in paths]
    with open_store(live.store) as store:
        archive_store(store, store.log_size(), tmp_path / "archive")  # the server's store learns where
    assert [httpx.get(live.url + path).json() for path in paths] == before


def test_a_postgresql_outage_is_a_503_the_client_may_retry_not_a_refusal(
    postgres_url: str, postgres_server: psycopg.Connection[Any]
) -> None:
    """A store that cannot be reached is no fault of the event: 503, never 409 "conflict"."""
    tracer = Tracer.in_memory()
    record_chain(tracer)
    first, second = (json.dumps(event).encode() for event in tracer.transport.events[:2])  # type: ignore[attr-defined]
    server, thread, url = start_server(ServerSettings(store=postgres_url, token="s3cret"))
    name = postgres_url.rsplit("/", 1)[1]
    database = sql.Identifier(name)
    try:
        assert httpx.post(f"{url}/api/v1/lineage", content=first, headers=AUTH).status_code == 201
        postgres_server.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(database))
        postgres_server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        response = httpx.post(f"{url}/api/v1/lineage", content=second, headers=AUTH, timeout=60)
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "store_unavailable"
        postgres_server.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
        assert (
            httpx.post(f"{url}/api/v1/lineage", content=second, headers=AUTH, timeout=60).status_code == 201
        )
    finally:
        postgres_server.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
        server.should_exit = True
        thread.join(timeout=10)
