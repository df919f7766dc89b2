"""The rule of a remediation policy (``aiops_policy``'s ``rule``) and how it is evaluated.

A rule is a conjunction of conditions ``input op {threshold}`` joined by `` and ``; the names in
braces are the policy's thresholds, the inputs are the feature set's values and the prediction's
``score``, and the rule fires only on a prediction labelled ``anomaly``. Pipelines evaluate a
policy with it, and ``verify`` evaluates the recorded rule again on the recorded inputs.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Condition", "Evaluation", "Rule", "evaluate"]

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_CONDITION = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(>=|<=|>|<)\s*\{([a-z_][a-z0-9_]*)\}\s*$")


@dataclass(frozen=True)
class Condition:
    """``input op threshold``: one clause of a rule."""

    input: str
    op: str
    threshold: str


@dataclass(frozen=True)
class Rule:
    """A conjunction of conditions over named inputs, written ``a > {t1} and b >= {t2}``; the
    names in braces are the policy's thresholds. The anomaly label must be set for it to fire."""

    text: str

    @property
    def conditions(self) -> list[Condition]:
        """The parsed clauses."""
        clauses = []
        for part in self.text.split(" and "):
            match = _CONDITION.match(part)
            if match is None:
                raise ValueError(f"rule clause {part!r} is not of the form 'input > {{threshold}}'")
            clauses.append(Condition(*match.groups()))
        return clauses


@dataclass(frozen=True)
class Evaluation:
    """What a rule said about one set of inputs."""

    fired: bool
    breaches: list[dict[str, Any]]
    rationale: str


def evaluate(rule: str, thresholds: dict[str, float], inputs: dict[str, float], label: str) -> Evaluation:
    """Evaluate a rule: it fires when the prediction is an anomaly and every condition holds."""
    breaches, held, failed = [], [], []
    for condition in Rule(rule).conditions:
        value, threshold = inputs.get(condition.input), thresholds[condition.threshold]
        text = f"{condition.input} {_fmt(value)} {condition.op} {_fmt(threshold)}"
        if value is not None and _OPS[condition.op](value, threshold):
            breaches.append(
                {"input": condition.input, "value": value, "op": condition.op, "threshold": threshold}
            )
            held.append(text)
        else:
            failed.append(f"not {text}" if value is not None else f"{condition.input} not measured")
    if label != "anomaly":
        return Evaluation(False, breaches, "prediction is normal")
    if failed:
        return Evaluation(False, breaches, "anomaly, but " + "; ".join(failed))
    return Evaluation(True, breaches, "anomaly and " + "; ".join(held))


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"
