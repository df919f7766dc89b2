"""Hostile reads (issue 10, defects 1, 3 and 9): no read can tie the server up, out-of-range numbers
are 400s naming their field, a query past the time budget is cancelled with a 503, reads never
sign a checkpoint, and the token is checked in any case of the scheme, in constant time."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from helpers import record_chain
from live import LiveServer, start_server
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.ledger.keys import load_private_key
from opslineage.ledger.log import checkpoint, init_log
from opslineage.model import parse_event
from opslineage.server import ServerSettings

AUTH = {"Authorization": "Bearer s3cret"}
HUGE = 9223372036854775808  # 2**63: past every SQL integer


def loop_events(jobs: int = 20, width: int = 50) -> list[dict[str, Any]]:
    """Runs that read and write the same datasets: a graph full of cycles, as hostile as it gets."""
    datasets = [{"namespace": "t", "name": f"d{i}"} for i in range(width)]
    return [
        {
            "eventType": "COMPLETE",
            "eventTime": "2026-01-01T00:00:00Z",
            "producer": "https://example.com/hostile",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": "t", "name": f"loop{n}"},
            "inputs": datasets,
            "outputs": datasets,
        }
        for n in range(jobs)
    ]


def fill(store_url: str, jobs: int = 20, width: int = 50) -> None:
    """Store the looping graph directly (not through a server with a tiny time budget)."""
    with open_store(store_url) as store:
        store.ingest([parse_event(msgspec.json.encode(event)) for event in loop_events(jobs, width)])


@pytest.fixture
def looped(store_url: str) -> Iterator[LiveServer]:
    fill(store_url)
    server, thread, url = start_server(ServerSettings(store=store_url, token="s3cret"))
    yield LiveServer(url, store_url)
    server.should_exit = True
    thread.join(timeout=10)


def test_a_walk_stops_when_nothing_is_left_however_deep_it_may_go(looped: LiveServer) -> None:
    with httpx.Client(base_url=looped.url, timeout=30) as client:
        graph = client.get("/api/v1/lineage", params={"nodeId": "dataset:t:d0", "depth": 100}).json()
        assert len(graph["graph"]) == 70  # 20 jobs and 50 datasets, all one cycle apart
        up = client.get("/api/v1/upstream/dataset:t:d0", params={"depth": 100}).json()
        assert len(up["nodes"]) == 70


@pytest.mark.parametrize("route", ["/api/v1/lineage", "/api/v1/upstream/x", "/api/v1/downstream/x"])
@pytest.mark.parametrize("depth", [101, 1_000_000_000, HUGE, -1])
def test_depth_past_the_maximum_is_refused(looped: LiveServer, route: str, depth: int) -> None:
    path = route.replace("/x", "/dataset:t:d0")
    response = httpx.get(f"{looped.url}{path}", params={"nodeId": "dataset:t:d0", "depth": depth}, timeout=10)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request" and body["field"] == "depth"
    assert "0 to 100" in body["detail"]


def test_out_of_range_numbers_and_times_are_400s_naming_the_field(looped: LiveServer) -> None:
    with httpx.Client(base_url=looped.url, timeout=10) as client:
        offset = client.get("/api/v1/nodes", params={"offset": HUGE})
        assert (offset.status_code, offset.json()["field"]) == (400, "offset")
        for path in ("nodes", "nodes/", "upstream/", "downstream/", "why/", "why-tree/"):
            route = f"/api/v1/{path}dataset:t:d0" if path.endswith("/") else f"/api/v1/{path}"
            for edge in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
                response = client.get(route, params={"as_of": edge})
                assert (response.status_code, response.json()["field"]) == (400, "as_of"), (route, edge)
                assert "outside the years 1 to 9999" in response.json()["detail"]
        for proof, params in (
            ("inclusion", {"seq": HUGE}),
            ("inclusion", {"seq": 0, "tree_size": HUGE}),
            ("consistency", {"first": 1, "second": HUGE}),
        ):
            response = client.get(f"/api/v1/log/proof/{proof}", params=params)
            assert (response.status_code, response.json()["error"]) == (400, "invalid_request"), params
        assert client.get("/api/v1/nodes", params={"offset": 1 << 62}).json()["nodes"] == []
        for after in (HUGE, -1):  # schemathesis found 2**63 a 500 (SQLite's OverflowError)
            response = client.get("/api/v1/access-log", params={"after": after})
            assert (response.status_code, response.json()["error"]) == (400, "invalid_request"), after
        assert client.get("/api/v1/access-log", params={"after": 1 << 62}).json() == []


def test_a_query_past_the_time_budget_is_cancelled_with_a_503(store_url: str) -> None:
    fill(store_url, jobs=40, width=100)
    server, thread, url = start_server(ServerSettings(store=store_url, query_timeout=0.05))
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            response = client.get("/api/v1/upstream/dataset:t:d0", params={"depth": 100})
            assert response.status_code == 503
            assert response.json()["error"] == "timeout"
            assert "time budget of 0.05 s" in response.json()["detail"]
            assert client.get("/healthz").status_code == 200
            assert client.get("/api/v1/nodes", params={"limit": 1}).status_code in (200, 503)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_bundle_get_never_signs_a_checkpoint(
    live: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLINEAGE_KEY", str(tmp_path / "log.key"))
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    httpx.post(f"{live.url}/api/v1/lineage/batch", json=tracer.transport.events, headers=AUTH)  # type: ignore[attr-defined]
    with open_store(live.store, create=False) as store:
        init_log(store, origin="opslineage.test/reads")
    action = f"run:{chain.action.run_id}"
    refused = httpx.get(f"{live.url}/api/v1/bundle/{action}")
    assert refused.status_code == 409
    assert refused.json()["error"] == "no_checkpoint" and "opslineage checkpoint" in refused.json()["detail"]
    assert httpx.get(f"{live.url}/api/v1/log/checkpoint").status_code == 404  # nothing was signed
    with open_store(live.store, create=False) as store:
        signed = checkpoint(store, load_private_key(tmp_path / "log.key"))
    bundle = httpx.get(f"{live.url}/api/v1/bundle/{action}").json()
    assert bundle["checkpoint"] == signed.note


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(live: LiveServer, scheme: str) -> None:
    tracer = Tracer.in_memory()
    record_chain(tracer)
    response = httpx.post(
        f"{live.url}/api/v1/lineage/batch",
        json=tracer.transport.events,  # type: ignore[attr-defined]
        headers={"Authorization": f"{scheme} s3cret"},
    )
    assert response.status_code == 200 and response.json()["rejected"] == 0
    wrong = httpx.post(
        f"{live.url}/api/v1/lineage", content=b"{}", headers={"Authorization": f"{scheme} s3cre"}
    )
    assert wrong.status_code == 401


def test_the_token_is_compared_in_constant_time(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def watched(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", watched)
    response = httpx.post(
        f"{live.url}/api/v1/lineage", content=b"{}", headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert (b"nope", b"s3cret") in compared


@pytest.mark.parametrize(
    ("route", "field"),
    [
        ("/api/v1/nodes?q=%00", "q"),
        ("/api/v1/nodes?type=a%00b", "type"),
        ("/api/v1/quality?namespace=%00", "namespace"),
        ("/api/v1/lineage?nodeId=job:a%00:b", "nodeId"),
        ("/api/v1/nodes/job:a%00:b", "node_id"),
        ("/api/v1/why/run:%00", "node_id"),
        ("/api/v1/access-log?actor=%00", "actor"),
    ],
)
def test_a_nul_character_in_a_parameter_is_a_400_naming_it_on_every_backend(
    live: LiveServer, route: str, field: str
) -> None:
    response = httpx.get(live.url + route, timeout=10)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "invalid_request", "detail": f"{field}: holds a NUL character", "field": field},
    )


@pytest.mark.parametrize("depth", ["101", "1000000000", str(HUGE)])
def test_the_cli_refuses_a_depth_past_the_maximum(
    store_url: str, depth: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(store_url)
    assert main(["upstream", "dataset:t:d0", "--depth", depth, "--store", store_url, "--json"]) == 2
    assert f"depth must be 0 to 100, got {depth}" in capsys.readouterr().err
    assert main(["downstream", "dataset:t:d0", "--depth", "100", "--store", store_url, "--json"]) == 0
