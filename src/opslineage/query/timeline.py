"""An incident's timeline: for one target (a service, say), what its telemetry showed and what
the pipeline did about it, in time order.

A target is the string the artifacts name it by: a snapshot's source (by the source's name), a
prediction's or decision's ``subject``, an action's or effect's ``target``. The timeline holds
the metric series of the target's snapshot rows (each numeric column but the timestamp), and
one mark per snapshot (at its window's end), prediction (with its model's ``threshold`` when the
model's parameters carry one), decision, action (with its latest effect) and change of model or
policy version (the target's first prediction or decision of a new version). Every mark names
its node id. An artifact whose content the reader may not see is placed by its name (the SDK
names it ``<type>/<target>``) and listed in ``withheld``, never in the series or the marks.

Everything is read through :class:`~opslineage.query.Reader`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opslineage.query.contents import artifact_contents, recorded_time
from opslineage.query.reader import Reader
from opslineage.store import NodeRecord

__all__ = ["Mark", "Series", "Timeline", "targets", "timeline"]

_TYPES = ("snapshot", "prediction", "decision", "action", "effect")
_RANK = {"snapshot": 0, "model_change": 1, "prediction": 2, "policy_change": 3, "decision": 4, "action": 5}
_TIME = {"prediction": "predicted_at", "decision": "decided_at", "action": "started_at"}
_SOURCES = 1 << 62


@dataclass(frozen=True)
class Mark:
    """One moment on the timeline: what (``kind``), when (``at``, RFC 3339), which node, and more."""

    kind: str
    at: datetime
    id: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: kind, at, id, then the kind's own fields."""
        return {"kind": self.kind, "at": _iso(self.at), "id": self.id, **self.fields}


