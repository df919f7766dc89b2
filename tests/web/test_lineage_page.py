"""The data-lineage explorer in Chromium, on Airflow's own OpenLineage events (its
compatibility-test run of BigQuery and GCS tasks, with column lineage) and on a synthetic
neighbourhood of 1,001 jobs and datasets."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browsing import Site, axe_violations, producer_events, serve_events

UPLOAD = "dataset:bigquery:mock-project.test.upload"
FAN = 500  # jobs reading the hub dataset, each writing a dataset of its own


@pytest.fixture(scope="module")
def airflow_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server on a store of Airflow's compatibility-test events, in the order they were sent."""
    yield from serve_events(tmp_path_factory.mktemp("airflow-site"), producer_events("airflow"))


@pytest.fixture(scope="module")
def spark_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server on a store of Spark's column-level lineage test events, in the order they were sent."""
    yield from serve_events(tmp_path_factory.mktemp("spark-site"), producer_events("CLL"))


@pytest.fixture(scope="module")
def fan_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server on a store where :data:`FAN` jobs each read ``hub`` and write ``out-<i>``."""

    def run(index: int) -> dict[str, Any]:
        return {
            "eventType": "COMPLETE",
            "eventTime": f"2026-12-01T00:{index // 60 % 60:02d}:{index % 60:02d}Z",
            "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fan-{index}"))},
            "job": {"namespace": "fan", "name": f"job-{index:03d}"},
            "inputs": [{"namespace": "fan", "name": "hub"}],
            "outputs": [{"namespace": "fan", "name": f"out-{index:03d}"}],
            "producer": "https://example.com/tests/fan",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        }

    yield from serve_events(tmp_path_factory.mktemp("fan-site"), [run(index) for index in range(FAN)])


def _drawn(page: Any) -> dict[str, str]:
    """The boxes drawn: node id → the box's classes."""
    boxes = page.locator("svg.graph .node")
    return dict(
        zip(
            boxes.evaluate_all("all => all.map(b => b.dataset.node)"),
            boxes.evaluate_all("all => all.map(b => b.getAttribute('class'))"),
            strict=True,
        )
    )


def test_the_explorer_draws_airflows_jobs_and_datasets_with_their_column_lineage(
    page: Any, airflow_site: Site
) -> None:
    page.goto(f"{airflow_site.url}/lineage?node={UPLOAD}&depth=2")
    drawn = _drawn(page)
    assert set(drawn) == {
        UPLOAD,
        "job:airflow:BQ.upload",
        "job:airflow:BQ.copy",
        "dataset:gs://mock-bucket:test.csv",
        "dataset:gs://mock-bucket:copied.csv",
        "dataset:bigquery:mock-project.test.upload_cp",
    }
    assert "focus" in drawn[UPLOAD].split()
    left = {node: page.locator(f'svg.graph [data-node="{node}"] rect').get_attribute("x") for node in drawn}
    x = {node: float(value or 0) for node, value in left.items()}
    assert x["dataset:gs://mock-bucket:test.csv"] < x["job:airflow:BQ.upload"] < x[UPLOAD]  # upstream left
    assert x[UPLOAD] < x["job:airflow:BQ.copy"] < x["dataset:bigquery:mock-project.test.upload_cp"]
    rows = page.locator(f'table.lineage-columns[data-dataset="{UPLOAD}"] tbody tr').evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent.trim()))"
    )
    assert ["a", "gs://mock-bucket:test.csv.a", "IDENTITY"] in rows
    assert axe_violations(page) == []


def test_sparks_column_lineage_shows_each_input_column_with_its_transformations(
    page: Any, spark_site: Site
) -> None:
    table = "dataset:file:/tmp/cll_test/tbl1"
    page.goto(f"{spark_site.url}/lineage?node={table}&depth=2")
    assert {"dataset:file:/tmp/cll_test/cll_source1", "dataset:file:/tmp/cll_test/cll_source2"} < set(
        _drawn(page)
    )
    rows = page.locator(f'table.lineage-columns[data-dataset="{table}"] tbody tr').evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent.trim()))"
    )
    assert ["agg", "file:/tmp/cll_test/cll_source2.c", "DIRECT/AGGREGATION"] in rows
    assert axe_violations(page) == []


