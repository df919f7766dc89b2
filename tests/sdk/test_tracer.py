"""The SDK: context propagation, failure recording, non-blocking emission that never raises."""

from __future__ import annotations

import threading
from contextvars import copy_context
from datetime import UTC, datetime
from typing import Any

import pytest

from helpers import CHAIN_EVENTS, T0, Chain, record_chain
from opslineage import Tracer
from opslineage.sdk import MemoryTransport, current
from opslineage.sdk.effects import classify_effect


def _run_events(transport: MemoryTransport, run_id: str) -> list[dict[str, Any]]:
    return [e for e in transport.events if e["run"]["runId"] == run_id]


def test_an_action_inside_an_evaluation_is_linked_to_its_decision(
    captured: tuple[Tracer, MemoryTransport, Chain],
) -> None:
    _, transport, chain = captured
    start, complete = _run_events(transport, chain.action.run_id)
    assert start["eventType"] == "START" and complete["eventType"] == "COMPLETE"
    assert complete["run"]["facets"]["parent"]["run"]["runId"] == chain.decision.run_id
    assert complete["inputs"][0]["facets"]["aiops_entity"]["digest"] == chain.decision.digest
    record = chain.action.record.content  # type: ignore[union-attr]
    assert record["decision"] == chain.decision.digest
    assert record["prediction"] == chain.prediction.digest
    assert record["features"] == chain.features.digest
    assert record["model"] == "model:detector@1"
    assert record["policy"] == "policy:cpu-guard@1" and record["policy_digest"].startswith("sha256:")


def test_an_action_outside_any_decision_is_refused() -> None:
    tracer = Tracer.in_memory()
    with pytest.raises(ValueError, match="an action needs a decision"):
        tracer.action("restart", target="svc")


def test_context_crosses_into_threads_with_a_copied_context() -> None:
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    policy = tracer.policy("p", "1", rule="x > {x}", thresholds={"x": 1.0}, action="restart")
    seen: list[str | None] = []
    with tracer.evaluate(policy, chain.prediction, subject="svc-01") as step:
        step.decide(True, "x high")
        context = copy_context()
        thread = threading.Thread(target=lambda: context.run(lambda: seen.append(current().decision.digest)))  # type: ignore[union-attr]
        thread.start()
        thread.join()
    assert seen and seen[0] is not None and current().decision is None


def test_an_exception_records_fail_and_propagates() -> None:
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    with (
        pytest.raises(RuntimeError, match="boom"),
        tracer.action("restart", target="svc", decision=chain.decision) as step,
    ):
        raise RuntimeError("boom")
    events = _run_events(tracer.transport, step.run_id)  # type: ignore[arg-type]
    assert events[-1]["eventType"] == "FAIL"
    assert "boom" in events[-1]["run"]["facets"]["errorMessage"]["message"]
    assert step.record is not None and step.record.content["status"] == "failed"


def test_an_action_that_failed_to_start_is_recorded_with_its_reason() -> None:
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    with tracer.action("scale_out", target="svc", decision=chain.decision) as step:
        step.fail_to_start("already at max replicas")
    assert step.record is not None
    assert step.record.content["status"] == "failed_to_start"
    assert step.record.content["reason"] == "already at max replicas"
    assert _run_events(tracer.transport, step.run_id)[-1]["eventType"] == "FAIL"  # type: ignore[arg-type]


def test_a_decision_that_did_not_fire_is_recorded() -> None:
    tracer = Tracer.in_memory()
    chain = record_chain(tracer, fire=False)
    assert chain.decision.content["fired"] is False and "action" not in chain.decision.content


def test_a_schema_change_links_the_two_snapshots() -> None:
    tracer = Tracer.in_memory()
    source = tracer.source("svc")
    when = datetime(2026, 1, 5, tzinfo=UTC)
    with tracer.ingest(source) as step:
        old = step.snapshot([[1.0]], {"cpu": "float"}, when, when)
    with tracer.ingest(source) as step:
        new = step.snapshot([[1.0, 2.0]], {"cpu": "float", "gc_pause_ms": "float"}, when, when)
    assert new.content["schema_change_from"] == old.digest
    assert new.content["previous_schema_fingerprint"] == old.content["schema_fingerprint"]


