"""The demo pipeline: telemetry → features → anomaly model → policies → remediation → effect.

Every step is recorded through the SDK as a production pipeline would record it. The model is
trained on the first quarter of the run and retrained at half time; the policies get a second
generation at 60%, so the lineage holds two versions of each. Deterministic for a seed: run ids
come from a seeded generator and time is the world's, one clock for every step (a replay puts all
its files on one timeline), so every why-chain is causally ordered.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from opslineage.demo.detector import RobustZModel, rolling_features
from opslineage.demo.fleet import DEFAULT_STEP
from opslineage.demo.replay import CsvSeries
from opslineage.demo.worlds import FLEET_PROFILE, REPLAY_PROFILE, FleetWorld, Profile, ReplayWorld, World
from opslineage.model.policy_rule import evaluate
from opslineage.query import count_kinds
from opslineage.sdk import Artifact, ModelRef, PolicyRef, Tracer, Transport
from opslineage.sdk.effects import classify_effect
from opslineage.store import Store

__all__ = ["DemoConfig", "DemoResult", "RemediationInfo", "run_demo"]

WINDOW = 12  # rows per rolling window: one hour of five-minute telemetry
SETTLE_STEPS = 6  # stabilization window before an effect is judged
EFFECT_SAMPLES = 3  # samples averaged before and after an action
TRAINING_LIMIT = 1000  # the newest feature sets a model trains on (and its training event lists)
MIN_STEPS = 4 * WINDOW  # the first model trains at a quarter of the run, on at least one full window
MIN_HOURS = MIN_STEPS * DEFAULT_STEP / timedelta(hours=1)
COOLDOWN_STEPS = WINDOW  # one remediation per target while the onset is still in the window
SCORER = "opslineage.demo.detector:score"  # what verify scores a prediction again with


@dataclass
class DemoConfig:
    """How to run the demo: the fleet's size and length, or CSV files to replay instead."""

    seed: int = 0
    services: int = 6
    hours: float = 24.0
    telemetry_csv: list[Path] = field(default_factory=list)


@dataclass
class RemediationInfo:
    """One action the demo took, what it was decided on, and how it ended."""

    run_id: str
    target: str
    action: str
    status: str
    decided_at: datetime
    policy: str
    model: str
    incident: str | None
    outcome: str | None = None


@dataclass
class DemoResult:
    """What the demo did: when each model and policy version came into force, every remediation."""

    model_versions: dict[str, list[tuple[str, datetime]]]
    policy_versions: dict[str, list[tuple[str, datetime]]]
    remediations: list[RemediationInfo]
    decisions: int
    not_fired: int
    incidents: int
    counts: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    emitted: int = 0
    """Lineage events this run produced."""
    added: int | None = None
    """Of those, how many the store did not hold yet (None when they went to a transport)."""
    replay: bool = False
    """The run replayed recorded telemetry (no injected incidents, a world that cannot react)."""

    @staticmethod
    def in_force(versions: list[tuple[str, datetime]], when: datetime) -> str:
        """The version in force at ``when``: the last one introduced at or before it."""
        return [version for version, since in versions if since <= when][-1]


@dataclass
class _Pending:
    info: RemediationInfo
    record: Artifact
    metric: str
    healthy_below: float | None
    before: list[float]
    before_window: tuple[datetime, datetime] | None
    ended: datetime
    """When the action ended: only samples measured from then on tell its effect."""
    due: int