def test_depth_changes_how_many_nodes_are_drawn(page: Any, airflow_site: Site) -> None:
    page.goto(f"{airflow_site.url}/lineage?node={UPLOAD}&depth=1")
    assert set(_drawn(page)) == {UPLOAD, "job:airflow:BQ.upload", "job:airflow:BQ.copy"}
    page.fill("#depth", "4")
    page.click("text=Redraw")
    page.wait_for_url(re.compile(r".*depth=4$"))
    drawn = _drawn(page)
    assert len(drawn) == 8 and "dataset:gs://mock-bucket:result.csv" in drawn  # the whole BQ chain
    assert "8 jobs and datasets within 4 hops" in page.inner_text("#lineage-count")


def test_selecting_a_box_centres_the_explorer_on_it(page: Any, airflow_site: Site) -> None:
    page.goto(f"{airflow_site.url}/lineage?node={UPLOAD}&depth=1")
    page.click('svg.graph a[data-node="job:airflow:BQ.copy"]')
    page.wait_for_url("**/lineage?node=job%3Aairflow%3ABQ.copy&depth=1")
    drawn = _drawn(page)
    assert "focus" in drawn["job:airflow:BQ.copy"].split() and "focus" not in drawn[UPLOAD].split()
    assert set(drawn) == {UPLOAD, "job:airflow:BQ.copy", "dataset:bigquery:mock-project.test.upload_cp"}
    focus = page.locator('svg.graph a[data-node="job:airflow:BQ.copy"]')
    assert focus.get_attribute("href") == "/nodes/job:airflow:BQ.copy"  # the focus box opens its page
    assert axe_violations(page) == []


def test_without_a_node_the_explorer_offers_recent_jobs_and_a_search(page: Any, airflow_site: Site) -> None:
    page.goto(f"{airflow_site.url}/lineage")
    assert page.locator("svg.graph").count() == 0
    assert page.locator("a", has_text="BQ.copy").count() == 1
    assert axe_violations(page) == []
    page.fill("#q", "upload_cp")
    page.click("button[type=submit]")
    page.click("text=mock-project.test.upload_cp")
    page.wait_for_url("**/lineage?node=dataset*")
    assert "focus" in _drawn(page)["dataset:bigquery:mock-project.test.upload_cp"].split()


def test_a_depth_out_of_bounds_or_an_unknown_node_is_a_clear_4xx(airflow_site: Site) -> None:
    for depth in ("0", "101", "two"):
        answer = httpx.get(f"{airflow_site.url}/lineage", params={"node": UPLOAD, "depth": depth})
        assert answer.status_code == 400, (depth, answer.status_code)
        assert "depth" in answer.text
        assert answer.headers["content-type"].startswith("text/html")
    missing = httpx.get(f"{airflow_site.url}/lineage", params={"node": "dataset:nowhere:nothing"})
    assert missing.status_code == 404


def test_a_token_of_other_namespaces_is_refused_a_node_as_the_api_refuses_it(tmp_path: Path) -> None:
    for site in serve_events(tmp_path, producer_events("airflow"), {"gcs-only": ["gs://mock-bucket"]}):
        headers = {"Authorization": f"Bearer {site.tokens['gcs-only']}"}
        page = httpx.get(f"{site.url}/lineage", params={"node": UPLOAD}, headers=headers)
        api = httpx.get(f"{site.url}/api/v1/lineage", params={"nodeId": UPLOAD}, headers=headers)
        assert page.status_code == api.status_code == 403
        assert "outside token:gcs-only&#39;s namespaces" in page.text
        csv = "dataset:gs://mock-bucket:test.csv"
        own = httpx.get(f"{site.url}/lineage", params={"node": csv}, headers=headers)
        assert own.status_code == 200 and f'data-node="{csv}"' in own.text


def test_a_neighbourhood_of_a_thousand_nodes_draws_every_box(page: Any, fan_site: Site) -> None:
    page.goto(f"{fan_site.url}/lineage?node=dataset:fan:hub&depth=2")
    boxes = page.locator("svg.graph .node")
    assert boxes.count() == 2 * FAN + 1
    assert page.locator("svg.graph .edges path").count() == 2 * FAN
    last = page.locator('svg.graph [data-node="dataset:fan:out-499"]')
    assert last.count() == 1 and last.bounding_box() is not None  # drawn, with a size
