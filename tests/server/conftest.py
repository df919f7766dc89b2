"""The live-server fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from live import LiveServer, start_server
from opslineage.server import ServerSettings


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    store = f"sqlite:///{tmp_path / 'served.db'}"
    server, thread, url = start_server(ServerSettings(store=store, token="s3cret", max_body=2 << 20))
    yield LiveServer(url, store)
    server.should_exit = True
    thread.join(timeout=10)
