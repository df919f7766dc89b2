"""Baselines and reconciliation on a demo store: drift made through the SDK is reported once per
kind with its owner, alerted once to a real webhook and a real NATS subscriber, and accepted away.

Without a NATS server at ``$OPSLINEAGE_NATS_URL`` (default ``nats://127.0.0.1:4222``) the test
that needs one is skipped, unless ``OPSLINEAGE_REQUIRE_SERVICES=1`` (then it fails).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest

from helpers import NATS_URL, require_nats
from opslineage import Tracer, open_store
from opslineage.checks.alerts import NatsChannel, WebhookChannel
from opslineage.cli.main import main
from opslineage.demo import DemoConfig, run_demo
from opslineage.model.events import content_digest
from opslineage.model.facets import PolicyFacet, RulesFacet, Transform
from opslineage.query import Principal, Reader
from opslineage.sdk.refs import PolicyRef
from opslineage.store import Store

DEMO_END = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # where a 6-hour demo's clock stops


class Webhook:
    """A real HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it; the first
    ``failures`` requests are answered 500."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests += 1
                if hook.requests <= failures:
                    self.send_response(500)
                else:
                    hook.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


class Subscriber:
    """A real NATS subscriber to ``opslineage.alerts.>``, on a loop of its own."""

    def __init__(self, url: str) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = self._run(self._connect(url))

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    async def _connect(self, url: str) -> Any:
        client = await nats.connect(url, connect_timeout=3)

        async def keep(message: Any) -> None:
            self.messages.append((message.subject, json.loads(message.data)))

        await client.subscribe("opslineage.alerts.>", cb=keep)
        await client.flush()
        return client

    def of(self, baseline_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The messages about one baseline (other runs may share the server), once all arrived."""
        self._run(self.client.flush())
        return [(subject, body) for subject, body in self.messages if body["baseline_id"] == baseline_id]

    def close(self) -> None:
        self._run(self.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    require_nats()
    made = Subscriber(NATS_URL)
    yield made
    made.close()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    status = main(list(argv))
    out = capsys.readouterr().out
    return status, json.loads(out) if "--json" in argv else out


def _fields(store: Store, service: str) -> dict[str, str]:
    """The schema of the newest stored snapshot of ``service``."""
    reader = Reader(store, Principal.local_admin())
    newest = reader.search(kind="entity", name=f"snapshot/{service}", limit=1)[0]
    return {field["name"]: field["type"] for field in reader.detail(newest.id).content["fields"]}


def _drift_after_the_baseline(url: str) -> None:
    """Run the demo's pipeline on for 25 minutes through the SDK, with a new schema for svc-01, a
    new code version of the transform, a new model version and a new cpu-guard version, and
    without svc-06."""
    with open_store(url) as store:
        reader = Reader(store, Principal.local_admin())
        policies = {
            name: msgspec.convert(reader.detail(f"policy:{name}@1").content, PolicyFacet)
            for name in ("cpu-guard", "mem-guard", "deploy-guard")
        }
        services = ("svc-01", "svc-02", "svc-03", "svc-04", "svc-05")
        schemas = {
            service: {
                field["name"]: field["type"]
                for field in reader.detail(
                    reader.search(kind="entity", name=f"snapshot/{service}", limit=1)[0].id
                ).content["fields"]
            }
            for service in services
        }
        schemas["svc-01"]["disk"] = "float"
        now = [DEMO_END]
        tracer = Tracer("aiops.demo", store=store, sync=True, agent="aiops-pipeline", clock=lambda: now[0])
        policies["cpu-guard"] = msgspec.structs.replace(
            policies["cpu-guard"], version="3", thresholds={"cpu_slope": 0.4, "cpu_mean": 60.0}
        )
        refs = {name: PolicyRef("aiops.demo", facet) for name, facet in policies.items()}
        tracer.register_policy(refs["cpu-guard"], approver="governance:carol")
        model = tracer.model("fleet-anomaly", "3.test", b"retrained detector", "robust-z (median/MAD)")
        tracer.register_model(model, approver="mlops:bob")
        transform = Transform(
            name="rolling_features", code_version="git:test+src:edited", parameters={"window": 12}
        )
        for cycle in range(1, 6):
            now[0] = DEMO_END + timedelta(minutes=5 * cycle)
            for service in services:
                fields = schemas[service]
                with tracer.ingest(tracer.source(service, owner="team-observability")) as step:
                    row = [tracer.timestamp(now[0]), *([50.0] * (len(fields) - 1))]
                    snapshot = step.snapshot([row], fields, now[0] - timedelta(minutes=5), now[0])
                with tracer.features(transform, [snapshot], subject=service) as step:
                    features = step.feature_set({"cpu_slope": 0.0}, now[0] - timedelta(hours=1), now[0])
                with tracer.inference(model, features, subject=service) as step:
                    prediction = step.prediction(0.5, "normal")
                for ref in refs.values():
                    with tracer.evaluate(ref, prediction, subject=service) as step:
                        step.decide(False, "no input breached its threshold")
        tracer.close()
        assert tracer.stats.errors == 0, tracer.stats.last_error


EXPECTED = {
    "schema_changed": ("source:aiops.demo:svc-01", ["team-observability"]),
    "code_version_changed": ("job:aiops.demo:features.rolling_features", ["team-observability"]),
    "model_changed": ("model:fleet-anomaly@3.test", ["mlops:bob"]),
    "policy_changed": ("policy:cpu-guard@3", ["team-capacity"]),
    "source_silent": ("source:aiops.demo:svc-06", ["team-observability"]),
}


def test_drift_is_reported_once_per_kind_alerted_once_and_accepted(
    store_url: str, capsys: pytest.CaptureFixture[str], webhook: Webhook, subscriber: Subscriber
) -> None:
    with open_store(store_url) as store:
        run_demo(store, DemoConfig(hours=6))
    status, saved = _cli(capsys, "baseline", "save", "nightly", "--store", store_url, "--json")
    assert status == 0 and saved["jobs"] == 15 and saved["sources"] == 6
    status, report = _cli(capsys, "reconcile", "nightly", "--store", store_url, "--json")
    assert (status, report["drifts"]) == (0, [])

    _drift_after_the_baseline(store_url)
    alerting = ("--alert-webhook", webhook.url, "--bus", NATS_URL)
    status, report = _cli(capsys, "reconcile", "nightly", "--store", store_url, "--json", *alerting)
    assert status == 1
    assert report["baseline"]["id"] == saved["id"]
    found = {drift["kind"]: (drift["node"], drift["owners"]) for drift in report["drifts"]}
    assert sorted(drift["kind"] for drift in report["drifts"]) == sorted(EXPECTED), report["drifts"]
    assert found == EXPECTED
    by_kind = {drift["kind"]: drift for drift in report["drifts"]}
    assert by_kind["model_changed"]["expected"] == "fleet-anomaly@2.a457bb84"
    assert (by_kind["policy_changed"]["expected"], by_kind["policy_changed"]["found"]) == (
        "cpu-guard@2",
        "cpu-guard@3",
    )
    assert by_kind["code_version_changed"]["found"] == "git:test+src:edited"

    keys = sorted(drift["key"] for drift in report["drifts"])
    assert sorted(body["key"] for body in webhook.bodies) == keys
    messages = subscriber.of(saved["id"])
    assert sorted(body["key"] for _, body in messages) == keys
    assert {subject for subject, _ in messages} == {"opslineage.alerts.aiops.demo"}
    assert report["alerts"] == {f"webhook {webhook.url}": 5, f"nats {NATS_URL}": 5}

    status, again = _cli(capsys, "reconcile", "nightly", "--store", store_url, "--json", *alerting)
    assert status == 1 and len(again["drifts"]) == 5
    assert again["alerts"] == {f"webhook {webhook.url}": 0, f"nats {NATS_URL}": 0}
    assert len(webhook.bodies) == 5 and len(subscriber.of(saved["id"])) == 5

    status, accepted = _cli(capsys, "baseline", "accept", "nightly", "--store", store_url, "--json")
    assert status == 0 and accepted["id"] != saved["id"]
    status, after = _cli(capsys, "reconcile", "nightly", "--store", store_url, *alerting)
    assert status == 0
    assert after.startswith("0 drift(s) against baseline nightly")
    assert len(webhook.bodies) == 5


def test_a_baseline_and_its_event_are_in_the_log(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(store_url) as store:
        run_demo(store, DemoConfig(hours=4))
    status, saved = _cli(
        capsys, "baseline", "save", "b1", "--namespace", "aiops.demo", "--store", store_url, "--json"
    )
    assert status == 0 and saved["namespace"] == "aiops.demo"
    with open_store(store_url) as store:
        reader = Reader(store, Principal.local_admin())
        detail = reader.detail(saved["id"])
        assert detail.content["name"] == "b1"
        assert set(detail.content["structure"]["jobs"]) >= {
            "job:aiops.demo:ingest",
            "job:aiops.demo:features.rolling_features",
        }
        assert "job:aiops.demo:baseline.save.b1" not in detail.content["structure"]["jobs"]
        run = reader.search(kind="run", namespace="aiops.demo", name="baseline.save.b1")
        assert len(run) == 1
        assert reader.verify(None).ok


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reconcile", "no such"], "baseline name 'no such' must be"),
        (["reconcile", "missing"], "no baseline named 'missing'"),
        (["baseline", "accept", "missing"], "no baseline named 'missing'"),
        (["baseline", "save", "a/b"], "must be a letter or digit"),
        (["reconcile", "missing", "--alert-webhook", "ftp://host/x"], "is not an http:// or https:// URL"),
        (["reconcile", "missing", "--bus", "http://127.0.0.1:4222"], "is not a NATS server URL"),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    with open_store(url, create=True):
        pass
    assert main([*argv, "--store", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("opslineage: error: ") and message in err and "Traceback" not in err


def test_a_webhook_is_retried_with_backoff_and_a_final_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = Webhook(failures=2)
    try:
        assert WebhookChannel(flaky.url, attempts=3, backoff=0.01).send([{"key": "k1"}]) == [True]
        assert (flaky.requests, flaky.bodies) == (3, [{"key": "k1"}])
    finally:
        flaky.close()
    down = Webhook(failures=10)
    try:
        with caplog.at_level(logging.WARNING, logger="opslineage"):
            assert WebhookChannel(down.url, attempts=3, backoff=0.01).send([{"key": "k2"}]) == [False]
        assert down.requests == 3
        assert f"alert webhook {down.url} failed after 3 attempts, k2 not delivered" in caplog.text
    finally:
        down.close()


def test_nats_that_cannot_be_reached_delivers_nothing_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="opslineage"):
        assert NatsChannel(f"nats://127.0.0.1:{port}").send([{"key": "k", "namespace": "a.b"}]) == [False]
    assert f"alerts to NATS at nats://127.0.0.1:{port} not delivered (1)" in caplog.text
    assert NatsChannel.subject({"namespace": "postgres://db:5432"}) == "opslineage.alerts.postgres___db_5432"


def test_rules_coverage_new_edges_and_a_stopped_pipeline_are_drift(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(store_url) as store:
        run_demo(store, DemoConfig(hours=4))
    end = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
    assert _cli(capsys, "baseline", "save", "b", "--store", store_url)[0] == 0
    with open_store(store_url) as store:
        now = [end]
        tracer = Tracer("aiops.demo", store=store, sync=True, clock=lambda: now[0])
        rules = RulesFacet(
            name="prod",
            registered_at=tracer.timestamp(end),
            rules=[{"risk_class": "high"}],
            steward="governance:carol",
        )
        wire = rules.to_dict()
        tracer.emit(
            {
                "eventType": "COMPLETE",
                "eventTime": tracer.timestamp(end),
                "producer": tracer.producer,
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": tracer.new_run_id()},
                "job": {"namespace": "aiops.demo", "name": "rules.register.prod"},
                "inputs": [],
                "outputs": [
                    {
                        "namespace": "aiops.demo",
                        "name": "rules/prod",
                        "facets": {
                            "aiops_entity": {
                                "_producer": tracer.producer,
                                "_schemaURL": Tracer.schema_url("EntityFacet"),
                                "type": "rules",
                                "digest": content_digest(wire),
                            },
                            "aiops_rules": wire,
                        },
                    }
                ],
            }
        )
        unstored = Tracer.in_memory(
            "aiops.demo"
        )  # the decision's step is dropped: its events are never stored
        source = unstored.source("svc-01")
        with unstored.ingest(source) as step:
            snapshot = step.snapshot(
                [[unstored.timestamp(end), 1.0]], {"timestamp": "datetime", "cpu": "float"}, end, end
            )
        with unstored.features(Transform(name="t", code_version="1"), [snapshot], subject="svc-01") as step:
            features = step.feature_set({"cpu_mean": 99.0}, end, end)
        policy = unstored.policy(
            "cpu-guard", "9", rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 90.0}, action="scale_out"
        )
        with unstored.inference(unstored.model("m", "1", b"m", "x"), features, subject="svc-01") as step:
            prediction = step.prediction(9.0, "anomaly")
        with unstored.evaluate(policy, prediction, subject="svc-01") as step:
            decision = step.decide(True, "cpu_mean 99 > 90", action="scale_out")
        with tracer.action("scale_out", target="svc-01", decision=decision):
            pass
        with tracer.ingest(tracer.source("svc-01", owner="team-observability")) as step:
            fields = _fields(store, "svc-01")
            kept = step.snapshot([[tracer.timestamp(end), *([1.0] * (len(fields) - 1))]], fields, end, end)
        tracer.close()
        assert tracer.stats.errors == 0, tracer.stats.last_error

    status, report = _cli(capsys, "reconcile", "b", "--store", store_url, "--json")
    assert status == 1
    kinds = sorted(drift["kind"] for drift in report["drifts"])
    assert kinds == ["coverage_dropped", "rules_changed"], report["drifts"]
    by_kind = {drift["kind"]: drift for drift in report["drifts"]}
    assert by_kind["rules_changed"]["owners"] == ["governance:carol"]
    assert by_kind["rules_changed"]["expected"] is None and by_kind["rules_changed"][
        "found"
    ] == content_digest(wire)
    assert by_kind["coverage_dropped"]["expected"].startswith("1.0000 (")
    assert by_kind["coverage_dropped"]["found"].endswith("complete why-chains)")

    with open_store(store_url) as store:  # a new step 40 minutes on: the demo's pipeline has stopped since
        now[0] = end + timedelta(minutes=40)
        tracer = Tracer("aiops.demo", store=store, sync=True, clock=lambda: now[0])
        with tracer.features(
            Transform(name="disk_features", code_version="1"), [kept], subject="svc-01"
        ) as step:
            step.feature_set({"disk": 1.0}, end, now[0])
        tracer.close()
        assert tracer.stats.errors == 0, tracer.stats.last_error
    status, report = _cli(capsys, "reconcile", "b", "--store", store_url, "--json")
    assert status == 1
    drifts = report["drifts"]
    silent = {d["node"] for d in drifts if d["kind"] == "source_silent"}
    assert silent == {f"source:aiops.demo:svc-0{i}" for i in range(1, 7)}
    vanished = {d["node"]: d["owners"] for d in drifts if d["kind"] == "job_vanished"}
    assert vanished["job:aiops.demo:ingest"] == ["team-observability"]
    assert "job:aiops.demo:features.rolling_features" in vanished
    assert "job:aiops.demo:remediation.scale_out" not in vanished  # event-driven: quiet is not vanished
    added = sorted(d["subject"] for d in drifts if d["kind"] == "edge_added")
    assert added == [
        "reads entity:snapshot",
        "reads source:aiops.demo:svc-01",
        "writes entity:feature",
    ]
    assert {d["job"] for d in drifts if d["kind"] == "edge_added"} == {
        "job:aiops.demo:features.disk_features"
    }
    assert not [d for d in drifts if d["kind"] == "edge_missing" and "source:" in d["subject"]]


def test_a_forged_baseline_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    with open_store(url, create=True) as store:
        tracer = Tracer("x", store=store, sync=True)
        tracer.record_baseline("forged", {"jobs": 5})
        tracer.close()
    assert main(["reconcile", "forged", "--store", url]) == 2
    err = capsys.readouterr().err
    assert "baseline 'forged' (entity:sha256:" in err and "holds no structure this version reads" in err


def test_watch_reconciles_every_interval_one_json_line_a_round(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    with open_store(url, create=True) as store:
        run_demo(store, DemoConfig(hours=4))
    assert main(["baseline", "save", "w", "--store", url]) == 0
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opslineage.cli.main",
            "reconcile",
            "w",
            "--watch",
            "0.2",
            "--json",
            "--store",
            url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None
        rounds = [json.loads(watch.stdout.readline()) for _ in range(2)]
    finally:
        watch.terminate()
        watch.wait(10)
    assert [(r["baseline"]["name"], r["drift"]) for r in rounds] == [("w", 0), ("w", 0)]
