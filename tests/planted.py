"""A planted secret in the telemetry rows of a restricted source, and the checks that it never leaks.

:func:`record_secret_chain` records one remediation chain whose snapshots carry
:data:`SECRET` in their rows, and labels the source ``restricted``. :func:`routes` names every read
surface of that chain as the HTTP API spells its paths (plus ``export/...`` for the exports);
:func:`reader_fetch` answers those names through a :class:`~opslineage.query.Reader`, encoded as
the HTTP API encodes them. :func:`assert_no_secret` and :func:`assert_secret_shown` take any
``fetch(route) -> bytes``, so the same checks run over HTTP with real tokens.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import msgspec

from opslineage import Tracer
from opslineage.governance import AccessDenied
from opslineage.interop import make_bundle, make_intoto
from opslineage.interop.openlineage import export_openlineage
from opslineage.interop.prov import export_prov_json
from opslineage.model.facets import LabelFacet, OwnersFacet
from opslineage.query import Reader, why_view
from opslineage.server.marquez import marquez_lineage

SECRET = "PLANTED-SECRET-7f3a"
NAMESPACE = "ops"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

Fetch = Callable[[str], bytes]


@dataclass
class SecretChain:
    """Ids of the recorded chain: its action run, snapshots, source, feature set and ingest run."""

    action: str
    snapshots: list[str]
    source: str
    features: str
    ingest_run: str


def record_secret_chain(tracer: Tracer, *, label: bool = True, owners: bool = True) -> SecretChain:
    """Record a chain from a source whose rows hold :data:`SECRET`; with ``label``, the source
    is labelled restricted; with ``owners``, the source and the namespace get owners."""
    clock = iter(T0 + timedelta(minutes=15, seconds=i) for i in range(10_000))
    tracer.clock = lambda: next(clock)
    source = tracer.source("svc-01", owner="team-a")
    snapshots, ingest_run = [], ""
    for i in range(2):
        with tracer.ingest(source) as step:
            start = T0 + timedelta(minutes=5 * i)
            rows = [[tracer.timestamp(start), 90.0 + i, f"{SECRET} host db-{i}"]]
            fields = {"timestamp": "datetime", "cpu": "float", "note": "string"}
            snapshots.append(step.snapshot(rows, fields, start, start + timedelta(minutes=5)))
            ingest_run = step.run_id
    with tracer.features(_mean_cpu, snapshots, subject="svc-01") as step:
        features = step.feature_set({"cpu_mean": 90.5}, T0, T0 + timedelta(minutes=10))
    model = tracer.model("detector", "1", b"model bytes", "robust-z")
    tracer.register_model(model, approver="mlops:bob")
    policy = tracer.policy(
        "cpu-guard", "1", rule="cpu_mean > {cpu_mean}", thresholds={"cpu_mean": 85.0}, action="scale_out"
    )
    tracer.register_policy(policy, approver="alice")
    with tracer.inference(model, features, subject="svc-01") as step:
        prediction = step.prediction(6.5, "anomaly", {"cpu_mean": 6.5})
    with tracer.evaluate(policy, prediction, subject="svc-01") as step:
        step.decide(True, "cpu_mean 90.5 > 85", [])
        with tracer.action("scale_out", target="svc-01", params={"replicas": 2}) as action:
            pass
    assert action.record is not None
    with tracer.observe_effect(action.record) as step:
        step.effect("resolved", T0 + timedelta(minutes=30), T0 + timedelta(minutes=45), metric="cpu")
    now = tracer.timestamp(T0 + timedelta(hours=1))
    if label:
        tracer.set_label(
            LabelFacet(
                namespace=NAMESPACE, level="restricted", source="svc-01", set_at=now, set_by="cli:carol"
            )
        )
    if owners:
        tracer.set_owners(
            OwnersFacet(
                namespace=NAMESPACE, owners=["sre"], stewards=["carol"], set_at=now, set_by="cli:carol"
            )
        )
        tracer.set_owners(
            OwnersFacet(
                namespace=NAMESPACE,
                scope="source",
                name="svc-01",
                owners=["team-a"],
                set_at=now,
                set_by="cli:carol",
            )
        )
    return SecretChain(
        "run:" + action.run_id,
        [f"entity:{s.digest}" for s in snapshots],
        f"source:{NAMESPACE}:svc-01",
        f"entity:{features.digest}",
        "run:" + ingest_run,
    )


def _mean_cpu(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean CPU over the window."""
    return {"cpu_mean": sum(row["cpu"] for row in rows) / len(rows)}


