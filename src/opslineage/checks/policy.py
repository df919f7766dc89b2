"""The policy layer of ``verify``: was each decision made by the policy version in force, does its
rule give the recorded verdict on the recorded inputs, and does every action follow from a fired
decision and do what it decided?"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from opslineage.checks.findings import LayerReport
from opslineage.checks.recorded import Artifact, Recorded, parse_time
from opslineage.model.policy_rule import evaluate

__all__ = ["check_policies", "policy_in_force"]

_LAYER = "policy"
_COPIED = ("policy", "policy_digest", "prediction", "model", "features")
"""What an action copies from its decision, and must copy exactly."""


def policy_in_force(recorded: Recorded, name: str, when: datetime) -> str | None:
    """The version of policy ``name`` registered last at or before ``when``."""
    newest: tuple[datetime, str] | None = None
    for version_id, (facet, _) in recorded.policies.items():
        if facet.get("name") != name:
            continue
        for registration in recorded.registered.get(version_id, []):
            if registration.at <= when and (newest is None or registration.at >= newest[0]):
                newest = (registration.at, version_id)
    return newest[1] if newest else None


def check_policies(recorded: Recorded, report: LayerReport, wanted: Callable[[Artifact], bool]) -> None:
    """Run the policy checks on every decision and action ``wanted`` keeps."""
    for decision in filter(wanted, recorded.of_type("decision")):
        _check_decision(recorded, report, decision)
    for action in filter(wanted, recorded.of_type("action")):
        _check_action(recorded, report, action)


def _check_decision(recorded: Recorded, report: LayerReport, decision: Artifact) -> None:
    content = decision.content
    policy_id = str(content.get("policy"))
    known = recorded.policies.get(policy_id)
    if not report.check(
        _LAYER, "policy_known", decision.id, known is not None, f"{policy_id} recorded", "absent"
    ):
        return
    assert known is not None
    policy, digest = known
    report.check(
        _LAYER,
        "policy_digest",
        decision.id,
        content.get("policy_digest") == digest,
        f"{policy_id}'s digest {digest}",
        str(content.get("policy_digest")),
    )
    when = parse_time(content.get("decided_at"))
    in_force = policy_in_force(recorded, str(policy.get("name")), when) if when else None
    report.check(
        _LAYER,
        "policy_in_force",
        decision.id,
        in_force == policy_id,
        f"{policy_id} in force at {content.get('decided_at')}",
        f"{in_force} was" if in_force else "no version of it was registered by then",
    )
    _reevaluate(recorded, report, decision, policy)


def _inputs(recorded: Recorded, decision: Artifact) -> tuple[dict[str, Any], str] | None:
    """What the rule was evaluated on: the feature values and the prediction's score, and its label."""
    prediction = recorded.artifacts.get(str(decision.content.get("prediction")))
    features = recorded.artifacts.get(str(decision.content.get("features")))
    if prediction is None or features is None:
        return None
    values = dict(features.content.get("values") or {})
    values["score"] = prediction.content.get("score")
    return values, str(prediction.content.get("label"))


def _reevaluate(recorded: Recorded, report: LayerReport, decision: Artifact, policy: dict[str, Any]) -> None:
    inputs = _inputs(recorded, decision)
    if inputs is None:
        return  # a missing prediction or feature set is the data layer's and why's finding
    content = decision.content
    try:
        verdict = evaluate(str(policy.get("rule")), dict(policy.get("thresholds") or {}), *inputs)
    except (ValueError, KeyError) as error:
        report.check(_LAYER, "rule_evaluates", decision.id, False, "a rule that evaluates", str(error))
        return
    held_back = content.get("held_back")
    expected = verdict.fired and not held_back
    report.check(
        _LAYER,
        "rule_reevaluated",
        decision.id,
        content.get("fired") == expected and (not held_back or verdict.fired),
        f"fired {expected}" + (f" (held back: {held_back})" if held_back else ""),
        f"fired {content.get('fired')}"
        + ("; the rule did not hold" if held_back and not verdict.fired else ""),
    )
    report.check(
        _LAYER,
        "breaches",
        decision.id,
        _breaches(content.get("breaches")) == _breaches(verdict.breaches),
        _text(verdict.breaches),
        _text(content.get("breaches")),
    )


def _breaches(breaches: Any) -> list[tuple[Any, ...]]:
    return sorted(
        (b.get("input"), b.get("op"), _number(b.get("value")), _number(b.get("threshold")))
        for b in breaches or []
        if isinstance(b, dict)
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _text(breaches: Any) -> str:
    items = [f"{i} {v:.6g} {op} {t:.6g}" for i, op, v, t in _breaches(breaches)]
    return "; ".join(items) or "no breach"


def _check_action(recorded: Recorded, report: LayerReport, action: Artifact) -> None:
    content = action.content
    decision = recorded.artifacts.get(str(content.get("decision")))
    fired = decision is not None and decision.type == "decision" and decision.content.get("fired") is True
    if not report.check(
        _LAYER,
        "follows_fired_decision",
        action.id,
        fired,
        f"a fired decision {content.get('decision')}",
        "absent" if decision is None else "a decision that did not fire",
    ):
        return
    assert decision is not None
    decided = decision.content
    expected = {
        "type": decided.get("action"),
        "target": decided.get("subject"),
        "params": decided.get("params") or {},
        **{key: decision.digest if key == "decision" else decided.get(key) for key in _COPIED},
    }
    found = {key: content.get(key) if key != "params" else content.get("params") or {} for key in expected}
    differs = sorted(key for key in expected if expected[key] != found[key])
    report.check(
        _LAYER,
        "matches_decision",
        action.id,
        not differs,
        "; ".join(f"{key} {expected[key]}" for key in differs) or "as decided",
        "; ".join(f"{key} {found[key]}" for key in differs) or "as decided",
    )
