"""Effectiveness: outcome counts per policy version, model version and action type, the resolved
rate's Wilson interval, the time series, and the stage latencies, on hand-built chains of known
outcomes and on the demo."""

from __future__ import annotations

import contextvars
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opslineage import Tracer, open_store
from opslineage.demo import DemoResult
from opslineage.governance import AccessDenied
from opslineage.model.facets import LabelFacet
from opslineage.query import Principal, Reader
from opslineage.query.effectiveness import bucket_of, effectiveness, percentile, wilson_interval
from opslineage.sdk.steps import ActionStep
from opslineage.store import Store

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
Z = 1.959964


def remediate(
    tracer: Tracer,
    at: datetime,
    outcome: str,
    *,
    subject: str = "svc-01",
    policy: str = "1",
    model: str = "1",
    action: str = "scale_out",
    took: float = 1.0,
) -> ActionStep:
    """Record one chain starting at ``at``, its clock ticking ``took`` seconds a reading (a step
    reads it twice: it takes ``2 * took``), whose effect is ``outcome`` (none when ``pending``)."""
    ticks = iter(range(1000))
    tracer.clock = lambda: at + timedelta(seconds=took * next(ticks))
    source = tracer.source(subject)
    with tracer.ingest(source) as step:
        snapshot = step.snapshot(
            [[tracer.timestamp(at), 90.0]],
            {"timestamp": "datetime", "cpu": "float"},
            at - timedelta(minutes=5),
            at,
        )
    with tracer.features(_mean_cpu, [snapshot], subject=subject) as step:
        features = step.feature_set({"cpu_mean": 90.0}, at - timedelta(minutes=5), at)
    detector = tracer.model("detector", model, f"model {model}".encode(), "robust-z", {"threshold": 3.5})
    guard = tracer.policy(
        "cpu-guard", policy, rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 85.0}, action="scale_out"
    )
    with tracer.inference(detector, features, subject=subject) as step:
        prediction = step.prediction(6.5, "anomaly", {"cpu_mean": 6.5})
    with tracer.evaluate(guard, prediction, subject=subject) as step:
        step.decide(
            True, "cpu_mean 90 > 85", [{"input": "cpu_mean", "value": 90.0, "op": ">", "threshold": 85.0}]
        )
        with tracer.action(action, target=subject) as done:
            pass
    assert done.record is not None
    if outcome != "pending":
        with tracer.observe_effect(done.record) as step:
            step.effect(outcome, at + timedelta(minutes=10), at + timedelta(minutes=20), metric="cpu")  # type: ignore[arg-type]
    return done


def _mean_cpu(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean CPU over the window."""
    return {"cpu_mean": sum(row["cpu"] for row in rows) / len(rows)}


def _wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson interval written out again, from the textbook form."""
    p = k / n
    centre = p + Z**2 / (2 * n)
    spread = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return (centre - spread) / (1 + Z**2 / n), (centre + spread) / (1 + Z**2 / n)


@pytest.fixture
def recorded(store: Store) -> Store:
    """Ten scale_outs under cpu-guard@1 and detector@1 on day one: 8 resolved, 1 unchanged, 1
    worsened; on day two, under cpu-guard@2 and detector@2, two restarts: one insufficient_data,
    one pending (no effect); on day three one unverifiable scale_out under cpu-guard@2."""
    tracer = Tracer("test.ns", store=store, sync=True)
    outcomes = ["resolved"] * 8 + ["unchanged", "worsened"]
    for i, outcome in enumerate(outcomes):
        remediate(tracer, T0 + timedelta(hours=1 + i), outcome, subject=f"svc-{i:02d}")
    day2 = T0 + timedelta(days=1, hours=3)
    remediate(tracer, day2, "insufficient_data", policy="2", model="2", action="restart")
    remediate(tracer, day2 + timedelta(hours=1), "pending", policy="2", model="2", action="restart", took=3)
    remediate(tracer, T0 + timedelta(days=2, hours=5), "unverifiable", policy="2", model="2")
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    return store


def _groups(answer: dict, name: str) -> dict[str, dict]:
    return {group["key"]: group for group in answer["groups"][name]}


def test_the_wilson_interval_of_8_of_10_is_the_known_one() -> None:
    low, high = wilson_interval(8, 10)  # type: ignore[misc]
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson_interval(0, 0) is None
    for k, n in [(0, 5), (5, 5), (3, 7), (1, 1)]:
        assert wilson_interval(k, n) == pytest.approx(_wilson(k, n))


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 0.95) == pytest.approx(95.05)


