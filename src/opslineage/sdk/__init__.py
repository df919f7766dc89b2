"""The SDK pipelines import: the Tracer, its step handles, context propagation and transports.

Importing it loads only the model and the SDK itself: :class:`StoreTransport` (and with it the
store) is loaded when first named, ``NatsTransport`` lives in :mod:`opslineage.bus`.
"""

from typing import Any

from opslineage.sdk._emitter import MAX_BLOCK, DeliveryStatus, EmitterStats
from opslineage.sdk._spill import DEFAULT_SPILL_CAP, REPORT_INTERVAL, Spill, default_spill_dir
from opslineage.sdk.context import LineageContext, current
from opslineage.sdk.propagation import continued, extract, inject, inject_into_current_span
from opslineage.sdk.refs import Artifact, ModelRef, PolicyRef, SourceRef, code_version
from opslineage.sdk.tracer import Tracer
from opslineage.sdk.transports import (
    FileTransport,
    HttpTransport,
    MemoryTransport,
    NoopTransport,
    Transport,
    TransportError,
    TransportUnavailable,
)

__all__ = [
    "DEFAULT_SPILL_CAP",
    "MAX_BLOCK",
    "REPORT_INTERVAL",
    "Artifact",
    "DeliveryStatus",
    "EmitterStats",
    "FileTransport",
    "HttpTransport",
    "LineageContext",
    "MemoryTransport",
    "ModelRef",
    "NoopTransport",
    "PolicyRef",
    "SourceRef",
    "Spill",
    "StoreTransport",
    "Tracer",
    "Transport",
    "TransportError",
    "TransportUnavailable",
    "code_version",
    "continued",
    "current",
    "default_spill_dir",
    "extract",
    "inject",
    "inject_into_current_span",
]


def __getattr__(name: str) -> Any:
    """Load :class:`StoreTransport` (and the store) on first use."""
    if name == "StoreTransport":
        from opslineage.sdk._store_transport import StoreTransport  # noqa: PLC0415 (lazy by design)

        return StoreTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
