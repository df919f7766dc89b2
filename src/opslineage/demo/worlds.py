"""What the demo pipeline runs against: the simulated fleet, or real telemetry replayed from CSV.

Both offer the same small interface (:class:`World`), and each comes with a :class:`Profile`:
the policies that watch it and the metric each action's effect is judged by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from opslineage.demo.detector import FLEET_FEATURES
from opslineage.demo.fleet import ActionOutcome, Fleet, Incident
from opslineage.demo.replay import CsvSeries
from opslineage.sdk import PolicyRef, Tracer

__all__ = ["FLEET_PROFILE", "REPLAY_PROFILE", "FleetWorld", "Profile", "ReplayWorld", "World"]


class World(Protocol):
    """Services that emit telemetry each step and respond (or not) to remediations."""

    services: list[str]
    steps_total: int
    reacts: bool
    """Whether a remediation can change what the services report next (not for replayed data)."""

    @property
    def now(self) -> datetime:
        """The time of the current step."""

    def tick(self) -> dict[str, dict[str, float]]:
        """Advance one step; the metrics of every service."""

    def schema(self, service: str) -> dict[str, str]:
        """The service's telemetry fields and their types."""

    def observed_at(self, service: str) -> datetime:
        """When the service's latest row was measured."""

    def file_digest(self, service: str) -> str | None:
        """The digest of the file the telemetry comes from, when it comes from one."""

    def time_shift(self, service: str) -> timedelta | None:
        """How far the service's recorded times were moved onto the world's clock (None: not moved)."""

    def apply(self, service: str, action: str, params: dict[str, Any] | None = None) -> ActionOutcome:
        """Execute a remediation."""

    def active_incident(self, service: str) -> Incident | None:
        """The incident affecting the service now, if known."""


@dataclass(frozen=True)
class Profile:
    """How a world is watched: namespace, which model watches each service and on what features,
    the policies of each generation, and the metric (and healthy level) that judges each action."""

    namespace: str
    source_namespace: str
    model_for: Callable[[str], str]
    features: tuple[str, ...]
    policies: Callable[[Tracer, int], dict[str, PolicyRef]]
    effect_metric: dict[str, tuple[str, float | None]]


class FleetWorld(Fleet):
    """The simulated fleet (see :mod:`opslineage.demo.fleet`)."""

    reacts = True

    def observed_at(self, service: str) -> datetime:
        """Fleet rows are measured at the step's time."""
        return self.now

    def file_digest(self, service: str) -> str | None:
        """Simulated telemetry comes from no file."""
        return None

    def time_shift(self, service: str) -> timedelta | None:
        """Simulated telemetry is measured on the fleet's own clock."""
        return None


def _fleet_policies(tracer: Tracer, generation: int) -> dict[str, PolicyRef]:
    """Generation 2 makes cpu-guard act earlier (a policy change approved mid-run)."""
    cpu_mean = 70.0 if generation == 1 else 65.0
    return {
        "cpu-guard": tracer.policy(
            "cpu-guard",
            str(generation),
            rule="cpu_slope > {cpu_slope} and cpu_mean > {cpu_mean}",
            thresholds={"cpu_slope": 0.5, "cpu_mean": cpu_mean},
            action="scale_out",
            params={"replicas": 2},
            risk_class="medium",
            owner="team-capacity",
            description="Scale out a service whose CPU climbs towards saturation.",
        ),
        "mem-guard": tracer.policy(
            "mem-guard",
            "1",
            rule="mem_slope > {mem_slope} and mem_last > {mem_last}",
            thresholds={"mem_slope": 0.3, "mem_last": 70.0},
            action="restart",
            risk_class="low",
            owner="team-runtime",
            description="Restart a service whose memory grows without bound.",
        ),
        "deploy-guard": tracer.policy(
            "deploy-guard",
            "1",
            rule="latency_ms_slope > {latency_ms_slope} and error_rate_slope > {error_rate_slope} "
            "and cpu_last < {cpu_last}",
            thresholds={"latency_ms_slope": 2.0, "error_rate_slope": 0.001, "cpu_last": 90.0},
            action="rollback",
            risk_class="high",
            requires_approval=True,
            owner="team-release",
            description="Roll back a deploy after which latency and errors jump while CPU is not saturated.",
        ),
    }


FLEET_PROFILE = Profile(
    namespace="aiops.demo",
    source_namespace="aiops.demo",
    model_for=lambda service: "fleet-anomaly",
    features=FLEET_FEATURES,
    policies=_fleet_policies,
    effect_metric={"scale_out": ("cpu", 80.0), "restart": ("mem", 75.0), "rollback": ("latency_ms", None)},
)


