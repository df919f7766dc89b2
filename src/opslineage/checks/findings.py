"""What a verification found: findings, each naming its layer, check and node, and the tally of
checks run per layer, from which quality's correctness figures come."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JUDGED_LAYERS", "LAYERS", "Finding", "LayerReport"]

LAYERS = ("integrity", "data", "model", "policy")
"""Every layer ``verify --layers`` knows, in the order it runs them."""
JUDGED_LAYERS = LAYERS[1:]
"""The layers that judge what the lineage says, not only that its bytes are unchanged."""


@dataclass(frozen=True)
class Finding:
    """One check that did not hold.

    Attributes:
        layer: ``integrity``, ``data``, ``model`` or ``policy``.
        check: which check, e.g. ``input_in_window`` or ``rule:high-risk-needs-approver``.
        node: the id of the node it is about.
        expected: what the check expected.
        found: what it found instead.
    """

    layer: str
    check: str
    node: str
    expected: str
    found: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {
            "layer": self.layer,
            "check": self.check,
            "node": self.node,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass
class LayerReport:
    """The findings of the judged layers, how many checks each layer ran and passed, and the
    transforms that declared themselves stochastic (listed, not failed)."""

    findings: list[Finding] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    stochastic: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed."""
        return not self.findings

    def check(self, layer: str, check: str, node: str, holds: bool, expected: str, found: str) -> bool:
        """Count one check; record a finding when it does not hold. Returns ``holds``."""
        self.checked[layer] += 1
        if not holds:
            self.failed[layer] += 1
            self.findings.append(Finding(layer, check, node, expected, found))
        return holds

    def add_integrity(self, checked: int, findings: Iterable[tuple[int, str]]) -> None:
        """Count the integrity layer in: ``checked`` events, and its findings (sequence number,
        what differs), each named as a finding on ``seq N``."""
        self.checked["integrity"] += checked
        for seq, what in findings:
            self.failed["integrity"] += 1
            self.findings.append(Finding("integrity", "log", f"seq {seq}", "as the log recorded it", what))

    def correctness(self) -> dict[str, tuple[int, int]]:
        """Per layer: how many of its checks passed, and how many ran."""
        return {
            layer: (self.checked[layer] - self.failed[layer], self.checked[layer]) for layer in self.checked
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "checks": {
                layer: {"run": total, "passed": passed}
                for layer, (passed, total) in self.correctness().items()
            },
            "findings": [finding.to_dict() for finding in self.findings],
            "stochastic": self.stochastic,
        }
