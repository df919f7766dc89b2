"""``opslineage quality``: coverage 1.0 on a whole demo, and a drop by exactly the share of actions
whose feature-set runs never reached the store (ingested through the ingest pipeline, without
them); periods, ``--since``, no data, correctness figures and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opslineage import open_store
from opslineage.checks.quality import FIGURES, quality
from opslineage.cli.main import main
from opslineage.demo import DemoConfig, DemoResult, run_demo
from opslineage.ingest import IngestPipeline, actor
from opslineage.query import Principal, Reader
from opslineage.sdk import MemoryTransport


@pytest.fixture(scope="module")
def demo_events() -> list[dict[str, Any]]:
    """A short demo's events (four actions), as its tracer emitted them."""
    transport = MemoryTransport()
    run_demo(None, DemoConfig(seed=1, services=3, hours=6), transport=transport)
    return list(transport.events)


def _outputs(events: list[dict[str, Any]], facet: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(event, facet) for every output dataset of ``events`` that carries ``facet``."""
    for event in events:
        for output in event.get("outputs") or []:
            if facet in output.get("facets", {}):
                yield event, output["facets"]


def _quality_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["quality", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_figure_is_whole_on_the_demo(
    demo_run: tuple[Path, DemoResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = demo_run
    report = _quality_json(capsys, "--store", f"sqlite:///{path}")
    actions = len(result.remediations)
    assert actions > 0
    assert report["total"]["chain_coverage"] == {"numerator": actions, "denominator": actions, "ratio": 1.0}
    assert report["total"]["effect_coverage"]["denominator"] == actions
    assert [entry["namespace"] for entry in report["namespaces"]] == ["aiops.demo"]
    figures = report["namespaces"][0]["figures"]
    assert set(figures) == set(FIGURES)
    for name, figure in figures.items():
        assert figure["denominator"] > 0 and figure["ratio"] == 1.0, name
    assert figures["model_digest_coverage"]["denominator"] == result.kinds["prediction"]
    assert figures["code_version_coverage"]["denominator"] == result.kinds["feature"]
    assert report["periods"] == []
    checks = report["correctness"]
    assert set(checks) == {"data", "model", "policy"}, "the CLI judges the layers too"
    assert all(c["numerator"] == c["denominator"] > 0 and c["ratio"] == 1.0 for c in checks.values())


def test_dropping_the_feature_set_runs_of_some_actions_lowers_coverage_by_their_share(
    demo_events: list[dict[str, Any]], store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    actions = [facets["aiops_action"] for _, facets in _outputs(demo_events, "aiops_action")]
    dropped_features = {actions[0]["features"], actions[-1]["features"]}
    dropped_runs = {
        event["run"]["runId"]
        for event, facets in _outputs(demo_events, "aiops_features")
        if facets["aiops_entity"]["digest"] in dropped_features
    }
    assert dropped_runs
    kept = [event for event in demo_events if event.get("run", {}).get("runId") not in dropped_runs]
    feature_sets = {facets["aiops_entity"]["digest"] for _, facets in _outputs(demo_events, "aiops_features")}
    with open_store(store_url) as store:
        IngestPipeline(store).ingest(kept, actor=actor("cli", "test"))

    report = _quality_json(capsys, "--store", store_url)
    whole = sum(action["features"] not in dropped_features for action in actions)
    assert 0 < whole < len(actions)
    assert report["total"]["chain_coverage"] == {
        "numerator": whole,
        "denominator": len(actions),
        "ratio": whole / len(actions),
    }
    assert report["total"]["code_version_coverage"] == {
        "numerator": len(feature_sets - dropped_features),
        "denominator": len(feature_sets - dropped_features),
        "ratio": 1.0,
    }
    assert report["total"]["effect_coverage"]["ratio"] == 1.0  # effects still name their actions


def test_periods_split_the_totals_and_since_leaves_out_what_came_before(
    demo_events: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with open_store(url) as store:
        IngestPipeline(store).ingest(demo_events, actor=actor("cli", "test"))
    by_day = _quality_json(capsys, "--store", url, "--by", "day")
    for figure in FIGURES:
        periods = [entry["figures"][figure] for entry in by_day["periods"]]
        assert sum(p["denominator"] for p in periods) == by_day["total"][figure]["denominator"], figure
        assert sum(p["numerator"] for p in periods) == by_day["total"][figure]["numerator"], figure
    assert all(len(entry["period"]) == len("2026-01-05") for entry in by_day["periods"])
    by_week = _quality_json(capsys, "--store", url, "--by", "week")
    assert {entry["period"] for entry in by_week["periods"]} == {"2026-W02"}

    started = sorted(
        facets["aiops_action"]["started_at"] for _, facets in _outputs(demo_events, "aiops_action")
    )
    since = started[len(started) // 2]
    later = _quality_json(capsys, "--store", url, "--since", since)
    expected = sum(when >= since for when in started)
    assert 0 < expected < len(started)
    assert later["total"]["chain_coverage"]["denominator"] == expected
    assert later["since"] == datetime.fromisoformat(since).astimezone(UTC).isoformat()


def test_a_namespace_without_items_has_no_data_not_a_share(
    demo_run: tuple[Path, DemoResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = demo_run
    report = _quality_json(capsys, "--store", f"sqlite:///{path}", "--namespace", "nowhere")
    assert [entry["namespace"] for entry in report["namespaces"]] == ["nowhere"]
    for figure in report["namespaces"][0]["figures"].values():
        assert figure == {"numerator": 0, "denominator": 0, "ratio": None}
    assert main(["quality", "--store", f"sqlite:///{path}", "--namespace", "nowhere"]) == 0
    table = capsys.readouterr().out
    assert table.count("no data") == len(FIGURES) and "nowhere" in table


def test_an_empty_store_says_it_has_nothing_to_measure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).close()
    assert main(["quality", "--store", url]) == 0
    assert "no actions, predictions, feature sets or effects" in capsys.readouterr().out
    report = _quality_json(capsys, "--store", url, "--by", "week")
    assert report["namespaces"] == [] and report["periods"] == []
    assert all(figure["ratio"] is None for figure in report["total"].values())


def test_the_table_shows_each_figure_with_its_counts(
    demo_run: tuple[Path, DemoResult], capsys: pytest.CaptureFixture[str]
) -> None:
    path, result = demo_run
    assert main(["quality", "--store", f"sqlite:///{path}", "--by", "day"]) == 0
    table = capsys.readouterr().out
    actions = len(result.remediations)
    assert f"100.0% ({actions}/{actions})" in table
    assert all(figure in table for figure in FIGURES) and "2026-01-05" in table


def test_correctness_figures_are_shown_when_given(demo_run: tuple[Path, DemoResult]) -> None:
    path, _ = demo_run
    with open_store(f"sqlite:///{path}") as store:
        reader = Reader(store, Principal.local_admin())
        report = quality(reader, correctness={"data": (9, 10), "model": (0, 0)}).to_dict()
        assert report["correctness"] == {
            "data": {"numerator": 9, "denominator": 10, "ratio": 0.9},
            "model": {"numerator": 0, "denominator": 0, "ratio": None},
        }
        with pytest.raises(ValueError, match="policy"):
            quality(reader, correctness={"policy": (11, 10)})
        with pytest.raises(ValueError, match="by must be"):
            quality(reader, by="month")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not an ISO 8601 time"),
        (["--since", "0001-01-01T00:00:00+05:00"], "outside the years 1 to 9999"),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    demo_run: tuple[Path, DemoResult], capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    path, _ = demo_run
    assert main(["quality", "--store", f"sqlite:///{path}", *args]) == 2
    error = capsys.readouterr().err
    assert reason in error and "Traceback" not in error
