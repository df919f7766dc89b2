"""A simulated fleet of services whose telemetry responds to remediation actions.

This module owns the demo's world: per-service telemetry (cpu, memory, latency, error rate) with daily
seasonality and noise, incidents injected on a schedule fixed by the seed (the ground truth), the
remediation actions that can end them, and one mid-run telemetry schema change. It depends only on numpy.

Randomness comes from a single ``numpy.random.default_rng(seed)``. Every ``tick()`` draws the same amount
of noise whatever has happened, so two fleets with the same seed see the same noise; the only difference
between them is what was done to them, which makes counterfactual comparisons of actions exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

__all__ = [
    "ACTIONS",
    "DEFAULT_START",
    "EXTRA_FIELD",
    "FIX_FOR",
    "INCIDENT_KINDS",
    "METRICS",
    "ActionOutcome",
    "Fleet",
    "FleetEvent",
    "Incident",
]

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
DEFAULT_STEP = timedelta(minutes=5)  # the telemetry interval
METRICS = ("cpu", "mem", "latency_ms", "error_rate")
EXTRA_FIELD = "gc_pause_ms"
INCIDENT_KINDS = ("cpu_saturation", "memory_leak", "bad_deploy")
FIX_FOR = {"cpu_saturation": "scale_out", "memory_leak": "restart", "bad_deploy": "rollback"}
ACTIONS = ("restart", "scale_out", "scale_in", "rollback")

_BASE_REPLICAS = 2
_TRAIN_FRACTION = 0.25  # incidents never start in this leading part of the run
_SETTLE = 0.5  # fraction of the remaining gap closed per step while an effect settles
_SATURATED_UTIL = 0.85  # a scale-out resolves a saturation only if projected utilisation is below this


@dataclass
class Incident:
    """Ground truth for one injected incident.

    Attributes:
        id: Stable identifier, e.g. ``"inc-03"``.
        service: Affected service name.
        kind: One of ``INCIDENT_KINDS``.
        start: Timestamp of the first step whose metrics show the incident.
        end: Timestamp of the last step during the incident (the action's time when remediated), or None
            while it is active.
        resolved_by: The action that ended it, or None while active or when it ended by itself.
    """

    id: str
    service: str
    kind: str
    start: datetime
    end: datetime | None = None
    resolved_by: str | None = None

    def covers(self, when: datetime) -> bool:
        """Return True when the step at ``when`` falls within the incident."""
        return self.start <= when and (self.end is None or when <= self.end)


@dataclass(frozen=True)
class ActionOutcome:
    """Result of ``Fleet.apply``: whether the action started, why not, and what it did."""

    started: bool
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FleetEvent:
    """Something that happened in the fleet: a deploy, an exporter upgrade, an incident or an action."""

    time: datetime
    service: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Planned:
    step: int
    service: str
    kind: str
    severity: float  # saturation: target utilisation; leak: %/step; deploy: latency multiplier
    errors: float  # deploy: added error rate


_SEVERITY = {"cpu_saturation": (1.08, 1.35), "memory_leak": (0.6, 0.9), "bad_deploy": (2.5, 4.0)}


def _plan_incidents(rng: np.random.Generator, names: list[str], steps: int) -> list[_Planned]:
    """Spread max(3, services) incidents, kinds balanced, over 30%-85% of the run, one per service."""
    count = max(len(INCIDENT_KINDS), len(names))
    kinds = [INCIDENT_KINDS[int(i) % len(INCIDENT_KINDS)] for i in rng.permutation(count)]
    order = [names[int(i) % len(names)] for i in rng.permutation(max(count, len(names)))][:count]
    first = math.ceil(steps * (_TRAIN_FRACTION + 0.05)) + 1
    width = max(1.0, (steps * 0.85 - first) / count)
    plan = []
    for k, (kind, name) in enumerate(zip(kinds, order, strict=True)):
        when = first + int((k + rng.uniform(0, 0.6)) * width)
        severity, errors = float(rng.uniform(*_SEVERITY[kind])), float(rng.uniform(0.04, 0.12))
        plan.append(_Planned(when, name, kind, severity, errors))
    return plan


@dataclass
class _Service:
    name: str
    cpu_base: float
    mem_base: float
    latency_base: float
    error_base: float
    gc_base: float
    amplitude: float
    peak_hour: float
    versions: list[str]
    replicas: int = _BASE_REPLICAS
    eff_replicas: float = float(_BASE_REPLICAS)
    surge_target: float = 1.0
    surge: float = 1.0
    leak_rate: float = 0.0
    leak: float = 0.0
    mem_offset: float = 0.0
    deploy_target: float = 0.0
    deploy: float = 0.0
    deploy_latency: float = 1.0
    deploy_errors: float = 0.0
    surge_until: int | None = None
    blip: int = 0
    extra: bool = False
    incident: Incident | None = None
    incident_steps: int = 0


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


class Fleet:
    """A deterministic simulated fleet; see the module docstring.

    Args:
        services: Number of services, named ``svc-01``, ``svc-02``, ...
        seed: Seed of the fleet's only random generator.
        start: UTC-aware time before the first step; the first ``tick()`` reports ``start + step``.
        step: Telemetry interval.
        hours: Length of the run; ``steps_total`` ticks are available.
        max_replicas: Upper bound for ``scale_out``.
        incident_hours: How long an unremediated incident lasts before it ends by itself.

    Attributes:
        incidents: Ground truth, revealed as incidents start (all of them once the run is over).
        events: Deploys, the exporter upgrade, incident starts and ends, and started actions, in order.
        steps_total: Number of ticks in the run.
        incident_steps: Steps an unremediated incident lasts.
    """

    def __init__(
        self,
        services: int = 6,
        seed: int = 0,
        start: datetime = DEFAULT_START,
        step: timedelta = DEFAULT_STEP,
        hours: float = 24,
        *,
        max_replicas: int = 6,
        incident_hours: float = 6.0,
    ) -> None:
        if services < 1 or hours <= 0 or step <= timedelta(0) or start.tzinfo is None:
            raise ValueError("services, hours and step must be positive and start timezone-aware")
        self.seed, self.step, self.start, self.max_replicas = seed, step, start, max_replicas
        self.steps_total = int(timedelta(hours=hours) / step)
        self.incident_steps = max(1, int(timedelta(hours=incident_hours) / step))
        self.incidents: list[Incident] = []
        self.events: list[FleetEvent] = []
        self._rng = np.random.default_rng(seed)
        self._now, self._index = start, 0
        self._services = {s.name: s for s in (self._make_service(i) for i in range(services))}
        names = list(self._services)
        self._plan = _plan_incidents(self._rng, names, self.steps_total)
        self._upgrade_service = names[int(self._rng.integers(len(names)))]
        self._upgrade_step = int(self.steps_total * self._rng.uniform(0.35, 0.6)) + 1

    def _make_service(self, i: int) -> _Service:
        r = self._rng
        history = int(r.integers(1, 3))
        return _Service(
            name=f"svc-{i + 1:02d}",
            cpu_base=float(r.uniform(20, 35)),
            mem_base=float(r.uniform(35, 55)),
            latency_base=float(r.uniform(40, 140)),
            error_base=float(r.uniform(0.001, 0.005)),
            gc_base=float(r.uniform(4, 15)),
            amplitude=float(r.uniform(0.15, 0.3)),
            peak_hour=float(r.uniform(12, 17)),
            versions=[f"1.{j}.0" for j in range(history)],
        )

    @property
    def now(self) -> datetime:
        """Timestamp of the latest step (``start`` before the first tick)."""
        return self._now

    @property
    def steps_done(self) -> int:
        """Number of ticks so far."""
        return self._index

    @property
    def services(self) -> list[str]:
        """Service names in order."""
        return list(self._services)

    def schema(self, service: str) -> dict[str, str]:
        """Return the telemetry schema of ``service`` at ``now``: field name to type name."""
        fields = {"timestamp": "datetime", **{m: "float" for m in METRICS}}
        if self._get(service).extra:
            fields[EXTRA_FIELD] = "float"
        return fields

    def replicas(self, service: str) -> int:
        """Return the configured replica count of ``service``."""
        return self._get(service).replicas

    def versions(self, service: str) -> list[str]:
        """Return the deployed version history of ``service``, current version last."""
        return list(self._get(service).versions)

    def active_incident(self, service: str) -> Incident | None:
        """Return the incident currently affecting ``service``, if any."""
        return self._get(service).incident

    def _get(self, service: str) -> _Service:
        try:
            return self._services[service]
        except KeyError:
            raise ValueError(f"unknown service {service!r}") from None

    def tick(self) -> dict[str, dict[str, float]]:
        """Advance one step and return every service's metrics at the new ``now``.

        Raises:
            RuntimeError: When all ``steps_total`` steps have been produced.
        """
        if self._index >= self.steps_total:
            raise RuntimeError(f"the run is over after {self.steps_total} steps")
        self._index += 1
        self._now = self.start + self._index * self.step
        for svc in self._services.values():
            if svc.incident is not None and svc.incident_steps >= self.incident_steps:
                self._end_incident(svc, self._now - self.step, None)
            if svc.surge_until is not None and self._index >= svc.surge_until:
                svc.surge_target, svc.surge_until = 1.0, None
        for planned in list(self._plan):  # an incident due on a busy service waits until it is free
            svc = self._services[planned.service]
            if planned.step <= self._index and svc.incident is None:
                self._plan.remove(planned)
                self._start_incident(svc, planned)
        if self._index == self._upgrade_step:
            svc = self._services[self._upgrade_service]
            svc.extra = True
            self.events.append(FleetEvent(self._now, svc.name, "exporter_upgrade", {"added": EXTRA_FIELD}))
        noise = self._rng.standard_normal((len(self._services), 5)).tolist()
        return {svc.name: self._emit(svc, noise[i]) for i, svc in enumerate(self._services.values())}

    def _start_incident(self, svc: _Service, planned: _Planned) -> None:
        incident = Incident(f"inc-{len(self.incidents) + 1:02d}", svc.name, planned.kind, self._now)
        self.incidents.append(incident)
        svc.incident, svc.incident_steps = incident, 0
        if planned.kind == "cpu_saturation":
            svc.surge_target = planned.severity * 100 / (svc.cpu_base * self._traffic(svc))
            svc.surge_until = self._index + self.incident_steps  # the surge outlives a scale-out
        elif planned.kind == "memory_leak":
            svc.leak_rate = planned.severity
        else:
            major, minor, _ = svc.versions[-1].split(".")
            svc.versions.append(f"{major}.{int(minor) + 1}.0")
            svc.deploy_target, svc.deploy_latency, svc.deploy_errors = 1.0, planned.severity, planned.errors
            self.events.append(FleetEvent(self._now, svc.name, "deploy", {"version": svc.versions[-1]}))
        self.events.append(FleetEvent(self._now, svc.name, "incident_started", {"incident": incident.id}))

    def _end_incident(self, svc: _Service, when: datetime, action: str | None) -> None:
        incident = svc.incident
        assert incident is not None
        incident.end, incident.resolved_by, svc.incident = when, action, None
        if incident.kind == "memory_leak":
            svc.leak_rate, svc.leak, svc.mem_offset = 0.0, 0.0, -4.0  # a restart, or the OOM killer's
        elif incident.kind == "bad_deploy":
            svc.deploy_target = 0.0
        detail = {"incident": incident.id, "resolved_by": action}
        self.events.append(FleetEvent(when, svc.name, "incident_ended", detail))

    def _traffic(self, svc: _Service) -> float:
        hour = self._now.hour + self._now.minute / 60 + self._now.second / 3600
        return 1 + svc.amplitude * math.sin(2 * math.pi * (hour - svc.peak_hour + 6) / 24)

    def _emit(self, svc: _Service, z: list[float]) -> dict[str, float]:
        svc.surge += (svc.surge_target - svc.surge) * _SETTLE
        svc.eff_replicas += (svc.replicas - svc.eff_replicas) * _SETTLE
        rate = 0.8 if svc.deploy_target > svc.deploy else _SETTLE
        svc.deploy += (svc.deploy_target - svc.deploy) * rate
        svc.leak += svc.leak_rate
        svc.mem_offset *= 1 - _SETTLE
        if svc.incident is not None:
            svc.incident_steps += 1
        traffic = self._traffic(svc)
        util = svc.cpu_base * traffic * svc.surge * _BASE_REPLICAS / svc.eff_replicas / 100
        overload = max(0.0, util - 0.8)
        blip = svc.blip > 0
        svc.blip = max(0, svc.blip - 1)
        cpu = _clamp(util * 100 + 1.5 * z[0], 0.5, 100.0)
        mem = _clamp(svc.mem_base + 4 * (traffic - 1) + svc.leak + svc.mem_offset + 0.7 * z[1], 1.0, 100.0)
        pressure = _clamp((mem - 80) / 20, 0.0, 1.0)
        latency = svc.latency_base * (1 + 0.25 * (traffic - 1)) * (1 + 3 * overload) * (1.6 if blip else 1.0)
        latency *= (1 + (svc.deploy_latency - 1) * svc.deploy) * (1 + 0.8 * pressure) * math.exp(0.05 * z[2])
        errors = svc.error_base * traffic * math.exp(0.1 * z[3]) + 0.08 * overload + 0.15 * pressure**2
        errors += svc.deploy_errors * svc.deploy + (0.01 if blip else 0.0)
        row = {
            "cpu": round(cpu, 3),
            "mem": round(mem, 3),
            "latency_ms": round(latency, 3),
            "error_rate": round(_clamp(errors, 0.0, 1.0), 6),
        }
        if svc.extra:
            row[EXTRA_FIELD] = round(svc.gc_base * (1 + 3 * pressure) * math.exp(0.1 * z[4]), 3)
        return row

    def apply(self, service: str, action: str, params: dict[str, Any] | None = None) -> ActionOutcome:
        """Apply a remediation action at ``now``; its effect settles over the following steps.

        Args:
            service: Target service.
            action: One of ``ACTIONS``. ``restart`` clears a memory leak (with a brief latency blip),
                ``scale_out``/``scale_in`` change replicas by ``params["replicas"]`` (default 1) and
                ``rollback`` returns to the previous version, clearing a bad deploy. A wrong action leaves
                the incident as it was.
            params: Action parameters.

        Returns:
            The outcome; ``started`` is False with a ``reason`` when the action cannot start. ``detail``
            names the incident it resolved (``"resolved"``) and the action's before/after values.

        Raises:
            ValueError: On an unknown service or action or malformed parameters.
        """
        svc = self._get(service)
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
        incident = svc.incident
        detail: dict[str, Any] = {}
        if action == "restart":
            detail["leaked_mem_cleared"] = round(svc.leak, 3)
            svc.leak, svc.mem_offset, svc.blip = 0.0, -4.0, 2
            fixes = incident is not None and incident.kind == "memory_leak"
        elif action == "rollback":
            if len(svc.versions) < 2:
                return ActionOutcome(False, f"no previous version of {service} to roll back to", {})
            detail.update(from_version=svc.versions.pop(), to_version=svc.versions[-1])
            fixes = incident is not None and incident.kind == "bad_deploy"
        else:
            refusal = self._scale(svc, action, (params or {}).get("replicas", 1), detail)
            if refusal is not None:
                return ActionOutcome(False, refusal, detail)
            enough = detail.pop("enough")
            fixes = incident is not None and incident.kind == "cpu_saturation" and enough
        detail["resolved"] = incident.id if fixes and incident is not None else None
        if fixes:
            self._end_incident(svc, self._now, action)
        self.events.append(FleetEvent(self._now, service, "action", {"action": action, **detail}))
        return ActionOutcome(True, None, detail)

    def _scale(self, svc: _Service, action: str, delta: Any, detail: dict[str, Any]) -> str | None:
        if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
            raise ValueError(f"{action} needs a non-zero integer 'replicas', got {delta!r}")
        target = svc.replicas + abs(delta) * (1 if action == "scale_out" else -1)
        detail["replicas_before"] = svc.replicas
        if target > self.max_replicas:
            return f"{target} replicas would exceed max_replicas={self.max_replicas}"
        if target < 1:
            return "a service needs at least one replica"
        demand = svc.cpu_base * self._traffic(svc) * svc.surge_target * _BASE_REPLICAS / 100
        detail["replicas_after"] = svc.replicas = target
        detail["projected_cpu"] = round(min(100.0, demand / target * 100), 3)
        detail["enough"] = demand / target < _SATURATED_UTIL
        return None
