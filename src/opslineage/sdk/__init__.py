"""The SDK pipelines import: the Tracer, its step handles, context propagation and transports."""

from opslineage.sdk.context import LineageContext, current
from opslineage.sdk.propagation import continued, extract, inject, inject_into_current_span
from opslineage.sdk.refs import Artifact, ModelRef, PolicyRef, SourceRef, code_version
from opslineage.sdk.tracer import Tracer
from opslineage.sdk.transports import (
    FileTransport,
    MemoryTransport,
    NoopTransport,
    StoreTransport,
    Transport,
    TransportError,
)

__all__ = [
    "Artifact",
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
    "code_version",
    "continued",
    "current",
    "extract",
    "inject",
    "inject_into_current_span",
]
