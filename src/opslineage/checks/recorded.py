"""What the event log recorded, gathered in one pass for the judged layers of ``verify``.

Every artifact (snapshot, feature set, prediction, decision, action, effect) with the run and
event that carried it; every model and policy version with when it was registered and by whom;
the governance rules registered. Read from the events themselves, not from the graph index, so
that what is judged is exactly what producers sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opslineage.model.events import content_digest
from opslineage.query import Reader

__all__ = ["Artifact", "Recorded", "Registration", "Run", "parse_time", "read_recorded"]

PAGE = 2000
_ARTIFACTS = {
    "aiops_snapshot": "snapshot",
    "aiops_features": "feature",
    "aiops_prediction": "prediction",
    "aiops_decision": "decision",
    "aiops_action": "action",
    "aiops_effect": "effect",
    "aiops_rules": "rules",
}
_META = ("_producer", "_schemaURL")


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 time of a facet; None when it is absent or not a time with an offset."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


@dataclass
class Run:
    """One run: its job, namespace, when it started and completed, and its agents."""

    id: str
    job: str
    namespace: str
    started: datetime | None = None
    ended: datetime | None = None
    agents: list[tuple[str, str]] = field(default_factory=list)

    @property
    def approvers(self) -> list[str]:
        """The agents that approved the run."""
        return [name for name, role in self.agents if role == "approver"]


@dataclass
class Artifact:
    """One content-addressed artifact and the run that produced it."""

    id: str
    digest: str
    type: str
    content: dict[str, Any]
    run: str
    seq: int
    happened: datetime | None


@dataclass(frozen=True)
class Registration:
    """A model or policy version recorded as the output of a run (trained or registered)."""

    at: datetime
    run: str
    approvers: tuple[str, ...]


@dataclass
class Recorded:
    """Everything the judged layers look at."""

    runs: dict[str, Run] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    """By digest."""
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Model version id → its facet (without metadata)."""
    policies: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    """Policy version id → its facet (without metadata) and content digest."""
    registered: dict[str, list[Registration]] = field(default_factory=lambda: defaultdict(list))
    """Model or policy version id → when it was output by a run, oldest first."""
    by_type: dict[str, list[Artifact]] = field(default_factory=lambda: defaultdict(list))
    """Artifact type → its artifacts, in log order (the order the log is read in)."""
    events: int = 0

    def of_type(self, artifact_type: str) -> list[Artifact]:
        """Every artifact of one type, in log order."""
        return self.by_type.get(artifact_type, [])


def read_recorded(reader: Reader, on_progress: Callable[[int, int], None] | None = None) -> Recorded:
    """Read the whole event log once, through ``reader``, into a :class:`Recorded`."""
    recorded, total, after = Recorded(), reader.log_length(), 0
    while True:
        page = reader.event_page(after=after, limit=PAGE)
        if not page:
            break
        for stored in page:
            _take(recorded, stored.seq, stored.event)
        after = page[-1].seq
        recorded.events += len(page)
        if on_progress:
            on_progress(recorded.events, total)
    for registrations in recorded.registered.values():
        registrations.sort(key=lambda r: r.at)
    return recorded


def _take(recorded: Recorded, seq: int, event: dict[str, Any]) -> None:
    run_id = (event.get("run") or {}).get("runId")
    job = event.get("job") or {}
    when = parse_time(event.get("eventTime"))
    if not isinstance(run_id, str):
        return
    run = recorded.runs.setdefault(run_id, Run(run_id, str(job.get("name")), str(job.get("namespace"))))
    kind = event.get("eventType")
    if kind == "START" and when is not None:
        run.started = when
    elif kind in ("COMPLETE", "FAIL", "ABORT") and when is not None:
        run.ended = when
    agents = ((event.get("run") or {}).get("facets") or {}).get("aiops_agents") or {}
    for agent in agents.get("agents") or []:
        pair = (str(agent.get("name")), str(agent.get("role")))
        if pair not in run.agents:
            run.agents.append(pair)
    for dataset in event.get("outputs") or []:
        _output(recorded, seq, run_id, when, dataset.get("facets") or {})
    for dataset in event.get("inputs") or []:
        _versions(recorded, dataset.get("facets") or {})


def _output(recorded: Recorded, seq: int, run_id: str, when: datetime | None, facets: dict[str, Any]) -> None:
    for key, artifact_type in _ARTIFACTS.items():
        content = facets.get(key)
        if isinstance(content, dict):
            digest = content_digest(content)
            if digest not in recorded.artifacts:
                body = {k: v for k, v in content.items() if k not in _META}
                artifact = Artifact(f"entity:{digest}", digest, artifact_type, body, run_id, seq, when)
                recorded.artifacts[digest] = artifact
                recorded.by_type[artifact_type].append(artifact)
    for version_id in _versions(recorded, facets):
        if when is not None:
            approvers = tuple(recorded.runs[run_id].approvers)
            recorded.registered[version_id].append(Registration(when, run_id, approvers))


def _versions(recorded: Recorded, facets: dict[str, Any]) -> list[str]:
    """Record the model and policy versions a dataset carries; their ids."""
    ids = []
    model = facets.get("aiops_model")
    if isinstance(model, dict):
        version_id = f"model:{model.get('name')}@{model.get('version')}"
        recorded.models.setdefault(version_id, {k: v for k, v in model.items() if k not in _META})
        ids.append(version_id)
    policy = facets.get("aiops_policy")
    if isinstance(policy, dict):
        version_id = f"policy:{policy.get('name')}@{policy.get('version')}"
        body = {k: v for k, v in policy.items() if k not in _META}
        recorded.policies.setdefault(version_id, (body, content_digest(policy)))
        ids.append(version_id)
    return ids
