"""Each judged check of ``verify --layers``: an inconsistency injected through the SDK, or as an
OpenLineage event a producer could send, is named with its layer and node, and nothing else is."""

from __future__ import annotations

import importlib
import linecache
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import T0, Chain, _mean_cpu, record_chain
from opslineage import Tracer, open_store
from opslineage.checks.findings import LAYERS, LayerReport
from opslineage.checks.rules import load_rules
from opslineage.checks.verify import verify_layers
from opslineage.demo.detector import RobustZModel, score
from opslineage.model import parse_event
from opslineage.model.events import content_digest
from opslineage.query import as_reader
from opslineage.sdk import Artifact, MemoryTransport
from opslineage.store import Store


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[Tracer, Chain, Store]]:
    """A correct chain recorded in memory (ingested into the store when judged)."""
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        yield tracer, chain, store


def _judge(tracer: Tracer, store: Store, **options: Any) -> LayerReport:
    transport = tracer.transport
    assert isinstance(transport, MemoryTransport)
    store.ingest([parse_event(event) for event in transport.events])
    return verify_layers(as_reader(store), LAYERS, **options)


def _named(report: LayerReport) -> set[tuple[str, str, str]]:
    return {(f.layer, f.check, f.node) for f in report.findings}


def _at(tracer: Tracer, when: datetime) -> None:
    clock = iter(when + timedelta(seconds=i) for i in range(1000))
    tracer.clock = lambda: next(clock)


def _reseal(tracer: Tracer, facet_key: str, change: Callable[[dict[str, Any]], None]) -> str:
    """Change the newest emitted facet ``facet_key`` as a producer could have sent it, with its
    content address recomputed; returns the new digest."""
    transport = tracer.transport
    assert isinstance(transport, MemoryTransport)
    for event in reversed(transport.events):
        for dataset in event.get("outputs", []):
            facets = dataset.get("facets", {})
            if facet_key in facets:
                change(facets[facet_key])
                digest = content_digest(facets[facet_key])
                facets["aiops_entity"]["digest"] = facets["version"]["datasetVersion"] = digest
                return digest
    raise AssertionError(f"no {facet_key} emitted")


def _model(tracer: Tracer) -> Any:
    return tracer.model("detector", "1", b"model bytes", "robust-z")


