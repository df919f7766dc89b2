"""The ingest pipeline's seal policy: which payloads of a store that seals ``restricted`` records
are sealed, decided at ingest from the label rules in force (:func:`~opslineage.governance.rules_from_contents`).

An event's body is sealed when any node it names is restricted (under the event's namespace, see
:func:`~opslineage.store.sealing.event_namespace`); an artifact's content when its own node is
(under that node's namespace). The rules are those stored before the write: a label set in the
same batch binds the next one.
"""

from __future__ import annotations

from collections.abc import Sequence

from opslineage.governance import LabelRule, level_of, rules_from_contents
from opslineage.model import ParsedEvent
from opslineage.store import Store
from opslineage.store.sealing import EventSeal, event_namespace

__all__ = ["LabelSealPolicy"]

_RESTRICTED = "restricted"


class LabelSealPolicy:
    """Seals the restricted records of ``store``'s writes; the rules are read again only when
    the log has grown."""

    def __init__(self, store: Store) -> None:
        """Decide for writes into ``store``."""
        self._store = store
        self._size = -1
        self._rules: tuple[LabelRule, ...] = ()

    def _rules_in_force(self) -> tuple[LabelRule, ...]:
        size = self._store.log_size()
        if size != self._size:
            self._rules = tuple(rules_from_contents(self._store.artifact_contents("label", size)))
            self._size = size
        return self._rules

    def __call__(self, events: Sequence[ParsedEvent]) -> list[EventSeal]:
        """One decision per event of a write."""
        rules = self._rules_in_force()
        if not any(rule.level == _RESTRICTED for rule in rules):
            return [EventSeal() for _ in events]
        decisions = []
        for event in events:
            restricted = [
                node
                for node in event.nodes
                if level_of(rules, node.namespace, node.type, node.name) == _RESTRICTED
            ]
            artifacts = {
                node.digest: node.namespace or event_namespace(event)
                for node in restricted
                if node.digest in event.artifacts
            }
            decisions.append(EventSeal(event_namespace(event) if restricted else None, artifacts))
        return decisions
