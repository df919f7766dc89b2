"""Baselines: the lineage structure as it stands, read from the stored events, and recorded (saved
or accepted) as a ledgered ``aiops_baseline`` event through the SDK.

The structure (see ``docs/reconciliation.md``) holds, per job, the nodes it reads and writes (node
kinds such as ``entity:snapshot``, sources by id, models and policies by name, plain datasets by
id) with the time each was last seen, its transform code versions, the schema fingerprint of each
source it captures, the model and policy versions its newest runs used, and how often it runs;
per source, its owner and how often it sends a snapshot; the owners of policies and models; the
digest of the newest governance rules of each name; and the share of actions whose why-chain is
complete. Times are on the data's own clock: the newest run recorded, not the wall clock.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from opslineage.model.facets import BaselineFacet
from opslineage.query import NotFound, Reader
from opslineage.sdk import Tracer
from opslineage.store import StoreError

if TYPE_CHECKING:
    from opslineage.store import Store

__all__ = [
    "BASELINE_NAMESPACE",
    "Baseline",
    "BaselineError",
    "Scan",
    "check_name",
    "find_baseline",
    "parse_time",
    "record_baseline",
    "scan_store",
    "structure_of",
    "usual_interval",
]

BASELINE_NAMESPACE = "opslineage"
"""The namespace of the job that records a baseline covering every namespace."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_TERMINAL = frozenset({"COMPLETE", "FAIL", "ABORT"})
_PAGE = 1000
_MIN_TIMES = 3  # a usual interval needs at least this many distinct times


class BaselineError(ValueError):
    """A baseline name that is malformed, or names no baseline."""


def check_name(name: str) -> str:
    """``name`` checked as a baseline name: a letter or digit, then up to 99 of ``[A-Za-z0-9._-]``.

    Raises:
        BaselineError: it is not one.
    """
    if not _NAME.fullmatch(name):
        raise BaselineError(
            f"baseline name {name!r} must be a letter or digit followed by up to 99 letters, digits, '.', '_' or '-'"
        )
    return name


@dataclass
class _Job:
    """What the events of one job showed: edges with the time each was last seen, versions by seq."""

    reads: dict[str, datetime] = field(default_factory=dict)
    writes: dict[str, datetime] = field(default_factory=dict)
    code_versions: dict[str, tuple[int, str]] = field(default_factory=dict)
    schemas: dict[str, tuple[int, str]] = field(default_factory=dict)
    models: dict[str, tuple[int, str]] = field(default_factory=dict)
    policies: dict[str, tuple[int, str]] = field(default_factory=dict)
    times: set[datetime] = field(default_factory=set)
    ledger_only: bool = False  # it records baselines or rules, which are not pipeline structure


@dataclass
class Scan:
    """What one pass over the stored events found, in one namespace or all of them."""

    jobs: dict[str, _Job] = field(default_factory=dict)
    snapshots: dict[str, set[datetime]] = field(default_factory=dict)
    owners: dict[str, tuple[int, str]] = field(default_factory=dict)
    rules: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    through_seq: int = 0

    @property
    def pipeline_jobs(self) -> dict[str, _Job]:
        """The jobs of the pipeline: those that ran, without the ones recording baselines or rules."""
        return {job_id: job for job_id, job in self.jobs.items() if job.times and not job.ledger_only}

    @property
    def clock(self) -> datetime | None:
        """The data's own clock: the time of the newest run of the pipeline."""
        return max((max(job.times) for job in self.pipeline_jobs.values()), default=None)

    def owner(self, node: str) -> str | None:
        """The newest owner recorded for a source id, ``policy:<name>`` or ``model:<name>``."""
        found = self.owners.get(node)
        return found[1] if found else None


def scan_store(reader: Reader, namespace: str | None) -> Scan:
    """Read every stored event once and gather the structure of the jobs of ``namespace`` (None:
    all); governance rules are gathered whatever their namespace."""
    scan = Scan()
    for stored in _events(reader):
        scan.through_seq = stored.seq
        _take(scan, stored.seq, stored.event, namespace)
    return scan


def _events(reader: Reader) -> Iterator[Any]:
    after = 0
    while True:
        page = reader.event_page(after=after, limit=_PAGE)
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].seq


def parse_time(text: Any) -> datetime | None:
    """An ISO 8601 time, in UTC when it names no offset; None when it is not one."""
    try:
        when = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _facets(dataset: Any) -> dict[str, Any]:
    facets = dataset.get("facets") if isinstance(dataset, dict) else None
    return facets if isinstance(facets, dict) else {}


