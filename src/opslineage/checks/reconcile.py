"""Reconciliation: the lineage structure as it stands now against a recorded baseline, as typed
drift, each naming the owner of the node that drifted.

A drift has a stable ``key`` (what drifted: its kind, job and subject) and a ``fingerprint`` (what
it drifted to), so that alerting (:mod:`opslineage.checks.alerts`) can tell a drift already
reported from one that changed again.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from opslineage.checks.baseline import Baseline, find_baseline, parse_time, scan_store, structure_of
from opslineage.query import Reader

__all__ = ["DEFAULT_SILENCE_FACTOR", "DRIFT_KINDS", "Drift", "ReconcileReport", "compare", "reconcile"]

DEFAULT_SILENCE_FACTOR = 3.0
"""K: a source (or a periodic job) is silent after K times its usual interval without a snapshot (run)."""

DriftKind = Literal[
    "schema_changed",
    "code_version_changed",
    "model_changed",
    "policy_changed",
    "rules_changed",
    "edge_added",
    "edge_missing",
    "job_vanished",
    "source_silent",
    "coverage_dropped",
]
DRIFT_KINDS: tuple[str, ...] = DriftKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Drift:
    """One way the lineage differs from its baseline.

    Attributes:
        kind: one of :data:`DRIFT_KINDS`.
        node: the node that drifted (a source, job, model or policy version, rules set …).
        job: the job it was seen in, when it belongs to one.
        subject: what of the node drifted (a transform, a model name, an edge …), for the key.
        expected: what the baseline recorded.
        found: what the store holds now.
        owners: the owners of the node, as recorded on sources, policies and models.
        namespace: the namespace of the job or node (None: not in one).
    """

    kind: str
    node: str
    expected: str | None
    found: str | None
    owners: list[str] = field(default_factory=list)
    job: str | None = None
    subject: str = ""
    namespace: str | None = None

    @property
    def key(self) -> str:
        """What drifted, stable while it drifts to something else."""
        return f"{self.kind}|{self.job or ''}|{self.subject or self.node}"

    @property
    def fingerprint(self) -> str:
        """A digest of where it drifted to: a new value is a new alert."""
        return hashlib.sha256(f"{self.node}\0{self.expected}\0{self.found}".encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the key and fingerprint."""
        return {**asdict(self), "key": self.key, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class ReconcileReport:
    """The drifts of the store against one baseline."""

    baseline: Baseline
    clock: str | None
    drifts: list[Drift]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "baseline": {
                "id": self.baseline.id,
                "name": self.baseline.name,
                "saved_at": self.baseline.saved_at,
                "namespace": self.baseline.namespace,
                "clock": self.baseline.structure.get("clock"),
            },
            "clock": self.clock,
            "drift": len(self.drifts),
            "drifts": [drift.to_dict() for drift in self.drifts],
        }


def reconcile(
    reader: Reader, name: str, *, silence_factor: float = DEFAULT_SILENCE_FACTOR
) -> ReconcileReport:
    """Compare the store with the newest baseline called ``name``.

    Raises:
        BaselineError: a malformed name, or no such baseline.
    """
    baseline = find_baseline(reader, name)
    now = structure_of(reader, scan_store(reader, baseline.namespace), regular_within=silence_factor)
    return ReconcileReport(baseline, now["clock"], compare(baseline.structure, now, silence_factor))


def _quiet(last: Any, interval: Any, clock: Any, factor: float) -> bool:
    """Whether nothing was seen for longer than ``factor`` usual intervals at ``clock``."""
    last_at, now = parse_time(last), parse_time(clock)
    if last_at is None or now is None or not interval:
        return False
    return (now - last_at).total_seconds() > factor * float(interval)


def _namespace(node: str) -> str | None:
    kind, _, rest = node.partition(":")
    return rest.partition(":")[0] if kind in ("job", "source", "dataset") and ":" in rest else None


class _Comparison:
    """The state both comparisons share: the two structures, the owners, the drifts so far."""

    def __init__(self, base: dict[str, Any], now: dict[str, Any], factor: float) -> None:
        self.base = base
        self.now = now
        self.factor = factor
        self.owners: dict[str, str] = {**base.get("owners", {}), **now.get("owners", {})}
        for sources in (base.get("sources", {}), now.get("sources", {})):
            self.owners.update({sid: s["owner"] for sid, s in sources.items() if s.get("owner")})
        self.drifts: list[Drift] = []
        self.silent: set[str] = set()

    def owner_of(self, *nodes: str) -> list[str]:
        return sorted({self.owners[node] for node in nodes if node in self.owners})

    def job_owners(self, job: dict[str, Any]) -> list[str]:
        return self.owner_of(*job.get("reads", {}), *job.get("writes", {}))

    def add(self, kind: str, node: str, expected: Any, found: Any, **extra: Any) -> None:
        self.drifts.append(
            Drift(
                kind,
                node,
                None if expected is None else str(expected),
                None if found is None else str(found),
                namespace=_namespace(extra.get("job") or node),
                **extra,
            )
        )