def test_buckets_start_at_the_hour_day_and_monday() -> None:
    when = datetime(2026, 1, 8, 13, 45, tzinfo=UTC)  # a Thursday
    assert bucket_of(when, "hour") == "2026-01-08T13:00:00Z"
    assert bucket_of(when, "day") == "2026-01-08T00:00:00Z"
    assert bucket_of(when, "week") == "2026-01-05T00:00:00Z"


def test_counts_and_the_interval_per_policy_model_and_action(recorded: Store) -> None:
    answer = effectiveness(Reader(recorded, Principal.local_admin())).to_dict()
    first = _groups(answer, "policy")["cpu-guard@1"]
    assert (first["actions"], first["resolved"], first["unchanged"], first["worsened"]) == (10, 8, 1, 1)
    assert first["verdicts"] == 10 and first["resolved_rate"] == 0.8
    assert (first["lower"], first["upper"]) == pytest.approx(_wilson(8, 10))
    second = _groups(answer, "policy")["cpu-guard@2"]
    assert second["actions"] == 3 and second["verdicts"] == 0
    assert (second["insufficient_data"], second["pending"], second["unverifiable"]) == (1, 1, 1)
    assert second["resolved_rate"] is None and second["lower"] is None and second["upper"] is None
    assert set(_groups(answer, "model")) == {"detector@1", "detector@2"}
    assert _groups(answer, "model")["detector@1"]["resolved"] == 8
    actions = _groups(answer, "action")
    assert (actions["scale_out"]["actions"], actions["restart"]["actions"]) == (11, 2)
    assert (actions["scale_out"]["unverifiable"], actions["restart"]["pending"]) == (1, 1)


def test_the_series_is_bucketed_by_the_actions_start(recorded: Store) -> None:
    reader = Reader(recorded, Principal.local_admin())
    by_day = _groups(effectiveness(reader).to_dict(), "action")["scale_out"]["series"]
    assert [(point["bucket"], point["actions"]) for point in by_day] == [
        ("2026-01-05T00:00:00Z", 10),
        ("2026-01-07T00:00:00Z", 1),
    ]
    assert by_day[0]["resolved_rate"] == 0.8
    by_hour = _groups(effectiveness(reader, interval="hour").to_dict(), "policy")["cpu-guard@1"]["series"]
    assert len(by_hour) == 10 and all(point["actions"] == 1 for point in by_hour)
    by_week = _groups(effectiveness(reader, interval="week").to_dict(), "policy")["cpu-guard@2"]["series"]
    assert [point["bucket"] for point in by_week] == ["2026-01-05T00:00:00Z"]


def test_since_until_and_namespace_narrow_the_actions(recorded: Store) -> None:
    reader = Reader(recorded, Principal.local_admin())
    day2 = effectiveness(
        reader, since=T0 + timedelta(days=1), until=T0 + timedelta(days=1, hours=23)
    ).to_dict()
    assert set(_groups(day2, "policy")) == {"cpu-guard@2"}
    assert _groups(day2, "policy")["cpu-guard@2"]["actions"] == 2
    assert effectiveness(reader, namespace="elsewhere").to_dict()["groups"] == {
        "policy": [],
        "model": [],
        "action": [],
    }
    with pytest.raises(ValueError, match="interval"):
        effectiveness(reader, interval="month")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="offset"):
        effectiveness(reader, since=datetime(2026, 1, 5))


