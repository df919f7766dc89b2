"""Helpers the tests share: recording one complete remediation chain, and NATS or its absence."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import httpx
import pytest

from opslineage import Tracer
from opslineage.sdk import Artifact
from opslineage.sdk.steps import ActionStep

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NATS_URL = os.environ.get("OPSLINEAGE_NATS_URL", "nats://127.0.0.1:4222")
CHAIN_EVENTS = 20  # START and COMPLETE of 3 ingests, features, model and policy registrations, inference,
# evaluation, action, effect


@dataclass
class Chain:
    """Handles to one recorded telemetry → effect chain."""

    snapshots: list[Artifact]
    features: Artifact
    prediction: Artifact
    decision: Artifact
    action: ActionStep
    effect: Artifact


def record_chain(tracer: Tracer, *, subject: str = "svc-01", fire: bool = True) -> Chain:
    """Record a complete remediation chain with ``tracer`` (three snapshots, one of each else), in
    causal order: the pipeline's clock starts when the last snapshot's window ends."""
    clock = iter(T0 + timedelta(minutes=15, seconds=i) for i in range(10_000))
    tracer.clock = lambda: next(clock)
    source = tracer.source(subject, owner="team-a")
    snapshots = []
    fields = {"timestamp": "datetime", "cpu": "float"}
    for i in range(3):
        with tracer.ingest(source) as step:
            when = T0 + timedelta(minutes=5 * i)
            snapshots.append(
                step.snapshot([[tracer.timestamp(when), 90.0 + i]], fields, when, when + timedelta(minutes=5))
            )
    with tracer.features(_mean_cpu, snapshots, subject=subject) as step:
        features = step.feature_set({"cpu_mean": 91.0}, T0, T0 + timedelta(minutes=15))
    model = tracer.model("detector", "1", b"model bytes", "robust-z")
    tracer.register_model(model, approver="mlops:bob")
    policy = tracer.policy(
        "cpu-guard",
        "1",
        rule="cpu_mean > {cpu_mean}",
        thresholds={"cpu_mean": 85.0},
        action="scale_out",
        params={"replicas": 2},
        risk_class="medium",
    )
    tracer.register_policy(policy, approver="alice")
    with tracer.inference(model, features, subject=subject) as step:
        prediction = step.prediction(6.5, "anomaly", {"cpu_mean": 6.5})
    with tracer.evaluate(policy, prediction, subject=subject) as step:
        decision = step.decide(
            fire, "cpu_mean 91 > 85", [{"input": "cpu_mean", "value": 91.0, "op": ">", "threshold": 85.0}]
        )
        with tracer.action("scale_out", target=subject, params={"replicas": 2}) as action:
            pass
    assert action.record is not None
    with tracer.observe_effect(action.record) as step:
        effect = step.effect(
            "resolved",
            T0 + timedelta(minutes=30),
            T0 + timedelta(minutes=45),
            metric="cpu",
            before=91.0,
            after=55.0,
            samples_before=3,
            samples_after=3,
        )
    return Chain(snapshots, features, prediction, decision, action, effect)


def _mean_cpu(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean CPU over the window."""
    return {"cpu_mean": sum(row["cpu"] for row in rows) / len(rows)}


def register_refused_policy(tracer: Tracer) -> None:
    """Register cpu-guard@1 again with another threshold: a version the store refuses, as a
    chain recorded by :func:`record_chain` already holds it."""
    policy = tracer.policy(
        "cpu-guard",
        "1",
        rule="cpu_mean > {cpu_mean}",
        thresholds={"cpu_mean": 99.0},
        action="scale_out",
        params={"replicas": 2},
        risk_class="medium",
    )
    tracer.register_policy(policy, approver="mallory")


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def nats_unavailable(reason: str) -> NoReturn:
    """Skip the test for want of NATS, or fail it when ``OPSLINEAGE_REQUIRE_SERVICES=1`` (CI)."""
    if os.environ.get("OPSLINEAGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"NATS is required (OPSLINEAGE_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


def require_nats() -> None:
    """Go on only when a NATS server answers at ``NATS_URL`` (see :func:`nats_unavailable`)."""
    address = urllib.parse.urlsplit(NATS_URL)
    try:
        socket.create_connection((address.hostname, address.port or 4222), timeout=2).close()
    except OSError as error:
        nats_unavailable(f"no NATS server at {NATS_URL}: {error}")


def wait_until_serving(
    process: subprocess.Popen[bytes], url: str, timeout: float = 30, *, verify: ssl.SSLContext | bool = True
) -> None:
    """Return once ``opslineage serve`` at ``url`` answers ``/healthz`` (an https URL's certificate
    checked with ``verify``); fail the test (killing the process) when it exits first or
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("opslineage serve did not start")
        time.sleep(0.1)
