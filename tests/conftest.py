"""Shared fixtures: a fresh store per test, a recorded remediation chain, and one demo run per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Chain, record_chain
from opslineage import Tracer, open_store
from opslineage.demo import DemoConfig, DemoResult, run_demo
from opslineage.sdk import MemoryTransport
from opslineage.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with open_store(f"sqlite:///{tmp_path / 'lineage.db'}") as opened:
        yield opened


@pytest.fixture
def chain(store: Store) -> Chain:
    tracer = Tracer("test.ns", store=store, sync=True)
    recorded = record_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    return recorded


@pytest.fixture
def captured() -> tuple[Tracer, MemoryTransport, Chain]:
    tracer = Tracer.in_memory("test.ns")
    recorded = record_chain(tracer)
    assert isinstance(tracer.transport, MemoryTransport)
    return tracer, tracer.transport, recorded


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult]:
    """The default demo, run once for the whole session."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with open_store(f"sqlite:///{path}") as opened:
        result = run_demo(opened, DemoConfig())
    return path, result
