"""The analytics routes of the HTTP API: how well remediations work (``/api/v1/effectiveness``),
one target's incident timeline (``/api/v1/timeline``) and the targets there are
(``/api/v1/targets``). Each reads through the caller's :class:`~opslineage.query.Reader`, so
access control, redaction and the access audit apply; a bad parameter is a 400 naming it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import Response

from opslineage.query.effectiveness import INTERVALS, Interval, effectiveness
from opslineage.query.timeline import targets, timeline
from opslineage.server.answers import ApiError, Reads, Since, Until, error_responses, json_response, rfc3339

__all__ = ["analytics_routes"]

_T = TypeVar("_T")


def analytics_routes(app: FastAPI, context: Reads) -> None:
    """Add the effectiveness, timeline and targets routes to ``app``."""

    @app.get("/api/v1/effectiveness", tags=["query"], responses=error_responses(400, 503))
    def effectiveness_figures(
        request: Request,
        since: Since = None,
        until: Until = None,
        namespace: str | None = None,
        interval: str = "day",
    ) -> Response:
        """Effect outcomes of the actions started in the range, per policy version, model version
        and action type (with the resolved rate's 95% Wilson interval and a series by ``interval``:
        hour, day or week), and per job the p50/p95 seconds of its runs (see docs/analytics.md)."""
        start, end = _range(since, until)
        if interval not in INTERVALS:
            raise ApiError(
                400,
                "invalid_request",
                f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}",
                "interval",
            )
        chosen: Interval = interval
        return json_response(
            context.read(
                request,
                lambda r: effectiveness(
                    r, since=start, until=end, namespace=namespace, interval=chosen
                ).to_dict(),
            )
        )

    @app.get("/api/v1/timeline", tags=["query"], responses=error_responses(400, 503))
    def incident_timeline(
        request: Request, target: str | None = None, since: Since = None, until: Until = None
    ) -> Response:
        """One target's metric series and its snapshots, predictions, decisions, actions with their
        effects and model or policy version changes, in time order; without ``target``, the
        targets there are."""
        start, end = _range(since, until)
        if target is None:
            return json_response({"target": None, "targets": context.read(request, targets)})
        if not target.strip():
            raise ApiError(400, "invalid_request", "target: must not be blank", "target")
        return json_response(
            context.read(request, lambda r: timeline(r, target, since=start, until=end).to_dict())
        )

    @app.get("/api/v1/targets", tags=["query"], responses=error_responses(503))
    def timeline_targets(request: Request) -> Response:
        """Every target (service) the artifacts the caller sees name, sorted."""
        return json_response({"targets": context.read(request, targets)})


def _range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` parsed, each when given.

    Raises:
        ApiError: (400) one is not an RFC 3339 date-time, or ``until`` is before ``since``.
    """
    start = rfc3339(since, "since") if since is not None else None
    end = rfc3339(until, "until") if until is not None else None
    if start is not None and end is not None and end < start:
        raise ApiError(400, "invalid_request", f"until {until!r} is before since {since!r}", "until")
    return start, end
