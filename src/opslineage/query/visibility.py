"""What a principal may see of each node: the label rules and ownership entries in force, and the
redaction of payloads a principal is not cleared for.

A principal that does not clear a node's level (:meth:`~opslineage.governance.Principal.sees_level`),
or whose namespaces do not cover it (:meth:`~opslineage.governance.Principal.covers`), still sees
the node's id, kind, type, digest, naming columns and edges; its payload (an artifact's content,
the facets of the datasets, runs and jobs that carry it) is replaced by :func:`marker`, naming the
label (or ``namespace``). The :class:`~opslineage.query.Reader` applies it, once, to every read
that returns payloads.

The rules and entries in force are read from the ``label`` and ``owners`` artifacts and kept per
store until its log grows (:func:`governance_of`).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opslineage.governance import (
    LEVELS,
    LabelRule,
    Ownership,
    Principal,
    level_of,
    owners_from_contents,
    owners_of,
    rules_from_contents,
)
from opslineage.governance.owners import in_force
from opslineage.model.registry import dataset_plan, type_of_node
from opslineage.store import NodeRecord, Store

if TYPE_CHECKING:
    from opslineage.query.reader import Reader

__all__ = [
    "KEPT_FACETS",
    "Governance",
    "Visibility",
    "governance_of",
    "label_rules",
    "marker",
    "ownership_scope",
]

KEPT_FACETS = {
    "dataset": frozenset({"aiops_entity", "version"}),
    "run": frozenset({"parent", "aiops_agents", "nominalTime"}),
    "job": frozenset({"jobType"}),
}
"""The facets a redacted dataset, run or job keeps: those that only name it, its version or its
place in the graph. Every other facet (content, schema, code, SQL, error messages and stack
traces, any producer's own) is replaced by :func:`marker`."""


def marker(reason: str) -> dict[str, str]:
    """What stands in for a withheld payload: ``{"redacted": reason}`` (a level, or ``namespace``)."""
    return {"redacted": reason}


@dataclass(frozen=True)
class Governance:
    """The label rules (oldest first) and the ownership entries in force, as of ``log_size`` events."""

    log_size: int
    rules: tuple[LabelRule, ...] = ()
    owners: dict[tuple[str, str, str | None], Ownership] = field(default_factory=dict)


_CACHE: weakref.WeakKeyDictionary[Store, Governance] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def governance_of(store: Store) -> Governance:
    """The rules and entries in force in ``store``, read anew only when its log has grown.

    Read straight from the store, for no principal: what is in force binds every reader, whoever
    may see the label artifacts themselves.
    """
    size = store.log_size()
    with _CACHE_LOCK:
        known = _CACHE.get(store)
    if known is not None and known.log_size == size:
        return known
    found = Governance(
        size,
        tuple(rules_from_contents(_contents(store, "label", size))),
        in_force(owners_from_contents(_contents(store, "owners", size))),
    )
    with _CACHE_LOCK:
        _CACHE[store] = found
    return found


def _contents(store: Store, node_type: str, as_of: int) -> list[dict[str, Any]]:
    """The contents of every artifact of ``node_type``, in the order recorded."""
    return store.artifact_contents(node_type, as_of)


def label_rules(source: Reader | Store) -> list[LabelRule]:
    """The label rules in force, oldest first: from a store directly, or through a reader (an
    audited read that needs ``lineage:read``)."""
    if isinstance(source, Store):
        return list(governance_of(source).rules)
    return source.label_rules()


def ownership_scope(record: NodeRecord, job: str | None = None) -> tuple[str, str | None]:
    """The scope an ownership entry names a node by: a source (and its snapshots), a job (and its
    runs; an artifact, by the job of the run that made it, when ``job`` is given), a model or a
    policy; else its namespace."""
    if record.kind == "source":
        return "source", record.name
    if record.kind in ("model", "policy"):
        return record.kind, record.name
    if record.kind in ("run", "job"):
        return "job", record.name
    if record.type == "snapshot" and record.name and record.name.startswith("snapshot/"):
        return "source", record.name.removeprefix("snapshot/")
    if job is not None:
        return "job", job
    return "namespace", None


@dataclass
class Visibility:
    """What ``principal`` sees, under ``governance``; ``withheld`` collects the ids of the nodes
    whose payloads it redacted, with the reason."""

    principal: Principal
    governance: Governance
    withheld: dict[str, str] = field(default_factory=dict)

    @property
    def sees_everything(self) -> bool:
        """No payload can be withheld from it: every namespace, and every level in force, cleared."""
        levels = {"internal", *(rule.level for rule in self.governance.rules)}
        return self.principal.namespaces is None and all(self.principal.sees_level(lv) for lv in levels)

    def reason(self, namespace: str | None, node_type: str, name: str | None) -> str | None:
        """Why a node's payload is withheld (its level, or ``namespace``); None when it is shown."""
        if not self.principal.covers(namespace):
            return "namespace"
        level = level_of(self.governance.rules, namespace, node_type, name)
        return None if self.principal.sees_level(level) else level

    def reason_of(self, record: NodeRecord) -> str | None:
        """Why ``record``'s payload is withheld, None when it is shown."""
        return self.reason(record.namespace, record.type, record.name)

    def owners(self, record: NodeRecord, job: str | None = None) -> dict[str, Any] | None:
        """Who owns and stewards ``record`` (see :func:`ownership_scope`), None when no one is set."""
        scope, name = ownership_scope(record, job)
        entry = owners_of(self.governance.owners, record.namespace, scope, name)
        if entry is None:
            return None
        found: dict[str, Any] = {"scope": entry.scope}
        if entry.name is not None:
            found["name"] = entry.name
        found.update(owners=list(entry.owners), stewards=list(entry.stewards))
        return found

    def _withhold(self, node_id: str, reason: str) -> dict[str, str]:
        self.withheld.setdefault(node_id, reason)
        return marker(reason)

    def content(self, record: NodeRecord, content: Any) -> Any:
        """An artifact's content, or its marker."""
        reason = self.reason_of(record)
        return content if reason is None else self._withhold(record.id, reason)

    def facets(self, node_id: str, where: str, facets: dict[str, Any], reason: str | None) -> dict[str, Any]:
        """The facets of a dataset, run or job (``where``), with all but :data:`KEPT_FACETS`
        replaced by the marker of ``reason`` (unchanged when it is None)."""
        if reason is None:
            return facets
        kept = KEPT_FACETS[where]
        shown = {}
        for key, value in facets.items():
            shown[key] = value if key in kept else self._withhold(node_id, reason)
        return shown

    def link(self, link: dict[str, Any], record: NodeRecord) -> None:
        """Redact one why-chain link in place: its id, digest, run, owners and the ids its content
        names are kept, the rest is replaced by ``redacted``."""
        reason = self.reason_of(record)
        if reason is None:
            return
        declared = type_of_node(record.type)
        names = {"id", "digest", "run", "owners", *(ref.field for ref in (declared.refs if declared else ()))}
        kept = {key: value for key, value in link.items() if key in names}
        if len(kept) < len(link):
            self._withhold(record.id, reason)
        link.clear()
        link.update(kept, redacted=reason)

    def event(self, event: dict[str, Any]) -> dict[str, Any]:
        """A stored event with the payloads the principal may not see replaced by markers."""
        shown = dict(event)
        job = event.get("job")
        run = event.get("run")
        if isinstance(job, dict):
            namespace, name = job.get("namespace"), job.get("name")
            job_facets = job.get("facets") or {}
            job_id = f"job:{namespace}:{name}"
            shown["job"] = {
                **job,
                "facets": self.facets(job_id, "job", job_facets, self.reason(namespace, "job", name)),
            }
            if isinstance(run, dict) and run.get("facets"):
                run_type = str((job_facets.get("jobType") or {}).get("jobType", "run")).lower()
                shown["run"] = {
                    **run,
                    "facets": self.facets(
                        f"run:{run.get('runId')}",
                        "run",
                        run["facets"],
                        self.reason(namespace, run_type, name),
                    ),
                }
        for side in ("inputs", "outputs"):
            if isinstance(event.get(side), list):
                shown[side] = [self._dataset(dataset) for dataset in event[side]]
        if isinstance(event.get("dataset"), dict):
            shown["dataset"] = self._dataset(event["dataset"])
        return shown

    def _dataset(self, dataset: Any) -> Any:
        facets = dataset.get("facets") if isinstance(dataset, dict) else None
        if not facets:
            return dataset
        namespace, name = dataset.get("namespace"), dataset.get("name")
        node_type, node_name, node_id = _dataset_node(namespace, name, facets)
        reason = self.reason(namespace, node_type, node_name)
        return {**dataset, "facets": self.facets(node_id, "dataset", facets, reason)}

    def summary(self) -> str | None:
        """What was withheld, for the access event (``restricted payload of 2 node(s)``), or None."""
        if not self.withheld:
            return None
        counts: dict[str, int] = {}
        for reason in self.withheld.values():
            counts[reason] = counts.get(reason, 0) + 1
        order = [*LEVELS, "namespace"]
        return "; ".join(
            f"{reason} payload of {count} node(s)"
            for reason, count in sorted(counts.items(), key=lambda item: order.index(item[0]))
        )


def _dataset_node(namespace: Any, name: Any, facets: dict[str, Any]) -> tuple[str, str | None, str]:
    """The type, name and (as near as the event tells) id of the node a dataset of an event makes."""
    plan = dataset_plan(tuple(facets))
    entity = facets.get("aiops_entity")
    digest = entity.get("digest") if isinstance(entity, dict) else None
    if plan.named is not None:
        named = facets.get(plan.named.key) or {}
        if plan.named.ident == "version":
            node_name = named.get("name") if isinstance(named, dict) else None
            version = named.get("version") if isinstance(named, dict) else None
            return plan.named.node_type, node_name, f"{plan.named.node_type}:{node_name}@{version}"
        return plan.named.node_type, name, f"{plan.named.node_type}:{namespace}:{name}"
    if isinstance(entity, dict) and isinstance(entity.get("type"), str):
        return entity["type"], name, f"entity:{digest}" if digest else f"dataset:{namespace}:{name}"
    if plan.content:
        return plan.content[0].node_type, name, f"dataset:{namespace}:{name}"
    return "dataset", name, f"dataset:{namespace}:{name}"
