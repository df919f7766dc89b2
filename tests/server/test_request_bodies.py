"""Request bodies (issue 10, defects 4 and 5): a gzip body is one whole gzip member and nothing
else, and a body is counted as its bytes arrive, compressed and decompressed, so a chunked upload
far over ``--max-body`` is refused with a 413 long before it is all read, on a real
``opslineage serve`` whose memory is watched."""

from __future__ import annotations

import gzip
import os
import select
import socket
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from helpers import wait_until_serving
from live import LiveServer

AUTH = {"Authorization": "Bearer s3cret"}
EVENT = msgspec.json.encode(
    {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-01T00:00:00Z",
        "producer": "https://example.com/bodies",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0190a4b2-7c3e-7d1a-9f00-000000000001"},
        "job": {"namespace": "t", "name": "bodies"},
    }
)
LIMIT = 1 << 20
MIB = 1 << 20


def post(live: LiveServer, body: bytes, encoding: str = "gzip") -> httpx.Response:
    headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": encoding}
    return httpx.post(f"{live.url}/api/v1/lineage", content=body, headers=headers, timeout=30)


def stored(live: LiveServer) -> int:
    return int(httpx.get(f"{live.url}/readyz").json()["events"])


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (gzip.compress(EVENT) + b"garbage", "trailing data after the gzip member"),
        (gzip.compress(EVENT) + gzip.compress(EVENT), "a second gzip member"),
        (gzip.compress(EVENT)[:-6], "truncated gzip"),
        (gzip.compress(EVENT)[:20], "truncated gzip"),
        (b"", "truncated gzip"),
    ],
    ids=["trailing-garbage", "second-member", "truncated-trailer", "truncated-stream", "empty"],
)
def test_a_gzip_body_is_one_whole_member_and_nothing_else(live: LiveServer, body: bytes, detail: str) -> None:
    response = post(live, body)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_encoding"
    assert detail in response.json()["detail"]
    assert stored(live) == 0


def test_a_deflate_body_with_trailing_data_or_cut_short_is_refused(live: LiveServer) -> None:
    whole = zlib.compress(EVENT)
    trailing = post(live, whole + b"x", "deflate")
    assert (trailing.status_code, trailing.json()["error"]) == (400, "bad_encoding")
    assert "trailing data after the deflate stream" in trailing.json()["detail"]
    cut = post(live, whole[:-3], "deflate")
    assert (cut.status_code, cut.json()["error"]) == (400, "bad_encoding")
    assert "truncated deflate" in cut.json()["detail"]
    assert stored(live) == 0


def test_whole_gzip_and_deflate_bodies_are_accepted_as_before(live: LiveServer) -> None:
    assert post(live, gzip.compress(EVENT)).status_code == 201
    assert post(live, zlib.compress(EVENT), "deflate").json()["duplicate"] is True
    assert post(live, EVENT, "identity").json()["duplicate"] is True
    assert stored(live) == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``opslineage serve --max-body 1 MiB`` in its own process, so that its memory can be read."""
    port = free_port()
    command = [sys.executable, "-c", "from opslineage.cli.main import main; raise SystemExit(main())"]
    store = f"sqlite:///{tmp_path / 'store.db'}"
    process = subprocess.Popen(
        [*command, "serve", "--store", store, "--port", str(port), "--max-body", str(LIMIT)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OPSLINEAGE_KEY": str(tmp_path / "none.key")},
    )
    wait_until_serving(process, f"http://127.0.0.1:{port}")
    yield process, port
    process.kill()
    process.wait()


def memory_kib(pid: int, field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (the peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def send_chunked(port: int, chunks: Iterator[bytes], headers: dict[str, str]) -> tuple[bytes, int]:
    """POST ``chunks`` with ``Transfer-Encoding: chunked`` until the server answers (or they end);
    the answer (head and body) and how many body bytes were sent before it came."""
    lines = [
        "POST /api/v1/lineage HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Transfer-Encoding: chunked",
        "Content-Type: application/json",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for chunk in chunks:
            if select.select([connection], [], [], 0)[0]:
                break  # the server has answered: stop sending
            try:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        else:
            connection.sendall(b"0\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < _answer_length(answer):
            data = connection.recv(65536)
            if not data:
                break
            answer += data
    return answer, sent


def _answer_length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(answer)


def spaces(total: int, size: int = 64 << 10) -> Iterator[bytes]:
    """``total`` bytes of JSON whitespace, made as they are sent."""
    block = b" " * size
    for _ in range(total // size):
        yield block


def test_a_chunked_upload_far_over_the_limit_is_refused_before_it_is_read_whole(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = served
    before = memory_kib(process.pid, "VmRSS")
    answer, sent = send_chunked(port, spaces(200 * MIB), AUTH)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"error":"too_large"' in answer
    grown = (memory_kib(process.pid, "VmHWM") - before) * 1024
    assert grown < 64 * MIB, f"the server grew by {grown / MIB:.0f} MiB for a refused body"
    assert sent < 200 * MIB  # it answered while the body was still arriving


def gzip_bomb(total: int) -> Iterator[bytes]:
    """A gzip stream of ``total`` zero bytes (a few hundred KiB of it per GiB), compressed as sent."""
    packer = zlib.compressobj(9, wbits=31)
    block = bytes(MIB)
    for _ in range(total // MIB):
        if part := packer.compress(block):
            yield part
    yield packer.flush()


def test_a_gzip_bomb_is_refused_without_being_inflated_whole(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = served
    before = memory_kib(process.pid, "VmRSS")
    answer, _ = send_chunked(port, gzip_bomb(512 * MIB), {"Content-Encoding": "gzip"})
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"decompressed body is over the limit of 1048576 bytes" in answer
    grown = (memory_kib(process.pid, "VmHWM") - before) * 1024
    assert grown < 64 * MIB, f"the server grew by {grown / MIB:.0f} MiB for a refused body"
