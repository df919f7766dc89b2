"""Quality metrics of the lineage (R15): how much of it is there, per namespace and per period,
and how much of it the verification layers find right.

Coverage, each figure a share with its numerator and denominator (see :data:`FIGURES`): of
actions whose why-chain is complete down to registered sources, of predictions that record their
model's digest, of feature sets whose transform records a code version, of actions with an
effect record, and of effects with a verdict. An item falls in the period of the time its own
step recorded (an action's ``started_at``, a prediction's ``predicted_at``, a feature set's
``computed_at``, an effect's ``observed_at``), in UTC. An artifact known only from a reference
(its content never recorded) is not an item: the chains that need it count as incomplete.
Correctness is the share of each verification layer's checks that pass, given by the verifier.
A share of no items is "no data" (``None``), never 1.0 or 0.0.

Everything is read through :class:`~opslineage.query.Reader`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from opslineage.query import NotFound, Reader
from opslineage.query.contents import CHUNK, artifact_contents, recorded_time
from opslineage.store import NodeRecord

__all__ = ["FIGURES", "PERIODS", "UNDATED", "Coverage", "Period", "QualityReport", "Ratio", "quality"]

Period = Literal["day", "week"]
"""How figures can be split in time: by UTC day or by ISO week."""
PERIODS: tuple[Period, ...] = ("day", "week")
"""The periods figures can be split by."""

FIGURES: dict[str, str] = {
    "chain_coverage": "actions whose why-chain is complete down to registered sources",
    "model_digest_coverage": "predictions that record the digest of their model",
    "code_version_coverage": "feature sets whose transform records a code version",
    "effect_coverage": "actions with an effect record",
    "verdict_coverage": "effects with a verdict (not insufficient_data or unverifiable)",
}
"""Each coverage figure's name and what it is the share of."""

_NO_VERDICT = frozenset({"insufficient_data", "unverifiable"})
_TIME_FIELD = {
    "action": "started_at",
    "prediction": "predicted_at",
    "feature": "computed_at",
    "effect": "observed_at",
}
UNDATED = "undated"
"""The period of an item whose recorded time is missing or not an ISO 8601 time."""


@dataclass(frozen=True, slots=True)
class Ratio:
    """A share: ``numerator`` of ``denominator`` items."""

    numerator: int = 0
    denominator: int = 0

    @property
    def value(self) -> float | None:
        """The share, or None when there are no items (no data)."""
        return self.numerator / self.denominator if self.denominator else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: numerator, denominator and ratio (null: no data)."""
        return {"numerator": self.numerator, "denominator": self.denominator, "ratio": self.value}


@dataclass(frozen=True, slots=True)
class Coverage:
    """The coverage figures of one namespace (None: all) over one period (None: the whole time)."""

    namespace: str | None
    period: str | None
    figures: dict[str, Ratio]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        answer: dict[str, Any] = {}
        if self.namespace is not None:
            answer["namespace"] = self.namespace
        if self.period is not None:
            answer["period"] = self.period
        answer["figures"] = {name: ratio.to_dict() for name, ratio in self.figures.items()}
        return answer


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Coverage in total, per namespace and (with ``by``) per namespace and period; correctness
    per verification layer when it was given."""

    since: datetime | None
    by: Period | None
    total: Coverage
    namespaces: list[Coverage]
    periods: list[Coverage] = field(default_factory=list)
    correctness: dict[str, Ratio] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``quality --json`` and ``GET /api/v1/quality``)."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "by": self.by,
            "total": self.total.to_dict()["figures"],
            "namespaces": [coverage.to_dict() for coverage in self.namespaces],
            "periods": [coverage.to_dict() for coverage in self.periods],
            "correctness": (
                None
                if self.correctness is None
                else {layer: ratio.to_dict() for layer, ratio in self.correctness.items()}
            ),
        }


class _Tally:
    """Hits and items counted per (namespace, period, figure)."""

    def __init__(self, by: Period | None) -> None:
        self.by = by
        self.counts: dict[tuple[str, str | None, str], list[int]] = {}
        self.namespaces: set[str] = set()

    def add(self, namespace: str, when: datetime | None, figure: str, hit: bool) -> None:
        self.namespaces.add(namespace)
        keys: list[tuple[str, str | None, str]] = [(namespace, None, figure)]
        if self.by is not None:
            keys.append((namespace, _period(when, self.by), figure))
        for key in keys:
            count = self.counts.setdefault(key, [0, 0])
            count[0] += hit
            count[1] += 1

    def coverage(self, namespace: str | None, period: str | None) -> Coverage:
        names = sorted(self.namespaces) if namespace is None else [namespace]
        figures = {}
        for figure in FIGURES:
            counts = [self.counts.get((ns, period, figure), [0, 0]) for ns in names]
            figures[figure] = Ratio(sum(hits for hits, _ in counts), sum(items for _, items in counts))
        return Coverage(namespace, period, figures)


