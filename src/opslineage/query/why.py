"""``why(action)``: the structured causal chain behind one remediation, and what it did.

effect ← action ← decision (policy, rule, breach) ← prediction (model) ← feature set (transform,
code version) ← snapshots (window, schema fingerprint) ← sources.

The chain follows the content-addressed references each artifact holds (an action record names
its decision's digest, a decision its prediction's …), as the facet registry declares them
(:class:`~opslineage.model.registry.Ref` with ``why``), so what it shows is exactly what was
recorded; a link that is not in the store (or not yet, ``as_of``) is listed in ``missing``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from opslineage.model.ids import KINDS
from opslineage.model.registry import why_depth, why_refs
from opslineage.query.lineage import NotFound, resolve_node
from opslineage.store import Horizon, NodeRecord, Store, Walk

__all__ = ["WhyChain", "chain_links", "why"]

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
    records: dict[str, NodeRecord] = field(default_factory=dict, repr=False, compare=False)
    """The node of each link by id (not part of :meth:`to_dict`): what the read path labels it by."""

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


def chain_links(chain: WhyChain) -> Iterator[dict[str, Any]]:
    """Every link of ``chain``: the single ones, then the snapshots, sources and effects."""
    for name in ("action", "decision", "policy", "prediction", "model", "features"):
        link = getattr(chain, name)
        if link is not None:
            yield link
    yield from (*chain.snapshots, *chain.sources, *chain.effects)


_ONE = {
    "action": "action",
    "decision": "decision",
    "policy": "policy",
    "prediction": "prediction",
    "model": "model",
    "feature": "features",
}
_MANY = {"snapshot": "snapshots", "source": "sources"}
_IN_PROCESS = ("sqlite:",)  # store URLs whose reads are function calls, not round trips


class _Chain:
    """The nodes of one chain with their content, fetched a set at a time."""

    def __init__(self, store: Store, as_of: Horizon) -> None:
        self.store = store
        self.as_of = as_of
        self.asked: set[str] = set()
        self.found: dict[str, tuple[NodeRecord, bytes | None]] = {}
        self._links: dict[str, tuple[dict[str, Any] | None, list[str]]] = {}

    def fetch(self, ids: list[str]) -> None:
        """Fetch, in one round trip, the content of those of ``ids`` not asked for yet."""
        wanted = [node_id for node_id in dict.fromkeys(ids) if node_id not in self.asked]
        if wanted:
            self.asked.update(wanted)
            self.found.update(self.store.nodes_with_content(wanted, self.as_of))

    def link(self, node_id: str) -> dict[str, Any] | None:
        """The link of a fetched node; None when it is absent or only referenced (no content)."""
        return self._linked(node_id)[0]

    def _linked(self, node_id: str) -> tuple[dict[str, Any] | None, list[str]]:
        """A fetched node's link and the ids ``why`` follows from it, decoded once."""
        known = self._links.get(node_id)
        if known is None:
            record, content = self.found.get(node_id, (None, None))
            if record is None or (record.digest and content is None):
                known = (None, [])
            else:
                link = _link(record, _decode(content) if content is not None else None)
                known = (link, _why_refs(record.type, link))
            self._links[node_id] = known
        return known

    def follow(self, start: str, *, lookahead: bool) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Every link ``why`` reaches from ``start`` over the registry's references, in the order
        reached (breadth first), and the ids it could not find.

        Each level's nodes not fetched yet are fetched in one round trip. With ``lookahead``, the
        nodes named by everything already fetched (a prefetch) are fetched first, in one.
        """
        if lookahead:
            self.fetch([ref for node_id in list(self.found) for ref in self._linked(node_id)[1]])
        links: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        level, seen = [start], {start}
        while level:
            self.fetch(level)
            following: list[str] = []
            for node_id in level:
                link, refs = self._linked(node_id)
                if link is None:
                    missing.append(node_id)  # never recorded, or only referenced: its content is absent
                    continue
                links[node_id] = link
                for ref_id in refs:
                    if ref_id not in seen:
                        seen.add(ref_id)
                        following.append(ref_id)
            level = following
        return links, missing


def _why_refs(node_type: str, link: dict[str, Any]) -> list[str]:
    """The ids the registry says ``why`` follows from a node of this type, in declared order."""
    ids: list[str] = []
    for ref in why_refs(node_type):
        values = link.get(ref.field)
        if isinstance(values, str):
            ids.append(ref.node_id(values))
        elif values:
            ids += [ref.node_id(value) for value in values if isinstance(value, str)]
    return ids


def _link(record: NodeRecord, content: dict[str, Any] | None) -> dict[str, Any]:
    link: dict[str, Any] = {"id": record.id}
    if record.digest:
        link["digest"] = record.digest
    if content is not None:
        link.update(content)
    return link


def why(store: Store, node_id: str, as_of: Horizon = None) -> WhyChain:
    """The causal chain behind an action (its run id or record id) or a decision.

    The chain is arranged in memory from the references the facet registry declares, fetching
    a set of nodes at a time. Against a store across the network, two walks prefetch it: one
    down from the action (its record, effects and their runs) and one up from the record over
    the artifacts it was derived from, as deep as the registry's references reach; then one
    query fetches all their contents and one more the versions and sources they name. An
    in-process store (SQLite) answers point lookups faster than walks, so it is asked one
    level of references at a time.

    Raises:
        NotFound: no such node, or it is neither an action nor a decision.
    """
    root = resolve_node(store, node_id, as_of)
    chain = _Chain(store, as_of)
    prefetch = _by_edges if getattr(store, "url", "").startswith(_IN_PROCESS) else _by_walks
    start, derived, runs = prefetch(store, chain, root)
    start_type = chain.found[start][0].type if start in chain.found else None
    if root.kind == "run" and (start_type != "action" or chain.link(start) is None):
        raise NotFound(f"{root.id} is a {root.type} run that recorded no action")
    links, missing = chain.follow(start, lookahead=prefetch is _by_walks)
    action = links.get(start) if start_type == "action" else None
    if action is None and start_type != "decision":
        raise NotFound(f"{root.id} is a {root.type}, not an action or a decision")
    answer = WhyChain(None, None, None, None, None, None, missing=missing)
    for link in links.values():
        node_type = chain.found[link["id"]][0].type
        if node_type in _MANY:
            getattr(answer, _MANY[node_type]).append(link)
        elif node_type in _ONE and getattr(answer, _ONE[node_type]) is None:
            setattr(answer, _ONE[node_type], link)
    answer.sources.sort(key=lambda link: link["id"])
    if action is not None:
        answer.effects = [
            link
            for link in map(chain.link, derived)
            if link is not None and chain.found[link["id"]][0].type == "effect"
        ]
    answer.records = {link["id"]: chain.found[link["id"]][0] for link in chain_links(answer)}
    _attach_runs(
        store,
        [
            answer.action,
            answer.decision,
            answer.prediction,
            answer.features,
            *answer.snapshots,
            *answer.effects,
        ],
        runs,
        as_of,
    )
    return answer


def _by_edges(store: Store, chain: _Chain, root: NodeRecord) -> tuple[str, list[str], dict[str, str]]:
    """The chain's start, the artifacts derived from it, and no runs yet, by point lookups."""
    if root.kind == "entity" and root.type in ("decision", "action"):
        start = root.id
    elif root.kind == "run":
        generated = store.edges([root.id], direction="down", kinds=["wasGeneratedBy"], as_of=chain.as_of)
        start = _action_of(chain, root, [src for src, *_ in generated])
    else:
        raise NotFound(f"{root.id} is a {root.type}, not an action or a decision")
    derived = []
    if root.type != "decision":
        below = store.edges([start], direction="down", kinds=["wasDerivedFrom"], as_of=chain.as_of)
        derived = [src for src, *_ in below]
    chain.fetch([start, *derived])
    return start, derived, {}