class _Pipeline:
    """One run of the pipeline over a world."""

    def __init__(self, world: World, profile: Profile, tracer: Tracer) -> None:
        self.world = world
        self.profile = profile
        self.tracer = tracer
        self.sources = {
            name: tracer.source(name, namespace=profile.source_namespace, owner="team-observability")
            for name in world.services
        }
        self.windows: dict[str, deque[tuple[Artifact, dict[str, float]]]] = {
            name: deque(maxlen=WINDOW) for name in world.services
        }
        self.history: dict[str, deque[tuple[Artifact, dict[str, float]]]] = defaultdict(
            lambda: deque(maxlen=TRAINING_LIMIT)
        )
        self.models: dict[str, tuple[RobustZModel, ModelRef]] = {}
        self.model_versions: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
        self.policy_versions: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
        self.policies: dict[str, PolicyRef] = {}
        self.cooldown: dict[str, int] = {}
        self.pending: list[_Pending] = []
        self.remediations: list[RemediationInfo] = []
        self.decisions = self.not_fired = 0

    def run(self, on_step: Callable[[int, int], None] | None) -> None:
        total = self.world.steps_total
        self.publish_policies(1)
        for step in range(total):
            ticked = self.world.tick()
            for name, row in ticked.items():
                self.ingest(name, row)
            if step == total // 4:
                self.train(1)
            elif step == total // 2:
                self.train(2)
            elif step == (total * 3) // 5:
                self.publish_policies(2)
            for name in ticked:  # a replayed series with no row due has nothing new to analyse
                self.analyse(step, name)
            self.observe_effects(step, final=step == total - 1)
            if on_step:
                on_step(step + 1, total)

    def publish_policies(self, generation: int) -> None:
        for name, policy in self.profile.policies(self.tracer, generation).items():
            if name not in self.policies or self.policies[name].id != policy.id:
                self.tracer.register_policy(policy, approver="governance:carol")
                self.policies[name] = policy
                self.policy_versions[name].append((policy.id, self.world.now))

    def ingest(self, name: str, row: dict[str, float]) -> None:
        fields = self.world.schema(name)
        when = self.world.observed_at(name)
        values = [self.tracer.timestamp(when) if field == "timestamp" else row.get(field) for field in fields]
        with self.tracer.ingest(self.sources[name]) as step:
            snapshot = step.snapshot(
                [values],
                fields,
                when - timedelta(minutes=5),
                when,
                file_digest=self.world.file_digest(name),
                time_shift=self.world.time_shift(name),
            )
        self.windows[name].append((snapshot, row))

    def train(self, version: int) -> None:
        watchers: dict[str, list[str]] = defaultdict(list)
        for name in self.history:
            watchers[self.profile.model_for(name)].append(name)
        for model_name, watched in watchers.items():
            history = [entry for name in watched for entry in self.history[name]]
            seen = sorted(history, key=lambda entry: entry[0].content["window_end"])[-TRAINING_LIMIT:]
            current = self.models.get(watched[0])  # a replayed file slow to fill a window has none yet
            if current is not None:  # retrain on what the current model judged normal
                seen = [(a, v) for a, v in seen if current[0].predict(v)[1] == "normal"]
            model = RobustZModel(name=model_name, version=str(version)).fit(
                [v for _, v in seen], list(self.profile.features)
            )
            with self.tracer.train([a for a, _ in seen], job=f"train.{model_name}") as step:
                ref = step.model(
                    model_name,
                    f"{version}.{model.digest()[:8]}",
                    model.artifact_bytes(),
                    "robust-z (median/MAD)",
                    {"features": model.features, "threshold": model.threshold, "training_rows": len(seen)},
                    scorer=SCORER,
                    keep_artifact=True,
                )
            self.tracer.register_model(ref, approver="mlops:bob")
            self.model_versions[model_name].append((ref.id, self.world.now))
            for name in watched:
                self.models[name] = (model, ref)

    def analyse(self, step: int, name: str) -> None:
        window = self.windows[name]
        if len(window) < WINDOW:
            return
        snapshots = [snapshot for snapshot, _ in window]
        start, end = _bounds(list(window))
        with self.tracer.features(
            rolling_features, snapshots, subject=name, parameters={"window": WINDOW}
        ) as f:
            features = f.feature_set(rolling_features([row for _, row in window]), start, end)
        values = features.content["values"]
        self.history[name].append((features, values))  # models train on the newest TRAINING_LIMIT
        if name not in self.models:
            return
        model, ref = self.models[name]
        with self.tracer.inference(ref, features, subject=name) as inference:
            score, label = model.predict(values)
            prediction = inference.prediction(score, label, model.contributions(values))
        if label == "anomaly":
            for policy_name, policy in self.policies.items():
                self.evaluate(step, name, policy_name, policy, prediction, {**values, "score": score})

    def evaluate(
        self,
        step: int,
        name: str,
        policy_name: str,
        policy: PolicyRef,
        prediction: Artifact,
        inputs: dict[str, float],
    ) -> None:
        facet = policy.facet
        verdict = evaluate(facet.rule, facet.thresholds, inputs, prediction.content["label"])
        cooling = verdict.fired and self.cooldown.get(name, -1) > step
        held_back = "the target was remediated less than an hour ago" if cooling else None
        rationale = verdict.rationale + (f"; held back: {held_back}" if held_back else "")
        self.decisions += 1
        with self.tracer.evaluate(policy, prediction, subject=name) as evaluation:
            decision = evaluation.decide(
                verdict.fired and not cooling, rationale, verdict.breaches, held_back=held_back
            )
            if decision.content["fired"]:
                self.cooldown[name] = step + COOLDOWN_STEPS
                self.act(step, name, policy, decision)
            else:
                self.not_fired += 1

    def act(self, step: int, name: str, policy: PolicyRef, decision: Artifact) -> None:
        facet = policy.facet
        incident = self.world.active_incident(name)
        approver = "oncall:alice" if facet.requires_approval else None
        with self.tracer.action(
            facet.action, target=name, params=dict(facet.params), approver=approver
        ) as action:
            outcome = self.world.apply(name, facet.action, dict(facet.params))
            if not outcome.started:
                action.fail_to_start(outcome.reason or "the target refused the action")
        info = RemediationInfo(
            action.run_id,
            name,
            facet.action,
            action.status,
            self.world.now,
            decision.content["policy"],
            decision.content["model"],
            incident.kind if incident else None,
        )
        self.remediations.append(info)
        if action.status != "succeeded" or action.record is None:
            return
        metric, healthy = self.profile.effect_metric[facet.action]
        recent = list(self.windows[name])[-EFFECT_SAMPLES:]
        before = [row[metric] for _, row in recent if metric in row]
        self.pending.append(
            _Pending(
                info,
                action.record,
                metric,
                healthy,
                before,
                _span(recent),
                datetime.fromisoformat(action.record.content["ended_at"]),
                step + SETTLE_STEPS,
            )
        )

    def observe_effects(self, step: int, *, final: bool) -> None:
        """Judge every action whose stabilization window has passed (at the end, every one left)."""
        for pending in [p for p in self.pending if p.due <= step or final]:
            self.pending.remove(pending)
            recent = [  # samples taken after the action (a replayed series may have ended before)
                entry
                for entry in list(self.windows[pending.info.target])[-EFFECT_SAMPLES:]
                if pending.due <= step and _times(entry)[0] >= pending.ended
            ]
            after = [row[pending.metric] for _, row in recent if pending.metric in row]
            mean_before = sum(pending.before) / len(pending.before) if pending.before else None
            mean_after = sum(after) / len(after) if after else None
            outcome = classify_effect(
                mean_before,
                mean_after,
                samples_before=len(pending.before),
                samples_after=len(after),
                healthy_below=pending.healthy_below,
            )
            if not self.world.reacts and outcome not in ("resolved", "worsened"):
                outcome = "unverifiable"  # a replay cannot show that an action changed nothing
            now = self.world.now
            start, end = _span(recent) or (now, now)
            with self.tracer.observe_effect(pending.record) as observation:
                observation.effect(
                    outcome,
                    start,
                    end,
                    metric=pending.metric,
                    before=mean_before,
                    after=mean_after,
                    samples_before=len(pending.before),
                    samples_after=len(after),
                    before_window=pending.before_window,
                    attribution="caused" if self.world.reacts else "observed",
                )
            pending.info.outcome = outcome