@dataclass(frozen=True)
class Series:
    """One metric's points, each ``(time, value, snapshot id)``, in time order."""

    metric: str
    points: list[tuple[datetime, float, str]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the metric and its points as ``{"at", "value", "snapshot"}``."""
        return {
            "metric": self.metric,
            "points": [{"at": _iso(at), "value": value, "snapshot": node} for at, value, node in self.points],
        }


@dataclass(frozen=True)
class Timeline:
    """The answer: the range shown, the series, the marks in time order and what was withheld."""

    target: str
    since: datetime | None
    until: datetime | None
    series: list[Series]
    marks: list[Mark]
    withheld: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``GET /api/v1/timeline``)."""
        return {
            "target": self.target,
            "since": _iso(self.since),
            "until": _iso(self.until),
            "series": [series.to_dict() for series in self.series],
            "marks": [mark.to_dict() for mark in self.marks],
            "withheld": self.withheld,
        }


def targets(reader: Reader) -> list[str]:
    """Every target some snapshot, prediction, decision, action or effect ``reader`` sees names."""
    with reader.operation("targets"):
        return sorted({subject for subject, *_ in _artifacts(reader)})


def timeline(
    reader: Reader, target: str, *, since: datetime | None = None, until: datetime | None = None
) -> Timeline:
    """The timeline of ``target`` over [``since``, ``until``] (default: all it has recorded).

    Raises:
        ValueError: a time has no offset.
    """
    if any(when is not None and when.utcoffset() is None for when in (since, until)):
        raise ValueError("since and until must be times with their UTC offset")
    with reader.operation("timeline", target):
        found: dict[str, list[tuple[NodeRecord, dict[str, Any]]]] = {kind: [] for kind in _TYPES}
        withheld = []
        for subject, kind, record, content in _artifacts(reader):
            if subject != target:
                continue
            if "redacted" in content:
                withheld.append({"kind": kind, "id": record.id, "reason": str(content["redacted"])})
            else:
                found[kind].append((record, content))
        marks = [
            *_snapshot_marks(found["snapshot"]),
            *_prediction_marks(reader, found["prediction"]),
            *_decision_marks(found["decision"]),
            *_action_marks(reader, found["action"], found["effect"]),
        ]
        marks += _changes(marks)
        series = _series(found["snapshot"])
        times = [mark.at for mark in marks] + [at for line in series for at, _, _ in line.points]
        since = since if since is not None else min(times, default=None)
        until = until if until is not None else max(times, default=None)
        shown = [mark for mark in marks if _shown(mark, since, until)]
        shown.sort(key=lambda mark: (mark.at, _RANK[mark.kind], mark.id))
        kept = [
            Series(line.metric, [point for point in line.points if _within(point[0], since, until)])
            for line in series
        ]
        return Timeline(target, since, until, kept, shown, withheld)


def _artifacts(reader: Reader) -> list[tuple[str, str, NodeRecord, dict[str, Any]]]:
    """(target, type, record, content) of every snapshot, prediction, decision, action and effect."""
    sources = {node.id: node.name for node in reader.search(kind="source", limit=_SOURCES)}
    found = []
    for kind in _TYPES:
        for record, content in artifact_contents(reader, reader.artifact_records(kind)):
            subject = _subject(kind, record, content, sources)
            if subject:
                found.append((subject, kind, record, content))
    return found


def _subject(
    kind: str, record: NodeRecord, content: dict[str, Any], sources: dict[str, str | None]
) -> str | None:
    """The target an artifact names: from its content, or from its name when that is withheld."""
    if "redacted" in content:
        name = (record.name or "").removeprefix(f"{kind}/")
        return name.rpartition("/")[0] if kind == "decision" else name
    if kind == "snapshot":
        return sources.get(str(content.get("source")))
    value = content.get("target" if kind in ("action", "effect") else "subject")
    return value if isinstance(value, str) else None


def _snapshot_marks(snapshots: list[tuple[NodeRecord, dict[str, Any]]]) -> list[Mark]:
    marks = []
    for record, content in snapshots:
        end = recorded_time(content.get("window_end"))
        if end is not None:
            fields = {
                "window_start": content.get("window_start"),
                "window_end": content.get("window_end"),
                "rows": content.get("row_count"),
            }
            marks.append(Mark("snapshot", end, record.id, fields))
    return marks


def _series(snapshots: list[tuple[NodeRecord, dict[str, Any]]]) -> list[Series]:
    """The numeric columns of the snapshots' rows, by the row's timestamp column."""
    points: dict[str, list[tuple[datetime, float, str]]] = {}
    for record, content in snapshots:
        names = [
            str(column.get("name")) for column in content.get("fields") or () if isinstance(column, dict)
        ]
        if "timestamp" not in names:
            continue
        clock = names.index("timestamp")
        for row in content.get("rows") or ():
            at = recorded_time(row[clock]) if isinstance(row, list) and len(row) == len(names) else None
            if at is None:
                continue
            for name, value in zip(names, row, strict=True):
                if name != "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
                    points.setdefault(name, []).append((at, float(value), record.id))
    return [Series(name, sorted(points[name])) for name in sorted(points)]


def _prediction_marks(reader: Reader, predictions: list[tuple[NodeRecord, dict[str, Any]]]) -> list[Mark]:
    models = reader.contents({str(content.get("model")) for _, content in predictions})
    marks = []
    for record, content in predictions:
        at = recorded_time(content.get(_TIME["prediction"]))
        if at is None:
            continue
        model = str(content.get("model"))
        parameters = (models.get(model) or {}).get("parameters")
        threshold = parameters.get("threshold") if isinstance(parameters, dict) else None
        fields = {
            "score": content.get("score"),
            "label": content.get("label"),
            "model": model,
            "threshold": threshold if isinstance(threshold, int | float) else None,
        }
        marks.append(Mark("prediction", at, record.id, fields))
    return marks


def _decision_marks(decisions: list[tuple[NodeRecord, dict[str, Any]]]) -> list[Mark]:
    marks = []
    for record, content in decisions:
        at = recorded_time(content.get(_TIME["decision"]))
        if at is not None:
            fields = {
                "fired": content.get("fired"),
                "policy": content.get("policy"),
                "breaches": content.get("breaches") or [],
                "action": content.get("action"),
                "held_back": content.get("held_back"),
            }
            marks.append(Mark("decision", at, record.id, fields))
    return marks


def _action_marks(
    reader: Reader,
    actions: list[tuple[NodeRecord, dict[str, Any]]],
    effects: list[tuple[NodeRecord, dict[str, Any]]],
) -> list[Mark]:
    """Each action with its run and its latest effect (by ``observed_at``)."""
    latest: dict[str, tuple[NodeRecord, dict[str, Any]]] = {}
    for record, content in effects:
        action = f"entity:{str(content.get('action')).removeprefix('entity:')}"
        if action not in latest or str(content.get("observed_at")) >= str(
            latest[action][1].get("observed_at")
        ):
            latest[action] = (record, content)
    ids = [record.id for record, _ in actions]
    runs = {edge.src: edge.dst for edge in reader.neighbours(ids, direction="up", kinds=["wasGeneratedBy"])}
    marks = []
    for record, content in actions:
        at = recorded_time(content.get(_TIME["action"]))
        if at is None:
            continue
        effect = latest.get(record.id)
        fields = {
            "run": runs.get(record.id),
            "type": content.get("type"),
            "status": content.get("status"),
            "ended_at": content.get("ended_at"),
            "policy": content.get("policy"),
            "model": content.get("model"),
            "effect": _effect(*effect) if effect is not None else None,
        }
        marks.append(Mark("action", at, record.id, fields))
    return marks


def _effect(record: NodeRecord, content: dict[str, Any]) -> dict[str, Any]:
    names = ("outcome", "metric", "before", "after", "observed_at", "window_start", "window_end")
    return {"id": record.id, **{name: content.get(name) for name in (*names, "before_start", "before_end")}}


def _changes(marks: list[Mark]) -> list[Mark]:
    """A mark at the target's first prediction of each model version, and first decision of each
    policy version (per policy name), naming the version's node and the one before it."""
    changes = []
    current: dict[tuple[str, str], str] = {}
    for mark in sorted(marks, key=lambda found: (found.at, _RANK[found.kind])):
        if mark.kind not in ("prediction", "decision"):
            continue
        kind = "model" if mark.kind == "prediction" else "policy"
        version = str(mark.fields[kind])
        name = version.partition("@")[0]
        before = current.get((kind, name))
        if before != version:
            current[(kind, name)] = version
            fields = {"from": before, "to": version, mark.kind: mark.id}
            changes.append(Mark(f"{kind}_change", mark.at, version, fields))
    return changes


def _shown(mark: Mark, since: datetime | None, until: datetime | None) -> bool:
    """A mark in range; a snapshot whose window overlaps it."""
    if mark.kind != "snapshot":
        return _within(mark.at, since, until)
    start = recorded_time(mark.fields.get("window_start")) or mark.at
    return (since is None or mark.at >= since) and (until is None or start <= until)


def _within(when: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or when >= since) and (until is None or when <= until)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when is not None else None