class ReplayWorld:
    """Real ``timestamp,value`` series replayed on one clock; one file is one service.

    Each file is shifted in time so that all of them start together, at the earliest file's first
    row; the shift is recorded on every snapshot (original time = recorded - shift). The clock then
    moves from row to row in time order: each tick is the next time any file has a row, and every
    file with a row due by then emits it (a file's row stamped earlier than one before it, as some
    NAB files have, is due at once), so the clock never goes back and nothing is seen before it was
    measured. Replayed telemetry cannot respond to remediations: every action starts and changes
    nothing, which is what the recorded effects then say.
    """

    reacts = False

    def __init__(self, series: list[CsvSeries], hours: float | None = None) -> None:
        if not series:
            raise ValueError("no telemetry files to replay")
        self.series = {item.name: item for item in series}
        if len(self.series) != len(series):
            raise ValueError("two telemetry files share a name; each file must have a distinct name")
        for item in series:
            if not item.rows:
                raise ValueError(f"{item.path}: no rows to replay, only a header")
        self.services = list(self.series)
        self.rows = {  # rows replayed of each series: all of it, or its first ``hours``
            item.name: len(item.rows)
            if hours is None
            else sum(1 for when, _ in item.rows if when - item.rows[0][0] < timedelta(hours=hours))
            for item in series
        }
        self.start = min(item.rows[0][0] for item in series)
        self.shifts = {item.name: self.start - item.rows[0][0] for item in series}
        self._ticks = self._schedule()
        self.steps_total = len(self._ticks)
        self._step = -1
        self._clock = self.start
        self._emitted = dict.fromkeys(self.services, 0)  # rows of each file replayed so far

    def _shifted(self, service: str, row: int) -> datetime:
        return self.series[service].rows[row][0] + self.shifts[service]

    def _schedule(self) -> list[tuple[datetime, list[str]]]:
        """Every tick: its time and the files that emit their next row then."""
        position = dict.fromkeys(self.services, 0)
        clock, ticks = self.start, []
        while left := [name for name in self.services if position[name] < self.rows[name]]:
            clock = max(clock, min(self._shifted(name, position[name]) for name in left))
            due = [name for name in left if self._shifted(name, position[name]) <= clock]
            for name in due:
                position[name] += 1
            ticks.append((clock, due))
        return ticks

    @property
    def now(self) -> datetime:
        """The replay's clock: the time of the current tick (the common start before the first)."""
        return self._clock

    def tick(self) -> dict[str, dict[str, float]]:
        """Advance the clock to the next tick; the row of every file that has one due."""
        self._step += 1
        if self._step >= self.steps_total:
            raise RuntimeError("the replay has no more rows")
        self._clock, due = self._ticks[self._step]
        rows = {}
        for name in due:
            rows[name] = {"value": self.series[name].rows[self._emitted[name]][1]}
            self._emitted[name] += 1
        return rows

    def schema(self, service: str) -> dict[str, str]:
        """CSV series carry a timestamp and one value."""
        return {"timestamp": "datetime", "value": "float"}

    def observed_at(self, service: str) -> datetime:
        """When the file's latest replayed row was measured, on the replay's timeline."""
        return self._shifted(service, max(self._emitted[service] - 1, 0))

    def time_shift(self, service: str) -> timedelta | None:
        """How far the file's rows are moved onto the replay's timeline."""
        return self.shifts[service]

    def file_digest(self, service: str) -> str | None:
        """The SHA-256 of the CSV file."""
        return "sha256:" + self.series[service].digest

    def apply(self, service: str, action: str, params: dict[str, Any] | None = None) -> ActionOutcome:
        """Start the action; replayed data cannot show any effect of it."""
        return ActionOutcome(True, None, {"note": "replayed telemetry does not respond to actions"})

    def active_incident(self, service: str) -> Incident | None:
        """Replayed files carry no ground truth here."""
        return None


def _replay_policies(tracer: Tracer, generation: int) -> dict[str, PolicyRef]:
    return {
        "spike-guard": tracer.policy(
            "spike-guard",
            str(generation),
            rule="score > {score} and value_slope > {value_slope}",
            thresholds={"score": 7.0 if generation == 1 else 9.0, "value_slope": 0.0},
            action="restart",
            risk_class="low",
            owner="team-observability",
            description="Restart the emitter of a series that breaks out of its trained range.",
        )
    }


REPLAY_PROFILE = Profile(
    namespace="aiops.replay",
    source_namespace="nab",
    model_for=lambda service: f"replay-anomaly-{service}",
    features=("value_slope", "value_std"),
    policies=_replay_policies,
    effect_metric={"restart": ("value", None)},
)