def _times(entry: tuple[Artifact, dict[str, float]]) -> tuple[datetime, datetime]:
    """When the snapshot of a window entry starts and ends."""
    content = entry[0].content
    return datetime.fromisoformat(content["window_start"]), datetime.fromisoformat(content["window_end"])


def _bounds(window: list[tuple[Artifact, dict[str, float]]]) -> tuple[datetime, datetime]:
    """From the earliest start to the latest end of a non-empty window's snapshots (a replayed
    file's rows need not be in time order)."""
    times = [_times(entry) for entry in window]
    return min(start for start, _ in times), max(end for _, end in times)


def _span(window: list[tuple[Artifact, dict[str, float]]]) -> tuple[datetime, datetime] | None:
    """The bounds of a window's snapshots; None when it is empty."""
    return _bounds(window) if window else None


def _seeded_ids(seed: int) -> Callable[[], str]:
    rng = random.Random(seed)
    return lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))


def run_demo(
    store: Store | None,
    config: DemoConfig,
    on_step: Callable[[int, int], None] | None = None,
    *,
    transport: Transport | None = None,
) -> DemoResult:
    """Run the pipeline over the simulated fleet, or over ``config.telemetry_csv``, into ``store``.

    With a ``transport`` instead of a store (say a :class:`~opslineage.bus.NatsTransport`),
    the lineage goes there and is closed with it; ``counts`` then holds only ``events`` (handed to
    the transport) and ``kinds`` is empty.

    Raises:
        ValueError: a telemetry file cannot be read (the message names the file and line).
        RuntimeError: some of the lineage could not be recorded.
    """
    world: Any
    if config.telemetry_csv:
        hours = None if config.hours == DemoConfig.hours else config.hours
        world = ReplayWorld([CsvSeries.load(path) for path in config.telemetry_csv], hours)
        profile = REPLAY_PROFILE
    else:
        world = FleetWorld(services=config.services, seed=config.seed, hours=config.hours)
        profile = FLEET_PROFILE
    if world.steps_total < MIN_STEPS:
        raise ValueError(
            f"the run has {world.steps_total} telemetry steps and needs at least {MIN_STEPS} to train a model"
            + (
                " (ticks of the replay's clock)"
                if config.telemetry_csv
                else f" (--hours at least {MIN_HOURS:g})"
            )
        )
    tracer = Tracer(
        profile.namespace,
        store=store,
        transport=transport,
        agent="aiops-pipeline",
        clock=lambda: world.now,  # one clock for every step of every service
        run_ids=_seeded_ids(config.seed),
        max_block=None,  # a batch run records everything: it waits for the store rather than drop
        spill_cap=0,
    )
    held_before = store.log_size() if store is not None else 0
    pipeline = _Pipeline(world, profile, tracer)
    try:
        pipeline.run(on_step)
    finally:  # the writer thread stops before the caller may close the store under it
        tracer.close()
    stats = tracer.stats
    if stats.errors or stats.dropped or stats.evicted:
        raise RuntimeError(
            f"the demo's lineage was not fully recorded: {stats.errors} refused, {stats.dropped} dropped,"
            f" {stats.evicted} evicted ({stats.last_error or 'the store could not keep up'})"
        )
    incidents = len(getattr(world, "incidents", []))
    return DemoResult(
        dict(pipeline.model_versions),
        dict(pipeline.policy_versions),
        pipeline.remediations,
        pipeline.decisions,
        pipeline.not_fired,
        incidents,
        store.counts() if store is not None else {"events": tracer.stats.emitted},
        count_kinds(store) if store is not None else {},
        tracer.stats.emitted,
        store.log_size() - held_before if store is not None else None,
        bool(config.telemetry_csv),
    )
