"""One step of an AIOps pipeline as a run: START on enter, COMPLETE or FAIL on exit.

Each step class adds the method that records what the step produced (a snapshot, a feature set,
a prediction, a decision, an action record, an effect). Steps are made by the :class:`Tracer`.
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import replace
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from opslineage.model.canonical import canonical_json
from opslineage.model.events import content_digest
from opslineage.model.facets import (
    ActionFacet,
    AgentsRunFacet,
    Breach,
    DecisionFacet,
    EffectFacet,
    FeaturesFacet,
    Field,
    Outcome,
    PredictionFacet,
    SnapshotFacet,
    Transform,
)
from opslineage.sdk.context import LineageContext, _current, current
from opslineage.sdk.propagation import inject_into_current_span
from opslineage.sdk.refs import Artifact, ModelRef, PolicyRef, SourceRef, facet_wire

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from opslineage.sdk.tracer import Tracer

__all__ = [
    "ActionStep",
    "EffectStep",
    "FeaturesStep",
    "InferenceStep",
    "IngestStep",
    "PolicyStep",
    "Step",
    "TrainStep",
]

# Artifacts a step makes visible to the steps nested inside it, by type → context field.
_CONTEXT_FIELDS = {"feature": "features", "prediction": "prediction", "decision": "decision"}
_ERROR_FACET = (
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
)


class Step:
    """A run of one job. Use as a context manager; exceptions propagate after a FAIL event."""

    job_type = "RUN"

    def __init__(self, tracer: Tracer, job: str, inputs: list[dict[str, Any]] | None = None) -> None:
        self.tracer = tracer
        self.job = job
        self.run_id = tracer.new_run_id()
        self.inputs: list[dict[str, Any]] = list(inputs or [])
        self.outputs: list[dict[str, Any]] = []
        self.agents: list[tuple[str, str]] = [(tracer.agent, "executor")]
        self.failure: str | None = None
        self.started_at: datetime | None = None
        self._parent: tuple[str, str | None, str | None] | None = None
        self._token: Any = None

    def __enter__(self) -> Any:
        context = current()
        if context.run_id is not None:
            self._parent = (context.run_id, context.job_namespace, context.job_name)
        self._token = _current.set(
            LineageContext(
                self.run_id,
                self.tracer.namespace,
                self.job,
                context.features,
                context.prediction,
                context.decision,
            )
        )
        self.started_at = self.tracer.clock()
        self.tracer.emit(partial(self._event, "START", self.started_at))  # built on the writer
        inject_into_current_span()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _current.reset(self._token)
        self._finish(exc)
        ended = self.tracer.clock()
        if exc is not None and self.failure is None:
            self.failure = f"{exc_type.__name__ if exc_type else 'Error'}: {exc}"
        stack = "".join(traceback.format_exception(exc)) if exc is not None else None
        self.tracer.emit(partial(self._event, "FAIL" if self.failure else "COMPLETE", ended, stack))

    def _finish(self, exc: BaseException | None) -> None:
        """Hook for steps that build their output when the block ends."""

    def _produce(self, artifact_type: str, facet: Any, subject: str) -> Artifact:
        wire = facet_wire(facet)
        artifact = Artifact(
            type=artifact_type,
            digest=content_digest(wire),
            namespace=self.tracer.namespace,
            name=f"{artifact_type}/{subject}",
            facet_key=facet.key,
            facet=wire,
            run_id=self.run_id,
        )
        self.outputs.append(artifact.dataset())
        in_scope = _CONTEXT_FIELDS.get(artifact_type)
        if in_scope:
            _current.set(replace(current(), **{in_scope: artifact}))  # type: ignore[arg-type]
        return artifact

    def _event(self, event_type: str, when: datetime, stack: str | None = None) -> dict[str, Any]:
        producer = self.tracer.producer
        run_facets: dict[str, Any] = {
            AgentsRunFacet.key: {
                "_producer": producer,
                "_schemaURL": self.tracer.schema_url("AgentsRunFacet"),
                "agents": [{"name": name, "role": role} for name, role in self.agents],
            }
        }
        if self._parent is not None:
            run_id, namespace, name = self._parent
            run_facets["parent"] = {
                "_producer": producer,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet",
                "run": {"runId": run_id},
                "job": {"namespace": namespace, "name": name},
            }
        if event_type == "FAIL":
            run_facets["errorMessage"] = {
                "_producer": producer,
                "_schemaURL": _ERROR_FACET,
                "message": self.failure,
                "programmingLanguage": "python",
                **({"stackTrace": stack} if stack else {}),
            }
        final = event_type != "START"
        return {
            "eventType": event_type,
            "eventTime": self.tracer.timestamp(when),
            "producer": producer,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": self.run_id, "facets": run_facets},
            "job": {
                "namespace": self.tracer.namespace,
                "name": self.job,
                "facets": {
                    "jobType": {
                        "_producer": producer,
                        "_schemaURL": "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
                        "processingType": "STREAMING",
                        "integration": "OPSLINEAGE",
                        "jobType": self.job_type,
                    }
                },
            },
            "inputs": self.inputs if final else [],
            "outputs": self.outputs if final else [],
        }


class IngestStep(Step):
    """Captures telemetry from a source as content-addressed snapshots."""

    job_type = "INGEST"

    def __init__(self, tracer: Tracer, source: SourceRef, job: str) -> None:
        super().__init__(tracer, job, [source.dataset()])
        self.source = source

    def snapshot(
        self,
        rows: list[list[Any]],
        fields: dict[str, str],
        window_start: datetime,
        window_end: datetime,
        *,
        captured_at: datetime | None = None,
        file_digest: str | None = None,
        time_shift: timedelta | None = None,
    ) -> Artifact:
        """Record one window of rows (each a list in ``fields`` order) with its schema.

        A schema fingerprint that differs from this source's previous snapshot is recorded as a
        schema change linking the two. ``time_shift`` says how far the recorded times were moved
        from the source's own (a replay placed on the run's timeline): original = recorded - shift.
        """
        field_list = [Field(name, kind) for name, kind in fields.items()]
        fingerprint = (
            "sha256:" + hashlib.sha256(canonical_json([[f.name, f.type] for f in field_list])).hexdigest()
        )
        previous = self.tracer.last_snapshot.get(self.source.id)
        changed = previous is not None and previous[0] != fingerprint
        facet = SnapshotFacet(
            source=self.source.id,
            captured_at=self.tracer.timestamp(captured_at or self.tracer.clock()),
            window_start=self.tracer.timestamp(window_start),
            window_end=self.tracer.timestamp(window_end),
            fields=field_list,
            schema_fingerprint=fingerprint,
            row_count=len(rows),
            rows=rows,
            file_digest=file_digest,
            schema_change_from=previous[1] if changed and previous else None,
            previous_schema_fingerprint=previous[0] if changed and previous else None,
            time_shift_seconds=time_shift.total_seconds() if time_shift is not None else None,
        )
        artifact = self._produce("snapshot", facet, self.source.name)
        self.tracer.last_snapshot[self.source.id] = (fingerprint, artifact.digest)
        return artifact


class FeaturesStep(Step):
    """Computes a feature set from snapshots with a versioned transform."""

    job_type = "FEATURES"

    def __init__(
        self, tracer: Tracer, transform: Transform, inputs: list[Artifact], subject: str, job: str
    ) -> None:
        super().__init__(tracer, job, [artifact.reference() for artifact in inputs])
        self.transform = transform
        self.snapshots = inputs
        self.subject = subject

    def feature_set(self, values: dict[str, float], window_start: datetime, window_end: datetime) -> Artifact:
        """Record the computed feature values."""
        sources = sorted({str(s.content.get("source", s.id)) for s in self.snapshots})
        facet = FeaturesFacet(
            subject=self.subject,
            computed_at=self.tracer.timestamp(self.tracer.clock()),
            window_start=self.tracer.timestamp(window_start),
            window_end=self.tracer.timestamp(window_end),
            transform=self.transform,
            sources=sources,
            inputs=[s.digest for s in self.snapshots],
            values=values,
        )
        return self._produce("feature", facet, self.subject)


class TrainStep(Step):
    """Trains a model version from recorded artifacts."""

    job_type = "TRAIN"

    def __init__(self, tracer: Tracer, inputs: list[Artifact], job: str) -> None:
        super().__init__(tracer, job, [artifact.reference() for artifact in inputs])

    def model(
        self,
        name: str,
        version: str,
        artifact: bytes,
        framework: str,
        parameters: dict[str, Any] | None = None,
        *,
        scorer: str | None = None,
        keep_artifact: bool = False,
    ) -> ModelRef:
        """Record the trained model version; its artifact digest is the SHA-256 of ``artifact``
        (``scorer`` and ``keep_artifact`` as for :meth:`Tracer.model`)."""
        model = self.tracer.model(
            name,
            version,
            artifact,
            framework,
            parameters,
            trained_at=self.tracer.clock(),
            scorer=scorer,
            keep_artifact=keep_artifact,
        )
        self.outputs.append(model.dataset())
        return model


class InferenceStep(Step):
    """Runs a model version on a feature set."""

    job_type = "INFERENCE"

    def __init__(self, tracer: Tracer, model: ModelRef, features: Artifact, subject: str, job: str) -> None:
        super().__init__(tracer, job, [model.dataset(), features.reference()])
        self.model = model
        self.features = features
        self.subject = subject

    def prediction(self, score: float, label: str, contributions: dict[str, float] | None = None) -> Artifact:
        """Record the model output for the exact input feature set."""
        facet = PredictionFacet(
            subject=self.subject,
            model=self.model.id,
            model_digest=self.model.facet.artifact_digest,
            features=self.features.digest,
            score=score,
            label=label,
            contributions=contributions or {},
            predicted_at=self.tracer.timestamp(self.tracer.clock()),
        )
        return self._produce("prediction", facet, self.subject)


class PolicyStep(Step):
    """Evaluates a policy version against a prediction; every evaluation records a decision."""

    job_type = "POLICY"

    def __init__(
        self, tracer: Tracer, policy: PolicyRef, prediction: Artifact, subject: str, job: str
    ) -> None:
        super().__init__(tracer, job, [policy.dataset(), prediction.reference()])
        self.policy = policy
        self.prediction = prediction
        self.subject = subject

    def decide(
        self,
        fired: bool,
        rationale: str,
        breaches: list[dict[str, Any]] | None = None,
        action: str | None = None,
        params: dict[str, Any] | None = None,
        *,
        held_back: str | None = None,
    ) -> Artifact:
        """Record the decision: whether it fired, which input breached what, and why;
        ``held_back`` is why the rule held but the decision did not fire."""
        policy = self.policy.facet
        facet = DecisionFacet(
            subject=self.subject,
            policy=self.policy.id,
            policy_digest=self.policy.digest,
            model=str(self.prediction.content["model"]),
            prediction=self.prediction.digest,
            features=str(self.prediction.content["features"]),
            fired=fired,
            breaches=[Breach(**breach) for breach in breaches or []],
            action=(action or policy.action) if fired else None,
            params=(params if params is not None else dict(policy.params)) if fired else {},
            rationale=rationale,
            decided_at=self.tracer.timestamp(self.tracer.clock()),
            held_back=held_back,
        )
        return self._produce("decision", facet, f"{self.subject}/{policy.name}")


class ActionStep(Step):
    """Executes a remediation decided by a decision in scope (or given explicitly).

    Unless marked otherwise the action succeeded; an exception marks it failed. The action record
    keeps a frozen copy of what it was decided on, so later edits of a policy never change it.
    """

    job_type = "ACTION"

    def __init__(
        self,
        tracer: Tracer,
        action_type: str,
        target: str,
        params: dict[str, Any] | None,
        decision: Artifact | None,
        approver: str | None,
        job: str,
        approved_at: datetime | None = None,
    ) -> None:
        decision = decision or current().decision
        if decision is None or decision.type != "decision":
            raise ValueError(
                "an action needs a decision: run it inside tracer.evaluate(...) or pass decision="
            )
        super().__init__(tracer, job, [decision.reference()])
        if approver:
            self.agents.append((approver, "approver"))
        self.action_type = action_type
        self.target = target
        self.params = dict(params or {})
        self.decision = decision
        self.approver = approver
        self.approved_at = approved_at if approved_at is not None or not approver else tracer.clock()
        self.status = "succeeded"
        self.record: Artifact | None = None

    def fail_to_start(self, reason: str) -> None:
        """Mark that the action never started, and why."""
        self.status, self.failure = "failed_to_start", reason

    def fail(self, reason: str) -> None:
        """Mark that the action started but failed."""
        self.status, self.failure = "failed", reason

    def _finish(self, exc: BaseException | None) -> None:
        if exc is not None and self.status == "succeeded":
            self.status = "failed"
        decided = self.decision.content
        facet = ActionFacet(
            type=self.action_type,
            target=self.target,
            params=self.params,
            executor=self.tracer.agent,
            approver=self.approver,
            approved_at=self.tracer.timestamp(self.approved_at) if self.approved_at else None,
            status=self.status,  # type: ignore[arg-type]
            reason=self.failure or (str(exc) if exc else None),
            started_at=self.tracer.timestamp(self.started_at or self.tracer.clock()),
            ended_at=self.tracer.timestamp(self.tracer.clock()),
            decision=self.decision.digest,
            policy=str(decided["policy"]),
            policy_digest=str(decided["policy_digest"]),
            prediction=str(decided["prediction"]),
            model=str(decided["model"]),
            features=str(decided["features"]),
        )
        self.record = self._produce("action", facet, self.target)


class EffectStep(Step):
    """Observes what an action did, after its stabilization window."""

    job_type = "EFFECT"

    def __init__(self, tracer: Tracer, action: Artifact, job: str) -> None:
        if action.type != "action":
            raise ValueError(f"observe_effect needs an action record, got a {action.type}")
        super().__init__(tracer, job, [action.reference()])
        self.action = action

    def effect(
        self,
        outcome: Outcome,
        window_start: datetime,
        window_end: datetime,
        *,
        metric: str | None = None,
        before: float | None = None,
        after: float | None = None,
        samples_before: int = 0,
        samples_after: int = 0,
        before_window: tuple[datetime, datetime] | None = None,
        attribution: Literal["caused", "observed"] | None = None,
    ) -> Artifact:
        """Record the observed effect and its outcome: ``window_start``/``window_end`` span the
        samples after the action, ``before_window`` those before it; ``attribution`` is
        ``observed`` when the target could not react to the action (replayed data) and the
        verdict is only what the series showed, ``caused`` when it could."""
        facet = EffectFacet(
            action=self.action.digest,
            action_run=self.action.run_id,
            target=str(self.action.content["target"]),
            metric=metric,
            before=before,
            after=after,
            window_start=self.tracer.timestamp(window_start),
            window_end=self.tracer.timestamp(window_end),
            samples_before=samples_before,
            samples_after=samples_after,
            outcome=outcome,
            observed_at=self.tracer.timestamp(self.tracer.clock()),
            before_start=self.tracer.timestamp(before_window[0]) if before_window else None,
            before_end=self.tracer.timestamp(before_window[1]) if before_window else None,
            attribution=attribution,
        )
        return self._produce("effect", facet, str(self.action.content["target"]))