def test_stage_latencies_are_start_to_complete_per_job(recorded: Store) -> None:
    latencies = {
        row["job"]: row
        for row in effectiveness(Reader(recorded, Principal.local_admin())).to_dict()["latencies"]
    }
    action = latencies["remediation.scale_out"]
    assert (action["runs"], action["p50"], action["p95"], action["max"]) == (11, 2.0, 2.0, 2.0)
    restart = latencies["remediation.restart"]  # one step of 2 s, one of 6 s
    assert (restart["runs"], restart["p50"], restart["p95"], restart["max"]) == (
        2,
        4.0,
        pytest.approx(5.8),
        6.0,
    )
    assert latencies["policy.cpu-guard"]["p50"] == 5.0  # it holds the action step: 5 readings
    assert latencies["ingest"]["runs"] == 13 and latencies["ingest"]["namespace"] == "test.ns"


def test_a_run_without_an_end_is_unfinished_not_timed(store: Store) -> None:
    tracer = Tracer("test.ns", store=store, sync=True)
    remediate(tracer, T0, "resolved")
    for job in ("ingest", "stuck"):  # started, never ended (their scopes left behind)
        contextvars.copy_context().run(tracer.ingest(tracer.source("svc-01"), job=job).__enter__)
    tracer.close()
    latencies = {row.job: row for row in effectiveness(Reader(store, Principal.local_admin())).latencies}
    assert (latencies["ingest"].runs, latencies["ingest"].unfinished, latencies["ingest"].p50) == (1, 1, 2.0)
    assert latencies["effect.observe"].unfinished == 0
    stuck = latencies["stuck"]
    assert (stuck.runs, stuck.unfinished, stuck.p50, stuck.p95, stuck.max) == (0, 1, 0.0, 0.0, 0.0)


def test_restricted_actions_are_withheld_from_an_analyst(recorded: Store) -> None:
    tracer = Tracer("test.ns", store=recorded, sync=True)
    label = LabelFacet(
        namespace="test.ns",
        level="restricted",
        kind="action",
        set_at="2026-01-08T00:00:00Z",
        set_by="cli:carol",
    )
    tracer.set_label(label)
    tracer.close()
    shown = effectiveness(Reader(recorded, Principal.token("a", "analyst"))).to_dict()
    assert shown["withheld"] == 13 and shown["groups"] == {"policy": [], "model": [], "action": []}
    full = effectiveness(Reader(recorded, Principal.token("u", "auditor"))).to_dict()
    assert full["withheld"] == 0 and _groups(full, "policy")["cpu-guard@1"]["resolved"] == 8


def test_an_operator_may_not_read_the_analytics(recorded: Store) -> None:
    with pytest.raises(AccessDenied, match="analytics:read"):
        effectiveness(Reader(recorded, Principal.token("o", "operator")))
    assert effectiveness(Reader(recorded, Principal.token("a", "analyst"))).to_dict()["withheld"] == 0


def test_the_demo_remediations_are_all_counted(demo_run: tuple[Path, DemoResult]) -> None:
    path, result = demo_run
    with open_store(f"sqlite:///{path}") as store:
        answer = effectiveness(Reader(store, Principal.local_admin())).to_dict()
    for name in ("policy", "model", "action"):
        assert sum(group["actions"] for group in answer["groups"][name]) == len(result.remediations)
    expected: dict[str, int] = {}
    for remediation in result.remediations:
        key = remediation.policy.removeprefix("policy:")
        expected[key] = expected.get(key, 0) + (remediation.outcome == "resolved")
    assert {key: group["resolved"] for key, group in _groups(answer, "policy").items()} == expected
    assert {group["key"] for group in answer["groups"]["action"]} == {r.action for r in result.remediations}
    assert all(row["runs"] > 0 for row in answer["latencies"])
