"""The live-server fixture: a server on a store of each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from live import LiveServer, start_server
from opslineage.server import ServerSettings


@pytest.fixture
def live(store_url: str) -> Iterator[LiveServer]:
    server, thread, url = start_server(ServerSettings(store=store_url, token="s3cret", max_body=2 << 20))
    yield LiveServer(url, store_url)
    server.should_exit = True
    thread.join(timeout=10)