def compare(base: dict[str, Any], now: dict[str, Any], factor: float) -> list[Drift]:
    """The drifts of the structure ``now`` from the structure ``base``, K being ``factor``."""
    check = _Comparison(base, now, factor)
    _sources(check)
    for job_id, job in sorted(base.get("jobs", {}).items()):
        _job(check, job_id, job, now.get("jobs", {}).get(job_id))
    for job_id, job in sorted(now.get("jobs", {}).items()):
        if job_id not in base.get("jobs", {}):
            for side, verb in (("reads", "reads"), ("writes", "writes")):
                for edge in job[side]:
                    check.add(
                        "edge_added",
                        job_id,
                        None,
                        f"{verb} {edge}",
                        job=job_id,
                        subject=f"{verb} {edge}",
                        owners=check.job_owners(job),
                    )
    _rules(check)
    _coverage(check)
    return check.drifts


def _sources(check: _Comparison) -> None:
    clock_then, clock_now = check.base.get("clock"), check.now.get("clock")
    for source_id, then in sorted(check.base.get("sources", {}).items()):
        current = check.now.get("sources", {}).get(source_id)
        interval = then.get("interval_seconds")
        last = current["last_snapshot"] if current else None
        silent_now = current is None or _quiet(last, interval, clock_now, check.factor)
        if not silent_now:
            continue
        check.silent.add(source_id)
        if not _quiet(then.get("last_snapshot"), interval, clock_then, check.factor):
            check.add(
                "source_silent",
                source_id,
                f"a snapshot every {interval:g}s" if interval else "snapshots",
                f"none since {last}" if last else "no snapshot",
                owners=check.owner_of(source_id),
            )


def _job(check: _Comparison, job_id: str, then: dict[str, Any], now: dict[str, Any] | None) -> None:
    owners = check.job_owners(then)
    interval = then.get("interval_seconds")
    if now is None or (
        _quiet(now["last_run"], interval, check.now.get("clock"), check.factor)
        and not _quiet(then.get("last_run"), interval, check.base.get("clock"), check.factor)
    ):
        check.add(
            "job_vanished",
            job_id,
            f"a run every {interval:g}s" if interval else "runs",
            f"none since {now['last_run']}" if now else "no run",
            job=job_id,
            owners=owners,
        )
        return
    for source, fingerprint in then["schemas"].items():
        found = now["schemas"].get(source)
        if found is not None and found != fingerprint:
            check.add(
                "schema_changed",
                source,
                fingerprint,
                found,
                job=job_id,
                subject=source,
                owners=check.owner_of(source),
            )
    for transform, version in then["code_versions"].items():
        found = now["code_versions"].get(transform)
        if found is not None and found != version:
            check.add(
                "code_version_changed", job_id, version, found, job=job_id, subject=transform, owners=owners
            )
    for kind, table in (("model", "models"), ("policy", "policies")):
        for name, version in then[table].items():
            found = now[table].get(name)
            if found is not None and found != version:
                check.add(
                    f"{kind}_changed",
                    f"{kind}:{name}@{found}",
                    f"{name}@{version}",
                    f"{name}@{found}",
                    job=job_id,
                    subject=f"{kind}:{name}",
                    owners=check.owner_of(f"{kind}:{name}"),
                )
    _edges(check, job_id, then, now, owners)


def _edges(
    check: _Comparison, job_id: str, then: dict[str, Any], now: dict[str, Any], owners: list[str]
) -> None:
    """Edges seen now and not in the baseline; edges of the baseline not seen since it, once the job
    has run on and been without them for K usual intervals (at least one run, when it has none)."""
    ran_since = now["last_run"] != then.get("last_run")
    interval = then.get("interval_seconds")
    for side in ("reads", "writes"):
        for edge in sorted(set(now[side]) - set(then[side])):
            check.add(
                "edge_added",
                job_id,
                None,
                f"{side} {edge}",
                job=job_id,
                subject=f"{side} {edge}",
                owners=owners,
            )
        for edge, seen in sorted(then[side].items()):
            if edge in check.silent or not ran_since or now[side].get(edge) != seen:
                continue
            if interval and not _quiet(seen, interval, check.now.get("clock"), check.factor):
                continue
            check.add(
                "edge_missing",
                job_id,
                f"{side} {edge}",
                f"not since {seen}",
                job=job_id,
                subject=f"{side} {edge}",
                owners=owners,
            )


def _rules(check: _Comparison) -> None:
    then, now = check.base.get("rules", {}), check.now.get("rules", {})
    for name in sorted(set(then) | set(now)):
        before, after = then.get(name), now.get(name)
        if (before or {}).get("digest") != (after or {}).get("digest"):
            steward = (after or before or {}).get("steward")
            check.add(
                "rules_changed",
                f"rules:{name}",
                (before or {}).get("digest"),
                (after or {}).get("digest"),
                subject=f"rules:{name}",
                owners=[steward] if steward else [],
            )


def _coverage(check: _Comparison) -> None:
    then, now = check.base.get("coverage", {}), check.now.get("coverage", {})
    if not then.get("actions") or not now.get("actions"):
        return
    before = then["complete"] / then["actions"]
    after = now["complete"] / now["actions"]
    if after < before:
        check.add(
            "coverage_dropped",
            "coverage:actions",
            f"{before:.4f} ({then['complete']}/{then['actions']} complete why-chains)",
            f"{after:.4f} ({now['complete']}/{now['actions']} complete why-chains)",
        )
