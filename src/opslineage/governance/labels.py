"""Sensitivity labels of records: ``public``, ``internal`` (the default) or ``restricted``.

A steward sets :class:`LabelRule` s (``opslineage label set``), which are recorded as ledgered
events; a node's level is that of the most specific rule that matches it, the newest of equally
specific ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFAULT_LEVEL", "LEVELS", "LabelRule", "clears", "level_of", "parse_level"]

LEVELS = ("public", "internal", "restricted")
"""The sensitivity levels, least sensitive first."""

DEFAULT_LEVEL = "internal"
"""The level of a node no rule matches."""


def parse_level(text: str) -> str:
    """``text`` as a level.

    Raises:
        ValueError: not one of :data:`LEVELS`.
    """
    if text not in LEVELS:
        raise ValueError(f"a label level must be one of {', '.join(LEVELS)}, not {text!r}")
    return text


def clears(clearance: str, level: str) -> bool:
    """Whether a principal cleared up to ``clearance`` (a level or ``none``) sees ``level``."""
    return clearance in LEVELS and LEVELS.index(level) <= LEVELS.index(clearance)


@dataclass(frozen=True, slots=True)
class LabelRule:
    """Records of ``namespace`` (and of node type ``kind``, and of telemetry ``source``, when
    given) are at ``level``.

    A source rule matches the source node itself and the snapshots taken of it (named
    ``snapshot/<source>``).
    """

    namespace: str
    level: str
    kind: str | None = None
    source: str | None = None

    def matches(self, namespace: str | None, node_type: str, name: str | None) -> bool:
        """Whether a node of ``namespace``, ``node_type`` and ``name`` falls under this rule."""
        if namespace != self.namespace or (self.kind is not None and node_type != self.kind):
            return False
        if self.source is None:
            return True
        return name == self.source if node_type == "source" else name == f"snapshot/{self.source}"

    @property
    def specificity(self) -> int:
        """How narrowly the rule names its records: a source outweighs a node type."""
        return (self.kind is not None) + 2 * (self.source is not None)


def level_of(rules: Iterable[LabelRule], namespace: str | None, node_type: str, name: str | None) -> str:
    """The level of a node: that of the most specific matching rule, the last given of equally
    specific ones (give rules oldest first), else :data:`DEFAULT_LEVEL`."""
    best: LabelRule | None = None
    for rule in rules:
        if rule.matches(namespace, node_type, name) and (
            best is None or rule.specificity >= best.specificity
        ):
            best = rule
    return best.level if best is not None else DEFAULT_LEVEL