def test_a_correct_chain_has_no_finding(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, _, store = recorded
    report = _judge(tracer, store)
    assert report.ok, report.findings
    assert set(report.checked) == {"data", "model", "policy"} and all(report.checked.values())


def test_a_feature_set_citing_a_snapshot_of_another_source(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, chain, store = recorded
    _at(tracer, T0 + timedelta(hours=1))
    with tracer.ingest(tracer.source("svc-02")) as step:
        other = step.snapshot([[1.0]], {"cpu": "float"}, T0, T0 + timedelta(minutes=5))
    with tracer.features(_mean_cpu, [*chain.snapshots, other], subject="svc-01") as step:
        step.feature_set(
            _mean_cpu([{"cpu": v} for v in (90.0, 91.0, 92.0, 1.0)]), T0, T0 + timedelta(minutes=15)
        )
    digest = _reseal(tracer, "aiops_features", lambda facet: facet.update(sources=["source:test:svc-01"]))
    assert _named(_judge(tracer, store)) == {("data", "input_source", f"entity:{digest}")}


def test_a_prediction_from_the_future(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, chain, store = recorded
    _at(tracer, T0 + timedelta(hours=2))
    with tracer.features(_mean_cpu, chain.snapshots, subject="svc-01") as step:
        later = step.feature_set({"cpu_mean": 91.0}, T0, T0 + timedelta(minutes=15))
    _at(tracer, T0 + timedelta(hours=1))
    with tracer.inference(_model(tracer), later, subject="svc-01") as step:
        prediction = step.prediction(6.5, "anomaly")
    assert _named(_judge(tracer, store)) == {("data", "causal_order", f"entity:{prediction.digest}")}


def _transform_module(tmp_path: Path, body: str) -> Callable[..., Any]:
    """A transform in a module of its own, importable by name as a pipeline's would be."""
    (tmp_path / "pipeline_code.py").write_text(body)
    linecache.checkcache()
    importlib.invalidate_caches()
    sys.modules.pop("pipeline_code", None)
    if str(tmp_path) not in sys.path:
        sys.path.insert(0, str(tmp_path))
    return importlib.import_module("pipeline_code").features  # type: ignore[no-any-return]


@pytest.fixture
def transforms(tmp_path: Path) -> Iterator[Callable[[str], Callable[..., Any]]]:
    code = tmp_path / "code"
    code.mkdir()
    yield lambda body: _transform_module(code, body)
    sys.modules.pop("pipeline_code", None)
    sys.path.remove(str(code))


def _features_with(tracer: Tracer, chain: Chain, transform: Callable[..., Any], **options: Any) -> Artifact:
    _at(tracer, T0 + timedelta(hours=1))
    rows = [{"cpu": 90.0 + i} for i in range(3)]
    with tracer.features(transform, chain.snapshots, subject="svc-01", **options) as step:
        return step.feature_set(transform(rows), T0, T0 + timedelta(minutes=15))


def test_a_deterministic_transform_whose_code_changed_since(
    recorded: tuple[Tracer, Chain, Store], transforms: Callable[[str], Callable[..., Any]]
) -> None:
    tracer, chain, store = recorded
    original = transforms("def features(rows):\n    return {'n': float(len(rows))}\n")
    features = _features_with(tracer, chain, original)
    assert _judge(tracer, store).ok, "the same code gives the same output"
    transforms("def features(rows):\n    return {'n': float(len(rows)) * 2}  # edited\n")
    report = verify_layers(as_reader(store), LAYERS)
    assert _named(report) == {("data", "transform_code", f"entity:{features.digest}")}
    assert "code changed since recorded" in report.findings[0].found


def test_a_deterministic_transform_that_uses_randomness(
    recorded: tuple[Tracer, Chain, Store], transforms: Callable[[str], Callable[..., Any]]
) -> None:
    tracer, chain, store = recorded
    noisy = transforms("import random\n\ndef features(rows):\n    return {'n': random.random()}\n")
    features = _features_with(tracer, chain, noisy)
    assert _named(_judge(tracer, store)) == {("data", "transform_reexecuted", f"entity:{features.digest}")}


def test_a_stochastic_transform_is_listed_with_its_seed_not_failed(
    recorded: tuple[Tracer, Chain, Store], transforms: Callable[[str], Callable[..., Any]]
) -> None:
    tracer, chain, store = recorded
    noisy = transforms("import random\n\ndef features(rows):\n    return {'n': random.random()}\n")
    seeded = _features_with(tracer, chain, noisy, deterministic=False, seed=7)
    undeclared = _features_with(tracer, chain, noisy, deterministic=False)
    report = _judge(tracer, store)
    assert _named(report) == {("data", "stochastic_declared", f"entity:{undeclared.digest}")}
    assert report.stochastic == [
        {"node": f"entity:{seeded.digest}", "transform": "features", "seed": 7, "reason": None}
    ]


def test_a_model_digest_that_differs_from_the_registry(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, chain, store = recorded
    _at(tracer, T0 + timedelta(hours=1))
    with tracer.inference(_model(tracer), chain.features, subject="svc-01") as step:
        step.prediction(6.5, "anomaly")
    digest = _reseal(
        tracer, "aiops_prediction", lambda facet: facet.update(model_digest="sha256:" + "0" * 64)
    )
    assert _named(_judge(tracer, store)) == {("model", "model_digest", f"entity:{digest}")}


def test_a_prediction_the_recorded_model_scores_otherwise(tmp_path: Path) -> None:
    """A model that keeps its artifact and names its scorer is scored again (the demo's detector)."""
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    artifact = RobustZModel("m", "1", ["cpu_mean"], {"cpu_mean": 50.0}, {"cpu_mean": 10.0}).artifact_bytes()
    model = tracer.model(
        "m", "1", artifact, "robust-z", scorer="opslineage.demo.detector:score", keep_artifact=True
    )
    _at(tracer, T0 + timedelta(hours=1))
    tracer.register_model(model, approver="mlops:bob")
    right, label = score(artifact, {"cpu_mean": 91.0})
    predictions = []
    for value in (right, right + 1):
        with tracer.inference(model, chain.features, subject="svc-01") as step:
            predictions.append(step.prediction(value, label))
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        report = _judge(tracer, store)
    assert _named(report) == {("model", "rescored", f"entity:{predictions[1].digest}")}, report.findings


def test_a_decision_by_a_superseded_policy_version(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, chain, store = recorded
    first = _policy(tracer, "1")
    _at(tracer, T0 + timedelta(hours=1))
    tracer.register_policy(_policy(tracer, "2"), approver="alice")
    with tracer.evaluate(first, chain.prediction, subject="svc-01") as step:
        decision = step.decide(True, "fired", _breach(85.0))
    assert _named(_judge(tracer, store)) == {("policy", "policy_in_force", f"entity:{decision.digest}")}


def _policy(tracer: Tracer, version: str, **options: Any) -> Any:
    settings: dict[str, Any] = {"action": "scale_out", "params": {"replicas": 2}, "risk_class": "medium"}
    settings.update(options)
    return tracer.policy(
        "cpu-guard", version, rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 85.0}, **settings
    )


def _breach(threshold: float) -> list[dict[str, Any]]:
    return [{"input": "cpu_mean", "value": 91.0, "op": ">", "threshold": threshold}]


def test_a_recorded_breach_the_rule_does_not_produce(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, chain, store = recorded
    _at(tracer, T0 + timedelta(hours=1))
    with tracer.evaluate(_policy(tracer, "1"), chain.prediction, subject="svc-01") as step:
        decision = step.decide(True, "fired", _breach(80.0))
    assert _named(_judge(tracer, store)) == {("policy", "breaches", f"entity:{decision.digest}")}


def test_a_verdict_the_rule_does_not_give(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, chain, store = recorded
    _at(tracer, T0 + timedelta(hours=1))
    with tracer.evaluate(_policy(tracer, "1"), chain.prediction, subject="svc-01") as step:
        wrong = step.decide(False, "claims the rule did not hold", _breach(85.0))
        held = step.decide(False, "held back", _breach(85.0), held_back="a cooldown")
    assert held.digest != wrong.digest
    assert _named(_judge(tracer, store)) == {("policy", "rule_reevaluated", f"entity:{wrong.digest}")}


def test_an_action_whose_parameters_differ_from_its_decision(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, chain, store = recorded
    _at(tracer, T0 + timedelta(hours=1))
    with tracer.action(
        "scale_out", target="svc-01", params={"replicas": 5}, decision=chain.decision
    ) as action:
        pass
    assert action.record is not None
    report = _judge(tracer, store)
    assert _named(report) == {("policy", "matches_decision", f"entity:{action.record.digest}")}
    assert report.findings[0].expected == "params {'replicas': 2}"


RULES = """
name = "prod-governance"

[roles]
operator = ["oncall:alice"]

[[rule]]
id = "high-risk-needs-approver"
require = "approver"
risk_class = "high"
"""


def test_a_high_risk_action_with_no_approver_under_a_rules_file(
    recorded: tuple[Tracer, Chain, Store], tmp_path: Path
) -> None:
    tracer, chain, store = recorded
    risky = _policy(tracer, "risky", risk_class="high")
    _at(tracer, T0 + timedelta(hours=1))
    tracer.register_policy(risky, approver="alice")
    with tracer.evaluate(risky, chain.prediction, subject="svc-01") as step:
        decision = step.decide(True, "fired", _breach(85.0))
    with tracer.action("scale_out", target="svc-01", params={"replicas": 2}, decision=decision) as unapproved:
        pass
    with tracer.action(
        "scale_out", target="svc-01", params={"replicas": 2}, decision=decision, approver="bob"
    ):
        pass
    assert unapproved.record is not None
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    report = _judge(tracer, store, rules=load_rules(rules))
    assert _named(report) == {
        ("policy", "rule:high-risk-needs-approver", f"entity:{unapproved.record.digest}")
    }
    assert _judge(tracer, store).ok, "without --rules and none registered, no governance rule applies"


def test_a_schema_change_that_is_not_recorded(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, _, store = recorded
    _at(tracer, T0 + timedelta(hours=1))
    with tracer.ingest(tracer.source("svc-01", owner="team-a")) as step:
        step.snapshot([[1.0, 2.0]], {"cpu": "float", "mem": "float"}, T0, T0 + timedelta(minutes=5))
    digest = _reseal(
        tracer,
        "aiops_snapshot",
        lambda facet: facet.update(schema_change_from=None, previous_schema_fingerprint=None),
    )
    assert _named(_judge(tracer, store)) == {("data", "schema_change_recorded", f"entity:{digest}")}


def test_a_feature_set_whose_window_leaves_out_an_input(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, chain, store = recorded
    _at(tracer, T0 + timedelta(hours=1))
    with tracer.features(_mean_cpu, chain.snapshots, subject="svc-01") as step:
        narrow = step.feature_set({"cpu_mean": 91.0}, T0, T0 + timedelta(minutes=10))
    assert _named(_judge(tracer, store)) == {("data", "input_in_window", f"entity:{narrow.digest}")}


def test_an_action_on_a_decision_that_did_not_fire(recorded: tuple[Tracer, Chain, Store]) -> None:
    tracer, chain, store = recorded
    _at(tracer, T0 + timedelta(hours=1))
    with tracer.evaluate(_policy(tracer, "1"), chain.prediction, subject="svc-01") as step:
        held = step.decide(False, "held back", _breach(85.0), held_back="a cooldown")
    with tracer.action("scale_out", target="svc-01", params={"replicas": 2}, decision=held) as action:
        pass
    assert action.record is not None
    report = _judge(tracer, store)
    assert _named(report) == {("policy", "follows_fired_decision", f"entity:{action.record.digest}")}
