"""Lineage context that flows through ``contextvars``: the current run and the artifacts it made.

Code running inside a step (also in threads or tasks started with a copied context) sees the
enclosing run as its parent and the latest decision, prediction and feature set as its inputs.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from opslineage.sdk.refs import Artifact

__all__ = ["LineageContext", "current"]


@dataclass(frozen=True)
class LineageContext:
    """What is in scope: the running step and the artifacts made so far in enclosing steps."""

    run_id: str | None = None
    job_namespace: str | None = None
    job_name: str | None = None
    features: Artifact | None = None
    prediction: Artifact | None = None
    decision: Artifact | None = None


_EMPTY = LineageContext()
_current: ContextVar[LineageContext] = ContextVar("opslineage_lineage", default=_EMPTY)


def current() -> LineageContext:
    """The lineage context of the calling code."""
    return _current.get()
