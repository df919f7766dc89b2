"""The server's Prometheus metrics (``GET /metrics``) and the quality figures behind them.

Each app has its own :class:`ServerMetrics` with its own ``CollectorRegistry`` (never the global
one: several apps live in one process in the tests): events ingested by outcome, the latency of
requests per route, and, computed on scrape, the lineage's quality figures
(:mod:`opslineage.checks.quality`). Those read every action's why-chain, so they are cached for
``quality_cache`` seconds (30 by default) per reader and query: a scrape within that time shows
the figures of the previous one. The verification layers' figures come from
:attr:`ServerMetrics.correctness`: by default a pass of ``verify``'s judged layers over the
same scope, cached with the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from opslineage.checks.quality import FIGURES, Period, QualityReport, quality
from opslineage.checks.verify import correctness as judged_correctness
from opslineage.query import Reader
from opslineage.server.cache import Fresh

__all__ = ["PROMETHEUS_TEXT", "Correctness", "LatencyMiddleware", "ServerMetrics"]

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of ``/metrics``: the text format every Prometheus server reads."""

Correctness = Callable[[Reader, str | None, datetime | None], Mapping[str, tuple[int, int]]]
"""What the verifier provides: passed and total checks per verification layer, as one reader sees."""

_CACHE_ENTRIES = 64  # distinct (reader, query) keys remembered; the oldest is dropped past that
_QueryKey = tuple[str, str | None, str | None, str | None]


class ServerMetrics:
    """One app's metrics and its cache of quality figures.

    Args:
        quality_cache: seconds a computed quality report is served again (0: never).
    """

    def __init__(self, quality_cache: float = 30.0) -> None:
        self.registry = CollectorRegistry()
        self.ingested = Counter(
            "opslineage_ingest_events",
            "Events the HTTP ingest routes received, by outcome (accepted, duplicate, rejected)",
            ["outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "opslineage_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route (its path template)",
            ["method", "route"],
            registry=self.registry,
        )
        for outcome in ("accepted", "duplicate", "rejected"):
            self.ingested.labels(outcome)
        self.correctness: Correctness | None = judged_correctness
        """Each judged layer's passed and total checks for a reader, namespace and since, shown in
        quality and ``/metrics``; None leaves them out."""
        self._cache: Fresh[_QueryKey, QualityReport] = Fresh(quality_cache, _CACHE_ENTRIES)

    def count_ingest(self, accepted: int = 0, duplicates: int = 0, rejected: int = 0) -> None:
        """Count events received by the ingest routes."""
        for outcome, events in (("accepted", accepted), ("duplicate", duplicates), ("rejected", rejected)):
            if events:
                self.ingested.labels(outcome).inc(events)

    def quality(
        self,
        reader: Reader,
        *,
        namespace: str | None = None,
        since: datetime | None = None,
        by: Period | None = None,
    ) -> QualityReport:
        """The quality report for ``reader`` and the query, from the cache while it is fresh."""
        key = (reader.principal.id, namespace, since.isoformat() if since else None, by)

        def compute() -> QualityReport:
            correctness = self.correctness(reader, namespace, since) if self.correctness is not None else None
            return quality(reader, namespace=namespace, since=since, by=by, correctness=correctness)

        return self._cache.get(key, compute)

    def exposition(self, reader: Reader) -> bytes:
        """The Prometheus text of every metric, the quality figures as ``reader`` sees them."""
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_QualityCollector(self.quality(reader)))
        return generate_latest(self.registry) + generate_latest(scrape)


class _QualityCollector:
    """The gauges of one quality report, collected once per scrape."""

    def __init__(self, report: QualityReport) -> None:
        self.report = report

    def collect(self) -> list[Metric]:
        families = []
        for figure, meaning in FIGURES.items():
            ratio = GaugeMetricFamily(
                f"opslineage_{figure}_ratio",
                f"Share of {meaning}, per namespace (absent: no items)",
                labels=["namespace"],
            )
            for coverage in self.report.namespaces:
                value = coverage.figures[figure].value
                if value is not None:
                    ratio.add_metric([coverage.namespace or ""], value)
            families.append(ratio)
        for part in ("numerator", "denominator"):
            gauge = GaugeMetricFamily(
                f"opslineage_quality_{part}",
                f"The {part} of each coverage figure, per namespace",
                labels=["namespace", "figure"],
            )
            for coverage in self.report.namespaces:
                for figure, counted in coverage.figures.items():
                    gauge.add_metric([coverage.namespace or "", figure], getattr(counted, part))
            families.append(gauge)
        findings = GaugeMetricFamily(
            "opslineage_verify_findings_total",
            "Checks of each verification layer that failed, as of the last verification",
            labels=["layer"],
        )
        passing = GaugeMetricFamily(
            "opslineage_verify_checks_passed_ratio",
            "Share of each verification layer's checks that pass",
            labels=["layer"],
        )
        for layer, ratio_of in (self.report.correctness or {}).items():
            findings.add_metric([layer], ratio_of.denominator - ratio_of.numerator)
            if ratio_of.value is not None:
                passing.add_metric([layer], ratio_of.value)
        return [*families, findings, passing]


class LatencyMiddleware:
    """ASGI middleware timing every HTTP request into ``metrics.latency``, labelled by the route's
    path template (``unmatched`` for a path no route has), so ids in paths add no series.

    Args:
        app: the application it wraps.
        metrics: where the times go.
        routes: the routes of the app, to name the one a request matched.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, routes: list[BaseRoute]) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request, and time it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.metrics.latency.labels(scope["method"], self._route(scope)).observe(
                time.perf_counter() - start
            )

    def _route(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return str(getattr(route, "path", "unmatched"))
        return "unmatched"
