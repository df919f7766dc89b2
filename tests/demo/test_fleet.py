"""Tests for the simulated fleet: determinism, incidents, actions and their effects, schema change."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from statistics import mean

import pytest

from opslineage.demo.fleet import (
    EXTRA_FIELD,
    FIX_FOR,
    INCIDENT_KINDS,
    METRICS,
    ActionOutcome,
    Fleet,
    Incident,
)


def _run(fleet: Fleet) -> list[dict[str, dict[str, float]]]:
    return [fleet.tick() for _ in range(fleet.steps_total - fleet.steps_done)]


def _until(fleet: Fleet, kind: str, extra: int = 0) -> Incident:
    """Tick until an incident of ``kind`` is active, then ``extra`` steps more."""
    while True:
        fleet.tick()
        active = [fleet.active_incident(s) for s in fleet.services]
        found = [i for i in active if i is not None and i.kind == kind]
        if found:
            for _ in range(extra):
                fleet.tick()
            return found[0]


def _pair(kind: str, extra: int, seed: int = 0) -> tuple[Fleet, Fleet, Incident]:
    """Two identical fleets advanced to ``extra`` steps into the first incident of ``kind``."""
    treated, control = Fleet(seed=seed), Fleet(seed=seed)
    incident = _until(treated, kind, extra)
    _until(control, kind, extra)
    return treated, control, incident


def _series(fleet: Fleet, service: str, metric: str, steps: int) -> list[float]:
    return [fleet.tick()[service][metric] for _ in range(steps)]


def test_same_seed_same_run_and_different_seed_differs() -> None:
    a, b, c = Fleet(seed=7), Fleet(seed=7), Fleet(seed=8)
    assert _run(a) == _run(b)
    assert a.incidents == b.incidents and a.events == b.events
    assert _run(c) != _run(Fleet(seed=7))


def test_clock_names_and_step_count() -> None:
    fleet = Fleet(services=4, hours=2)
    assert fleet.services == ["svc-01", "svc-02", "svc-03", "svc-04"]
    assert fleet.now == datetime(2026, 1, 5, tzinfo=UTC)
    assert fleet.steps_total == 24
    rows = fleet.tick()
    assert fleet.now == datetime(2026, 1, 5, 0, 5, tzinfo=UTC) and set(rows) == set(fleet.services)
    _run(fleet)
    assert fleet.now == datetime(2026, 1, 5, 2, tzinfo=UTC)
    with pytest.raises(RuntimeError):
        fleet.tick()


def test_bad_construction_is_rejected() -> None:
    with pytest.raises(ValueError):
        Fleet(services=0)
    with pytest.raises(ValueError):
        Fleet(start=datetime(2026, 1, 5))


def test_metrics_are_floats_within_sensible_ranges() -> None:
    for step in _run(Fleet(seed=1)):
        for row in step.values():
            assert set(METRICS) <= set(row) and all(type(v) is float for v in row.values())
            assert 0 <= row["cpu"] <= 100 and 0 <= row["mem"] <= 100
            assert row["latency_ms"] > 0 and 0 <= row["error_rate"] <= 1


def test_daily_seasonality_raises_afternoon_load() -> None:
    fleet = Fleet(seed=2)
    steps = _run(fleet)
    times = [fleet.start + (k + 1) * fleet.step for k in range(len(steps))]
    for service in fleet.services:
        quiet = [
            (t, row[service]["cpu"])
            for t, row in zip(times, steps, strict=True)
            if not any(i.service == service and i.covers(t) for i in fleet.incidents)
        ]
        night = mean(c for t, c in quiet if 1 <= t.hour < 5)
        afternoon = mean(c for t, c in quiet if 12 <= t.hour < 17)
        assert afternoon > night * 1.2, service


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_incidents_cover_every_kind_after_the_training_period(seed: int) -> None:
    fleet = Fleet(seed=seed)
    _run(fleet)
    assert {i.kind for i in fleet.incidents} == set(INCIDENT_KINDS)
    assert len(fleet.incidents) >= 6
    training_end = fleet.start + fleet.steps_total * fleet.step / 4
    assert all(i.start > training_end for i in fleet.incidents)
    assert len({i.id for i in fleet.incidents}) == len(fleet.incidents)


@pytest.mark.parametrize("services", [1, 2])
def test_small_fleets_never_overlap_incidents_on_one_service(services: int) -> None:
    fleet = Fleet(services=services, seed=0)
    _run(fleet)
    assert {i.kind for i in fleet.incidents} == set(INCIDENT_KINDS)
    for service in fleet.services:
        mine = [i for i in fleet.incidents if i.service == service]
        for earlier, later in itertools.pairwise(mine):
            assert earlier.end is not None and earlier.end < later.start


def test_unremediated_incidents_end_by_themselves_after_hours() -> None:
    fleet = Fleet(seed=0)
    _run(fleet)
    lasting = (fleet.incident_steps - 1) * fleet.step
    assert lasting == timedelta(hours=6) - fleet.step
    for incident in fleet.incidents:
        assert incident.resolved_by is None
        if incident.start + lasting <= fleet.now:
            assert incident.end == incident.start + lasting
        else:
            assert incident.end is None and fleet.active_incident(incident.service) is incident


def test_scale_out_relieves_cpu_saturation_after_a_settle_period() -> None:
    treated, control, incident = _pair("cpu_saturation", extra=3)
    service = incident.service
    outcome = treated.apply(service, "scale_out", {"replicas": 2})
    assert isinstance(outcome, ActionOutcome) and outcome.started and outcome.reason is None
    assert outcome.detail["replicas_before"] == 2 and outcome.detail["replicas_after"] == 4
    assert outcome.detail["resolved"] == incident.id
    assert incident.end == treated.now and incident.resolved_by == "scale_out"
    assert treated.active_incident(service) is None and treated.replicas(service) == 4
    after = _series(treated, service, "cpu", 8)
    before = _series(control, service, "cpu", 8)
    assert min(before) > 90
    assert after[0] > after[-1] + 5  # not instantly perfect
    assert abs(mean(after[-3:]) - outcome.detail["projected_cpu"]) < 10
    assert control.active_incident(service) is not None


def test_restart_clears_a_memory_leak_with_a_latency_blip() -> None:
    treated, control, incident = _pair("memory_leak", extra=12)
    service = incident.service
    outcome = treated.apply(service, "restart", {})
    assert outcome.started and outcome.detail["resolved"] == incident.id
    assert incident.resolved_by == "restart" and treated.active_incident(service) is None
    rows_t = [treated.tick()[service] for _ in range(4)]
    rows_c = [control.tick()[service] for _ in range(4)]
    assert rows_t[0]["latency_ms"] > 1.4 * rows_c[0]["latency_ms"]  # the blip
    assert rows_t[3]["latency_ms"] < 1.1 * rows_c[3]["latency_ms"]  # and it passes
    assert all(t["mem"] < c["mem"] - 5 for t, c in zip(rows_t, rows_c, strict=True))
    assert control.active_incident(service) is not None


def test_rollback_ends_a_bad_deploy() -> None:
    treated, control, incident = _pair("bad_deploy", extra=2)
    service = incident.service
    history = treated.versions(service)
    assert len(history) >= 2
    outcome = treated.apply(service, "rollback", None)
    assert outcome.started and outcome.detail == {
        "from_version": history[-1],
        "to_version": history[-2],
        "resolved": incident.id,
    }
    assert treated.versions(service) == history[:-1] and incident.resolved_by == "rollback"
    rows_t = [treated.tick()[service] for _ in range(8)]
    rows_c = [control.tick()[service] for _ in range(8)]
    assert rows_t[0]["error_rate"] > rows_t[-1]["error_rate"]  # settles over a few steps
    assert rows_t[-1]["error_rate"] < rows_c[-1]["error_rate"] / 4
    assert rows_t[-1]["latency_ms"] < rows_c[-1]["latency_ms"] / 2


@pytest.mark.parametrize(
    ("kind", "action", "params", "metric"),
    [
        ("cpu_saturation", "restart", {}, "cpu"),
        ("memory_leak", "scale_out", {"replicas": 1}, "mem"),
        ("bad_deploy", "restart", {}, "error_rate"),
        ("bad_deploy", "scale_out", {"replicas": 2}, "latency_ms"),
    ],
)
def test_wrong_action_leaves_the_incident_alone(kind: str, action: str, params: dict, metric: str) -> None:
    assert FIX_FOR[kind] != action
    treated, control, incident = _pair(kind, extra=3)
    outcome = treated.apply(incident.service, action, params)
    assert outcome.started and outcome.detail["resolved"] is None
    assert treated.active_incident(incident.service) is incident and incident.end is None
    for _ in range(3):  # past the restart blip
        treated.tick(), control.tick()
    assert _series(treated, incident.service, metric, 5) == _series(control, incident.service, metric, 5)


def test_actions_do_not_disturb_other_services() -> None:
    treated, control, incident = _pair("cpu_saturation", extra=1)
    treated.apply(incident.service, "scale_out", {"replicas": 3})
    for _ in range(5):
        rows_t, rows_c = treated.tick(), control.tick()
        assert {s: r for s, r in rows_t.items() if s != incident.service} == {
            s: r for s, r in rows_c.items() if s != incident.service
        }


def test_too_small_a_scale_out_leaves_saturation_until_capacity_suffices() -> None:
    treated, control, incident = _pair("cpu_saturation", extra=3, seed=2)
    service = incident.service
    small = treated.apply(service, "scale_out", {"replicas": 1})
    assert small.started and small.detail["projected_cpu"] >= 85 and small.detail["resolved"] is None
    assert treated.active_incident(service) is incident
    partial = _series(treated, service, "cpu", 6)
    assert mean(partial[-3:]) < mean(_series(control, service, "cpu", 6)[-3:])  # some relief
    more = treated.apply(service, "scale_out", {"replicas": 1})
    assert more.started and more.detail["resolved"] == incident.id and incident.resolved_by == "scale_out"


def test_scale_out_beyond_max_replicas_does_not_start() -> None:
    fleet = Fleet(seed=0, max_replicas=6)
    fleet.tick()
    refused = fleet.apply("svc-01", "scale_out", {"replicas": 5})
    assert not refused.started and "max_replicas" in (refused.reason or "")
    assert fleet.replicas("svc-01") == 2
    assert fleet.apply("svc-01", "scale_out", {"replicas": 4}).started
    assert not fleet.apply("svc-01", "scale_out", {"replicas": 1}).started
    assert fleet.replicas("svc-01") == 6


def test_scale_in_keeps_at_least_one_replica() -> None:
    fleet = Fleet(seed=0)
    assert fleet.apply("svc-02", "scale_in", {"replicas": 1}).started
    refused = fleet.apply("svc-02", "scale_in", {"replicas": 1})
    assert not refused.started and refused.reason and fleet.replicas("svc-02") == 1


def test_rollback_without_previous_version_does_not_start() -> None:
    fleet = Fleet(seed=0)
    single = [s for s in fleet.services if len(fleet.versions(s)) == 1]
    assert single
    outcome = fleet.apply(single[0], "rollback", {})
    assert not outcome.started and "no previous version" in (outcome.reason or "")
    assert fleet.versions(single[0]) == ["1.0.0"]
    assert not any(e.kind == "action" for e in fleet.events)


def test_invalid_requests_raise() -> None:
    fleet = Fleet()
    with pytest.raises(ValueError, match="unknown service"):
        fleet.apply("svc-99", "restart", {})
    with pytest.raises(ValueError, match="unknown action"):
        fleet.apply("svc-01", "reboot", {})
    for bad in (0, "2", 1.5, True):
        with pytest.raises(ValueError, match="replicas"):
            fleet.apply("svc-01", "scale_out", {"replicas": bad})


def test_one_service_changes_its_schema_once() -> None:
    fleet = Fleet(seed=0)
    base = {"timestamp": "datetime", **{m: "float" for m in METRICS}}
    assert all(fleet.schema(s) == base for s in fleet.services)
    changes: dict[str, int] = {}
    previous = {s: fleet.schema(s) for s in fleet.services}
    for _ in range(fleet.steps_total):
        rows = fleet.tick()
        for service, row in rows.items():
            schema = fleet.schema(service)
            assert set(schema) - {"timestamp"} == set(row)
            if schema != previous[service]:
                changes[service] = changes.get(service, 0) + 1
                assert schema == {**base, EXTRA_FIELD: "float"}
            previous[service] = schema
    assert list(changes.values()) == [1]
    (service,) = changes
    upgrades = [e for e in fleet.events if e.kind == "exporter_upgrade"]
    assert [(e.service, e.detail) for e in upgrades] == [(service, {"added": EXTRA_FIELD})]