def _by_walks(store: Store, chain: _Chain, root: NodeRecord) -> tuple[str, list[str], dict[str, str]]:
    """The chain's start, the artifacts derived from it and the runs of what the walks reached,
    with the chain's artifacts prefetched: two walks and one query."""
    depth = why_depth(root.type if root.kind == "entity" else "action")
    if root.kind == "entity" and root.type == "decision":
        start, below = root.id, Walk()
    elif root.kind == "entity" and root.type == "action":
        start, below = root.id, store.walk(root.id, direction="down", depth=2, as_of=chain.as_of)
    elif root.kind == "run":
        below = store.walk(root.id, direction="down", depth=3, as_of=chain.as_of)
        generated = [src for src, dst, kind, _ in below.edges if dst == root.id and kind == "wasGeneratedBy"]
        start = _action_of(chain, root, generated)
    else:
        raise NotFound(f"{root.id} is a {root.type}, not an action or a decision")
    above = store.walk(
        start,
        direction="up",
        depth=depth + 1,  # one more: the runs of the farthest artifacts
        as_of=chain.as_of,
        stop_kinds=[kind for kind in KINDS if kind != "entity"],
    )
    runs = {src: dst for src, dst, kind, _ in [*below.edges, *above.edges] if kind == "wasGeneratedBy"}
    derived = [src for src, dst, kind, _ in below.edges if dst == start and kind == "wasDerivedFrom"]
    chain.fetch(
        [start, *derived, *(i for i, d in above.depths.items() if d <= depth and i.startswith("entity:"))]
    )
    return start, derived, runs


def _action_of(chain: _Chain, root: NodeRecord, generated: list[str]) -> str:
    """The action record among what a run generated (the one there is, or the first of type action)."""
    if len(generated) > 1:  # which one is the action record needs their types first
        chain.fetch(generated)
        generated = [i for i in generated if i in chain.found and chain.found[i][0].type == "action"]
    if not generated:
        raise NotFound(f"{root.id} is a {root.type} run that recorded no action")
    return generated[0]


def _attach_runs(
    store: Store, links: list[dict[str, Any] | None], runs: dict[str, str], as_of: Horizon
) -> None:
    """Add to each artifact link the run that generated it (from the walks, or asked for)."""
    present = [link for link in links if link is not None]
    unknown = [link["id"] for link in present if link["id"] not in runs]
    if unknown:
        generated = store.edges(unknown, direction="up", kinds=["wasGeneratedBy"], as_of=as_of)
        runs.update((src, dst) for src, dst, _, _ in generated)
    for link in present:
        if link["id"] in runs:
            link["run"] = runs[link["id"]]
