"""Judging an action's effect from a metric before and after it."""

from __future__ import annotations

from opslineage.model.facets import Outcome

__all__ = ["classify_effect"]


def classify_effect(
    before: float | None,
    after: float | None,
    *,
    samples_before: int,
    samples_after: int,
    healthy_below: float | None = None,
    min_samples: int = 3,
    tolerance: float = 0.05,
) -> Outcome:
    """Classify a remediation's effect on a metric where lower is better.

    Returns ``unverifiable`` when no metric covers the target (``before``/``after`` None),
    ``insufficient_data`` when either side has fewer than ``min_samples`` samples (never counted
    as success), ``resolved`` when the metric improved by more than ``tolerance`` and is back
    under ``healthy_below`` (when given), ``worsened`` when it rose by more than ``tolerance``,
    else ``unchanged``.
    """
    if before is None or after is None:
        return "unverifiable"
    if samples_before < min_samples or samples_after < min_samples:
        return "insufficient_data"
    healthy = healthy_below is None or after < healthy_below
    if healthy and after < before * (1 - tolerance):
        return "resolved"
    if after > before * (1 + tolerance):
        return "worsened"
    return "unchanged"
