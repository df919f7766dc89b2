"""The store's interface: one protocol per concern, combined by ``Store``, answering in named rows;
and the store package's modules import one another one way only."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

from helpers import Chain
from opslineage import store as store_package
from opslineage.store import (
    AccessLogStorage,
    ArchiveTier,
    ArtifactReader,
    ArtifactRow,
    CheckpointRow,
    EdgeRow,
    Encryption,
    EventLog,
    EventRow,
    GraphReader,
    HotRows,
    LogStorage,
    NodeContent,
    RawEvent,
    Settings,
    Store,
    TokenTable,
)
from opslineage.store.postgres import PostgresStore
from opslineage.store.sqlite import SQLiteStore

PROTOCOLS = (
    GraphReader,
    EventLog,
    ArtifactReader,
    LogStorage,
    ArchiveTier,
    Encryption,
    Settings,
    AccessLogStorage,
    TokenTable,
)


def _members(cls: type) -> set[str]:
    return {
        name for name, value in vars(cls).items() if inspect.isfunction(value) and not name.startswith("_")
    }


def test_the_protocols_split_the_interface_without_overlap() -> None:
    declared = [_members(protocol) for protocol in PROTOCOLS]
    assert sum(len(names) for names in declared) == len(set().union(*declared))
    for backend in (SQLiteStore, PostgresStore):
        public = {
            name for name in dir(backend) if not name.startswith("_") and callable(getattr(backend, name))
        }
        assert public - {"close"} == set().union(*declared), backend.__name__


def test_every_protocol_method_store_leaves_to_the_backends_is_abstract() -> None:
    declared = set().union(*(_members(protocol) for protocol in PROTOCOLS))
    assert Store.__abstractmethods__ == (declared - _members(Store)) | {"close", "_last_seq_at"}

    class Missing(Store):
        def close(self) -> None:
            return None

    with pytest.raises(TypeError, match="walk"):
        Missing()  # type: ignore[abstract]


def test_answers_are_named_rows_that_unpack_as_tuples(store: Store, chain: Chain) -> None:
    action = "run:" + chain.action.run_id
    edges = store.edges([action], direction="up")
    assert edges and all(isinstance(edge, EdgeRow) and edge.src == action for edge in edges)
    assert [tuple(edge) for edge in edges] == [(e.src, e.dst, e.kind, e.role) for e in edges]
    walk = store.walk(action, direction="up", depth=2)
    assert walk.edges and all(isinstance(edge, EdgeRow) for edge in walk.edges)

    found = store.nodes_with_content([chain.decision.id])[chain.decision.id]
    assert isinstance(found, NodeContent) and found.node.id == chain.decision.id
    assert found.content is not None and json.loads(found.content)

    rows = store.stored_events(limit=3)
    raw = store.raw_events(limit=3)
    assert [type(row) for row in rows] == [EventRow] * 3 and [type(row) for row in raw] == [RawEvent] * 3
    assert [(row.seq, row.digest, row.body) for row in rows] == [tuple(row) for row in raw]
    assert all(row.segment is None for row in rows)

    store.add_checkpoint(3, bytes(32), "note")
    (checkpoint,) = store.checkpoints()
    assert isinstance(checkpoint, CheckpointRow) and checkpoint == store.latest_checkpoint()
    assert (checkpoint.size, checkpoint.root, checkpoint.note) == (3, bytes(32), "note")

    hot = store.hot_rows(after=0, through_seq=store.log_size(), limit=1000)
    assert isinstance(hot, HotRows) and [event.seq for event in hot.events] == list(
        range(1, store.log_size() + 1)
    )
    assert hot.artifacts and all(isinstance(row, ArtifactRow) for row in hot.artifacts)
    assert store.artifacts([row.digest for row in hot.artifacts]) == dict(hot.artifacts)


def _imports(path: Path, package: str) -> set[str]:
    """The modules of ``package`` that the module at ``path`` imports, at its top or anywhere inside."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name for name in names if name == package or name.startswith(package + ".")}
    return found


def test_the_store_modules_import_one_another_without_a_cycle() -> None:
    directory = Path(store_package.__file__).parent
    modules = {
        ("opslineage.store" if path.stem == "__init__" else f"opslineage.store.{path.stem}"): path
        for path in directory.glob("*.py")
    }
    graph = {
        name: _imports(path, "opslineage.store") & (set(modules) - {name}) for name, path in modules.items()
    }
    assert graph["opslineage.store.records"] == set()
    assert graph["opslineage.store.segments"] == {"opslineage.store.records"}

    def cycle_from(name: str, trail: tuple[str, ...]) -> tuple[str, ...] | None:
        if name in trail:
            return (*trail[trail.index(name) :], name)
        return next((found for nxt in graph[name] if (found := cycle_from(nxt, (*trail, name)))), None)

    assert [cycle for name in graph if (cycle := cycle_from(name, ()))] == []
