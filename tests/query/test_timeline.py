"""The incident timeline: a target's series and marks in time order with their node ids, on a
hand-built chain, on the demo's injected incidents, and redacted for an operator."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from helpers import T0, Chain
from opslineage import Tracer, open_store
from opslineage.demo import DemoResult
from opslineage.query import Principal, Reader
from opslineage.query.timeline import targets, timeline
from opslineage.store import Store
from planted import SECRET, record_secret_chain

ADMIN = Principal.local_admin()


@pytest.fixture
def demo(demo_run: tuple[Path, DemoResult]) -> Reader:
    path, _ = demo_run
    store = open_store(f"sqlite:///{path}")
    yield Reader(store, ADMIN)
    store.close()


def test_a_chain_is_one_mark_per_artifact_in_causal_order(store: Store, chain: Chain) -> None:
    answer = timeline(Reader(store, ADMIN), "svc-01").to_dict()
    kinds = [mark["kind"] for mark in answer["marks"]]
    assert kinds == [
        *["snapshot"] * 3,
        "model_change",
        "prediction",
        "policy_change",
        "decision",
        "action",
    ]
    marks = answer["marks"]
    assert [mark["id"] for mark in marks[:3]] == [f"entity:{s.digest}" for s in chain.snapshots]
    assert marks[4]["id"] == f"entity:{chain.prediction.digest}"
    assert (marks[4]["score"], marks[4]["label"], marks[4]["threshold"]) == (6.5, "anomaly", None)
    assert marks[3] | {"at": None} == {
        "kind": "model_change",
        "at": None,
        "id": "model:detector@1",
        "from": None,
        "to": "model:detector@1",
        "prediction": marks[4]["id"],
    }
    decision = marks[6]
    assert decision["id"] == f"entity:{chain.decision.digest}" and decision["fired"] is True
    assert decision["policy"] == "policy:cpu-guard@1" and decision["breaches"][0]["input"] == "cpu_mean"
    action = marks[7]
    assert action["id"] == f"entity:{chain.action.record.digest}"  # type: ignore[union-attr]
    assert action["run"] == f"run:{chain.action.run_id}"
    assert (action["type"], action["status"]) == ("scale_out", "succeeded")
    effect = action["effect"]
    assert effect["id"] == f"entity:{chain.effect.digest}"
    assert (effect["outcome"], effect["before"], effect["after"]) == ("resolved", 91.0, 55.0)
    times = [mark["at"] for mark in marks]
    assert times == sorted(times)
    (cpu,) = answer["series"]
    assert cpu["metric"] == "cpu"
    assert [(point["value"], point["snapshot"]) for point in cpu["points"]] == [
        (90.0 + i, f"entity:{s.digest}") for i, s in enumerate(chain.snapshots)
    ]
    assert answer["since"] == "2026-01-05T12:00:00Z" and answer["withheld"] == []


def test_since_and_until_narrow_the_marks_and_the_series(store: Store, chain: Chain) -> None:
    reader = Reader(store, ADMIN)
    first = timeline(reader, "svc-01", until=T0 + timedelta(minutes=4)).to_dict()
    assert [mark["id"] for mark in first["marks"]] == [f"entity:{chain.snapshots[0].digest}"]
    assert [point["value"] for point in first["series"][0]["points"]] == [90.0]
    later = timeline(reader, "svc-01", since=T0 + timedelta(minutes=15, seconds=1)).to_dict()
    assert "snapshot" not in {mark["kind"] for mark in later["marks"]}
    assert later["series"][0]["points"] == [] and later["since"] == "2026-01-05T12:15:01Z"


def test_targets_and_an_unknown_target(store: Store, chain: Chain) -> None:
    reader = Reader(store, ADMIN)
    assert targets(reader) == ["svc-01"]
    empty = timeline(reader, "svc-99").to_dict()
    assert (empty["marks"], empty["series"], empty["since"], empty["until"]) == ([], [], None, None)


def test_the_demo_incidents_carry_their_action_in_order(
    demo: Reader, demo_run: tuple[Path, DemoResult]
) -> None:
    _, result = demo_run
    assert targets(demo) == sorted({f"svc-{i:02d}" for i in range(1, 7)})
    for remediation in result.remediations:
        answer = timeline(
            demo,
            remediation.target,
            since=remediation.decided_at - timedelta(hours=1),
            until=remediation.decided_at + timedelta(hours=1),
        ).to_dict()
        marks = answer["marks"]
        assert [mark["at"] for mark in marks] == sorted(mark["at"] for mark in marks)
        (index,) = [i for i, mark in enumerate(marks) if mark["kind"] == "action"]
        action = marks[index]
        assert action["run"] == f"run:{remediation.run_id}"
        assert action["type"] == remediation.action and action["policy"] == remediation.policy
        assert action["effect"]["outcome"] == remediation.outcome
        made_by = demo.neighbours([action["run"]], direction="down", kinds=["wasGeneratedBy"])
        assert [edge.src for edge in made_by] == [action["id"]]
        decision = demo.contents([action["id"]])[action["id"]]["decision"]
        fired = [mark for mark in marks[:index] if mark["kind"] == "decision" and mark["fired"]]
        assert fired[-1]["id"] == f"entity:{decision}"
        assert marks[index - 1]["kind"] in ("decision", "policy_change")
        assert any(mark["kind"] == "prediction" for mark in marks[:index])
        assert all(point["at"] >= answer["since"] for line in answer["series"] for point in line["points"])


def test_the_demo_model_changes_are_the_versions_it_brought_in(
    demo: Reader, demo_run: tuple[Path, DemoResult]
) -> None:
    _, result = demo_run
    (versions,) = result.model_versions.values()
    marks = timeline(demo, "svc-01").to_dict()["marks"]
    changes = [mark for mark in marks if mark["kind"] == "model_change"]
    assert [mark["to"] for mark in changes] == [version for version, _ in versions]
    assert [mark["from"] for mark in changes] == [None, changes[0]["to"]]
    for mark, (_, since) in zip(changes, versions, strict=True):
        assert mark["at"] >= since.isoformat().replace("+00:00", "Z")
    models = demo.contents({mark["to"] for mark in changes})
    for mark in marks:
        if mark["kind"] == "prediction":
            assert mark["threshold"] == models[mark["model"]]["parameters"].get("threshold")
    assert {mark["threshold"] for mark in marks if mark["kind"] == "prediction"} - {None}


def test_an_operator_gets_no_restricted_rows(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'secret.db'}") as store:
        tracer = Tracer("ops", store=store, sync=True)
        chain = record_secret_chain(tracer)
        tracer.close()
        shown = timeline(Reader(store, Principal.token("o", "operator")), "svc-01")
        full = timeline(Reader(store, ADMIN), "svc-01")
    body = msgspec.json.encode(shown.to_dict())
    assert SECRET.encode() not in body
    assert shown.series == [] and "snapshot" not in {mark.kind for mark in shown.marks}
    assert shown.withheld == [
        {"kind": "snapshot", "id": node, "reason": "restricted"} for node in chain.snapshots
    ]
    assert "action" in {mark.kind for mark in shown.marks}
    assert [value for _, value, _ in full.series[0].points] == [90.0, 91.0] and full.withheld == []
