"""The :class:`Tracer`: what a pipeline imports to record lineage, a few lines per step.

::

    tracer = Tracer("aiops.prod", store="sqlite:///lineage.db")
    with tracer.ingest(source) as step:
        snapshot = step.snapshot(rows, fields, start, end)
    with tracer.features(rolling, [snapshot], subject="svc-01") as step:
        features = step.feature_set(values, start, end)
    with tracer.inference(model, features, subject="svc-01") as step:
        prediction = step.prediction(score, label)
    with tracer.evaluate(policy, prediction, subject="svc-01") as step:
        decision = step.decide(fired=True, rationale="cpu over 90 for 15 min", breaches=[...])
        with tracer.action("scale_out", target="svc-01") as action:   # linked to the decision in scope
            ...
    with tracer.observe_effect(action.record) as step:
        step.effect("resolved", start, end, metric="cpu", before=97.0, after=61.0)

Recording never blocks on I/O and never raises into the pipeline: events go through a bounded
buffer to a background writer (``sync=True`` writes on the caller's thread, for tests). A store
given by URL is opened by the writer, so a store that is down, locked or a URL that is wrong is
retried with backoff, spilled to a bounded file meanwhile, and reported by :meth:`Tracer.status`,
never raised.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from opslineage.model import facets as facet_classes
from opslineage.model.code import identify
from opslineage.model.facets import (
    PRODUCER,
    BaselineFacet,
    HoldFacet,
    LabelFacet,
    OwnersFacet,
    PolicyFacet,
    RetentionFacet,
    RulesFacet,
    ShredFacet,
    SourceFacet,
    Transform,
    schema_url,
)
from opslineage.sdk._emitter import MAX_BLOCK, DeliveryStatus, Emitter, EmitterStats, EventItem
from opslineage.sdk._spill import DEFAULT_SPILL_CAP
from opslineage.sdk.context import active_capture, current
from opslineage.sdk.refs import Artifact, ModelRef, PolicyRef, SourceRef, code_version, model_facet
from opslineage.sdk.steps import (
    ActionStep,
    EffectStep,
    FeaturesStep,
    InferenceStep,
    IngestStep,
    PolicyStep,
    Step,
    TrainStep,
)
from opslineage.sdk.transports import MemoryTransport, NoopTransport, Transport, sink_of

if TYPE_CHECKING:
    from opslineage.store import Store

__all__ = ["Tracer", "new_run_id"]

F = TypeVar("F", bound=Callable[..., Any])


class Tracer:
    """Records the lineage of an AIOps pipeline as OpenLineage events.

    Args:
        namespace: the OpenLineage namespace of this pipeline's jobs and artifacts.
        store: a store URL or :class:`Store` to write to directly (a URL is opened by the
            writer on first delivery; failing to open it is retried, never raised).
        transport: any transport instead (file, memory, your own); default: discard.
        agent: the name of the service running the pipeline (recorded as executor).
        sync: emit on the caller's thread instead of the background writer.
        clock: returns the current time (UTC); inject one for simulations.
        run_ids: returns a new run UUID string; inject one for reproducible runs.
        queue_size: events buffered in memory at most; from half of it, and whenever the
            transport is unavailable, the buffer is moved to the spill.
        drop_when_full: drop (and count) the newest event at once when the buffer is full.
        max_block: seconds a step waits at most for room when the buffer is full all the same
            (default 0.1); then the newest event is dropped and counted. None: wait as long as the
            transport keeps delivering, for a batch job that must record everything (with
            ``spill_cap=0`` it then never spills either).
        spill_dir: where undelivered events wait on disk (default
            ``$XDG_CACHE_HOME/opslineage/spill``); files of this namespace and sink (the transport's
            ``sink``: a store URL, an endpoint) left there by a process that ended are delivered
            by this tracer.
        spill_cap: bytes the spill holds at most (default 64 MiB); past it the oldest spilled
            events are evicted and counted. 0: no spill.
    """

    def __init__(
        self,
        namespace: str = "default",
        *,
        store: Store | str | None = None,
        transport: Transport | None = None,
        agent: str = "opslineage-sdk",
        sync: bool = False,
        clock: Callable[[], datetime] | None = None,
        run_ids: Callable[[], str] | None = None,
        queue_size: int = 10_000,
        drop_when_full: bool = False,
        max_block: float | None = MAX_BLOCK,
        spill_dir: str | Path | None = None,
        spill_cap: int = DEFAULT_SPILL_CAP,
    ) -> None:
        if store is not None and transport is not None:
            raise ValueError("give a store or a transport, not both")
        capture = active_capture()
        if capture is not None and transport is not capture:
            store, transport, sync = None, capture, True
        if transport is None:
            transport = _store_transport(store, agent) if store is not None else NoopTransport()
        self.namespace = namespace
        self.agent = agent
        self.producer = PRODUCER
        self.clock = clock or (lambda: datetime.now(UTC))
        self.new_run_id = run_ids or new_run_id
        self.transport = transport
        self.last_snapshot: dict[str, tuple[str, str]] = {}
        self._emitter = Emitter(
            transport,
            sync=sync,
            queue_size=queue_size,
            drop_when_full=drop_when_full,
            max_block=max_block,
            spill_dir=spill_dir,
            spill_name=f"{namespace}-{hashlib.sha256(sink_of(transport).encode()).hexdigest()[:12]}",
            spill_cap=spill_cap,
        )

    @classmethod
    def in_memory(cls, namespace: str = "test", **options: Any) -> Tracer:
        """A synchronous tracer that keeps its events in ``tracer.transport.events`` (for tests)."""
        return cls(namespace, transport=MemoryTransport(), sync=True, **options)

    @property
    def stats(self) -> EmitterStats:
        """How many events were emitted, refused, retried, spilled, evicted or dropped."""
        return self._emitter.stats

    def status(self) -> DeliveryStatus:
        """Where this tracer's events stand: delivered, pending, dropped, refused, the last error."""
        return self._emitter.status()

    def emit(self, event: EventItem) -> None:
        """Hand one OpenLineage event (or a callable that builds it) to the transport, without
        blocking on I/O; a callable is called on the writer thread."""
        self._emitter.emit(event)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every recorded event has been handed to the transport (also those in the
        spill); False when ``timeout`` seconds passed first."""
        return self._emitter.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is pending, spill what is left and release the transport.

        Without a timeout, delivery goes on while the transport takes events, and what is left
        once it is unavailable is spilled. With one, close returns within about ``timeout``
        seconds whatever the transport does, spilling what is left (a batch the transport
        still held may then be delivered twice).
        """
        self._emitter.close(timeout)

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def timestamp(when: datetime) -> str:
        """ISO 8601 UTC with milliseconds, as events carry times."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    @staticmethod
    def schema_url(facet_name: str) -> str:
        """The ``_schemaURL`` of one of our facets, by class name."""
        return schema_url(getattr(facet_classes, facet_name))

    # Versioned things pipelines refer to.

    def source(
        self,
        name: str,
        *,
        namespace: str | None = None,
        owner: str | None = None,
        kind: str = "metrics",
        description: str | None = None,
    ) -> SourceRef:
        """A telemetry source (recorded when first ingested from)."""
        namespace = namespace or self.namespace
        facet = SourceFacet(source_id=f"{namespace}:{name}", kind=kind, owner=owner, description=description)
        return SourceRef(namespace, name, facet)

    def model(
        self,
        name: str,
        version: str,
        artifact: bytes,
        framework: str,
        parameters: dict[str, Any] | None = None,
        trained_at: datetime | None = None,
        scorer: str | None = None,
        keep_artifact: bool = False,
    ) -> ModelRef:
        """A model version whose artifact bytes are ``artifact`` (recorded when first used).

        ``scorer`` is the entry point (``module:qualname``) of a deterministic function
        ``(artifact: bytes, values: dict[str, float]) -> (score, label)``; with it and
        ``keep_artifact`` (the bytes recorded too), ``verify`` scores each recorded feature set
        again and compares.
        """
        stamp = self.timestamp(trained_at) if trained_at else None
        facet = model_facet(name, version, artifact, framework, parameters, stamp, scorer, keep_artifact)
        return ModelRef(self.namespace, facet)

    def policy(
        self,
        name: str,
        version: str,
        *,
        rule: str,
        thresholds: dict[str, float],
        action: str,
        params: dict[str, Any] | None = None,
        risk_class: str = "low",
        requires_approval: bool = False,
        owner: str | None = None,
        description: str | None = None,
    ) -> PolicyRef:
        """A remediation policy version (recorded when registered or first evaluated)."""
        facet = PolicyFacet(
            name=name,
            version=version,
            rule=rule,
            thresholds=thresholds,
            action=action,
            params=params or {},
            risk_class=risk_class,  # type: ignore[arg-type]
            requires_approval=requires_approval,
            owner=owner,
            description=description,
        )
        return PolicyRef(self.namespace, facet)

    def register_policy(self, policy: PolicyRef, *, approver: str | None = None) -> str:
        """Record that a policy version was published (and by whom approved). Returns the run id."""
        step = self._registration(f"policy.register.{policy.name}", approver)
        with step:
            step.outputs.append(policy.dataset())
        return step.run_id

    def register_model(self, model: ModelRef, *, approver: str | None = None) -> str:
        """Record that a model version was approved for use (and by whom). Returns the run id."""
        step = self._registration(f"model.register.{model.name}", approver)
        with step:
            step.outputs.append(model.dataset())
        return step.run_id

    def register_rules(self, rules: RulesFacet) -> Artifact:
        """Record a set of governance rules a steward registered (its ``steward`` approves the run)."""
        with self._registration(f"rules.register.{rules.name}", rules.steward) as step:
            return step._produce("rules", rules, rules.name)

    def set_label(self, label: LabelFacet) -> Artifact:
        """Record a sensitivity label a steward set (its ``set_by`` approves the run)."""
        subject = "/".join(part for part in (label.namespace, label.kind, label.source) if part)
        with self._registration(f"label.set.{label.namespace}", label.set_by) as step:
            return step._produce("label", label, subject)

    def set_owners(self, owners: OwnersFacet) -> Artifact:
        """Record who owns and stewards a namespace, or a source, job, model or policy in it (its
        ``set_by`` approves the run)."""
        subject = "/".join(part for part in (owners.namespace, owners.scope, owners.name) if part)
        with self._registration(f"owners.set.{owners.namespace}", owners.set_by) as step:
            return step._produce("owners", owners, subject)

    def set_retention(self, rule: RetentionFacet) -> Artifact:
        """Record a retention rule a steward set (its ``set_by`` approves the run)."""
        subject = "/".join(part for part in (rule.namespace, rule.kind) if part)
        with self._registration(f"retention.set.{rule.namespace}", rule.set_by) as step:
            return step._produce("retention", rule, subject)

    def set_hold(self, hold: HoldFacet) -> Artifact:
        """Record a legal hold placed or released (its ``set_by`` approves the run)."""
        subject = "/".join(part for part in (hold.namespace, hold.node) if part)
        verb = "add" if hold.active else "release"
        with self._registration(f"hold.{verb}.{hold.namespace}", hold.set_by) as step:
            return step._produce("hold", hold, subject)

    def record_shred(self, shred: ShredFacet) -> Artifact:
        """Record a shred that retention did (its ``shredded_by`` approves the run)."""
        with self._registration(f"retention.shred.{shred.namespace}", shred.shredded_by) as step:
            return step._produce("shred", shred, f"{shred.namespace}/{shred.period}")

    def _registration(self, job: str, approver: str | None) -> Step:
        """A REGISTER step, approved by ``approver`` when there is one."""
        step = Step(self, job)
        step.job_type = "REGISTER"
        if approver:
            step.agents.append((approver, "approver"))
        return step

    def record_baseline(
        self, name: str, structure: dict[str, Any], *, scope: str | None = None, verb: str = "save"
    ) -> Artifact:
        """Record a baseline of the lineage structure (``aiops_baseline``) as the output of a run of
        the job ``baseline.<verb>.<name>``; ``scope`` is the namespace it covers (None: all)."""
        step = Step(self, f"baseline.{verb}.{name}")
        step.job_type = "BASELINE"
        facet = BaselineFacet(
            name=name, saved_at=self.timestamp(self.clock()), namespace=scope, structure=structure
        )
        with step:
            return step._produce("baseline", facet, name)

    # The steps of the chain, as context managers.

    def ingest(self, source: SourceRef, *, job: str = "ingest") -> IngestStep:
        """Capture telemetry from ``source`` as snapshots."""
        return IngestStep(self, source, job)

    def features(
        self,
        transform: Callable[..., Any] | Transform,
        inputs: list[Artifact],
        *,
        subject: str,
        parameters: dict[str, Any] | None = None,
        deterministic: bool = True,
        rationale: str | None = None,
        seed: int | None = None,
        stochastic_reason: str | None = None,
        job: str | None = None,
    ) -> FeaturesStep:
        """Compute a feature set from ``inputs`` with ``transform`` (a function or a :class:`Transform`).

        A function is recorded with its entry point and source digest, so that ``verify`` can
        run a deterministic one again on the recorded inputs; one that is not deterministic
        records its ``seed``, or the ``stochastic_reason`` it has none.
        """
        if not isinstance(transform, Transform):
            code = identify(transform)
            transform = Transform(
                name=getattr(transform, "__qualname__", repr(transform)),
                code_version=code_version(transform),
                parameters=parameters or {},
                deterministic=deterministic,
                rationale=rationale or (transform.__doc__ or "").strip().split("\n")[0] or None,
                entry_point=code.entry_point,
                code_digest=code.digest,
                seed=seed,
                stochastic_reason=stochastic_reason,
            )
        return FeaturesStep(self, transform, inputs, subject, job or f"features.{transform.name}")

    def train(self, inputs: list[Artifact], *, job: str = "model.train") -> TrainStep:
        """Train a model version from recorded artifacts."""
        return TrainStep(self, inputs, job)

    def inference(
        self, model: ModelRef, features: Artifact | None = None, *, subject: str, job: str | None = None
    ) -> InferenceStep:
        """Run ``model`` on ``features`` (default: the feature set in scope)."""
        features = features or _in_scope("features")
        return InferenceStep(self, model, features, subject, job or f"inference.{model.name}")

    def evaluate(
        self, policy: PolicyRef, prediction: Artifact | None = None, *, subject: str, job: str | None = None
    ) -> PolicyStep:
        """Evaluate ``policy`` on ``prediction`` (default: the prediction in scope)."""
        prediction = prediction or _in_scope("prediction")
        return PolicyStep(self, policy, prediction, subject, job or f"policy.{policy.name}")

    def action(
        self,
        action_type: str,
        *,
        target: str,
        params: dict[str, Any] | None = None,
        decision: Artifact | None = None,
        approver: str | None = None,
        approved_at: datetime | None = None,
        job: str | None = None,
    ) -> ActionStep:
        """Execute a remediation; linked to ``decision`` or to the decision in scope. With an
        ``approver``, ``approved_at`` is when the approval was given (default: now)."""
        return ActionStep(
            self,
            action_type,
            target,
            params,
            decision,
            approver,
            job or f"remediation.{action_type}",
            approved_at,
        )

    def observe_effect(self, action: Artifact, *, job: str = "effect.observe") -> EffectStep:
        """Record what an action (its record, ``ActionStep.record``) did."""
        return EffectStep(self, action, job)

    # Decorators for the steps whose work is a function.

    def transform(
        self,
        *,
        parameters: dict[str, Any] | None = None,
        deterministic: bool = True,
        rationale: str | None = None,
    ) -> Callable[[F], F]:
        """Mark a feature transform. Called plainly it just runs; ``fn.record(*args, inputs=…,
        subject=…, window=(start, end))`` runs it inside a features step and returns the feature
        set artifact, with the function's code version recorded."""

        def decorate(fn: F) -> F:
            def record(
                *args: Any,
                inputs: list[Artifact],
                subject: str,
                window: tuple[datetime, datetime],
                **kwargs: Any,
            ) -> Artifact:
                with self.features(
                    fn,
                    inputs,
                    subject=subject,
                    parameters=parameters,
                    deterministic=deterministic,
                    rationale=rationale,
                ) as step:
                    return step.feature_set(fn(*args, **kwargs), *window)

            fn.record = record  # type: ignore[attr-defined]
            return fn

        return decorate

    def remediation(self, action_type: str, *, approver: str | None = None) -> Callable[[F], F]:
        """Mark a function that executes a remediation. Each call runs inside an action step
        linked to the decision in scope; the first argument is the target. Returning False
        (or raising) marks the action failed; the function's value is returned unchanged."""

        def decorate(fn: F) -> F:
            @functools.wraps(fn)
            def run(target: str, *args: Any, **kwargs: Any) -> Any:
                with self.action(action_type, target=target, params=kwargs, approver=approver) as step:
                    result = fn(target, *args, **kwargs)
                    if result is False:
                        step.fail(f"{fn.__qualname__} returned False")
                    return result

            return run  # type: ignore[return-value]

        return decorate


_run_ids = random.Random()
os.register_at_fork(after_in_child=_run_ids.seed)


def new_run_id() -> str:
    """A random (version 4) UUID for a run, as a string.

    Drawn from a generator seeded from the OS once per process (and again in a forked child), not
    from ``os.urandom`` per call: a system call on the pipeline's thread hands the GIL to the
    writer thread, which can cost the caller milliseconds. Run ids need to be unique, not secret.
    """
    return str(uuid.UUID(int=_run_ids.getrandbits(128), version=4))


def _store_transport(store: Store | str, agent: str) -> Transport:
    from opslineage.sdk._store_transport import StoreTransport  # noqa: PLC0415 (loads the store only when used)

    return StoreTransport(store, producer=agent)


def _in_scope(name: str) -> Artifact:
    artifact = getattr(current(), name)
    if artifact is None:
        raise ValueError(
            f"no {name} in scope: pass it explicitly or nest this step inside the one that made it"
        )
    return artifact
