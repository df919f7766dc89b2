"""Retention by crypto-shredding, with legal holds.

Retention rules (``aiops_retention``) and holds (``aiops_hold``) are ledgered artifacts; this module
reads those in force and plans, per (namespace, UTC month) data-key scope, what a shred does:

- an artifact content sealed in the scope is *due* when the month has ended ``keep_days`` ago by
  the most specific rule (a ``kind`` rule outweighs the namespace's; the newest of equals wins),
  and no hold names it or its namespace;
- everything else sealed in the scope is *kept*: held or not yet due contents, and every event body
  (bodies hold the ids and edges that ``verify`` rebuilds the graph index from);
- the shred seals the kept records again under a fresh key of the scope, destroys the scope's old
  keys, and blanks the due contents to the shredded envelope, in one transaction.

Archived copies (segments) of due contents become unreadable with their key. A scope with a kept
record in a segment is not shredded (its key would take that record along); the plan says why.
Recording the shred as a ledgered event (``aiops_shred``) is the caller's (``retention apply``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from opslineage.store.base import Store
from opslineage.store.records import DataKeyRow, StoreError
from opslineage.store.sealing import (
    SHREDDED_PREFIX,
    artifact_aad,
    event_aad,
    key_of,
    open_payload,
    seal_payload,
)

__all__ = [
    "Hold",
    "RetentionRule",
    "ScopePlan",
    "apply_shred",
    "holds_from_contents",
    "holds_in_force",
    "plan_retention",
    "rules_from_contents",
    "rules_in_force",
]


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Contents of ``namespace`` (of node type ``kind`` when given) are kept ``keep_days`` days."""

    namespace: str
    keep_days: int
    kind: str | None = None
    set_at: str | None = None
    set_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, leaving out what the rule does not name."""
        fields = ("namespace", "kind", "keep_days", "set_at", "set_by")
        return {name: value for name in fields if (value := getattr(self, name)) is not None}


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold in force on ``node`` (an artifact's node id), or on all of ``namespace``."""

    namespace: str
    reason: str
    node: str | None = None
    set_at: str | None = None
    set_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, leaving out what the hold does not name."""
        fields = ("namespace", "node", "reason", "set_at", "set_by")
        return {name: value for name in fields if (value := getattr(self, name)) is not None}


def rules_from_contents(contents: Iterable[dict[str, Any]]) -> list[RetentionRule]:
    """The newest retention rule of each (namespace, kind) among recorded ``aiops_retention``
    contents (give them oldest first), oldest first."""
    rules: dict[tuple[str, str | None], RetentionRule] = {}
    for content in contents:
        namespace, days = content.get("namespace"), content.get("keep_days")
        if isinstance(namespace, str) and isinstance(days, int):
            rule = RetentionRule(
                namespace, days, content.get("kind"), content.get("set_at"), content.get("set_by")
            )
            rules.pop((namespace, rule.kind), None)
            rules[(namespace, rule.kind)] = rule
    return list(rules.values())


def holds_from_contents(contents: Iterable[dict[str, Any]]) -> list[Hold]:
    """The holds placed and not released since, among recorded ``aiops_hold`` contents (give
    them oldest first), oldest first."""
    holds: dict[tuple[str, str | None], Hold] = {}
    for content in contents:
        namespace = content.get("namespace")
        if not isinstance(namespace, str):
            continue
        scope = (namespace, content.get("node"))
        holds.pop(scope, None)
        if content.get("active", True):
            holds[scope] = Hold(
                namespace,
                str(content.get("reason", "")),
                scope[1],
                content.get("set_at"),
                content.get("set_by"),
            )
    return list(holds.values())


def rules_in_force(store: Store) -> list[RetentionRule]:
    """The retention rules in force in ``store`` (see :func:`rules_from_contents`)."""
    return rules_from_contents(store.artifact_contents("retention"))


def holds_in_force(store: Store) -> list[Hold]:
    """The holds in force in ``store`` (see :func:`holds_from_contents`)."""
    return holds_from_contents(store.artifact_contents("hold"))


def _month_end(period: str) -> datetime | None:
    try:
        start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (start + timedelta(days=32)).replace(day=1)


def _rule_for(rules: Iterable[RetentionRule], namespace: str, kind: str) -> RetentionRule | None:
    best = None
    for rule in rules:
        if (
            rule.namespace == namespace
            and rule.kind in (None, kind)
            and (best is None or rule.kind is not None)
        ):
            best = rule
    return best


@dataclass
class ScopePlan:
    """What a shred does to one (namespace, month) scope.

    Attributes:
        keys: the scope's live data keys, to destroy.
        due: digests of the contents to shred, with the rule that makes each due.
        due_keys: digest → the data key that seals it.
        held: digests of due-aged contents a hold keeps.
        kept_artifacts: (digest, sealed payload) of the contents to re-seal (held or not yet due).
        kept_events: (seq, digest, sealed body) of the event bodies to re-seal.
        archived_due: due contents in archive segments (unreadable once the key is gone).
        blocked: why the scope is not shredded (None: it is).
    """

    namespace: str
    period: str
    keys: list[str]
    due: dict[str, RetentionRule] = field(default_factory=dict)
    due_keys: dict[str, str] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    kept_artifacts: list[tuple[str, bytes]] = field(default_factory=list)
    kept_events: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    archived_due: list[str] = field(default_factory=list)
    blocked: str | None = None

    @property
    def rule(self) -> dict[str, Any]:
        """The rule of the due contents (the most lenient, when kinds differ)."""
        rules = sorted(self.due.values(), key=lambda rule: rule.keep_days)
        return rules[-1].to_dict() if rules else {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no payloads)."""
        return {
            "namespace": self.namespace,
            "period": self.period,
            "data_keys": self.keys,
            "artifacts": len(self.due),
            "archived": len(self.archived_due),
            "held": len(self.held),
            "kept": len(self.kept_artifacts) + len(self.kept_events),
            "rule": self.rule,
            "blocked": self.blocked,
        }


