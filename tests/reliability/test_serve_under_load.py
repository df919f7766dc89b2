"""A real ``opslineage serve`` under hostile reads (issue 10, defect 1): requests of absurd depth
and heavy walks in flight do not stop ``/healthz`` from answering, and SIGTERM stops the server
within a few seconds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec
import pytest

from helpers import wait_until_serving
from opslineage import open_store
from opslineage.model import parse_event
from server.test_hostile_reads import loop_events


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(store_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with open_store(store_url) as store:
        store.ingest([parse_event(msgspec.json.encode(event)) for event in loop_events()])
    port = free_port()
    command = [sys.executable, "-c", "from opslineage.cli.main import main; raise SystemExit(main())"]
    process = subprocess.Popen(
        [*command, "serve", "--store", store_url, "--port", str(port), "--query-timeout", "2"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OPSLINEAGE_KEY": str(tmp_path / "none.key")},
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(process, url)
    yield process, url
    if process.poll() is None:
        process.kill()
        process.wait()


def test_absurd_depths_leave_the_server_answering_and_sigterm_stops_it(
    served: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, url = served
    absurd = {"nodeId": "dataset:t:d0", "depth": 1_000_000_000}
    heavy = {"depth": 100}

    def hostile(index: int) -> int:
        with httpx.Client(base_url=url, timeout=60) as client:
            if index % 2:
                return client.get("/api/v1/lineage", params=absurd).status_code
            return client.get(f"/api/v1/upstream/dataset:t:d{index % 50}", params=heavy).status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        pending = [pool.submit(hostile, index) for index in range(40)]
        time.sleep(0.5)  # the requests are in flight
        started = time.monotonic()
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        assert time.monotonic() - started < 5
        statuses = [future.result() for future in pending]
    assert set(statuses[1::2]) == {400}
    assert set(statuses[0::2]) <= {200, 503}

    with ThreadPoolExecutor(max_workers=20) as pool:
        for index in range(20):
            pool.submit(hostile, 2 * index)
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert time.monotonic() - started < 8