def quality(
    reader: Reader,
    *,
    namespace: str | None = None,
    since: datetime | None = None,
    by: Period | None = None,
    correctness: Mapping[str, tuple[int, int]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> QualityReport:
    """The quality figures of what ``reader`` sees.

    Args:
        reader: the read path, for its principal.
        namespace: only this namespace's artifacts (default: every namespace, each on its own).
        since: only items whose recorded time is at or after this (aware) time.
        by: also split the figures by ``day`` or ISO ``week`` of the items' recorded times.
        correctness: passed and total checks per verification layer, from the verifier.
        on_progress: called with (items done, items in all) as the work goes.

    Raises:
        ValueError: ``by`` is not a period, ``since`` has no offset, or a correctness figure is
            not 0 <= passed <= total.
    """
    if by is not None and by not in PERIODS:
        raise ValueError(f"by must be one of {', '.join(PERIODS)}, not {by!r}")
    if since is not None and since.utcoffset() is None:
        raise ValueError("since must be a time with its UTC offset")
    checked = None if correctness is None else _correctness(correctness)
    tally = _Tally(by)
    if namespace is not None:
        tally.namespaces.add(namespace)
    work = {node_type: reader.artifact_records(node_type, namespace=namespace) for node_type in _TIME_FIELD}
    total, done = sum(map(len, work.values())), 0
    for node_type, records in work.items():
        for record, content in artifact_contents(reader, records):
            when = recorded_time(content.get(_TIME_FIELD[node_type]))
            if since is None or (when is not None and when >= since):
                _count(tally, reader, node_type, record, content, when)
            done += 1
            if on_progress is not None and (done % CHUNK == 0 or node_type == "action"):
                on_progress(done, total)
    if on_progress is not None:
        on_progress(total, total)
    namespaces = sorted(tally.namespaces)
    periods = sorted({period for _, period, _ in tally.counts if period is not None})
    return QualityReport(
        since=since,
        by=by,
        total=tally.coverage(None, None),
        namespaces=[tally.coverage(ns, None) for ns in namespaces],
        periods=[
            coverage
            for ns in namespaces
            for period in periods
            if any((coverage := tally.coverage(ns, period)).figures[f].denominator for f in FIGURES)
        ],
        correctness=checked,
    )


def _count(
    tally: _Tally,
    reader: Reader,
    node_type: str,
    record: NodeRecord,
    content: dict[str, Any],
    when: datetime | None,
) -> None:
    """Count one artifact in the figures it is an item of."""
    namespace = record.namespace or ""
    if node_type == "action":
        try:
            chain = reader.why(record.id)
        except NotFound:  # recorded as an action, but nothing of its chain resolves
            complete, effects = False, False
        else:
            complete, effects = chain.complete, bool(chain.effects)
        tally.add(namespace, when, "chain_coverage", complete)
        tally.add(namespace, when, "effect_coverage", effects)
    elif node_type == "prediction":
        tally.add(namespace, when, "model_digest_coverage", _given(content.get("model_digest")))
    elif node_type == "feature":
        transform = content.get("transform")
        version = transform.get("code_version") if isinstance(transform, dict) else None
        tally.add(namespace, when, "code_version_coverage", _given(version))
    else:
        tally.add(namespace, when, "verdict_coverage", _given(content.get("outcome"), _NO_VERDICT))


def _given(value: object, unset: frozenset[str] = frozenset()) -> bool:
    """Whether ``value`` is a non-blank string that is not one of ``unset``."""
    return isinstance(value, str) and bool(value.strip()) and value not in unset


def _period(when: datetime | None, by: Period) -> str:
    """The day (``2026-01-05``) or ISO week (``2026-W02``) of ``when``."""
    if when is None:
        return UNDATED
    if by == "day":
        return when.date().isoformat()
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def _correctness(figures: Mapping[str, tuple[int, int]]) -> dict[str, Ratio]:
    """Correctness figures as ratios, checked."""
    checked = {}
    for layer, (passed, total) in figures.items():
        if not 0 <= passed <= total:
            raise ValueError(f"correctness of layer {layer!r}: {passed} passed of {total} checks")
        checked[layer] = Ratio(passed, total)
    return checked
