"""``GET /metrics`` over a real socket, parsed by ``prometheus_client``'s own parser: the ingest
counters move by exactly the events posted, accepted, duplicate or rejected; the coverage gauges
are there per namespace; request latency is per route; the verifier's findings show once it
gives them; quality figures are cached; and ``GET /api/v1/quality`` answers as the CLI does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import CHAIN_EVENTS, record_chain
from live import LiveServer, start_server
from opslineage import Tracer
from opslineage.server import ServerSettings
from opslineage.server.metrics import ServerMetrics

DOCS = Path(__file__).parents[2] / "docs" / "quality.md"
TOKEN = {"Authorization": "Bearer s3cret"}
BATCH = "/api/v1/lineage/batch"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _serve(store_url: str, **settings: Any) -> Iterator[tuple[LiveServer, ServerMetrics]]:
    server, thread, url = start_server(ServerSettings(store=store_url, token="s3cret", **settings))
    yield LiveServer(url, store_url), server.config.app.state.metrics
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def live(store_url: str) -> Iterator[tuple[LiveServer, ServerMetrics]]:
    """A server whose quality figures are computed on every scrape."""
    yield from _serve(store_url, quality_cache=0)


@pytest.fixture
def cached(store_url: str) -> Iterator[tuple[LiveServer, ServerMetrics]]:
    """A server with the default quality cache."""
    yield from _serve(store_url)


def scrape(url: str) -> Samples:
    """Every sample of ``/metrics``, by name and labels, read without the token (as any read is)."""
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def chain_events(namespace: str = "test.ns") -> list[dict[str, Any]]:
    tracer = Tracer.in_memory(namespace)
    record_chain(tracer)
    return list(tracer.transport.events)  # type: ignore[attr-defined]


def ingested(samples: Samples, outcome: str) -> float:
    return samples[("opslineage_ingest_events_total", (("outcome", outcome),))]


def test_ingest_counters_move_by_the_events_posted_and_coverage_is_per_namespace(
    live: tuple[LiveServer, ServerMetrics],
) -> None:
    server, _ = live
    before = scrape(server.url)
    assert [ingested(before, outcome) for outcome in ("accepted", "duplicate", "rejected")] == [0, 0, 0]
    assert not any(name == "opslineage_chain_coverage_ratio" for name, _ in before)

    events = chain_events()
    assert len(events) == CHAIN_EVENTS
    bad = {"eventType": "COMPLETE", "producer": "x"}  # no eventTime, no schemaURL
    first = httpx.post(f"{server.url}{BATCH}", json=[*events, bad], headers=TOKEN, timeout=30)
    assert first.json()["accepted"] == CHAIN_EVENTS and first.json()["rejected"] == 1
    again = httpx.post(f"{server.url}/api/v1/lineage", json=events[0], headers=TOKEN, timeout=30)
    assert again.json()["duplicate"] is True
    wrong = httpx.post(f"{server.url}/api/v1/lineage", json=bad, headers=TOKEN, timeout=30)
    assert wrong.status_code == 400
    other = chain_events("other.ns")
    assert httpx.post(f"{server.url}{BATCH}", json=other, headers=TOKEN, timeout=30).is_success

    after = scrape(server.url)
    assert ingested(after, "accepted") == CHAIN_EVENTS + len(other)
    assert ingested(after, "duplicate") == 1
    assert ingested(after, "rejected") == 2
    for namespace in ("test.ns", "other.ns"):
        labels = (("namespace", namespace),)
        assert after[("opslineage_chain_coverage_ratio", labels)] == 1.0
        assert after[("opslineage_effect_coverage_ratio", labels)] == 1.0
        assert after[("opslineage_model_digest_coverage_ratio", labels)] == 1.0
        assert after[("opslineage_code_version_coverage_ratio", labels)] == 1.0
        assert after[("opslineage_verdict_coverage_ratio", labels)] == 1.0
        figure = (("figure", "chain_coverage"), ("namespace", namespace))
        assert after[("opslineage_quality_denominator", figure)] == 1
        assert after[("opslineage_quality_numerator", figure)] == 1
    batch = (("method", "POST"), ("route", BATCH))
    assert after[("opslineage_http_request_duration_seconds_count", batch)] == 2
    assert (
        after[("opslineage_http_request_duration_seconds_count", (("method", "GET"), ("route", "/metrics")))]
        >= 1
    )


def test_latency_is_labelled_by_route_template_not_by_path(live: tuple[LiveServer, ServerMetrics]) -> None:
    server, _ = live
    for node in ("dataset:a:b", "dataset:c:d"):
        assert httpx.get(f"{server.url}/api/v1/nodes/{node}", timeout=10).status_code == 404
    assert httpx.get(f"{server.url}/no/such/path", timeout=10).status_code == 404
    samples = scrape(server.url)
    node_route = (("method", "GET"), ("route", "/api/v1/nodes/{node_id:path}"))
    assert samples[("opslineage_http_request_duration_seconds_count", node_route)] == 2
    unmatched = (("method", "GET"), ("route", "unmatched"))
    assert samples[("opslineage_http_request_duration_seconds_count", unmatched)] == 1
    assert not any("dataset:a:b" in str(labels) for _, labels in samples)


def test_verify_findings_are_the_judged_layers_of_the_scraped_store(
    live: tuple[LiveServer, ServerMetrics],
) -> None:
    server, metrics = live
    assert not any(name == "opslineage_verify_findings_total" for name, _ in scrape(server.url)), (
        "no checks yet"
    )
    assert httpx.post(f"{server.url}{BATCH}", json=chain_events(), headers=TOKEN, timeout=30).is_success
    samples = scrape(server.url)
    for layer in ("data", "model", "policy"):
        assert samples[("opslineage_verify_findings_total", (("layer", layer),))] == 0
        assert samples[("opslineage_verify_checks_passed_ratio", (("layer", layer),))] == 1.0
    metrics.correctness = lambda reader, namespace, since: {"data": (8, 10), "policy": (5, 5)}
    samples = scrape(server.url)
    assert samples[("opslineage_verify_findings_total", (("layer", "data"),))] == 2
    assert samples[("opslineage_verify_findings_total", (("layer", "policy"),))] == 0
    assert samples[("opslineage_verify_checks_passed_ratio", (("layer", "data"),))] == 0.8
    quality = httpx.get(f"{server.url}/api/v1/quality", timeout=30).json()
    assert quality["correctness"]["data"] == {"numerator": 8, "denominator": 10, "ratio": 0.8}


def test_quality_figures_are_cached_between_scrapes(cached: tuple[LiveServer, ServerMetrics]) -> None:
    server, _ = cached
    assert not any(name == "opslineage_chain_coverage_ratio" for name, _ in scrape(server.url))
    assert httpx.post(f"{server.url}{BATCH}", json=chain_events(), headers=TOKEN, timeout=30).is_success
    samples = scrape(server.url)
    assert ingested(samples, "accepted") == CHAIN_EVENTS  # counters are live
    assert not any(name == "opslineage_chain_coverage_ratio" for name, _ in samples)  # figures cached
    fresh = httpx.get(f"{server.url}/api/v1/quality", params={"namespace": "test.ns"}, timeout=30)
    assert fresh.json()["namespaces"][0]["figures"]["chain_coverage"]["ratio"] == 1.0


def test_the_quality_route_answers_the_cli_shape_and_refuses_bad_parameters(
    live: tuple[LiveServer, ServerMetrics],
) -> None:
    server, _ = live
    assert httpx.post(f"{server.url}{BATCH}", json=chain_events(), headers=TOKEN, timeout=30).is_success
    answer = httpx.get(f"{server.url}/api/v1/quality", params={"by": "day"}, timeout=30).json()
    assert answer["by"] == "day" and answer["total"]["chain_coverage"]["numerator"] == 1
    assert [entry["period"] for entry in answer["periods"]] == ["2026-01-05"]
    later = httpx.get(f"{server.url}/api/v1/quality", params={"since": "2027-01-01T00:00:00Z"}, timeout=30)
    assert later.json()["total"]["chain_coverage"] == {"numerator": 0, "denominator": 0, "ratio": None}
    for params, field in (({"by": "month"}, "by"), ({"since": "yesterday"}, "since")):
        refused = httpx.get(f"{server.url}/api/v1/quality", params=params, timeout=30)
        assert refused.status_code == 400 and refused.json()["field"] == field, refused.text


def test_every_metric_the_docs_alert_on_is_exported(live: tuple[LiveServer, ServerMetrics]) -> None:
    server, metrics = live
    metrics.correctness = lambda reader, namespace, since: {"data": (1, 1)}
    assert httpx.post(f"{server.url}{BATCH}", json=chain_events(), headers=TOKEN, timeout=30).is_success
    exported = {name for name, _ in scrape(server.url)}
    (rules,) = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    named = set(re.findall(r"\bopslineage_[a-z_]+", rules))
    assert len(named) >= 4
    assert named <= exported, sorted(named - exported)
    table = set(re.findall(r"`(opslineage_[a-z_]+)`", DOCS.read_text()))
    families = {name.removesuffix("_count") for name in exported} | exported
    assert table <= families, sorted(table - families)