def plan_retention(store: Store, now: datetime) -> list[ScopePlan]:
    """The scopes with contents due for shredding at ``now``, each with what its shred does.

    Raises:
        StoreError: the store seals nothing, or its log leaves hold artifact contents (form 1).
    """
    if store.encryption() is None:
        raise StoreError(
            f"store {store.url} seals nothing: retention shreds by destroying data keys, so only sealed"
            " payloads can be shredded (make the store with `opslineage init --encrypt`)"
        )
    if store.leaf_form() == 1:
        raise StoreError(
            f"store {store.url} was made before schema 9: its log leaves hold artifact contents, so a"
            " shred would make verify fail; shred only in a store made since"
        )
    rules = rules_in_force(store)
    holds = holds_in_force(store)
    held_namespaces = {hold.namespace for hold in holds if hold.node is None}
    held_nodes = {hold.node for hold in holds if hold.node is not None}
    scopes: dict[tuple[str, str], list[str]] = {}
    for row in store.data_key_rows():
        if row.shredded_at is None:
            scopes.setdefault((row.namespace, row.period), []).append(row.key_id)
    plans = []
    for (namespace, period), keys in sorted(scopes.items()):
        end = _month_end(period)
        if end is None or namespace in held_namespaces or not any(r.namespace == namespace for r in rules):
            continue
        plan = _plan_scope(store, namespace, period, keys, end, now, rules, held_nodes)
        if plan.due or plan.archived_due:
            plans.append(plan)
    return plans


def _plan_scope(
    store: Store,
    namespace: str,
    period: str,
    keys: list[str],
    end: datetime,
    now: datetime,
    rules: list[RetentionRule],
    held_nodes: set[str],
) -> ScopePlan:
    plan = ScopePlan(namespace, period, keys)
    sealed = store.sealed_payloads(keys)
    for digest, kind, payload in sealed.artifacts:
        rule = _rule_for(rules, namespace, kind)
        if rule is None or end + timedelta(days=rule.keep_days) > now:
            plan.kept_artifacts.append((digest, payload))
        elif f"entity:{digest}" in held_nodes:
            plan.held.append(digest)
            plan.kept_artifacts.append((digest, payload))
        else:
            plan.due[digest] = rule
            plan.due_keys[digest] = key_of(payload) or ""
    plan.kept_events = list(sealed.events)
    archived_events, archived_artifacts = _archived(store, set(keys))
    for digest, kind in archived_artifacts:
        rule = _rule_for(rules, namespace, kind)
        if rule is None or end + timedelta(days=rule.keep_days) > now or f"entity:{digest}" in held_nodes:
            plan.blocked = f"artifact {digest}, to keep, is archived: the month's key stays"
        else:
            plan.archived_due.append(digest)
    if archived_events:
        plan.blocked = f"event {archived_events[0]}, to keep, is archived: the month's key stays"
    return plan


def _archived(store: Store, keys: set[str]) -> tuple[list[int], list[tuple[str, str]]]:
    """The archived event bodies (seqs) and contents (digest, type) sealed by ``keys``."""
    events: list[int] = []
    segments = store.segments()
    if not segments:
        return events, []
    archive = store.archive()
    found: list[str] = []
    for info in segments:
        segment = archive.segment(info.digest)
        events += [seq for seq in segment.header.seqs if key_of(segment.body(seq)) in keys]
        found += [digest for digest in segment.header.artifacts if key_of(segment.content(digest)) in keys]
    rows = store.artifact_rows(found)
    artifacts = [(digest, rows[digest][0] if digest in rows else "") for digest in found]
    return events, artifacts


def apply_shred(store: Store, plan: ScopePlan) -> None:
    """Do ``plan``'s shred in one transaction: re-seal the kept records under a fresh key of the
    scope, destroy the old keys, blank the due contents.

    Raises:
        StoreError: the plan is blocked, or a payload does not open (tampered, wrong KEK).
    """
    if plan.blocked is not None:
        raise StoreError(f"{plan.namespace} {plan.period} is not shredded: {plan.blocked}")
    keys = store.data_keys()
    fresh: DataKeyRow | None = None
    events: list[tuple[int, bytes]] = []
    artifacts: list[tuple[str, bytes]] = []
    if plan.kept_artifacts or plan.kept_events:
        kek = keys.kek()
        key_id = uuid.uuid4().hex
        data_key = AESGCM.generate_key(bit_length=256)
        created = datetime.now(UTC).isoformat(timespec="microseconds")
        wrapped = kek.wrap(key_id, plan.namespace, plan.period, data_key)
        fresh = DataKeyRow(key_id, plan.namespace, plan.period, wrapped, kek.id, created, None)
        cipher = AESGCM(data_key)
        for seq, event_digest, body in plan.kept_events:
            aad = event_aad(event_digest)
            plain = open_payload(keys, body, aad, f"event {seq}")
            events.append((seq, seal_payload(key_id, cipher, plain, aad)))
        for digest, content in plan.kept_artifacts:
            aad = artifact_aad(digest)
            plain = open_payload(keys, content, aad, f"artifact {digest}")
            artifacts.append((digest, seal_payload(key_id, cipher, plain, aad)))
    blanks = [(digest, SHREDDED_PREFIX + key.encode() + b'"}') for digest, key in plan.due_keys.items()]
    store.shred_scope(fresh, events, artifacts, plan.keys, blanks)
    keys.forget()