def _datasets(event: dict[str, Any], side: str) -> list[dict[str, Any]]:
    found = event.get(side)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _edge(dataset: dict[str, Any]) -> str:
    """What a dataset is to the structure: a model or policy by name, a source by id, an artifact
    by its type, any other dataset by id."""
    facets = _facets(dataset)
    namespace, name = dataset.get("namespace"), dataset.get("name")
    for key, kind in (("aiops_model", "model"), ("aiops_policy", "policy")):
        if isinstance(facets.get(key), dict):
            return f"{kind}:{facets[key].get('name', name)}"
    if "aiops_source" in facets:
        return f"source:{namespace}:{name}"
    entity = facets.get("aiops_entity")
    if isinstance(entity, dict):
        return f"entity:{entity.get('type')}"
    return f"dataset:{namespace}:{name}"


def _newer(table: dict[str, tuple[int, Any]], key: str, seq: int, value: Any) -> None:
    if value is not None and (key not in table or table[key][0] <= seq):
        table[key] = (seq, value)


def _take(scan: Scan, seq: int, event: dict[str, Any], namespace: str | None) -> None:
    """Add one event to the scan."""
    outputs = _datasets(event, "outputs")
    for dataset in outputs:
        rules = _facets(dataset).get("aiops_rules")
        digest = _facets(dataset).get("aiops_entity", {}).get("digest")
        if isinstance(rules, dict) and isinstance(rules.get("name"), str):
            _newer(scan.rules, rules["name"], seq, {"digest": digest, "steward": rules.get("steward")})
    job_info = event.get("job")
    if not isinstance(job_info, dict) or (namespace is not None and job_info.get("namespace") != namespace):
        return
    job = scan.jobs.setdefault(f"job:{job_info.get('namespace')}:{job_info.get('name')}", _Job())
    when = parse_time(event.get("eventTime"))
    if when is None:
        return
    if event.get("eventType") in _TERMINAL:
        job.times.add(when)
    inputs = _datasets(event, "inputs")
    for dataset in inputs:
        edge = _edge(dataset)
        job.reads[edge] = max(when, job.reads.get(edge, when))
        facets = _facets(dataset)
        if edge.startswith("model:"):
            _newer(job.models, edge.removeprefix("model:"), seq, facets["aiops_model"].get("version"))
        elif edge.startswith("policy:"):
            _newer(job.policies, edge.removeprefix("policy:"), seq, facets["aiops_policy"].get("version"))
        for key in ("aiops_source", "aiops_policy"):
            owner = facets.get(key, {}).get("owner") if isinstance(facets.get(key), dict) else None
            _newer(scan.owners, edge, seq, owner)
    for dataset in outputs:
        edge = _edge(dataset)
        job.writes[edge] = max(when, job.writes.get(edge, when))
        _take_output(scan, job, seq, event, edge, _facets(dataset), when)


def _take_output(
    scan: Scan, job: _Job, seq: int, event: dict[str, Any], edge: str, facets: dict[str, Any], when: datetime
) -> None:
    """What one output dataset adds: a snapshot's schema, a feature set's code version and sources,
    an action to cover, a model's or policy's owner, or the mark of a ledger-only job."""
    if "aiops_baseline" in facets or "aiops_rules" in facets:
        job.ledger_only = True
    snapshot = facets.get("aiops_snapshot")
    if isinstance(snapshot, dict):
        source = str(snapshot.get("source"))
        _newer(job.schemas, source, seq, snapshot.get("schema_fingerprint"))
        captured = parse_time(snapshot.get("captured_at"))
        if captured is not None:
            scan.snapshots.setdefault(source, set()).add(captured)
    features = facets.get("aiops_features")
    if isinstance(features, dict):
        transform = features.get("transform") or {}
        _newer(job.code_versions, str(transform.get("name")), seq, transform.get("code_version"))
        for source in features.get("sources") or []:
            job.reads[source] = max(when, job.reads.get(source, when))
    if "aiops_action" in facets:
        scan.actions.append(f"entity:{facets.get('aiops_entity', {}).get('digest')}")
    policy = facets.get("aiops_policy")
    if isinstance(policy, dict):
        _newer(scan.owners, edge, seq, policy.get("owner"))
    model = facets.get("aiops_model")
    if isinstance(model, dict):
        owner = (model.get("parameters") or {}).get("owner")
        agents = ((event.get("run") or {}).get("facets") or {}).get("aiops_agents") or {}
        approvers = [a.get("name") for a in agents.get("agents") or [] if a.get("role") == "approver"]
        _newer(scan.owners, edge, seq, owner if isinstance(owner, str) else next(iter(approvers), None))


def usual_interval(times: set[datetime], *, regular_within: float | None = None) -> float | None:
    """The median gap in seconds between distinct ``times``; None with fewer than three, or, with
    ``regular_within`` K, when some gap was longer than K times the median (the times are not
    periodic, so being quiet for a while says nothing)."""
    if len(times) < _MIN_TIMES:
        return None
    ordered = sorted(times)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ordered)]
    median = statistics.median(gaps)
    if median <= 0 or (regular_within is not None and max(gaps) > regular_within * median):
        return None
    return median