class _Failing:
    def __init__(self) -> None:
        self.calls = 0

    def emit(self, events: list[dict[str, Any]]) -> None:
        self.calls += 1
        raise ConnectionError("store is down")

    def close(self) -> None:
        pass


def test_a_failing_transport_never_raises_into_the_pipeline() -> None:
    transport = _Failing()
    tracer = Tracer("x", transport=transport)
    record_chain(tracer)
    assert tracer.flush(timeout=5)
    tracer.close()
    assert transport.calls >= 1
    assert tracer.stats.errors == CHAIN_EVENTS and "store is down" in (tracer.stats.last_error or "")


class _Slow(MemoryTransport):
    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def emit(self, events: list[dict[str, Any]]) -> None:
        self.gate.wait(5)
        super().emit(events)


def test_emission_happens_off_the_callers_thread_and_flush_waits() -> None:
    transport = _Slow()
    tracer = Tracer("x", transport=transport)
    record_chain(tracer)  # returns although the transport is blocked
    assert transport.events == []
    transport.gate.set()
    assert tracer.flush(timeout=5)
    assert len(transport.events) == CHAIN_EVENTS
    tracer.close()


def test_a_full_queue_drops_and_counts_when_asked_to() -> None:
    transport = _Slow()
    tracer = Tracer("x", transport=transport, queue_size=2, drop_when_full=True, spill_cap=0)
    record_chain(tracer)
    transport.gate.set()
    tracer.close()
    assert tracer.stats.dropped > 0
    assert tracer.stats.dropped + len(transport.events) == CHAIN_EVENTS


def test_the_transform_decorator_records_code_version_and_returns_the_feature_set() -> None:
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)

    @tracer.transform(parameters={"window": 3}, rationale="mean CPU smooths scrape noise")
    def mean(values: list[float]) -> dict[str, float]:
        return {"cpu_mean": sum(values) / len(values)}

    assert mean([1.0, 3.0]) == {"cpu_mean": 2.0}
    features = mean.record([1.0, 3.0], inputs=chain.snapshots, subject="svc", window=(T0, T0))  # type: ignore[attr-defined]
    transform = features.content["transform"]
    assert features.content["values"] == {"cpu_mean": 2.0}
    assert transform["parameters"] == {"window": 3} and transform["rationale"].startswith("mean CPU")
    assert "src:" in transform["code_version"] and transform["deterministic"] is True


def test_the_remediation_decorator_runs_inside_the_decision_in_scope() -> None:
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)

    @tracer.remediation("restart")
    def restart(target: str, *, grace_s: int = 0) -> bool:
        return False

    policy = tracer.policy("p", "1", rule="x > {x}", thresholds={"x": 0.0}, action="restart")
    with tracer.evaluate(policy, chain.prediction, subject="svc") as step:
        decision = step.decide(True, "x > 0")
        assert restart("svc-01", grace_s=30) is False
    action = [e for e in tracer.transport.events if e["job"]["name"] == "remediation.restart"][-1]  # type: ignore[attr-defined]
    record = action["outputs"][0]["facets"]["aiops_action"]
    assert action["eventType"] == "FAIL" and record["status"] == "failed"
    assert record["decision"] == decision.digest and record["params"] == {"grace_s": 30}


@pytest.mark.parametrize(
    ("before", "after", "samples", "outcome"),
    [
        (90.0, 50.0, 3, "resolved"),
        (90.0, 88.0, 3, "unchanged"),
        (90.0, 99.0, 3, "worsened"),
        (90.0, 50.0, 1, "insufficient_data"),
        (None, None, 3, "unverifiable"),
    ],
)
def test_effects_are_classified(
    before: float | None, after: float | None, samples: int, outcome: str
) -> None:
    assert (
        classify_effect(before, after, samples_before=3, samples_after=samples, healthy_below=80.0) == outcome
    )