def routes(chain: SecretChain) -> list[str]:
    """Every read of the chain, as HTTP paths (the exports as ``export/<format>[/<action>]``)."""
    nodes = [*chain.snapshots, chain.source, chain.features, chain.ingest_run, chain.action]
    return [
        f"/api/v1/why/{chain.action}",
        f"/api/v1/why-tree/{chain.action}",
        *(f"/api/v1/nodes/{node}" for node in nodes),
        "/api/v1/nodes?kind=snapshot",
        "/api/v1/nodes?q=svc-01",
        f"/api/v1/upstream/{chain.action}?depth=20",
        f"/api/v1/downstream/{chain.source}?depth=20",
        f"/api/v1/lineage?nodeId=dataset:{NAMESPACE}:snapshot/svc-01&depth=5",
        f"/api/v1/bundle/{chain.action}",
        "export/openlineage",
        "export/prov-json",
        f"export/intoto/{chain.action}",
        f"export/contents/{','.join(nodes)}",
        f"export/run-events/{chain.ingest_run}",
    ]


def reader_fetch(reader: Reader, key: object = None) -> Fetch:
    """``fetch(route)`` answered by ``reader`` as the HTTP API would encode it; a refused read
    answers its JSON error (``{"error": "forbidden", ...}``). ``key`` signs in-toto envelopes."""

    def answer(route: str) -> object:
        parts = urlsplit(route)
        path, query = parts.path.removeprefix("/api/v1/"), parse_qs(parts.query)
        head, _, rest = path.partition("/")
        depth = int(query.get("depth", ["10"])[0])
        match head:
            case "why":
                return reader.why(rest).to_dict()
            case "why-tree":
                return why_view(reader.why(rest))
            case "nodes" if rest:
                return reader.detail(rest)
            case "nodes":
                kind = query.get("kind", [None])[0]
                return reader.page(kind, text=query.get("q", [None])[0]).to_dict()
            case "upstream":
                return reader.upstream(rest, depth).to_dict()
            case "downstream":
                return reader.downstream(rest, depth).to_dict()
            case "lineage":
                return marquez_lineage(reader, query["nodeId"][0], depth)
            case "bundle":
                return make_bundle(reader, rest)
        return export(*rest.partition("/")[::2])

    def export(kind: str, target: str) -> object:
        match kind:
            case "openlineage":
                out = io.BytesIO()
                export_openlineage(reader, out)
                return out.getvalue().decode()
            case "prov-json":
                text = io.StringIO()
                export_prov_json(reader, text)
                return text.getvalue()
            case "intoto":
                return make_intoto(reader, target, key)  # type: ignore[arg-type]
            case "contents":
                return reader.contents(target.split(","))
            case "run-events":
                return [dataclasses.asdict(e) for e in reader.run_events(target.removeprefix("run:"))]
        raise ValueError(f"no such export {kind}")

    def fetch(route: str) -> bytes:
        try:
            return msgspec.json.encode(answer(route))
        except AccessDenied as denied:
            return msgspec.json.encode({"error": "forbidden", "detail": denied.reason})

    return fetch


def _readable(body: bytes) -> bytes:
    """``body`` with a DSSE envelope's base64 payload decoded after it (a secret must not hide there)."""
    if body.startswith(b'{"payloadType"'):
        envelope = msgspec.json.decode(body)
        return body + b"\n" + base64.b64decode(envelope["payload"])
    return body


def assert_no_secret(fetch: Fetch, paths: Iterable[str]) -> list[str]:
    """Fail naming the first answer whose bytes hold :data:`SECRET`; returns the paths answered
    without a refusal (so a caller can check that something was read)."""
    answered = []
    for path in paths:
        body = _readable(fetch(path))
        assert SECRET.encode() not in body, f"{path} leaked the planted secret"
        if not body.startswith(b'{"error"'):
            answered.append(path)
    return answered


def assert_secret_shown(fetch: Fetch, paths: Iterable[str]) -> None:
    """Fail naming the first answer that should carry :data:`SECRET` and does not."""
    for path in paths:
        assert SECRET.encode() in _readable(fetch(path)), (
            f"{path} withheld the planted secret from a cleared reader"
        )
