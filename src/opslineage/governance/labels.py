"""Sensitivity labels of records: ``public``, ``internal`` (the default) or ``restricted``.

A steward sets :class:`LabelRule` s (``opslineage label set``), which are recorded as ledgered
events (``aiops_label`` artifacts); a node's level is that of the most specific rule that matches
it, the newest of equally specific ones. :func:`rules_from_contents` turns the recorded contents
into rules, for the read path (redaction) and the ingest pipeline (encryption) alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_LEVEL",
    "LEVELS",
    "LabelRule",
    "clears",
    "level_of",
    "parse_level",
    "rules_from_contents",
]

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
    set_at: str | None = None
    set_by: str | None = None

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict, leaving out what the rule does not name."""
        fields = ("namespace", "level", "kind", "source", "set_at", "set_by")
        return {name: value for name in fields if (value := getattr(self, name)) is not None}

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


def rules_from_contents(contents: Iterable[dict[str, Any]]) -> list[LabelRule]:
    """The label rules recorded as ``aiops_label`` artifact contents (give them oldest first;
    :func:`level_of` lets the later of equally specific rules win).

    Contents that are not label facets (no ``namespace`` or no valid ``level``) are skipped: the
    ingest pipeline checked every recorded one against :class:`~opslineage.model.facets.LabelFacet`.
    """
    rules = []
    for content in contents:
        namespace, level = content.get("namespace"), content.get("level")
        if isinstance(namespace, str) and level in LEVELS:
            rules.append(
                LabelRule(
                    namespace,
                    level,
                    kind=content.get("kind"),
                    source=content.get("source"),
                    set_at=content.get("set_at"),
                    set_by=content.get("set_by"),
                )
            )
    return rules