def _stamp(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _latest(table: dict[str, tuple[int, str]]) -> dict[str, str]:
    return {key: value for key, (_, value) in sorted(table.items())}


def structure_of(reader: Reader, scan: Scan, *, regular_within: float) -> dict[str, Any]:
    """The structure a scan found, as a baseline records it (``regular_within``: see
    :func:`usual_interval`; a job whose runs are not that regular has no usual interval)."""
    jobs = {
        job_id: {
            "reads": {edge: when.isoformat() for edge, when in sorted(job.reads.items())},
            "writes": {edge: when.isoformat() for edge, when in sorted(job.writes.items())},
            "code_versions": _latest(job.code_versions),
            "schemas": _latest(job.schemas),
            "models": _latest(job.models),
            "policies": _latest(job.policies),
            "interval_seconds": usual_interval(job.times, regular_within=regular_within),
            "last_run": _stamp(max(job.times)),
        }
        for job_id, job in sorted(scan.pipeline_jobs.items())
    }
    sources = {
        source: {
            "owner": scan.owner(source),
            "interval_seconds": usual_interval(times),
            "last_snapshot": _stamp(max(times)),
        }
        for source, times in sorted(scan.snapshots.items())
    }
    complete = 0
    for action in scan.actions:
        try:
            complete += reader.why(action).complete
        except NotFound:
            continue
    return {
        "format": 1,
        "through_seq": scan.through_seq,
        "clock": _stamp(scan.clock),
        "jobs": jobs,
        "sources": sources,
        "owners": {
            node: owner for node, (_, owner) in sorted(scan.owners.items()) if not node.startswith("source:")
        },
        "rules": {name: found for name, (_, found) in sorted(scan.rules.items())},
        "coverage": {"actions": len(scan.actions), "complete": complete},
    }


class _JobShape(msgspec.Struct):
    reads: dict[str, str]
    writes: dict[str, str]
    code_versions: dict[str, str]
    schemas: dict[str, str]
    models: dict[str, str]
    policies: dict[str, str]
    interval_seconds: float | None = None
    last_run: str | None = None


class _SourceShape(msgspec.Struct):
    owner: str | None = None
    interval_seconds: float | None = None
    last_snapshot: str | None = None


class _RulesShape(msgspec.Struct):
    digest: str | None = None
    steward: str | None = None


class _CoverageShape(msgspec.Struct):
    actions: int
    complete: int


class _StructureShape(msgspec.Struct, kw_only=True):
    """The shape :func:`structure_of` writes, checked when a baseline is read (anyone may ingest an
    event that carries an ``aiops_baseline`` facet); unset values are left out on the wire."""

    format: Literal[1]
    through_seq: int
    clock: str | None = None
    jobs: dict[str, _JobShape]
    sources: dict[str, _SourceShape]
    owners: dict[str, str]
    rules: dict[str, _RulesShape]
    coverage: _CoverageShape


class Baseline(msgspec.Struct, frozen=True):
    """A recorded baseline: its facet's content and the node that holds it."""

    id: str
    name: str
    saved_at: str
    namespace: str | None
    structure: dict[str, Any]


def find_baseline(reader: Reader, name: str) -> Baseline:
    """The newest baseline recorded under ``name``, in any namespace.

    Raises:
        BaselineError: a malformed name, or no baseline of that name.
    """
    found = reader.search(kind="entity", name=f"baseline/{check_name(name)}", limit=1)
    if not found:
        raise BaselineError(f"no baseline named {name!r} (record one with `opslineage baseline save {name}`)")
    detail = reader.detail(found[0].id)
    try:
        facet = msgspec.convert(detail.content, BaselineFacet)
        msgspec.convert(facet.structure, _StructureShape)
    except msgspec.ValidationError as error:
        raise BaselineError(
            f"baseline {name!r} ({found[0].id}) holds no structure this version reads: {error}"
        ) from None
    return Baseline(found[0].id, facet.name, facet.saved_at, facet.namespace, facet.structure)


def record_baseline(
    reader: Reader,
    store: Store,
    name: str,
    namespace: str | None,
    *,
    verb: str = "save",
    regular_within: float,
) -> Baseline:
    """Record the structure as it stands as the baseline ``name`` (of ``namespace``; None: all),
    through the SDK and the ingest pipeline, so that it is in the transparency log.

    Raises:
        BaselineError: a malformed name.
        StoreError: the store refused the event.
    """
    check_name(name)
    structure = structure_of(reader, scan_store(reader, namespace), regular_within=regular_within)
    tracer = Tracer(namespace or BASELINE_NAMESPACE, store=store, sync=True, agent="opslineage-reconcile")
    artifact = tracer.record_baseline(name, structure, scope=namespace, verb=verb)
    tracer.close()
    if tracer.stats.errors:
        raise StoreError(f"the baseline {name!r} was not recorded: {tracer.stats.last_error}")
    return Baseline(artifact.id, name, artifact.content["saved_at"], namespace, structure)
