"""``opslineage.testing.capture_events``: what pipelines' own tests use to see their lineage."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from helpers import CHAIN_EVENTS, T0, record_chain
from opslineage import Tracer
from opslineage.model import InvalidEvent
from opslineage.testing import capture_events


def test_a_tracer_made_inside_the_block_is_captured_instead_of_writing_its_store(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    with capture_events() as captured:
        tracer = Tracer("pipeline", store=f"sqlite:///{path}")
        chain = record_chain(tracer)
        tracer.close()
    assert len(captured) == CHAIN_EVENTS and not path.exists()
    start, complete = captured.of_run(chain.action.run_id)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert complete["outputs"][0]["facets"]["aiops_action"]["decision"] == chain.decision.digest
    assert [e["eventType"] for e in captured.of_job("effect.observe")] == ["START", "COMPLETE"]


def test_tracers_made_in_other_threads_and_bound_tracers_are_captured() -> None:
    with capture_events() as captured:
        worker = threading.Thread(target=lambda: record_chain(Tracer("threaded")))
        worker.start()
        worker.join()
        record_chain(captured.tracer("bound"))
    namespaces = {event["job"]["namespace"] for event in captured}
    assert namespaces == {"threaded", "bound"} and len(captured) == 2 * CHAIN_EVENTS


def test_a_tracer_made_outside_the_block_is_not_captured() -> None:
    outside = Tracer.in_memory()
    with capture_events() as captured:
        record_chain(outside)
    assert len(captured) == 0 and len(outside.transport.events) == CHAIN_EVENTS  # type: ignore[attr-defined]


def _record_rows_as_dicts(tracer: Tracer) -> None:
    with tracer.ingest(tracer.source("svc")) as step:
        step.snapshot([{"cpu": 91.0}], {"cpu": "float"}, T0, T0 + timedelta(minutes=5))  # type: ignore[list-item]


def test_rows_the_store_would_refuse_are_refused_with_the_stores_message(store_url: str) -> None:
    with pytest.raises(InvalidEvent) as refused, capture_events():
        _record_rows_as_dicts(Tracer("pipeline"))
    stored = Tracer("pipeline", store=store_url, sync=True)
    _record_rows_as_dicts(stored)
    stored.close()
    assert "Expected `array`, got `object`" in str(refused.value)
    assert stored.stats.errors == 1 and stored.stats.last_error == f"TransportError: {refused.value}"


def test_without_strict_refusals_are_listed_and_the_rest_kept() -> None:
    with capture_events(strict=False) as captured:
        tracer = Tracer("pipeline")
        _record_rows_as_dicts(tracer)
        record_chain(tracer)
    assert len(captured) == 1 + CHAIN_EVENTS  # the START of the bad ingest, then a whole chain
    (refusal,) = captured.refused
    assert refusal.event["eventType"] == "COMPLETE"
    assert refusal.reason.startswith("outputs[0].facets.aiops_snapshot:")
    assert tracer.stats.errors == 1 and refusal.reason in (tracer.stats.last_error or "")
