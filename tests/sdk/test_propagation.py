"""Lineage context across process boundaries: over HTTP to another process, over a real NATS
server, the header formats, and the OpenTelemetry span probe.

Run as ``python test_propagation.py serve`` this module is the "other service": an HTTP server
that executes a remediation inside the context its request carries and answers with the events
it recorded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import NATS_URL, nats_unavailable
from opslineage import Tracer, open_store
from opslineage.model import parse_event
from opslineage.query import why
from opslineage.sdk import Artifact, MemoryTransport, continued, current, extract, inject
from opslineage.sdk.propagation import CONTEXT_HEADER, PARENT_HEADER, TRACEPARENT_HEADER

# W3C Trace Context, version 00: trace-id and parent-id lowercase hex, neither all zeros.
TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def serve() -> None:
    """The remote remediation service: POST {"action", "target"} with lineage headers."""

    class Remediator(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            recorded = MemoryTransport()
            tracer = Tracer("remediator.ns", transport=recorded, sync=True, agent="remediation-svc")
            in_scope_before = current().run_id
            try:
                with (
                    continued(dict(self.headers.items())),
                    tracer.action(body["action"], target=body["target"]),
                ):
                    pass
                status, answer = (
                    200,
                    {"pid": os.getpid(), "before": in_scope_before, "events": recorded.events},
                )
            except ValueError as error:
                status, answer = 422, {"error": str(error)}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = HTTPServer(("127.0.0.1", 0), Remediator)
    print(server.server_address[1], flush=True)
    server.serve_forever()


@pytest.fixture(scope="module")
def remediator() -> Iterator[str]:
    """The URL of the remote service, running in its own process."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, __file__, "serve"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port, "the remote service did not start"
        yield f"http://127.0.0.1:{port}/remediate"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _caller() -> tuple[Tracer, Artifact]:
    """A tracer that recorded a chain up to a prediction, and that prediction."""
    from helpers import record_chain  # noqa: PLC0415 (the remote service runs without the test helpers)

    tracer = Tracer.in_memory("caller.ns", agent="controller")
    return tracer, record_chain(tracer).prediction


def _remote_guard(tracer: Tracer) -> Any:
    return tracer.policy(
        "remote-guard", "1", rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 85.0}, action="restart"
    )


def _assert_linked(events: list[dict[str, Any]], decision: Artifact, evaluation_run: str) -> dict[str, Any]:
    """The remote action's record copies the caller's decision, and its run is the evaluation's child."""
    start, complete = events
    record = complete["outputs"][0]["facets"]["aiops_action"]
    assert record["decision"] == decision.digest
    assert record["policy"] == decision.content["policy"] == "policy:remote-guard@1"
    assert record["policy_digest"] == decision.content["policy_digest"]
    assert record["prediction"] == decision.content["prediction"]
    assert record["model"] == decision.content["model"] and record["features"] == decision.content["features"]
    assert record["executor"] == "remediation-svc"
    for event in (start, complete):
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == evaluation_run
        assert parent["job"] == {"namespace": "caller.ns", "name": "policy.remote-guard"}
    assert complete["inputs"][0]["facets"]["aiops_entity"]["digest"] == decision.digest
    return complete


