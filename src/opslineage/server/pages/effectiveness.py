"""The effectiveness page: per policy version, model version and action type, how many actions
resolved their target's problem, left it unchanged or worsened it (and how many had too little data
or could not be verified), the resolved rate with its 95% Wilson interval, over time and as a table;
and the stage latencies per job. It draws :func:`opslineage.query.effectiveness.effectiveness`, the
answer of ``GET /api/v1/effectiveness``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response
from markupsafe import Markup

from opslineage.query.effectiveness import INTERVALS, OUTCOMES, Effectiveness, effectiveness
from opslineage.server.answers import ApiError
from opslineage.server.pages.charts import RatePoint, rate_chart
from opslineage.server.pages.render import render
from opslineage.server.pages.timeline import page_time

if TYPE_CHECKING:
    from opslineage.server.pages.routes import PageContext

__all__ = ["add_effectiveness_page"]

GROUPINGS = (("policy", "Policy versions"), ("model", "Model versions"), ("action", "Action types"))


def add_effectiveness_page(app: FastAPI, context: PageContext) -> None:
    """Add ``GET /effectiveness`` to ``app``."""

    @app.get("/effectiveness", include_in_schema=False)
    def effectiveness_page(
        request: Request,
        since: str | None = None,
        until: str | None = None,
        namespace: str | None = None,
        interval: str = "day",
    ) -> Response:
        if interval not in INTERVALS:
            raise ApiError(
                400, "invalid_request", f"interval must be one of {', '.join(INTERVALS)}", "interval"
            )
        start, end = page_time(since, "since"), page_time(until, "until")
        found = context.read(
            request,
            lambda reader: effectiveness(
                reader,
                since=start,
                until=end,
                namespace=namespace or None,
                interval=interval,
            ),
        )
        return render(
            request,
            "effectiveness.html",
            found=found,
            charts=_charts(found),
            groupings=GROUPINGS,
            outcomes=OUTCOMES,
            intervals=INTERVALS,
            since=since or "",
            until=until or "",
            namespace=namespace or "",
        )


def _charts(found: Effectiveness) -> dict[str, Markup]:
    """A rate chart per grouping: each group's resolved rate per period, with its interval."""
    charts = {}
    for name, title in GROUPINGS:
        groups = [
            (
                group.key,
                [
                    RatePoint(bucket, counts.resolved_rate, *_interval(counts.to_dict()))
                    for bucket, counts in sorted(group.buckets.items())
                ],
            )
            for group in found.groups.get(name, [])
        ]
        charts[name] = rate_chart(f"{title}: resolved rate per {found.interval}", groups)
    return charts


def _interval(figures: dict[str, object]) -> tuple[float | None, float | None]:
    lower, upper = figures.get("lower"), figures.get("upper")
    return (lower if isinstance(lower, float) else None, upper if isinstance(upper, float) else None)
