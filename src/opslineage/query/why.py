"""``why(action)``: the structured causal chain behind one remediation, and what it did.

effect ← action ← decision (policy, rule, breach) ← prediction (model) ← feature set (transform,
code version) ← snapshots (window, schema fingerprint) ← sources.

The chain follows the content-addressed references each artifact holds (an action record names
its decision's digest, a decision its prediction's …), so what it shows is exactly what was
recorded; a link that is not in the store (or not yet, ``as_of``) is listed in ``missing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from opslineage.query.lineage import NotFound, resolve_node
from opslineage.store import NodeRecord, Store

__all__ = ["WhyChain", "why"]

_decode = msgspec.json.decode


@dataclass
class WhyChain:
    """The answer to "why did this happen, and did it help?" for one action or decision.

    Each link is a dict with the node's ``id``, ``digest`` and its recorded content; ``run`` is
    the run that generated it. ``action`` is None when the question was about a decision that
    did not fire.
    """

    action: dict[str, Any] | None
    decision: dict[str, Any] | None
    policy: dict[str, Any] | None
    prediction: dict[str, Any] | None
    model: dict[str, Any] | None
    features: dict[str, Any] | None
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    effects: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every link from the decision down to registered sources is in the store."""
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "complete": self.complete,
            "action": self.action,
            "effects": self.effects,
            "decision": self.decision,
            "policy": self.policy,
            "prediction": self.prediction,
            "model": self.model,
            "features": self.features,
            "snapshots": self.snapshots,
            "sources": self.sources,
            "missing": self.missing,
        }


class _Chain:
    """Loads the links of one chain level by level, one round trip per level."""

    def __init__(self, store: Store, as_of: int | None) -> None:
        self.store = store
        self.as_of = as_of
        self.missing: list[str] = []

    def load(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Links by id, in the order asked; ids not in the store are noted as missing."""
        found = self.store.nodes_with_content(ids, self.as_of)
        links = {}
        for node_id in ids:
            record, content = found.get(node_id, (None, None))
            if record is None or (record.digest and content is None):
                self.missing.append(node_id)  # never recorded, or only referenced: its content is absent
                continue
            links[node_id] = _link(record, _decode(content) if content is not None else None)
        return links

    def one(self, node_id: str | None) -> dict[str, Any] | None:
        return self.load([node_id]).get(node_id) if node_id else None


def _link(record: NodeRecord, content: dict[str, Any] | None) -> dict[str, Any]:
    link: dict[str, Any] = {"id": record.id}
    if record.digest:
        link["digest"] = record.digest
    if content is not None:
        link.update(content)
    return link


def why(store: Store, node_id: str, as_of: int | None = None) -> WhyChain:
    """The causal chain behind an action (its run id or record id) or a decision.

    Raises:
        NotFound: no such node, or it is neither an action nor a decision.
    """
    root = resolve_node(store, node_id, as_of)
    chain = _Chain(store, as_of)
    action_link = _action_record(store, chain, root)
    if action_link is not None:
        decision_id = "entity:" + action_link["decision"]
    elif root.type == "decision" and root.kind == "entity":
        action_link, decision_id = None, root.id
    else:
        raise NotFound(f"{root.id} is a {root.type}, not an action or a decision")
    decision = chain.one(decision_id)
    if decision is None:
        return WhyChain(action_link, None, None, None, None, None, missing=chain.missing)
    prediction_id = "entity:" + decision["prediction"]
    level = chain.load([decision["policy"], prediction_id])
    policy, prediction = level.get(decision["policy"]), level.get(prediction_id)
    model = features = None
    if prediction is not None:
        features_id = "entity:" + prediction["features"]
        level = chain.load([prediction["model"], features_id])
        model, features = level.get(prediction["model"]), level.get(features_id)
    snapshots = (
        list(chain.load(["entity:" + digest for digest in features["inputs"]]).values()) if features else []
    )
    sources = list(chain.load(sorted({snapshot["source"] for snapshot in snapshots})).values())
    effects = _effects(store, action_link["id"], as_of) if action_link is not None else []
    _attach_runs(store, [action_link, decision, prediction, features, *snapshots, *effects], as_of)
    return WhyChain(
        action_link, decision, policy, prediction, model, features, snapshots, sources, effects, chain.missing
    )


def _action_record(store: Store, chain: _Chain, root: NodeRecord) -> dict[str, Any] | None:
    """The action record (as a link) an action run generated, or the root itself when it is one."""
    if root.kind == "entity" and root.type == "action":
        return chain.one(root.id)
    if root.kind != "run":
        return None
    generated = store.edges([root.id], direction="down", kinds=["wasGeneratedBy"], as_of=chain.as_of)
    found = store.nodes_with_content([src for src, *_ in generated], chain.as_of)
    actions = [
        _link(record, _decode(content))
        for record, content in found.values()
        if record.type == "action" and content is not None
    ]
    if not actions:
        raise NotFound(f"{root.id} is a {root.type} run that recorded no action")
    return actions[0]


def _effects(store: Store, action_id: str, as_of: int | None) -> list[dict[str, Any]]:
    derived = store.edges([action_id], direction="down", kinds=["wasDerivedFrom"], as_of=as_of)
    found = store.nodes_with_content([src for src, *_ in derived], as_of)
    return [
        _link(record, _decode(content))
        for record, content in found.values()
        if record.type == "effect" and content is not None
    ]


def _attach_runs(store: Store, links: list[dict[str, Any] | None], as_of: int | None) -> None:
    """Add to each artifact link the run that generated it."""
    present = [link for link in links if link is not None]
    generated = store.edges(
        [link["id"] for link in present], direction="up", kinds=["wasGeneratedBy"], as_of=as_of
    )
    runs = {src: dst for src, dst, _, _ in generated}
    for link in present:
        if link["id"] in runs:
            link["run"] = runs[link["id"]]