def test_a_remediation_run_by_another_process_over_http_links_to_the_callers_decision(
    remediator: str, tmp_path: Path
) -> None:
    tracer, prediction = _caller()
    with tracer.evaluate(_remote_guard(tracer), prediction, subject="svc-01") as evaluation:
        decision = evaluation.decide(True, "cpu_mean 91 > 85")
        headers = {"Content-Type": "application/json"}
        inject(headers)
        request = urllib.request.Request(
            remediator, json.dumps({"action": "restart", "target": "svc-01"}).encode(), headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    assert answer["pid"] != os.getpid() and answer["before"] is None  # nothing in scope but the headers
    complete = _assert_linked(answer["events"], decision, evaluation.run_id)

    assert isinstance(tracer.transport, MemoryTransport)
    with open_store(f"sqlite:///{tmp_path / 'both.db'}") as store:
        store.ingest([parse_event(event) for event in tracer.transport.events + answer["events"]])
        chain = why(store, "run:" + complete["run"]["runId"])
    assert chain.complete, chain.missing
    assert chain.decision is not None and chain.decision["id"] == decision.id
    assert chain.prediction is not None and chain.prediction["id"] == prediction.id


def test_a_request_without_lineage_headers_is_refused_by_the_remote_action(remediator: str) -> None:
    request = urllib.request.Request(
        remediator, json.dumps({"action": "restart", "target": "svc-01"}).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 422
    assert "an action needs a decision" in json.loads(refused.value.read())["error"]


def test_a_remediation_run_by_a_nats_subscriber_links_to_the_callers_decision() -> None:
    try:
        address = urllib.parse.urlsplit(NATS_URL)
        socket.create_connection((address.hostname, address.port or 4222), timeout=2).close()
    except OSError as error:
        nats_unavailable(f"no NATS server at {NATS_URL}: {error}")
    nats = pytest.importorskip("nats")
    subject = f"opslineage.test.remediate.{uuid.uuid4().hex}"
    remote = Tracer.in_memory("remediator.ns", agent="remediation-svc")
    scope_seen: list[str | None] = []

    async def remediate(message: Any) -> None:
        scope_seen.append(current().run_id)
        with continued(message.headers or {}), remote.action("restart", target="svc-01"):
            pass
        await message.respond(b"done")

    async def scenario() -> tuple[Artifact, str]:
        subscriber = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
        caller = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
        try:
            await subscriber.subscribe(subject, cb=remediate)  # subscribed outside any step
            await subscriber.flush()
            tracer, prediction = _caller()
            with tracer.evaluate(_remote_guard(tracer), prediction, subject="svc-01") as evaluation:
                decision = evaluation.decide(True, "cpu_mean 91 > 85")
                headers: dict[str, str] = {}
                inject(headers)
                reply = await caller.request(subject, b"restart svc-01", timeout=10, headers=headers)
            assert reply.data == b"done"
            return decision, evaluation.run_id
        finally:
            await caller.close()
            await subscriber.close()

    decision, evaluation_run = asyncio.run(scenario())
    assert scope_seen == [None]
    assert isinstance(remote.transport, MemoryTransport)
    _assert_linked(remote.transport.events, decision, evaluation_run)


def test_inject_writes_a_valid_traceparent_and_both_lineage_headers() -> None:
    tracer, prediction = _caller()
    with tracer.evaluate(_remote_guard(tracer), prediction, subject="svc-01") as evaluation:
        decision = evaluation.decide(True, "cpu_mean 91 > 85")
        headers: dict[str, str] = {}
        inject(headers)
        again: dict[str, str] = {}
        inject(again)
    assert set(headers) == {TRACEPARENT_HEADER, PARENT_HEADER, CONTEXT_HEADER}
    assert headers == again  # deterministic for a context

    traceparent = headers[TRACEPARENT_HEADER]
    assert TRACEPARENT.match(traceparent), traceparent
    version, trace_id, parent_id, flags = traceparent.split("-")
    assert (version, trace_id, flags) == ("00", uuid.UUID(evaluation.run_id).hex, "01")
    assert parent_id == hashlib.sha256(evaluation.run_id.encode()).hexdigest()[:16]

    assert json.loads(headers[PARENT_HEADER]) == {
        "run": {"runId": evaluation.run_id},
        "job": {"namespace": "caller.ns", "name": "policy.remote-guard"},
    }

    encoded = headers[CONTEXT_HEADER]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", encoded)  # base64url, unpadded
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert payload["run_id"] == evaluation.run_id and payload["v"] == 1
    assert payload["decision"]["digest"] == decision.digest
    assert payload["decision"]["content"] == {
        key: decision.content[key] for key in ("policy", "policy_digest", "model", "prediction", "features")
    }


def test_extract_gives_back_the_context_inject_wrote() -> None:
    tracer, prediction = _caller()
    with tracer.evaluate(_remote_guard(tracer), prediction, subject="svc-01") as evaluation:
        decision = evaluation.decide(True, "cpu_mean 91 > 85")
        headers: dict[str, str] = {}
        inject(headers)
        sent = current()
    received = extract({key.title(): value for key, value in headers.items()})  # names match in any case
    assert received is not None and received.decision is not None
    assert (received.run_id, received.job_namespace, received.job_name) == (
        sent.run_id,
        sent.job_namespace,
        sent.job_name,
    )
    assert (received.decision.digest, received.decision.run_id, received.decision.name) == (
        decision.digest,
        decision.run_id,
        decision.name,
    )
    assert received.decision.reference() == decision.reference()


def test_inject_keeps_an_existing_traceparent_and_writes_nothing_outside_a_step() -> None:
    empty: dict[str, str] = {}
    inject(empty)
    assert empty == {}

    tracer = Tracer.in_memory("ns")
    with tracer.ingest(tracer.source("svc")):
        live = {"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}  # a tracer's
        inject(live)
    assert live["Traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert set(live) == {"Traceparent", PARENT_HEADER, CONTEXT_HEADER}

    not_uuid = Tracer.in_memory("ns", run_ids=lambda: "run-7")
    with not_uuid.ingest(not_uuid.source("svc")):
        headers: dict[str, str] = {}
        inject(headers)
    assert set(headers) == {PARENT_HEADER, CONTEXT_HEADER}  # no trace-id to derive
    assert extract(headers) is not None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_GOOD_PARENT = json.dumps({"run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "n", "name": "j"}})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {TRACEPARENT_HEADER: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},  # not ours alone
        {CONTEXT_HEADER: "%%% not base64 %%%"},
        {CONTEXT_HEADER: _b64(b"not json")},
        {CONTEXT_HEADER: _b64(b'{"v":1,"run_id":"r"}')},  # no job
        {CONTEXT_HEADER: _b64(b'{"v":2,"run_id":"r","job_namespace":"n","job_name":"j"}')},
        {CONTEXT_HEADER: _b64(b'{"v":1,"run_id":"","job_namespace":"n","job_name":"j"}')},
        {
            CONTEXT_HEADER: _b64(
                b'{"v":1,"run_id":"r","job_namespace":"n","job_name":"j","decision":{"digest":"md5:x"}}'
            )
        },
        {PARENT_HEADER: "{not json"},
        {PARENT_HEADER: '{"run":{"runId":"r"}}'},  # no job
        {PARENT_HEADER: '{"run":{"runId":7},"job":{"namespace":"n","name":"j"}}'},
        {CONTEXT_HEADER: 5},
        {PARENT_HEADER: None},
    ],
)
def test_malformed_headers_give_no_context(headers: dict[str, Any]) -> None:
    assert extract(headers) is None


def test_a_malformed_opslineage_context_falls_back_to_the_openlineage_parent() -> None:
    context = extract({CONTEXT_HEADER: "garbage", PARENT_HEADER: _GOOD_PARENT})
    assert context is not None and context.decision is None
    assert (context.job_namespace, context.job_name) == ("n", "j")


@given(
    st.dictionaries(
        st.sampled_from([CONTEXT_HEADER, PARENT_HEADER, TRACEPARENT_HEADER]) | st.text(), st.text()
    )
)
def test_extract_never_raises(headers: dict[str, str]) -> None:
    extract(headers)


def test_continued_sets_the_carried_context_for_the_block_only() -> None:
    with continued({PARENT_HEADER: _GOOD_PARENT}) as context:
        assert context is not None and current() == context
    assert current().run_id is None
    with continued({}) as nothing:
        assert nothing is None and current().run_id is None


def test_a_step_inside_a_recording_span_tags_the_span() -> None:
    pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415 (optional dependency)
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: PLC0415

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = Tracer.in_memory("otel.ns")
    with (
        provider.get_tracer("test").start_as_current_span("ingest-svc-01"),
        tracer.ingest(tracer.source("svc-01")) as step,
    ):
        pass
    with tracer.ingest(tracer.source("svc-02")):  # no span: nothing to tag, nothing fails
        pass
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["opslineage.run_id"] == step.run_id
    assert span.attributes["opslineage.job"] == "otel.ns:ingest"


def test_a_failing_span_probe_never_reaches_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    trace = pytest.importorskip("opentelemetry.trace")

    def broken() -> None:
        raise RuntimeError("tracing is broken")

    monkeypatch.setattr(trace, "get_current_span", broken)
    tracer = Tracer.in_memory("otel.ns")
    with tracer.ingest(tracer.source("svc-01")) as step:
        pass
    assert isinstance(tracer.transport, MemoryTransport)
    assert [e["eventType"] for e in tracer.transport.events] == ["START", "COMPLETE"]
    assert step.run_id == tracer.transport.events[0]["run"]["runId"]


if __name__ == "__main__" and sys.argv[1:] == ["serve"]:
    serve()
