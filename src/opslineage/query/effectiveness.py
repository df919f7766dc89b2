"""How well remediations work: effect outcomes per policy version, model version and action type,
with the resolved rate's 95% Wilson score interval and a time series for charts, and how long
each job's runs take (p50 and p95 of START to COMPLETE or FAIL).

An action falls in the bucket and range of its ``started_at``, in UTC; its outcome is that of
its latest effect (by ``observed_at``), ``pending`` while it has none. The resolved rate is
resolved over the actions with a verdict (resolved, unchanged or worsened): insufficient data
and unverifiable are no verdict, never a failure. An action or effect whose content the reader
may not see is counted in ``withheld`` and nowhere else. Plain Python (no numpy): the query
layer needs no extra.

Everything is read through :class:`~opslineage.query.Reader`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from opslineage.governance import Permission
from opslineage.query.contents import artifact_contents, recorded_time
from opslineage.query.reader import Reader

__all__ = [
    "INTERVALS",
    "OUTCOMES",
    "Z_95",
    "Counts",
    "Effectiveness",
    "Group",
    "Interval",
    "StageLatency",
    "effectiveness",
    "percentile",
    "wilson_interval",
]

Interval = Literal["hour", "day", "week"]
"""How a group's time series is bucketed: by UTC hour, day or ISO week (from Monday)."""
INTERVALS: tuple[Interval, ...] = get_args(Interval)
OUTCOMES = ("resolved", "unchanged", "worsened", "insufficient_data", "unverifiable", "pending")
"""The effect outcomes counted (those of EffectFacet), and ``pending``: no effect yet."""
_VERDICTS = ("resolved", "unchanged", "worsened")
Z_95 = 1.959964
"""The standard normal quantile of a two-sided 95% interval."""
_ENDS = ("COMPLETE", "FAIL")


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` in ``trials`` (None when there are none)."""
    if trials <= 0:
        return None
    share = successes / trials
    scale = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / scale
    half = z / scale * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of non-empty sorted values, interpolated linearly between ranks."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Counts:
    """Actions and their outcomes; the resolved rate over those with a verdict."""

    actions: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    def add(self, outcome: str) -> None:
        """Count one action of ``outcome``."""
        self.actions += 1
        self.outcomes[outcome] += 1

    @property
    def verdicts(self) -> int:
        """Actions whose effect is resolved, unchanged or worsened."""
        return sum(self.outcomes[name] for name in _VERDICTS)

    @property
    def resolved_rate(self) -> float | None:
        """Resolved over verdicts, None with no verdict."""
        return self.outcomes["resolved"] / self.verdicts if self.verdicts else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: actions, each outcome, verdicts, resolved_rate and its interval."""
        interval = wilson_interval(self.outcomes["resolved"], self.verdicts)
        return {
            "actions": self.actions,
            **self.outcomes,
            "verdicts": self.verdicts,
            "resolved_rate": self.resolved_rate,
            "lower": interval[0] if interval else None,
            "upper": interval[1] if interval else None,
        }


@dataclass
class Group:
    """The actions of one policy version, model version or action type: in all and per bucket."""

    key: str
    total: Counts = field(default_factory=Counts)
    buckets: dict[str, Counts] = field(default_factory=dict)

    def add(self, bucket: str, outcome: str) -> None:
        """Count one action of ``outcome`` started in ``bucket``."""
        self.total.add(outcome)
        self.buckets.setdefault(bucket, Counts()).add(outcome)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the key, the totals and ``series`` (one entry per bucket, in order)."""
        series = [{"bucket": name, **self.buckets[name].to_dict()} for name in sorted(self.buckets)]
        return {"key": self.key, **self.total.to_dict(), "series": series}


@dataclass(frozen=True)
class StageLatency:
    """How long one job's finished runs took, START to COMPLETE or FAIL, in seconds (0 when
    ``runs`` is 0: none has finished), and how many started but have not."""

    namespace: str
    job: str
    runs: int
    p50: float
    p95: float
    max: float
    unfinished: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "namespace": self.namespace,
            "job": self.job,
            "runs": self.runs,
            "p50": self.p50,
            "p95": self.p95,
            "max": self.max,
            "unfinished": self.unfinished,
        }


@dataclass(frozen=True)
class Effectiveness:
    """The answer: groups by policy, model and action type, and the stage latencies."""

    since: datetime | None
    until: datetime | None
    namespace: str | None
    interval: Interval
    groups: dict[str, list[Group]]
    latencies: list[StageLatency]
    withheld: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``GET /api/v1/effectiveness``)."""
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "namespace": self.namespace,
            "interval": self.interval,
            "groups": {name: [group.to_dict() for group in found] for name, found in self.groups.items()},
            "latencies": [latency.to_dict() for latency in self.latencies],
            "withheld": self.withheld,
        }


def effectiveness(
    reader: Reader,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    namespace: str | None = None,
    interval: Interval = "day",
) -> Effectiveness:
    """The effectiveness of the actions ``reader`` sees, started in [``since``, ``until``] (each
    when given, aware times), of ``namespace`` when given.

    Raises:
        ValueError: ``interval`` is not one of :data:`INTERVALS`, or a time has no offset.
        AccessDenied: the principal lacks ``analytics:read``.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if any(when is not None and when.utcoffset() is None for when in (since, until)):
        raise ValueError("since and until must be times with their UTC offset")
    with reader.operation("effectiveness"):
        reader.allow(Permission.READ_ANALYTICS, "effectiveness")
        outcomes, withheld = _latest_outcomes(reader, namespace)
        groups: dict[str, dict[str, Group]] = {"policy": {}, "model": {}, "action": {}}
        for record, content in artifact_contents(
            reader, reader.artifact_records("action", namespace=namespace)
        ):
            started = recorded_time(content.get("started_at"))
            if "redacted" in content or started is None:
                withheld += "redacted" in content
                continue
            if not _within(started, since, until):
                continue
            outcome = outcomes.get(record.id, "pending")
            bucket = bucket_of(started, interval)
            keys = {
                "policy": _version_name(content.get("policy")),
                "model": _version_name(content.get("model")),
                "action": str(content.get("type")),
            }
            for name, key in keys.items():
                groups[name].setdefault(key, Group(key)).add(bucket, outcome)
        return Effectiveness(
            since,
            until,
            namespace,
            interval,
            {name: [found[key] for key in sorted(found)] for name, found in groups.items()},
            _latencies(reader, since, until, namespace),
            withheld,
        )


def _latest_outcomes(reader: Reader, namespace: str | None) -> tuple[dict[str, str], int]:
    """Each action's (entity id) outcome, that of its latest effect; and the effects withheld."""
    latest: dict[str, tuple[str, str]] = {}
    withheld = 0
    for _, content in artifact_contents(reader, reader.artifact_records("effect", namespace=namespace)):
        if "redacted" in content:
            withheld += 1
            continue
        action, outcome = content.get("action"), content.get("outcome")
        if not isinstance(action, str) or outcome not in OUTCOMES:
            continue
        action_id = action if action.startswith("entity:") else f"entity:{action}"
        observed = str(content.get("observed_at") or "")
        if action_id not in latest or observed >= latest[action_id][0]:
            latest[action_id] = (observed, outcome)
    return {action: outcome for action, (_, outcome) in latest.items()}, withheld


def _latencies(
    reader: Reader, since: datetime | None, until: datetime | None, namespace: str | None
) -> list[StageLatency]:
    """Per job, the seconds from each run's START to its COMPLETE or FAIL (START in range)."""
    starts: dict[str, tuple[tuple[str, str], datetime]] = {}
    ends: dict[str, datetime] = {}
    after = 0
    while page := reader.event_page(after=after, limit=1000):
        after = page[-1].seq
        for stored in page:
            job = stored.event.get("job")
            when = recorded_time(stored.event_time)
            if stored.run_id is None or not isinstance(job, dict) or when is None:
                continue
            key = (str(job.get("namespace")), str(job.get("name")))
            if namespace not in (None, key[0]) or not reader.principal.covers(key[0]):
                continue
            if stored.event_type == "START":
                starts.setdefault(stored.run_id, (key, when))
            elif stored.event_type in _ENDS:
                ends.setdefault(stored.run_id, when)
    seconds: dict[tuple[str, str], list[float]] = {}
    unfinished: dict[tuple[str, str], int] = {}
    for run, (key, started) in starts.items():
        if _within(started, since, until):
            seconds.setdefault(key, [])
            if run in ends:
                seconds[key].append((ends[run] - started).total_seconds())
            else:
                unfinished[key] = unfinished.get(key, 0) + 1
    return [_latency(key, sorted(values), unfinished.get(key, 0)) for key, values in sorted(seconds.items())]


def _latency(job: tuple[str, str], ordered: list[float], unfinished: int) -> StageLatency:
    if not ordered:
        return StageLatency(*job, 0, 0.0, 0.0, 0.0, unfinished)
    p50, p95 = percentile(ordered, 0.5), percentile(ordered, 0.95)
    return StageLatency(*job, len(ordered), p50, p95, ordered[-1], unfinished)


def bucket_of(when: datetime, interval: Interval) -> str:
    """The start of the UTC hour, day or ISO week holding ``when``, as RFC 3339."""
    start = when.astimezone(UTC)
    if interval == "hour":
        start = start.replace(minute=0, second=0, microsecond=0)
    else:
        start = start.replace(hour=0, minute=0, second=0, microsecond=0)
        if interval == "week":
            start -= timedelta(days=start.weekday())
    return start.isoformat().replace("+00:00", "Z")


def _within(when: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or when >= since) and (until is None or when <= until)


def _version_name(node_id: object) -> str:
    """``name@version`` of a ``policy:name@version`` or ``model:name@version`` id."""
    text = str(node_id)
    return text.partition(":")[2] if text.startswith(("policy:", "model:")) else text


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
