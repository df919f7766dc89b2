"""Whole-store exports: OpenLineage JSON lines rebuild the same store, byte for byte; PROV-JSON
reads back with one record per node and edge; the ``export`` command around both."""

from __future__ import annotations

import io
import json
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import msgspec
import prov
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prov.model import PROV_N_MAP, PROV_ROLE, ProvDocument, ProvRecord

from opslineage import open_store
from opslineage.cli.main import main
from opslineage.demo import DemoConfig, DemoResult, run_demo
from opslineage.interop import export_openlineage, export_prov_json, to_prov
from opslineage.interop.prov import NODE_NS, OPSLINEAGE_NS
from opslineage.model import InvalidEvent, parse_event
from opslineage.store import Store

COMPATIBILITY = next(
    (
        path
        for path in (
            Path(__file__).parents[1] / "data" / "openlineage" / "compatibility-tests",
            Path("/work/shared/data/openlineage/compatibility-tests"),
        )
        if path.exists()
    ),
    Path("compatibility-tests-not-available"),
)
ENTITY_KINDS = ("entity", "dataset", "model", "policy", "source", "job")
RELATIONS = {
    "used": "used",
    "wasGeneratedBy": "wasGeneratedBy",
    "wasAssociatedWith": "wasAssociatedWith",
    "wasDerivedFrom": "wasDerivedFrom",
    "hasParent": "wasInformedBy",
}
pytestmark = pytest.mark.filterwarnings("error::prov.model.ProvWarning")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, DemoResult]:
    """A small demo store (two services, eight hours), shared read-only by the module's tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'demo.db'}"
    with open_store(url) as store:
        return url, run_demo(store, DemoConfig(services=2, hours=8))


def _graph(store: Store) -> tuple[dict[str, int], set[tuple[str, str | None]], str]:
    nodes = {(node.id, node.digest) for node in store.find_nodes(limit=10**6)}
    return store.counts(), nodes, store.state_digest()


def _edges(store: Store) -> list[tuple[str, str, str, str | None]]:
    return store.edges([node.id for node in store.find_nodes(limit=10**6)], direction="up")


def _rebuilt(lines: bytes, tmp_path: Path) -> Store:
    store = open_store(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    store.ingest([parse_event(line) for line in lines.splitlines()])
    return store


def test_openlineage_export_rebuilds_the_demo_store_exactly(demo, tmp_path: Path) -> None:
    url, _ = demo
    out, progress = io.BytesIO(), []
    with open_store(url) as store:
        written = export_openlineage(store, out, progress.append)
        original = _graph(store)
    assert written == original[0]["events"] == len(out.getvalue().splitlines())
    assert progress == sorted(progress) and progress[-1] == written and len(progress) == -(-written // 1000)
    with _rebuilt(out.getvalue(), tmp_path) as rebuilt:
        counts, nodes, digest = _graph(rebuilt)
    assert counts == original[0]
    assert nodes == original[1]
    assert digest == original[2]


def test_export_and_ingest_commands_round_trip(demo, tmp_path: Path, capsysbinary) -> None:
    url, _ = demo
    out = tmp_path / "lineage.jsonl"
    assert main(["export", "--format", "openlineage", "-o", str(out), "--store", url, "--json"]) == 0
    summary = json.loads(capsysbinary.readouterr().out)
    with open_store(url) as store:
        events = store.counts()["events"]
    assert summary == {
        "output": str(out),
        "format": "openlineage",
        "bytes": out.stat().st_size,
        "events": events,
    }
    assert not out.with_name("lineage.jsonl.partial").exists()
    assert main(["export", "--format", "openlineage", "--store", url]) == 0
    assert capsysbinary.readouterr().out == out.read_bytes()  # stdout without -o, nothing else on it
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    assert main(["ingest", str(out), "--store", copy]) == 0
    with open_store(url) as store, open_store(copy) as rebuilt:
        assert rebuilt.state_digest() == store.state_digest()


@pytest.mark.skipif(not COMPATIBILITY.exists(), reason="OpenLineage compatibility events not available")
def test_foreign_events_keep_every_facet_verbatim(tmp_path: Path) -> None:
    originals, refused, seen = [], [], set()
    for path in sorted(COMPATIBILITY.glob("*/events/*.json")):
        try:
            parsed = parse_event(path.read_bytes())
        except InvalidEvent:
            refused.append(path.relative_to(COMPATIBILITY).as_posix())
            continue
        if parsed.digest not in seen:
            seen.add(parsed.digest)
            originals.append((json.loads(path.read_bytes()), parsed))
    assert refused == [] and len(originals) > 60
    with open_store(f"sqlite:///{tmp_path / 'foreign.db'}") as store:
        store.ingest([parsed for _, parsed in originals])
        out = io.BytesIO()
        assert export_openlineage(store, out) == len(originals)
        original = _graph(store)
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [event for event, _ in originals]
    assert [parse_event(line).digest for line in lines] == [parsed.digest for _, parsed in originals]
    with _rebuilt(out.getvalue(), tmp_path) as rebuilt:
        assert _graph(rebuilt) == original


def test_dataset_and_job_events_round_trip_and_map_to_prov_influence(tmp_path: Path) -> None:
    common = {"eventTime": "2026-01-05T12:00:00Z", "producer": "https://example.test/producer"}
    dataset = {
        "namespace": "postgres://db:5432",
        "name": "public.orders",
        "facets": {"x_owner": {"team": "a"}},
    }
    events = [
        {**common, "dataset": dataset},
        {**common, "job": {"namespace": "etl", "name": "load"}, "inputs": [dataset], "outputs": []},
        {**common, "job": {"namespace": "etl", "name": "load"}, "inputs": [], "outputs": [dataset]},
    ]
    with open_store(f"sqlite:///{tmp_path / 'static.db'}") as store:
        store.ingest([parse_event(event) for event in events])
        out = io.BytesIO()
        assert export_openlineage(store, out) == 3
        original = _graph(store)
        document = to_prov(store)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == events
    with _rebuilt(out.getvalue(), tmp_path) as rebuilt:
        assert _graph(rebuilt) == original
    influences = [r for r in document.get_records() if PROV_N_MAP[r.get_type()] == "wasInfluencedBy"]
    assert sorted(_ours(r, "kind") for r in influences) == ["used", "wasGeneratedBy"]
    assert {unquote(name.localpart) for r in influences for name in r.args} == {
        "job:etl:load",
        "dataset:postgres://db:5432:public.orders",
    }


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES, key=st.text(min_size=1, max_size=4))
def test_any_unknown_facet_content_survives_the_round_trip(value: Any, key: str) -> None:
    event = {
        "eventTime": "2026-01-05T12:00:00Z",
        "eventType": "COMPLETE",
        "producer": "https://example.test/producer",
        "run": {"runId": "0b1c5f5a-8a44-4f40-9b53-2c2b0d2c2d11", "facets": {"x_custom": {key: value}}},
        "job": {"namespace": "ns", "name": "job"},
        "inputs": [{"namespace": "ns", "name": "in", "facets": {"x_data": {"_producer": "p", key: value}}}],
    }
    parsed = parse_event(msgspec.json.encode(event))
    with tempfile.TemporaryDirectory() as scratch, open_store(f"sqlite:///{scratch}/p.db") as store:
        store.ingest([parsed])
        out = io.BytesIO()
        export_openlineage(store, out)
    (line,) = out.getvalue().splitlines()
    # Same canonical bytes. Numbers come back in their RFC 8785 spelling: 2.864807944413017e16, say,
    # as 28648079444130170, the same double, which Python then reads as an int.
    assert parse_event(line).digest == parsed.digest
    exported = msgspec.json.decode(line)
    assert exported["run"]["facets"]["x_custom"].keys() == {key}
    assert exported["inputs"][0]["facets"]["x_data"].keys() == {"_producer", key}


def _ours(record: ProvRecord, name: str) -> Any:
    values = record.get_attribute(f"opslineage:{name}")
    return next(iter(values)) if values else None


def _read_prov(url: str, path: Path) -> tuple[ProvDocument, dict[str, int]]:
    with open_store(url) as store, path.open("w", encoding="utf-8") as out:
        counts = export_prov_json(store, out)
    return prov.read(path, format="json"), counts


def test_prov_json_has_one_record_per_node_and_edge(demo, tmp_path: Path) -> None:
    url, _ = demo
    document, counts = _read_prov(url, tmp_path / "demo.prov.json")
    records = document.get_records()
    assert Counter(PROV_N_MAP[record.get_type()] for record in records) == counts
    with open_store(url) as store:
        nodes = Counter(node.kind for node in store.find_nodes(limit=10**6))
        edges = Counter(kind for _, _, kind, _ in _edges(store))
    assert counts["activity"] == nodes["run"]
    assert counts["agent"] == nodes["agent"]
    assert counts["entity"] == sum(nodes[kind] for kind in ENTITY_KINDS)
    elements = Counter(
        _ours(r, "kind") for r in records if PROV_N_MAP[r.get_type()] in ("activity", "entity", "agent")
    )
    assert elements == nodes
    assert {RELATIONS[kind]: n for kind, n in edges.items()} == {
        kind: n for kind, n in counts.items() if kind not in ("activity", "entity", "agent")
    }
    for record in records:
        if record.identifier is not None:  # elements: the identifier is the id, percent-encoded
            assert record.identifier.namespace.prefix == "node"
            assert unquote(record.identifier.localpart) == _ours(record, "id")
            assert all(c.isalnum() or c in "%-._" for c in record.identifier.localpart)


def test_prov_action_record_carries_its_digest_times_and_agents(demo, tmp_path: Path) -> None:
    url, result = demo
    action_run = "run:" + result.remediations[0].run_id
    with open_store(url) as store:
        (record_id,) = [
            src for src, _, _, _ in store.edges([action_run], direction="down", kinds=["wasGeneratedBy"])
        ]
        node = store.node(record_id)
        events = store.events(run_id=result.remediations[0].run_id)
    document, _ = _read_prov(url, tmp_path / "demo.prov.json")
    by_id = {_ours(r, "id"): r for r in document.get_records() if r.identifier is not None}
    record = by_id[record_id]
    assert node is not None and node.type == "action"
    assert PROV_N_MAP[record.get_type()] == "entity" and _ours(record, "type") == "action"
    assert _ours(record, "digest") == node.digest and node.digest.startswith("sha256:")
    activity = by_id[action_run]
    assert [e.event_type for e in events] == ["START", "COMPLETE"] and _ours(activity, "state") == "COMPLETE"
    assert activity.get_startTime() == datetime.fromisoformat(events[0].event_time)
    assert activity.get_endTime() == datetime.fromisoformat(events[-1].event_time)
    (association,) = [
        r
        for r in document.get_records()
        if PROV_N_MAP[r.get_type()] == "wasAssociatedWith" and r.args[0] == activity.identifier
    ]
    assert association.get_attribute(PROV_ROLE) == {"executor"}
    assert unquote(association.args[1].localpart) == "agent:aiops-pipeline"
    assert unquote(association.args[2].localpart) == f"job:{node.namespace}:remediation.scale_out"


def test_prov_feature_set_derives_from_its_snapshots_and_child_is_informed_by_parent(
    demo, tmp_path: Path
) -> None:
    url, _ = demo
    document, _ = _read_prov(url, tmp_path / "demo.prov.json")
    by_name = {r.identifier: r for r in document.get_records() if r.identifier is not None}
    derivations = [r for r in document.get_records() if PROV_N_MAP[r.get_type()] == "wasDerivedFrom"]
    inputs = [
        (by_name[r.args[0]], by_name[r.args[1]])
        for r in derivations
        if _ours(by_name[r.args[0]], "type") == "feature" and _ours(r, "role") == "input"
    ]
    assert inputs and all(_ours(used, "type") == "snapshot" for _, used in inputs)
    (informed,) = [r for r in document.get_records() if PROV_N_MAP[r.get_type()] == "wasInformedBy"]
    child, parent = by_name[informed.args[0]], by_name[informed.args[1]]
    assert _ours(informed, "kind") == "hasParent"
    with open_store(url) as store:
        assert store.edges([_ours(child, "id")], direction="up", kinds=["hasParent"]) == [
            (_ours(child, "id"), _ours(parent, "id"), "hasParent", None)
        ]


@pytest.mark.skipif(not COMPATIBILITY.exists(), reason="OpenLineage compatibility events not available")
def test_prov_names_foreign_datasets_with_any_characters(tmp_path: Path) -> None:
    events = [parse_event(path.read_bytes()) for path in sorted(COMPATIBILITY.glob("*/events/*.json"))]
    with open_store(f"sqlite:///{tmp_path / 'foreign.db'}") as store:
        store.ingest(events)
        document = to_prov(store)
        ids = {node.id for node in store.find_nodes(limit=10**6)}
    assert {_ours(r, "id") for r in document.get_records() if r.identifier is not None} == ids
    assert any(":" in node_id.partition(":")[2] and "/" in node_id for node_id in ids)
    document.get_provn()  # PROV-N writes every name as it is: no warning (they are errors here)
    again = ProvDocument.deserialize(content=document.serialize(format="json"), format="json")
    assert again == document
    assert {ns.uri for ns in document.namespaces} == {OPSLINEAGE_NS, NODE_NS}


def test_prov_json_command_writes_a_file_or_stdout(demo, tmp_path: Path, capsys) -> None:
    url, _ = demo
    with open_store(url) as store:
        runs = len(store.find_nodes(kind="run", limit=10**6))
    out = tmp_path / "graph.json"
    assert main(["export", "--format", "prov-json", "-o", str(out), "--store", url]) == 0
    assert capsys.readouterr().out.startswith(f"wrote PROV-JSON of {runs} activities, ")
    assert main(["export", "--format", "prov-json", "--store", url, "--json", "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"]["activity"] == runs and summary["bytes"] == out.stat().st_size
    assert main(["export", "--format", "prov-json", "--store", url]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(out.read_text(encoding="utf-8"))


def test_export_usage_errors_exit_2_and_leave_no_file(demo, tmp_path: Path, capsys) -> None:
    url, result = demo
    action = "run:" + result.remediations[0].run_id
    out = tmp_path / "x.json"
    cases = [
        (["--format", "bundle", "-o", str(out)], "--format bundle needs the ACTION_ID"),
        (["--format", "intoto", action], "--format intoto needs -o FILE"),
        (["--format", "openlineage", action, "-o", str(out)], "takes no ACTION_ID"),
        (["--format", "prov-json", "-o", str(tmp_path / "missing" / "x.json")], "cannot write"),
        (["--format", "openlineage", "--store", f"sqlite:///{tmp_path / 'none.db'}"], "no store at"),
    ]
    for argv, reason in cases:
        assert main(["export", *argv] + ([] if "--store" in argv else ["--store", url])) == 2
        assert reason in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_empty_store_exports_nothing_but_valid_documents(store: Store) -> None:
    out, text = io.BytesIO(), io.StringIO()
    assert export_openlineage(store, out) == 0 and out.getvalue() == b""
    assert export_prov_json(store, text) == {}
    assert prov.read(io.StringIO(text.getvalue()), format="json").get_records() == []
