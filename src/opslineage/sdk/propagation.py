"""Lineage context across process boundaries: carrier headers out, context back in.

A caller :func:`inject` s the context in scope into the headers of an HTTP request or a NATS
message; the service that receives them runs its steps inside :func:`continued`, so a remediation
it executes is a child of the caller's run and is linked to the caller's decision. Three headers:

- ``traceparent``: W3C Trace Context, version ``00``; the trace-id is the run's UUID, the
  parent-id the first 16 hex digits of the SHA-256 of the run id, flags ``01``;
- ``openlineage-parent``: the OpenLineage ParentRunFacet fields as JSON,
  ``{"job":{"name","namespace"},"run":{"runId"}}``;
- ``opslineage-context``: base64url (unpadded) of the canonical JSON of the run, its job and the
  decision in scope (digest, dataset namespace and name, generating run, and the fields an
  action record copies from it).

Also owns the OpenTelemetry probe: :func:`inject_into_current_span` tags the recording span.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import Annotated, Any, Literal

import msgspec

from opslineage.model.canonical import canonical_json
from opslineage.model.facets import PRODUCER, DecisionFacet, schema_url
from opslineage.sdk.context import LineageContext, _current, current
from opslineage.sdk.refs import Artifact

__all__ = [
    "CONTEXT_HEADER",
    "PARENT_HEADER",
    "TRACEPARENT_HEADER",
    "continued",
    "extract",
    "inject",
    "inject_into_current_span",
]

TRACEPARENT_HEADER = "traceparent"
PARENT_HEADER = "openlineage-parent"
CONTEXT_HEADER = "opslineage-context"

log = logging.getLogger("opslineage")

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
_Digest = Annotated[str, msgspec.Meta(pattern="^sha256:[0-9a-f]{64}$")]


class _DecisionContent(msgspec.Struct, frozen=True):
    """The fields of a decision an action record keeps a copy of."""

    policy: _Text
    policy_digest: _Digest
    model: _Text
    prediction: _Digest
    features: _Digest


class _Decision(msgspec.Struct, frozen=True):
    digest: _Digest
    namespace: _Text
    name: _Text
    run_id: _Text
    content: _DecisionContent


class _Context(msgspec.Struct, frozen=True):
    """The ``opslineage-context`` payload, version 1."""

    v: Literal[1]
    run_id: _Text
    job_namespace: _Text
    job_name: _Text
    decision: _Decision | None = None


class _ParentRun(msgspec.Struct, frozen=True):
    runId: _Text  # noqa: N815 (the OpenLineage field name)


class _ParentJob(msgspec.Struct, frozen=True):
    namespace: _Text
    name: _Text


class _Parent(msgspec.Struct, frozen=True):
    run: _ParentRun
    job: _ParentJob


_CONTENT_FIELDS = _DecisionContent.__struct_fields__


def inject(headers: MutableMapping[str, str]) -> None:
    """Write the lineage context in scope into carrier headers (HTTP or NATS header dicts).

    Writes nothing when no step is running. A ``traceparent`` already in ``headers`` (one a
    tracing library wrote for a live trace) is kept; none is written for a run id that is not a
    UUID.

    Args:
        headers: the carrier, modified in place.
    """
    context = current()
    if context.run_id is None or context.job_namespace is None or context.job_name is None:
        return
    payload: dict[str, Any] = {
        "v": 1,
        "run_id": context.run_id,
        "job_namespace": context.job_namespace,
        "job_name": context.job_name,
    }
    decision = context.decision
    if decision is not None:
        content = decision.content
        payload["decision"] = {
            "digest": decision.digest,
            "namespace": decision.namespace,
            "name": decision.name,
            "run_id": decision.run_id,
            "content": {name: content.get(name) for name in _CONTENT_FIELDS},
        }
    parent = {
        "job": {"name": context.job_name, "namespace": context.job_namespace},
        "run": {"runId": context.run_id},
    }
    traceparent = _traceparent(context.run_id)
    if traceparent is not None and not any(key.lower() == TRACEPARENT_HEADER for key in headers):
        headers[TRACEPARENT_HEADER] = traceparent
    headers[PARENT_HEADER] = json.dumps(parent, sort_keys=True, separators=(",", ":"))
    headers[CONTEXT_HEADER] = base64.urlsafe_b64encode(canonical_json(payload)).rstrip(b"=").decode()


def extract(headers: Mapping[str, str]) -> LineageContext | None:
    """The lineage context carried by ``headers``, or None. Never raises.

    ``opslineage-context`` gives the run, its job and the decision in scope; without a valid one,
    ``openlineage-parent`` gives the run and its job. Header names match case-insensitively.

    Args:
        headers: the received headers (for a stdlib HTTP request, ``dict(handler.headers)``).
    """
    try:
        received = {str(key).lower(): value for key, value in headers.items()}
        return _from_context(received.get(CONTEXT_HEADER)) or _from_parent(received.get(PARENT_HEADER))
    except Exception:  # a probe never raises: anything malformed means no context
        log.debug("opslineage: ignoring malformed lineage headers", exc_info=True)
        return None


@contextmanager
def continued(headers: Mapping[str, str]) -> Iterator[LineageContext | None]:
    """Run a block in the lineage context carried by ``headers`` (restored on exit).

    Steps entered in the block are children of the sender's run, and an action is linked to the
    sender's decision. Without a context in the headers the block runs in the current one.

    Yields:
        The extracted context, or None.
    """
    context = extract(headers)
    if context is None:
        yield None
        return
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def inject_into_current_span() -> None:
    """Tag the recording OpenTelemetry span with the run in scope (``opslineage.run_id`` and
    ``opslineage.job`` as ``<namespace>:<name>``).

    Steps call this when they start, so a span shows the innermost step started inside it.
    Costs one cached import check when OpenTelemetry is not installed; never raises.
    """
    trace = _opentelemetry_trace()
    context = current()
    if trace is None or context.run_id is None:
        return
    try:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("opslineage.run_id", context.run_id)
            span.set_attribute("opslineage.job", f"{context.job_namespace}:{context.job_name}")
    except Exception:  # a probe never raises into the pipeline
        log.debug("opslineage: could not tag the current span", exc_info=True)


@cache
def _opentelemetry_trace() -> ModuleType | None:
    try:
        from opentelemetry import trace  # noqa: PLC0415 (optional dependency, imported once)
    except ImportError:
        return None
    return trace


def _traceparent(run_id: str) -> str | None:
    try:
        trace_id = uuid.UUID(run_id).hex
    except ValueError:
        return None
    if trace_id == "0" * 32:  # W3C: an all-zero trace-id is invalid
        return None
    parent_id = hashlib.sha256(run_id.encode()).hexdigest()[:16]
    return f"00-{trace_id}-{parent_id}-01"


def _from_context(value: str | None) -> LineageContext | None:
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        payload = msgspec.json.decode(raw, type=_Context)
    except (ValueError, TypeError):  # binascii.Error and msgspec errors are ValueErrors
        return None
    return LineageContext(
        run_id=payload.run_id,
        job_namespace=payload.job_namespace,
        job_name=payload.job_name,
        decision=_decision(payload.decision) if payload.decision else None,
    )


def _from_parent(value: str | None) -> LineageContext | None:
    if not value:
        return None
    try:
        parent = msgspec.json.decode(value, type=_Parent)
    except (ValueError, TypeError):
        return None
    return LineageContext(
        run_id=parent.run.runId, job_namespace=parent.job.namespace, job_name=parent.job.name
    )


def _decision(carried: _Decision) -> Artifact:
    """A reference to the sender's decision: its digest, and in ``content`` only the fields an
    action record copies (so it is an input to link to, never an output to re-publish)."""
    return Artifact(
        type="decision",
        digest=carried.digest,
        namespace=carried.namespace,
        name=carried.name,
        facet_key=DecisionFacet.key,
        facet={
            "_producer": PRODUCER,
            "_schemaURL": schema_url(DecisionFacet),
            **msgspec.structs.asdict(carried.content),
        },
        run_id=carried.run_id,
    )
