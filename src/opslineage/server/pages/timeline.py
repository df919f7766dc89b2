"""The incident timeline page: one target's metrics over a time range, with its snapshots,
predictions (score against the model's threshold), decisions fired and not fired, actions with
their effects and the moments a model or policy version changed, each a link to its node. It
draws :func:`opslineage.query.timeline.timeline`, the answer of ``GET /api/v1/timeline``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response
from markupsafe import Markup

from opslineage.query.contents import recorded_time
from opslineage.query.timeline import Mark, Timeline, targets, timeline
from opslineage.server.answers import ApiError
from opslineage.server.pages.charts import ChartMark, time_chart
from opslineage.server.pages.render import node_url, remediation_url, render

if TYPE_CHECKING:
    from opslineage.server.pages.routes import PageContext

__all__ = ["add_timeline_page", "page_time"]

_KINDS = {"decision": "decision", "action": "action", "model_change": "change", "policy_change": "change"}


def page_time(text: str | None, field: str) -> datetime | None:
    """A time from a page's form: RFC 3339, or a browser's ``datetime-local`` value (read as UTC).

    Raises:
        ApiError: (400) it is neither.
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_request", f"{field} {text!r} is not a date and time", field) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def add_timeline_page(app: FastAPI, context: PageContext) -> None:
    """Add ``GET /timeline`` to ``app``."""

    @app.get("/timeline", include_in_schema=False)
    def timeline_page(
        request: Request, target: str | None = None, since: str | None = None, until: str | None = None
    ) -> Response:
        start, end = page_time(since, "since"), page_time(until, "until")
        if start is not None and end is not None and end < start:
            raise ApiError(400, "invalid_request", "until is before since", "until")
        if not target:
            return render(request, "timeline.html", target=None, targets=context.read(request, targets))
        found = context.read(request, lambda reader: timeline(reader, target, since=start, until=end))
        return render(
            request,
            "timeline.html",
            target=target,
            targets=[],
            found=found,
            charts=_charts(found),
            href_of=href_of,
            describe=describe,
        )


def _charts(found: Timeline) -> list[Markup]:
    """A chart per metric with the decisions, actions and version changes marked on it, and one
    of the predictions' scores against the model's threshold, with the snapshots marked."""
    if found.since is None or found.until is None:
        return []
    span = (found.since, max(found.until, found.since + timedelta(minutes=1)))
    marks = [_chart_mark(mark) for mark in found.marks if mark.kind in _KINDS]
    marks += [effect for mark in found.marks if (effect := _effect_mark(mark)) is not None]
    charts = [
        time_chart(series.metric, [(at, value) for at, value, _ in series.points], span, marks)
        for series in found.series
    ]
    predictions = [
        mark
        for mark in found.marks
        if mark.kind == "prediction" and isinstance(mark.fields.get("score"), int | float)
    ]
    if predictions:
        thresholds = [
            mark.fields["threshold"] for mark in predictions if mark.fields.get("threshold") is not None
        ]
        scored = [(mark.at, float(mark.fields["score"])) for mark in predictions]
        moments = [_chart_mark(mark) for mark in found.marks if mark.kind in ("snapshot", "prediction")]
        charts.append(
            time_chart("prediction score", scored, span, moments, thresholds[-1] if thresholds else None)
        )
    return charts


def _chart_mark(mark: Mark) -> ChartMark:
    kind = _KINDS.get(mark.kind, mark.kind)
    if mark.kind == "decision":
        kind = "decision-fired" if mark.fields.get("fired") else "decision-held"
    return ChartMark(mark.at, kind, href_of(mark), describe(mark))


def _effect_mark(mark: Mark) -> ChartMark | None:
    """An action's observed effect, marked when it was observed (None: none observed yet)."""
    effect = mark.fields.get("effect") if mark.kind == "action" else None
    observed = recorded_time(effect.get("observed_at")) if isinstance(effect, dict) else None
    if not isinstance(effect, dict) or observed is None:
        return None
    change = ""
    if effect.get("metric") and effect.get("before") is not None and effect.get("after") is not None:
        change = f": {effect['metric']} {effect['before']:.4g} → {effect['after']:.4g}"
    when = observed.strftime("%Y-%m-%d %H:%M:%S UTC")
    return ChartMark(
        observed, "effect", node_url(str(effect["id"])), f"{when}: effect {effect.get('outcome')}{change}"
    )


def href_of(mark: Mark) -> str:
    """Where a mark links: an action's remediation page, else its node's page."""
    if mark.kind == "action" and mark.fields.get("run"):
        return remediation_url(str(mark.fields["run"]))
    return node_url(mark.id)


def describe(mark: Mark) -> str:
    """A mark in words, for its tooltip and the table."""
    when = mark.at.strftime("%Y-%m-%d %H:%M:%S UTC")
    fields = mark.fields
    if mark.kind == "decision":
        verdict = (
            "fired"
            if fields.get("fired")
            else f"did not fire{' (' + str(fields['held_back']) + ')' if fields.get('held_back') else ''}"
        )
        return f"{when}: decision of {fields.get('policy')} {verdict}"
    if mark.kind == "action":
        effect = fields.get("effect") or {}
        outcome = f", effect {effect.get('outcome')}" if effect else ", no effect observed yet"
        return f"{when}: action {fields.get('type')} {fields.get('status')}{outcome}"
    if mark.kind.endswith("_change"):
        return f"{when}: {mark.kind.replace('_', ' ')} {fields.get('from') or '(none)'} → {fields.get('to')}"
    if mark.kind == "prediction":
        return f"{when}: prediction {fields.get('score')} ({fields.get('label')})"
    return f"{when}: snapshot of {fields.get('rows')} row(s)"
