"""Charts drawn as SVG on the server: a metric over time with the moments that matter marked on
it (the incident timeline), and rates with their intervals per period (effectiveness).

Shapes carry the meaning as well as colours (a triangle for a decision that fired, a circle for one
that did not, a diamond for an action, a square for its observed effect, a dashed line for a
version change), every mark is a link
with its description in its ``<title>``, and each chart sits beside a table of the same numbers,
so nothing is only visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup

__all__ = ["ChartMark", "RatePoint", "rate_chart", "time_chart"]

WIDTH, HEIGHT = 960, 230
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 26, 40
_TICKS = 6


@dataclass(frozen=True)
class ChartMark:
    """A moment marked on a time chart: when, its kind (the shape), where it links, what it was."""

    at: datetime
    kind: str  # snapshot, prediction, decision-fired, decision-held, action, effect, change
    href: str
    label: str


@dataclass(frozen=True)
class RatePoint:
    """One period of a rate chart: its name, the rate and its interval (None: no verdict)."""

    bucket: str
    rate: float | None
    lower: float | None
    upper: float | None


def time_chart(
    title: str,
    points: Sequence[tuple[datetime, float]],
    span: tuple[datetime, datetime],
    marks: Sequence[ChartMark] = (),
    threshold: float | None = None,
) -> Markup:
    """``points`` (time, value) as a line over ``span``, with ``marks`` and an optional
    ``threshold`` line, titled ``title``."""
    start, end = span
    seconds = max((end - start).total_seconds(), 1.0)
    values = [value for _, value in points] + ([threshold] if threshold is not None else [])
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high == low:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad

    def x(at: datetime) -> float:
        return LEFT + (at - start).total_seconds() / seconds * (WIDTH - LEFT - RIGHT)

    def y(value: float) -> float:
        return TOP + (high - value) / (high - low) * (HEIGHT - TOP - BOTTOM)

    parts = [_open(title), _frame()]
    for index in range(_TICKS + 1):
        value = low + (high - low) * index / _TICKS
        parts.append(
            Markup('<text class="tick" x="{:.0f}" y="{:.0f}" text-anchor="end">{}</text>').format(
                LEFT - 6, y(value) + 4, _number(value)
            )
        )
    for index in range(_TICKS + 1):
        at = start + (end - start) * index / _TICKS
        parts.append(
            Markup('<text class="tick" x="{:.0f}" y="{}" text-anchor="middle">{}</text>').format(
                x(at), HEIGHT - BOTTOM + 16, at.strftime("%H:%M" if seconds <= 2 * 86400 else "%m-%d %H:%M")
            )
        )
    if threshold is not None:
        parts.append(
            Markup(
                '<line class="threshold" x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}"><title>threshold {}</title></line>'
            ).format(LEFT, WIDTH - RIGHT, y(threshold), y(threshold), _number(threshold))
        )
    if points:
        path = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in points)
        parts.append(Markup('<polyline class="series" points="{}"/>').format(path))
    for mark in marks:
        parts.append(_mark(mark, x(mark.at)))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def rate_chart(title: str, groups: Sequence[tuple[str, Sequence[RatePoint]]]) -> Markup:
    """Each group's rate per period as a dot with its interval as a whisker, periods left to right,
    groups side by side within a period, titled ``title``."""
    buckets = sorted({point.bucket for _, found in groups for point in found})
    slot = (WIDTH - LEFT - RIGHT) / max(len(buckets), 1)
    step = slot / (len(groups) + 1)

    def y(value: float) -> float:
        return TOP + (1 - value) * (HEIGHT - TOP - BOTTOM)

    parts = [_open(title), _frame()]
    for index in range(5):
        value = index / 4
        parts.append(
            Markup('<text class="tick" x="{}" y="{:.0f}" text-anchor="end">{:.0%}</text>').format(
                LEFT - 6, y(value) + 4, value
            )
        )
    for index, bucket in enumerate(buckets):
        parts.append(
            Markup('<text class="tick" x="{:.0f}" y="{}" text-anchor="middle">{}</text>').format(
                LEFT + slot * (index + 0.5), HEIGHT - BOTTOM + 16, _period(bucket)
            )
        )
    at = LEFT + 320
    for number, (key, _) in enumerate(groups):
        parts.append(
            Markup(
                '<circle class="dot g{}" cx="{}" cy="12" r="5"/><text class="tick" x="{}" y="16">{}</text>'
            ).format(number % 6, at, at + 9, key)
        )
        at += 30 + 7 * len(key)
    for number, (key, found) in enumerate(groups):
        for point in found:
            if point.rate is None:
                continue
            cx = LEFT + slot * buckets.index(point.bucket) + step * (number + 1)
            label = f"{key}, {point.bucket}: {point.rate:.0%} resolved"
            if point.lower is not None and point.upper is not None:
                label += f" (95% interval {point.lower:.0%} to {point.upper:.0%})"
                parts.append(
                    Markup(
                        '<line class="whisker g{}" x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}"/>'
                    ).format(number % 6, cx, cx, y(point.lower), y(point.upper))
                )
            parts.append(
                Markup(
                    '<circle class="dot g{}" cx="{:.1f}" cy="{:.1f}" r="5"><title>{}</title></circle>'
                ).format(number % 6, cx, y(point.rate), label)
            )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _open(title: str) -> Markup:
    return Markup(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="group" viewBox="0 0 {w} {h}" '
        'width="{w}" height="{h}" aria-label="{t}"><text class="chart-title" x="{l}" y="16">{t}</text>'
    ).format(w=WIDTH, h=HEIGHT, l=LEFT, t=title)


def _frame() -> Markup:
    return Markup('<rect class="plot" x="{}" y="{}" width="{}" height="{}"/>').format(
        LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    )


def _mark(mark: ChartMark, at: float) -> Markup:
    top, bottom = TOP, HEIGHT - BOTTOM
    if mark.kind == "snapshot":
        shape = Markup('<line class="m-snapshot" x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2}"/>').format(
            at, bottom - 6, bottom
        )
    elif mark.kind == "prediction":
        shape = Markup('<circle class="m-prediction" cx="{:.1f}" cy="{}" r="2.5"/>').format(at, bottom - 12)
    elif mark.kind == "decision-fired":
        shape = Markup('<path class="m-fired" d="M{0:.1f},{1} l-6,10 h12 z"/>').format(at, top + 2)
    elif mark.kind == "decision-held":
        shape = Markup('<circle class="m-held" cx="{:.1f}" cy="{}" r="4"/>').format(at, top + 8)
    elif mark.kind == "effect":
        shape = Markup('<rect class="m-effect" x="{:.1f}" y="{}" width="10" height="10"/>').format(
            at - 5, top + 4
        )
    elif mark.kind == "action":
        shape = Markup(
            '<line class="m-action-line" x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2}"/>'
            '<path class="m-action" d="M{0:.1f},{3} l7,7 l-7,7 l-7,-7 z"/>'
        ).format(at, top, bottom, top + 14)
    else:  # a model or policy version change
        shape = Markup('<line class="m-change" x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2}"/>').format(
            at, top, bottom
        )
    return Markup('<a href="{}" class="mark {}"><title>{}</title>{}</a>').format(
        mark.href, mark.kind, mark.label, shape
    )


def _period(bucket: str) -> str:
    """An hour, day or week's RFC 3339 start, as short as it is clear: ``01-05 11:00`` or ``2026-01-05``."""
    day, _, clock = bucket.partition("T")
    return day if clock.startswith("00:00:00") else f"{day[5:]} {clock[:5]}"


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
