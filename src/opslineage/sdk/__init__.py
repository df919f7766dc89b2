"""The SDK pipelines import: the Tracer, its step handles, context propagation and transports.

Importing it loads only the model and the SDK itself: :class:`StoreTransport` (and with it the
store) is loaded when first named, ``NatsTransport`` lives in :mod:`opslineage.bus`.
"""

from typing import Any

from opslineage.sdk._emitter import DeliveryStatus, EmitterStats
from opslineage.sdk.context import LineageContext, current
from opslineage.sdk.propagation import continued, extract, inject, inject_into_current_span
from opslineage.sdk.refs import Artifact, ModelRef, PolicyRef, SourceRef, code_version
from opslineage.sdk.tracer import Tracer
from opslineage.sdk.transports import (
    FileTransport,
    MemoryTransport,
    NoopTransport,
    Transport,
    TransportError,
    TransportUnavailable,
)

__all__ = [
    "Artifact",
    "DeliveryStatus",
    "EmitterStats",
    "FileTransport",
    "LineageContext",
    "MemoryTransport",
    "ModelRef",
    "NoopTransport",
    "PolicyRef",
    "SourceRef",
    "StoreTransport",
    "Tracer",
    "Transport",
    "TransportError",
    "TransportUnavailable",
    "code_version",
    "continued",
    "current",
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
