"""A real opslineage server on a free loopback port, for tests and benchmarks that speak HTTP."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn

from opslineage.governance import AccessTrail
from opslineage.server import ServerSettings, create_app


@dataclass
class LiveServer:
    """A running server: its base URL and the store URL it serves."""

    url: str
    store: str


def start_server(
    settings: ServerSettings, port: int = 0, trail: AccessTrail | None = None
) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serve ``settings`` (access events on ``trail``) on ``port`` (0: a free one) of 127.0.0.1."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, trail), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"
